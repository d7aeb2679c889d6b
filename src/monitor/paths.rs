//! Where a silent endpoint's fault lies. Each endpoint's path is learned while it answers (its
//! baseline, refreshed slowly) and traced again at its first silent round; the two compared
//! place the fault at the commune's site, at a router on the path, or at the monitor's own
//! network (see [`crate::domain::path`]). Endpoints cut off behind the same router are one
//! incident.
//!
//! A trace's finding names the fault; it does not change the endpoint's state. Whether the
//! monitor is blind (its endpoints Unknown rather than Down) is still judged from every round
//! at once ([`crate::domain::blindness`]): one trace through a gateway that rate-limits its
//! errors is too weak a reason to withhold an outage.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::{EndpointView, Monitor, MonitorState};
use crate::config::paths::PathsConfig;
use crate::domain::blindness::FAMILIES;
use crate::domain::health::State;
use crate::domain::path::{self, FaultDomain, Finding, Incident, Trace};
use crate::domain::{Followup, unix_ms};

/// A baseline trace asked for and not answered (refused by the budget, lost) is asked again
/// after this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// A silent endpoint whose fault is not placed yet (its trace refused by the budget in a wide
/// event, or lost) is traced again at a silent round at least this long after the last try.
const RETRY_FAULT_AFTER: Duration = Duration::from_secs(5);

/// What the monitor knows of one endpoint's path.
#[derive(Clone, Debug, Default)]
pub struct PathView {
    /// Its path while it answered, and when that was traced.
    pub baseline: Option<Box<(Trace, SystemTime)>>,
    /// Where its current silence lies (the trace at its first silent round), and when found.
    pub finding: Option<(Finding, SystemTime)>,
    /// When a baseline trace was last asked for.
    asked: Option<SystemTime>,
    /// Silent since its last answered round: a trace that does not reach it places the fault.
    silent: bool,
    /// When a trace to place its fault was last asked for.
    fault_traced: Option<SystemTime>,
}

/// The monitor's path settings and what it derives from every baseline.
#[derive(Debug, Default)]
pub struct PathBook {
    pub settings: PathsConfig,
    /// Echo requests per second of the regular rounds (the budget is a fraction of it).
    pub regular_rate: f64,
    /// Hops every baseline of a family shares ([`path::shared_prefix`]); `None`: to recompute.
    shared: [Option<usize>; 2],
}

impl PathBook {
    fn shared(&mut self, family: usize, views: &[EndpointView]) -> usize {
        let slot = &mut self.shared[family.min(1)];
        *slot.get_or_insert_with(|| {
            path::shared_prefix(
                views
                    .iter()
                    .filter(|v| v.family() == Some(family))
                    .filter_map(|v| v.path.baseline.as_ref().map(|b| &b.0)),
            )
        })
    }

    /// A baseline changed or the inventory did: the shared hops are computed again when needed.
    pub(super) fn forget_shared(&mut self) {
        self.shared = [None, None];
    }
}

impl PathView {
    /// Whether a regular round of `received` replies that began at `at` asks for a trace now,
    /// and notes it: the first silent round since the endpoint last answered, or a later one
    /// while its fault is still not placed. None while the monitor is blind.
    pub(super) fn after_round(&mut self, received: u32, blind: bool, at: SystemTime) -> bool {
        if received > 0 {
            self.silent = false;
            self.finding = None;
            self.fault_traced = None;
            return false;
        }
        let retry = self.finding.is_none()
            && self
                .fault_traced
                .is_none_or(|t| at.duration_since(t).is_ok_and(|d| d >= RETRY_FAULT_AFTER));
        let wanted = (!self.silent || retry) && !blind;
        self.silent = true;
        if wanted {
            self.fault_traced = Some(at);
        }
        wanted
    }
}

/// The follow-up a round asks for once a trace is wanted too.
pub(super) fn with_trace(followup: Followup) -> Followup {
    match followup {
        Followup::Confirm => Followup::ConfirmAndTrace,
        Followup::Nothing => Followup::Trace,
        Followup::Watch => Followup::WatchAndTrace,
        other => other,
    }
}

impl Monitor {
    /// Path settings from the config: at start and on every reload.
    pub fn configure_paths(&self, settings: &PathsConfig, regular_rate: f64) {
        let mut state = self.lock();
        state.paths.settings = settings.clone();
        state.paths.regular_rate = regular_rate;
    }

    /// A finished trace of endpoint `index`: a new baseline when it reached the endpoint, the
    /// place of its fault when it did not and the endpoint is silent.
    pub(super) fn record_trace(&self, index: usize, trace: &Trace) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(family) = state.endpoints.get(index).and_then(EndpointView::family) else {
            return;
        };
        let now = SystemTime::now();
        if trace.reached {
            let view = &mut state.endpoints[index];
            if view
                .path
                .baseline
                .as_ref()
                .is_some_and(|b| path::route_changed(&b.0, trace))
            {
                self.metrics.path_route_changes.inc();
                tracing::debug!(endpoint = %view.endpoint.id, hops = %hops_text(trace), "route changed: new baseline");
            }
            view.path.baseline = Some(Box::new((trace.clone(), now)));
            view.path.finding = None;
            if let (Some(recorder), Some(address)) = (self.recorder.get(), view.endpoint.address) {
                recorder.baseline(&view.endpoint.id, address, trace, now);
            }
            state.paths.forget_shared();
            return;
        }
        if !state.endpoints[index].path.silent {
            return; // a baseline trace lost on the way: the endpoint answers its rounds
        }
        let shared = state.paths.shared(family, &state.endpoints);
        let view = &mut state.endpoints[index];
        let finding = match &view.path.baseline {
            Some(b) => path::classify(&b.0, trace, shared),
            None => Some(Finding {
                domain: FaultDomain::Unknown,
                last_hop: trace.last_hop(),
                failing_hop: None,
            }),
        };
        let Some(finding) = finding else { return };
        view.path.finding = Some((finding, now));
        if view.state == State::Down
            && let Some(recorder) = self.recorder.get()
        {
            recorder.fault(&view.endpoint.id, &finding);
        }
        self.metrics
            .path_findings
            .with_label_values(&[finding.domain.as_str()])
            .inc();
        let e = &view.endpoint;
        tracing::info!(
            endpoint = %e.id, province = %e.labels.province, commune = %e.labels.commune,
            carrier = %e.labels.carrier, family = FAMILIES.get(family).copied().unwrap_or("ipv4"),
            domain = finding.domain.as_str(), last_hop = %opt(finding.last_hop),
            failing_hop = %opt(finding.failing_hop), hops = %hops_text(trace), at_ms = unix_ms(now),
            "fault placed on the path"
        );
    }

    /// Baselines kept in the ledger by an earlier run, as (endpoint id, address, hops text,
    /// learned unix ms): each endpoint still at the same address gets its own back (the learner
    /// then only refreshes them). Returns how many.
    pub fn restore_baselines<'a>(&self, rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str, i64)>) -> usize {
        let mut state = self.lock();
        let mut restored = 0;
        for (endpoint, address, hops, learned_ms) in rows {
            let Some(i) = state.position(&crate::domain::EndpointId(endpoint.into())) else {
                continue;
            };
            let view = &mut state.endpoints[i];
            let same_address = view.endpoint.address.is_some_and(|a| a.to_string() == address);
            let (Some(trace), true) = (Trace::baseline_from_text(hops), same_address) else {
                continue;
            };
            let learned = std::time::UNIX_EPOCH + Duration::from_millis(learned_ms.max(0) as u64);
            view.path.baseline = Some(Box::new((trace, learned)));
            restored += 1;
        }
        state.paths.forget_shared();
        restored
    }

    /// Up to `max` endpoints whose baseline is missing (first) or older than `[paths] refresh`,
    /// marked as asked; and whether any endpoint still has no baseline.
    pub fn baselines_wanted(&self, now: SystemTime, max: usize) -> (Vec<(usize, IpAddr)>, bool) {
        let mut state = self.lock();
        let refresh = state.paths.settings.refresh;
        let due = |t: Option<SystemTime>, after: Duration| {
            t.is_none_or(|t| now.duration_since(t).is_ok_and(|age| age >= after))
        };
        let (mut missing, mut stale) = (Vec::new(), Vec::new());
        let mut any_missing = false;
        for (i, v) in state.endpoints.iter().enumerate() {
            let Some(address) = v.endpoint.address else { continue };
            if v.state.reachable() != Some(true) || v.path.silent {
                continue;
            }
            any_missing |= v.path.baseline.is_none();
            if !due(v.path.asked, RETRY_AFTER) {
                continue;
            }
            match &v.path.baseline {
                None if missing.len() < max => missing.push((i, address)),
                Some(b) if stale.len() < max && due(Some(b.1), refresh) => stale.push((i, address)),
                _ => {}
            }
        }
        missing.extend(stale);
        missing.truncate(max);
        for (i, _) in &missing {
            state.endpoints[*i].path.asked = Some(now);
        }
        (missing, any_missing)
    }
}

impl MonitorState {
    /// Endpoints that are not Up and whose paths break at the same router: one incident each.
    pub fn incidents(&self) -> Vec<Incident> {
        path::incidents(self.endpoints.iter().enumerate().filter_map(|(i, v)| {
            let (finding, _) = v.path.finding?;
            (v.state != State::Up && v.state != State::Degraded).then_some((i, finding))
        }))
    }

    /// Endpoints with a baseline, per address family.
    pub fn baselines(&self) -> [usize; 2] {
        let mut n = [0; 2];
        for v in &self.endpoints {
            if let (Some(f), Some(_)) = (v.family(), &v.path.baseline) {
                n[f.min(1)] += 1;
            }
        }
        n
    }
}

fn opt(a: Option<IpAddr>) -> String {
    a.map_or_else(|| "-".into(), |a| a.to_string())
}

/// `10.0.0.1 10.1.0.1 * 10.3.0.1 → reached` for the log.
pub fn hops_text(t: &Trace) -> String {
    let mut s: Vec<String> = t
        .hops
        .iter()
        .map(|h| h.map_or_else(|| "*".into(), |a| a.to_string()))
        .collect();
    s.push(if t.reached {
        "→ reached".into()
    } else {
        "→ silent".into()
    });
    s.join(" ")
}
