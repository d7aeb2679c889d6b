//! The live picture of every endpoint: health, last round, counters. The ICMP engine feeds it
//! rounds (through [`MonitorSink`]); the HTTP server reads it for /metrics and status pages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{Histogram, IntGauge};

use crate::health::{Health, HealthPolicy, State};
use crate::metrics::DaemonMetrics;
use crate::metrics::endpoint_text::label_set;
use crate::model::{Endpoint, RoundStats};
use crate::probe::icmp::RoundSink;

/// Prometheus handles for an endpoint's region, resolved once.
struct RegionHandles {
    rtt: Histogram,
    by_state: [IntGauge; 4],
}

pub struct EndpointView {
    pub endpoint: Endpoint,
    /// `{endpoint="…",province="…",…}`, escaped once at load.
    pub label_text: Box<str>,
    pub health: Health,
    pub last: Option<RoundStats>,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub rounds: u64,
    pub transitions: u64,
    pub last_transition: Option<SystemTime>,
    region: RegionHandles,
}

pub struct MonitorState {
    pub endpoints: Vec<EndpointView>,
    pub policy: HealthPolicy,
    awaiting_first_round: usize,
}

pub struct Monitor {
    state: Mutex<MonitorState>,
    pub metrics: Arc<DaemonMetrics>,
    ready: AtomicBool,
}

impl Monitor {
    pub fn new(endpoints: &[Endpoint], policy: HealthPolicy, metrics: Arc<DaemonMetrics>) -> Monitor {
        let views: Vec<EndpointView> = endpoints.iter().map(|e| new_view(e, &metrics)).collect();
        metrics.endpoints.set(views.len() as i64);
        let ready = views.is_empty();
        metrics.ready.set(i64::from(ready));
        Monitor {
            state: Mutex::new(MonitorState {
                awaiting_first_round: views.len(),
                endpoints: views,
                policy,
            }),
            metrics,
            ready: AtomicBool::new(ready),
        }
    }

    /// The state, for readers. Hold the guard briefly: the engine waits on it.
    pub fn lock(&self) -> MutexGuard<'_, MonitorState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once every endpoint has finished one round.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Switches to a changed inventory. Carried endpoints (same id) keep health, counters and
    /// history; changed labels move them to their new region; added ones start Unknown;
    /// removed ones leave every series. Runs on the engine thread (see
    /// [`crate::probe::icmp::Replacement::on_applied`]), so no round is misattributed.
    pub fn apply_reload(&self, endpoints: &[Endpoint], carried_from: &[Option<usize>], policy: HealthPolicy) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut old: Vec<Option<EndpointView>> = std::mem::take(&mut state.endpoints).into_iter().map(Some).collect();
        let mut views = Vec::with_capacity(endpoints.len());
        for (e, from) in endpoints.iter().zip(carried_from) {
            let carried = from.and_then(|o| old.get_mut(o)).and_then(Option::take);
            views.push(match carried {
                Some(mut v) => {
                    if v.endpoint.labels != e.labels {
                        let fresh = new_view(e, &self.metrics);
                        // new_view counted it Unknown in its new region; move the count to its state.
                        fresh.region.by_state[State::Unknown as usize].dec();
                        fresh.region.by_state[v.health.state as usize].inc();
                        v.region.by_state[v.health.state as usize].dec();
                        v.region = fresh.region;
                        v.label_text = fresh.label_text;
                    } else if v.endpoint.id != e.id {
                        v.label_text = label_set(e).into_boxed_str();
                    }
                    v.endpoint = e.clone();
                    v
                }
                None => new_view(e, &self.metrics),
            });
        }
        for v in old.into_iter().flatten() {
            v.region.by_state[v.health.state as usize].dec();
        }
        // Regions left without endpoints lose their series (e.g. provinces merged in a reform).
        let live: std::collections::HashSet<(&str, &str)> = views
            .iter()
            .map(|v| (&*v.endpoint.labels.province, &*v.endpoint.labels.carrier))
            .collect();
        for family in self.metrics.region_endpoints.collect() {
            for m in family.get_metric() {
                let label = |n: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == n)
                        .map(|l| l.value().to_string())
                };
                if let (Some(p), Some(c), Some(st)) = (label("province"), label("carrier"), label("state"))
                    && !live.contains(&(p.as_str(), c.as_str()))
                {
                    let _ = self.metrics.region_endpoints.remove_label_values(&[&p, &c, &st]);
                    let _ = self.metrics.region_rtt.remove_label_values(&[&p, &c]);
                }
            }
        }
        state.awaiting_first_round = views.iter().filter(|v| v.last.is_none()).count();
        state.endpoints = views;
        state.policy = policy;
        self.metrics.endpoints.set(state.endpoints.len() as i64);
    }

    fn record(&self, index: usize, stats: &RoundStats, rtts: &[f32], at: SystemTime) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(view) = state.endpoints.get_mut(index) else {
            return;
        };
        view.packets_sent += u64::from(stats.sent);
        view.packets_received += u64::from(stats.received);
        view.rounds += 1;
        let first = view.last.is_none();
        view.last = Some(*stats);
        for rtt in rtts.iter().filter(|r| !r.is_nan()) {
            view.region.rtt.observe(f64::from(*rtt));
        }
        if let Some(t) = view.health.observe(stats, &state.policy) {
            view.transitions += 1;
            view.last_transition = Some(at);
            view.region.by_state[t.from as usize].dec();
            view.region.by_state[t.to as usize].inc();
            self.metrics
                .transitions
                .with_label_values(&[t.from.as_str(), t.to.as_str()])
                .inc();
            let e = &view.endpoint;
            tracing::info!(
                endpoint = %e.id, province = %e.labels.province, district = %e.labels.district,
                commune = %e.labels.commune, carrier = %e.labels.carrier, address = %e.address,
                from = t.from.as_str(), to = t.to.as_str(), loss = stats.loss_ratio(),
                "endpoint state changed"
            );
        }
        self.metrics.rounds.inc();
        if first {
            state.awaiting_first_round = state.awaiting_first_round.saturating_sub(1);
            if state.awaiting_first_round == 0 {
                self.ready.store(true, Ordering::Relaxed);
                self.metrics.ready.set(1);
                tracing::info!(
                    endpoints = state.endpoints.len(),
                    "every endpoint has finished its first round: ready"
                );
            }
        }
    }
}

fn new_view(e: &Endpoint, metrics: &DaemonMetrics) -> EndpointView {
    let (p, c) = (&*e.labels.province, &*e.labels.carrier);
    let by_state = State::ALL.map(|s| metrics.region_endpoints.with_label_values(&[p, c, s.as_str()]));
    by_state[State::Unknown as usize].inc();
    EndpointView {
        label_text: label_set(e).into_boxed_str(),
        endpoint: e.clone(),
        health: Health::default(),
        last: None,
        packets_sent: 0,
        packets_received: 0,
        rounds: 0,
        transitions: 0,
        last_transition: None,
        region: RegionHandles {
            rtt: metrics.region_rtt.with_label_values(&[p, c]),
            by_state,
        },
    }
}

/// Unix seconds, for timestamps in metrics and APIs.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The engine's handle on the monitor.
pub struct MonitorSink(pub Arc<Monitor>);

impl RoundSink for MonitorSink {
    fn round(&mut self, endpoint: usize, stats: &RoundStats, rtts: &[f32], at: SystemTime) {
        self.0.record(endpoint, stats, rtts, at);
    }
}
