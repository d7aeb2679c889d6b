//! The live picture of every endpoint: health, last round, service checks, counters. The ICMP
//! engine feeds it rounds (through [`MonitorSink`]), the service-check scheduler feeds it
//! check outcomes; the HTTP server reads it for /metrics, the status page and the API.
//!
//! An endpoint's state combines its deciding checks: Down if any deciding check is down,
//! Unknown while none has a result, Degraded when ICMP quality is degraded, else Up.

mod isolation;
mod last_round;
mod paths;
mod quality;
mod record;
pub mod scheduler;
mod stall;
mod summary;

pub use paths::{PathBook, PathView, hops_text};
pub use quality::QualityView;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use prometheus::Histogram;
use prometheus::core::Collector;

use crate::config::checks::{ChecksConfig, ICMP};
use crate::domain::blindness::{Sight, family_index};
use crate::domain::damper::{Damper, Verdict};
use crate::domain::health::{Health, HealthPolicy, State};
use crate::domain::maintenance::{MaintenanceWindow, ScopeLabels};
use crate::domain::{
    Endpoint, EndpointId, FinishedRound, Followup, Resolution, RoundStats, Transition, unix_ms, unix_seconds,
};
use crate::metrics::DaemonMetrics;
use crate::probe::icmp::{RoundSink, Stall};
use crate::probe::outcome::Outcome;
use isolation::{carriers_of, family_counts};
use last_round::LastRound;

/// The RTT histogram of an endpoint's region (province × carrier), resolved once: replies are
/// observed as they arrive. Region state counts are computed at scrape time instead
/// ([`crate::web::exposition`]), like the per-endpoint series.
struct RegionHandles {
    rtt: Histogram,
}

/// The damped state of one service check (same `down_after`/`up_after` as ICMP rounds).
#[derive(Clone, Debug)]
pub struct CheckView {
    pub name: Arc<str>,
    pub decides: bool,
    pub state: State,
    damper: Damper,
    pub last: Option<Outcome>,
    pub attempts: u64,
    pub failures: u64,
}

impl CheckView {
    fn new(name: Arc<str>, decides: bool) -> CheckView {
        CheckView {
            name,
            decides,
            state: State::Unknown,
            damper: Damper::default(),
            last: None,
            attempts: 0,
            failures: 0,
        }
    }

    fn observe(&mut self, outcome: Outcome, policy: &HealthPolicy, started: SystemTime) {
        self.attempts += 1;
        self.failures += u64::from(!outcome.success);
        match self.damper.observe(outcome.success, self.state, policy, started) {
            Verdict::Answering => self.state = State::Up,
            Verdict::Down => self.state = State::Down,
            Verdict::Hold => {}
        }
        self.last = Some(outcome);
    }

    /// Protocol status of the last attempt (HTTP, SIP), when a response arrived.
    pub fn status_code(&self) -> Option<u16> {
        self.last.as_ref()?.detail.status
    }

    pub fn cert_not_after(&self) -> Option<SystemTime> {
        self.last.as_ref()?.detail.tls_cert_not_after
    }
}

pub struct EndpointView {
    pub endpoint: Arc<Endpoint>,
    /// Whether the endpoint's label values need escaping in the metrics text.
    pub labels_need_escaping: bool,
    /// The endpoint's combined state.
    pub state: State,
    /// ICMP health (its own state, quality window).
    pub icmp: Health,
    pub checks: Vec<CheckView>,
    last: Option<LastRound>,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub rounds: u64,
    /// Breaks too short to confirm (see [`crate::domain::health::Observation::brief`]).
    pub brief_interruptions: u64,
    pub transitions: u64,
    pub last_transition: Option<SystemTime>,
    /// Maintenance windows that apply to this endpoint (indexes into the monitor's windows).
    maintenance_windows: Box<[u16]>,
    /// Inside a planned maintenance window now (refreshed by [`Monitor::refresh_maintenance`]).
    pub in_maintenance: bool,
    /// RTT and jitter counters, the conference-quality score.
    pub quality: QualityView,
    /// Its baseline path and where its fault lies.
    pub path: PathView,
    region: RegionHandles,
}

impl EndpointView {
    /// Whether the monitor waits for this endpoint's first round before it is ready: it has an
    /// address, or its host name is still being resolved (a name that failed is not waited for).
    fn awaits_first_round(&self) -> bool {
        self.last.is_none() && (self.endpoint.address.is_some() || self.endpoint.resolution == Resolution::Pending)
    }

    /// Unknown and expected to get a state (for the "every endpoint has a state" summary).
    fn unknown_pending_state(&self) -> bool {
        self.state == State::Unknown
            && (self.endpoint.address.is_some() || self.endpoint.resolution == Resolution::Pending)
    }

    /// The figures of the last round, if one completed.
    pub fn last(&self) -> Option<RoundStats> {
        self.last.map(LastRound::stats)
    }

    /// The conference-quality MOS over the health window: only while the endpoint is Up or
    /// Degraded (an Unknown or Down endpoint has no series, so no quality alert can fire on it).
    pub fn mos(&self) -> Option<f64> {
        self.reachable().then(|| self.quality.mos()).flatten()
    }

    /// The R factor behind [`Self::mos`], on the codec's scale (≤ 93.2 narrowband, ≤ 129 wideband).
    pub fn r_factor(&self) -> Option<f64> {
        self.reachable().then(|| self.quality.r()).flatten()
    }

    /// Index of its address family (see [`crate::domain::blindness::FAMILIES`]); `None` while
    /// it has no address.
    pub fn family(&self) -> Option<usize> {
        self.endpoint.address.as_ref().map(family_index)
    }

    /// The score is below `[quality] poor_mos`.
    pub fn poor_quality(&self) -> bool {
        self.reachable() && self.quality.poor
    }

    fn reachable(&self) -> bool {
        self.state.reachable() == Some(true)
    }

    /// The deciding checks that are failing now (for the status page and transition causes).
    pub fn failing_checks(&self, icmp_decides: bool) -> Vec<&str> {
        let mut v = Vec::new();
        if icmp_decides && self.icmp.state == State::Down {
            v.push(ICMP);
        }
        v.extend(
            self.checks
                .iter()
                .filter(|c| c.decides && c.state == State::Down)
                .map(|c| &*c.name),
        );
        v
    }
}

/// Where the monitor's history goes besides metrics and logs: the ledger. Called under the
/// monitor's lock and on the engine thread: never block.
pub trait Recorder: Send + Sync {
    fn transition(&self, t: &Transition);
    /// The monitor saw nothing from `stall.from` to `stall.to`.
    fn stall(&self, stall: &Stall);
    /// A break of `endpoint` too short to confirm, from `from` to `to`.
    fn brief_interruption(&self, endpoint: &EndpointId, from: SystemTime, to: SystemTime);
    /// The monitor was blind on `family` ("ipv4", "ipv6": its own network cut) from `from` to
    /// `to`: unknown time for that family's endpoints.
    fn blind(&self, family: &'static str, from: SystemTime, to: SystemTime);
    /// Where the open outage of `endpoint` lies (after its Down transition, or once placed).
    fn fault(&self, endpoint: &EndpointId, finding: &crate::domain::path::Finding) {
        let _ = (endpoint, finding);
    }
    /// `endpoint`'s baseline path to `address`, traced at `learned`.
    fn baseline(
        &self,
        endpoint: &EndpointId,
        address: std::net::IpAddr,
        trace: &crate::domain::path::Trace,
        learned: SystemTime,
    ) {
        let _ = (endpoint, address, trace, learned);
    }
}

pub struct MonitorState {
    pub endpoints: Vec<EndpointView>,
    /// Whether the monitor itself is blind (its own uplink cut), per address family, judged
    /// from all rounds.
    pub sight: Sight,
    pub policy: HealthPolicy,
    pub icmp_decides: bool,
    /// Path tracing: settings and the hops every baseline shares.
    pub paths: PathBook,
    /// `[monitor] references`, probed after the endpoints (engine index = endpoints + i).
    pub references: Vec<std::net::IpAddr>,
    maintenance: Arc<Vec<MaintenanceWindow>>,
    index: HashMap<EndpointId, usize>,
    awaiting_first_round: usize,
    /// Endpoints whose combined state is Unknown.
    unknown: usize,
    /// Some endpoints were still Unknown when the monitor became ready: one summary line is
    /// due when the last of them gets a state (their own changes are logged at DEBUG).
    announce_settled: bool,
}

impl MonitorState {
    pub fn position(&self, id: &EndpointId) -> Option<usize> {
        self.index.get(id).copied()
    }
}

pub struct Monitor {
    state: Mutex<MonitorState>,
    pub metrics: Arc<DaemonMetrics>,
    ready: AtomicBool,
    recorder: OnceLock<Box<dyn Recorder>>,
    /// End of the last stall (unix ms): check outcomes of attempts begun before it are dropped.
    stalled_until_ms: AtomicI64,
    icmp_name: Arc<str>,
    dns_name: Arc<str>,
}

impl Monitor {
    pub fn new(
        endpoints: &[Arc<Endpoint>],
        policy: HealthPolicy,
        checks: &ChecksConfig,
        maintenance: Arc<Vec<MaintenanceWindow>>,
        metrics: Arc<DaemonMetrics>,
    ) -> Monitor {
        let views: Vec<EndpointView> = endpoints
            .iter()
            .map(|e| new_view(e, checks, &maintenance, &metrics, &policy))
            .collect();
        metrics.endpoints.set(views.len() as i64);
        let awaiting = views.iter().filter(|v| v.awaits_first_round()).count();
        let ready = awaiting == 0;
        metrics.ready.set(i64::from(ready));
        Monitor {
            state: Mutex::new(MonitorState {
                sight: Sight::new(family_counts(&views), carriers_of(&views)),
                awaiting_first_round: awaiting,
                unknown: views.iter().filter(|v| v.unknown_pending_state()).count(),
                announce_settled: false,
                index: index_of(&views),
                endpoints: views,
                policy,
                icmp_decides: checks.icmp_decides,
                paths: PathBook::default(),
                references: Vec::new(),
                maintenance,
            }),
            metrics,
            ready: AtomicBool::new(ready),
            recorder: OnceLock::new(),
            stalled_until_ms: AtomicI64::new(i64::MIN),
            icmp_name: ICMP.into(),
            dns_name: "dns".into(),
        }
    }

    /// Where the history goes besides metrics and logs (set once: the ledger).
    pub fn set_recorder(&self, recorder: Box<dyn Recorder>) {
        let _ = self.recorder.set(recorder);
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
    /// history, and the checks they still have (by name); changed labels move them to their new
    /// region; added ones start Unknown; removed ones leave every series. A carried endpoint that
    /// lost its address (its host name no longer resolves) is no longer probed: it goes back to
    /// Unknown, a transition with check `dns`. Runs on the engine thread (see
    /// [`crate::probe::icmp::Replacement::on_applied`]), so no round is misattributed.
    pub fn apply_reload(
        &self,
        endpoints: &[Arc<Endpoint>],
        carried_from: &[Option<usize>],
        policy: HealthPolicy,
        checks: &ChecksConfig,
        maintenance: Arc<Vec<MaintenanceWindow>>,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut old: Vec<Option<EndpointView>> = std::mem::take(&mut state.endpoints).into_iter().map(Some).collect();
        let mut views = Vec::with_capacity(endpoints.len());
        for (e, from) in endpoints.iter().zip(carried_from) {
            let carried = from.and_then(|o| old.get_mut(o)).and_then(Option::take);
            views.push(match carried {
                Some(mut v) => {
                    if v.endpoint.labels != e.labels {
                        v.region = region_handles(e, &self.metrics);
                    }
                    let mut old_checks = std::mem::take(&mut v.checks);
                    v.checks = check_views(e, checks)
                        .into_iter()
                        .map(|fresh| match old_checks.iter().position(|c| c.name == fresh.name) {
                            Some(i) => CheckView {
                                decides: fresh.decides,
                                ..old_checks.swap_remove(i)
                            },
                            None => fresh,
                        })
                        .collect();
                    v.maintenance_windows = windows_for(e, &maintenance);
                    v.quality.reconfigure(policy.quality.codec_index(e));
                    v.labels_need_escaping = e.labels_need_escaping();
                    if v.endpoint.address != e.address {
                        v.path = PathView::default(); // another address, another path
                    }
                    v.endpoint = Arc::clone(e);
                    if e.address.is_none() && (v.last.is_some() || v.state != State::Unknown) {
                        // Nothing will be probed: no figure or state of the old address stays.
                        v.icmp = Health::default();
                        v.checks = check_views(e, checks);
                        v.last = None;
                        let reason = e.dns_problem().unwrap_or_else(|| "dns: no address".into());
                        self.settle(&mut v, checks.icmp_decides, SystemTime::now(), &self.dns_name, &reason);
                    }
                    v
                }
                None => new_view(e, checks, &maintenance, &self.metrics, &policy),
            });
        }
        self.drop_empty_regions(&views);
        state.awaiting_first_round = views.iter().filter(|v| v.awaits_first_round()).count();
        state.unknown = views.iter().filter(|v| v.unknown_pending_state()).count();
        state.index = index_of(&views);
        state.sight = state.sight.resized(family_counts(&views), carriers_of(&views));
        state.paths.forget_shared();
        state.endpoints = views;
        state.policy = policy;
        state.icmp_decides = checks.icmp_decides;
        state.maintenance = maintenance;
        if state.awaiting_first_round == 0 && !self.ready.swap(true, Ordering::Relaxed) {
            self.announce_ready(state);
        }
        drop(guard);
        self.refresh_maintenance(SystemTime::now());
        let state = self.lock();
        self.metrics.endpoints.set(state.endpoints.len() as i64);
    }

    /// Marks the endpoints inside an active maintenance window; called every few seconds and
    /// after a reload. Windows are evaluated once each, not once per endpoint.
    pub fn refresh_maintenance(&self, now: SystemTime) {
        let unix = unix_seconds(now) as i64;
        let mut state = self.lock();
        let active: Vec<bool> = state.maintenance.iter().map(|w| w.active_at(unix)).collect();
        let mut changed = 0;
        for v in &mut state.endpoints {
            let now_in = v
                .maintenance_windows
                .iter()
                .any(|i| active.get(usize::from(*i)).copied().unwrap_or(false));
            changed += usize::from(now_in != v.in_maintenance);
            v.in_maintenance = now_in;
        }
        if changed > 0 {
            let names: Vec<&str> = state
                .maintenance
                .iter()
                .zip(&active)
                .filter(|(_, a)| **a)
                .map(|(w, _)| w.name.as_str())
                .collect();
            tracing::info!(endpoints_changed = changed, active = ?names, "maintenance windows changed");
        }
    }

    /// Regions left without endpoints lose their series (e.g. provinces merged in a reform).
    fn drop_empty_regions(&self, views: &[EndpointView]) {
        let live: HashSet<(&str, &str)> = views
            .iter()
            .map(|v| (&*v.endpoint.labels.province, &*v.endpoint.labels.carrier))
            .collect();
        for family in self.metrics.region_rtt.collect() {
            for m in family.get_metric() {
                let label = |n: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == n)
                        .map(|l| l.value().to_string())
                };
                if let (Some(p), Some(c)) = (label("province"), label("carrier"))
                    && !live.contains(&(p.as_str(), c.as_str()))
                {
                    let _ = self.metrics.region_rtt.remove_label_values(&[&p, &c]);
                }
            }
        }
    }

    /// Recomputes the combined state; counts, logs and hands on a change, and returns it. A
    /// change from Unknown (an endpoint's first state) is logged at DEBUG: the start-up summary
    /// counts them.
    fn settle(
        &self,
        view: &mut EndpointView,
        icmp_decides: bool,
        at: SystemTime,
        check: &Arc<str>,
        reason: &dyn std::fmt::Display,
    ) -> Option<(State, State)> {
        let to = combined(&view.icmp, icmp_decides, &view.checks);
        let from = view.state;
        if to == from {
            return None;
        }
        // A change dated back (midway between requests) never goes before the endpoint's last
        // change: the ledger's history of an endpoint stays in order.
        let at = view.last_transition.map_or(at, |last| at.max(last));
        view.state = to;
        view.transitions += 1;
        view.last_transition = Some(at);
        self.metrics
            .transitions
            .with_label_values(&[from.as_str(), to.as_str()])
            .inc();
        let e = &view.endpoint;
        macro_rules! changed {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    endpoint = %e.id, province = %e.labels.province, district = e.labels.district_or_empty(),
                    commune = %e.labels.commune, carrier = %e.labels.carrier, address = %e.address_text(),
                    from = from.as_str(), to = to.as_str(), check = %check, reason = %reason,
                    at_ms = unix_ms(at), "endpoint state changed"
                )
            };
        }
        if from == State::Unknown {
            changed!(tracing::Level::DEBUG);
        } else {
            changed!(tracing::Level::INFO);
        }
        if let Some(recorder) = self.recorder.get() {
            recorder.transition(&Transition {
                endpoint: e.id.clone(),
                from,
                to,
                at_ms: unix_ms(at),
                check: check.clone(),
                reason: reason.to_string(),
            });
            if let (State::Down, Some((finding, _))) = (to, &view.path.finding) {
                recorder.fault(&e.id, finding);
            }
        }
        Some((from, to))
    }
}

/// Down if any deciding check is down; Unknown while no deciding check has a result;
/// Degraded when ICMP quality is degraded; otherwise Up.
fn combined(icmp: &Health, icmp_decides: bool, checks: &[CheckView]) -> State {
    let icmp_state = icmp_decides.then_some(icmp.state);
    let states = checks.iter().filter(|c| c.decides).map(|c| c.state).chain(icmp_state);
    let (mut down, mut known) = (false, false);
    for s in states {
        down |= s == State::Down;
        known |= s != State::Unknown;
    }
    if down {
        State::Down
    } else if !known {
        State::Unknown
    } else if icmp.state == State::Degraded {
        State::Degraded
    } else {
        State::Up
    }
}

fn index_of(views: &[EndpointView]) -> HashMap<EndpointId, usize> {
    views
        .iter()
        .enumerate()
        .map(|(i, v)| (v.endpoint.id.clone(), i))
        .collect()
}

fn check_views(e: &Endpoint, checks: &ChecksConfig) -> Vec<CheckView> {
    e.checks
        .iter()
        .filter_map(|id| checks.named.get(usize::from(*id)))
        .map(|c| CheckView::new(c.name.clone(), c.decides))
        .collect()
}

fn windows_for(e: &Endpoint, windows: &[MaintenanceWindow]) -> Box<[u16]> {
    let labels = ScopeLabels::from(e);
    windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.applies_to(&labels))
        .map(|(i, _)| i as u16)
        .collect()
}

fn new_view(
    e: &Arc<Endpoint>,
    checks: &ChecksConfig,
    maintenance: &[MaintenanceWindow],
    metrics: &DaemonMetrics,
    policy: &HealthPolicy,
) -> EndpointView {
    EndpointView {
        checks: check_views(e, checks),
        labels_need_escaping: e.labels_need_escaping(),
        endpoint: Arc::clone(e),
        state: State::Unknown,
        icmp: Health::default(),
        last: None,
        packets_sent: 0,
        packets_received: 0,
        rounds: 0,
        brief_interruptions: 0,
        transitions: 0,
        last_transition: None,
        maintenance_windows: windows_for(e, maintenance),
        in_maintenance: false,
        quality: QualityView::new(e, &policy.quality),
        path: PathView::default(),
        region: region_handles(e, metrics),
    }
}

/// The engine's handle on the monitor.
pub struct MonitorSink(pub Arc<Monitor>);

impl RoundSink for MonitorSink {
    fn round(&mut self, endpoint: usize, round: &FinishedRound<'_>) -> Followup {
        self.0.record_round(endpoint, round)
    }

    fn stall(&mut self, stall: &Stall) {
        self.0.record_stall(stall);
    }

    fn trace(&mut self, endpoint: usize, trace: &crate::domain::path::Trace) {
        self.0.record_trace(endpoint, trace);
    }
}

fn region_handles(e: &Endpoint, metrics: &DaemonMetrics) -> RegionHandles {
    RegionHandles {
        rtt: metrics
            .region_rtt
            .with_label_values(&[&*e.labels.province, &*e.labels.carrier]),
    }
}
