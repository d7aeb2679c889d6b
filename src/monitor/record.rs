//! Folding results in: ICMP rounds (regular and confirmation) and service-check outcomes.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::{LastRound, Monitor, MonitorState, summary};
use crate::domain::health::State;
use crate::domain::{EndpointId, FinishedRound, Followup, RoundKind, unix_ms};
use crate::probe::outcome::Outcome;

impl Monitor {
    pub(super) fn record_round(&self, index: usize, round: &FinishedRound<'_>) -> Followup {
        let mut guard = self.lock();
        let state = &mut *guard;
        let endpoints = state.endpoints.len();
        let Some(view) = state.endpoints.get_mut(index) else {
            // The reference addresses follow the endpoints on the engine's timeline.
            return self.record_reference(state, index - endpoints, round);
        };
        let (stats, regular) = (round.stats, round.kind == RoundKind::Regular);
        let first = view.last.is_none();
        // Confirmation rounds stay out of the packet counters and the last round: those
        // describe the line's quality at a steady rate, not the extra evidence of a moment.
        if regular {
            view.packets_sent += u64::from(stats.sent);
            view.packets_received += u64::from(stats.received);
            view.rounds += 1;
            view.last = Some(LastRound::of(stats));
            for rtt in round.rtts.iter().filter(|r| !r.is_nan()) {
                view.region.rtt.observe(f64::from(*rtt));
            }
        }
        let family = view.family().unwrap_or(0);
        let sight = if regular {
            state.sight.observe(
                family,
                stats.received == 0,
                &view.endpoint.labels.carrier,
                round.started,
            )
        } else {
            None
        };
        let mut seen = view.icmp.observe_finished(round, &state.policy);
        let blind = state.sight.is_blind(family);
        if blind && stats.received == 0 {
            // The silence is the monitor's: no Down, and no confirmation to spend.
            if seen.state == State::Down {
                view.icmp.suspend();
                seen.state = State::Unknown;
            }
            seen.followup = Followup::Nothing;
        }
        // The first silent round since it answered: trace the path while the fault is fresh.
        let trace = (regular || stats.received > 0) && view.path.after_round(stats.received, blind, round.started);
        if trace && state.paths.settings.trace {
            seen.followup = super::paths::with_trace(seen.followup);
        }
        if let Some((from, to)) = seen.brief {
            view.brief_interruptions += 1;
            if let Some(recorder) = self.recorder.get() {
                recorder.brief_interruption(&view.endpoint.id, from, to);
            }
        }
        let reason = RoundReason {
            kind: round.kind,
            sent: stats.sent,
            received: stats.received,
            isolated: blind && stats.received == 0,
        };
        let change = self.settle(view, state.icmp_decides, seen.at, &self.icmp_name, &reason);
        if !regular {
            summary::count_unknown(state, change);
            summary::announce_if_settled(state);
            return seen.followup;
        }
        view.quality
            .record(stats, &view.icmp, view.state, &state.policy.quality);
        if let Some(sight) = sight {
            self.sight_changed(state, family, sight);
        }
        self.metrics.rounds.inc();
        summary::count_unknown(state, change);
        if first {
            state.awaiting_first_round = state.awaiting_first_round.saturating_sub(1);
            if state.awaiting_first_round == 0 && !self.ready.swap(true, Ordering::Relaxed) {
                self.announce_ready(state);
                return seen.followup;
            }
        }
        summary::announce_if_settled(state);
        seen.followup
    }

    /// Ready: the metric and the one summary line of the first round.
    pub(super) fn announce_ready(&self, state: &mut MonitorState) {
        self.metrics.ready.set(1);
        let (counts, provinces) = summary::by_province(&state.endpoints);
        let unresolved = state.endpoints.iter().filter(|v| v.endpoint.address.is_none()).count();
        tracing::info!(
            endpoints = state.endpoints.len(),
            up = counts.get(State::Up),
            degraded = counts.get(State::Degraded),
            down = counts.get(State::Down),
            unknown = counts.get(State::Unknown),
            unresolved,
            provinces = %provinces,
            "every endpoint has finished its first round: ready"
        );
        state.announce_settled = state.unknown > 0;
    }

    /// Folds in the outcome of one service-check attempt begun at `started`. An attempt that
    /// spanned a stall is dropped: its timeout ran out while nobody watched.
    pub fn record_check(&self, id: &EndpointId, check: &str, outcome: Outcome, started: SystemTime, at: SystemTime) {
        if unix_ms(started) < self.stalled_until_ms.load(Ordering::Relaxed) {
            return;
        }
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(index) = state.position(id) else { return };
        let view = &mut state.endpoints[index];
        let Some(cv) = view.checks.iter_mut().find(|c| &*c.name == check) else {
            return;
        };
        let reason = match &outcome.failure {
            Some(f) => format!("{check}: {f}"),
            None => format!("{check}: ok"),
        };
        let name = cv.name.clone();
        let before = cv.state;
        cv.observe(outcome, &state.policy, started);
        let crossed_down = (before == State::Down) != (cv.state == State::Down);
        let at = match cv.damper.since() {
            Some(since) if crossed_down => since,
            _ => at,
        };
        let change = self.settle(view, state.icmp_decides, at, &name, &reason);
        summary::count_unknown(state, change);
        summary::announce_if_settled(state);
    }
}

/// Why a round changed a state, as the log and the ledger word it; only rendered when the
/// state does change (most rounds change nothing, and formatting is a round's dearest step).
struct RoundReason {
    kind: RoundKind,
    sent: u32,
    received: u32,
    isolated: bool,
}

impl std::fmt::Display for RoundReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.isolated {
            return f.write_str("monitor isolated: nearly every endpoint silent at once");
        }
        match (self.kind, self.received) {
            (RoundKind::Regular, 0) => write!(f, "no echo reply in {} requests", self.sent),
            (RoundKind::Confirmation, 0) => write!(f, "no echo reply in {} confirmation requests either", self.sent),
            (RoundKind::Confirmation, _) => f.write_str("confirmation round answered"),
            (RoundKind::Watch, 0) => f.write_str("no reply to the watch request"),
            (RoundKind::Watch, _) => f.write_str("watch request answered"),
            (RoundKind::Regular, _) => {
                let loss = f64::from(self.sent - self.received) / f64::from(self.sent.max(1));
                write!(f, "{:.0}% loss", loss * 100.0)
            }
        }
    }
}
