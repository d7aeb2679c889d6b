//! The monitor blind: while its own network is cut (on one address family or both), silent
//! endpoints of that family are Unknown, not Down, and the blind span goes to the ledger as
//! unknown time for them (see [`crate::domain::blindness`]).

use std::collections::HashSet;
use std::time::SystemTime;

use super::{EndpointView, Monitor, MonitorState, summary};
use crate::domain::blindness::{FAMILIES, SightChange, family_index};
use crate::domain::health::State;
use crate::domain::unix_ms;
use crate::domain::{FinishedRound, Followup, RoundKind};

impl Monitor {
    /// Sets the reference addresses (`[monitor] references`); their sight starts afresh when
    /// they changed. Called before the engine reports rounds of the new list.
    pub fn set_references(&self, references: &[std::net::IpAddr]) {
        let mut state = self.lock();
        if state.references == references {
            return;
        }
        state.references = references.to_vec();
        let counts = [0, 1].map(|f| references.iter().filter(|r| family_index(r) == f).count());
        state.sight = state.sight.clone().with_references(counts);
        for (f, name) in FAMILIES.iter().enumerate() {
            self.metrics
                .blind
                .with_label_values(&[name])
                .set(i64::from(state.sight.is_blind(f)));
        }
        self.metrics.isolated.set(i64::from(state.sight.isolated()));
    }

    /// A round of the `index`-th reference address (probed after the endpoints).
    pub(super) fn record_reference(
        &self,
        state: &mut MonitorState,
        index: usize,
        round: &FinishedRound<'_>,
    ) -> Followup {
        let Some(address) = state.references.get(index) else {
            return Followup::Nothing;
        };
        if round.kind != RoundKind::Regular {
            return Followup::Nothing;
        }
        let family = family_index(address);
        let nth = state.references[..index]
            .iter()
            .filter(|r| family_index(r) == family)
            .count();
        if let Some(change) = state
            .sight
            .observe_reference(family, nth, round.stats.received == 0, round.started)
        {
            self.sight_changed(state, family, change);
        }
        Followup::Nothing
    }

    /// Acts on a change of the monitor's sight on address family `family`.
    pub(super) fn sight_changed(&self, state: &mut MonitorState, family: usize, change: SightChange) {
        let name = FAMILIES.get(family).copied().unwrap_or("ipv4");
        match change {
            SightChange::Blinded { since } => {
                self.metrics.blind.with_label_values(&[name]).set(1);
                self.metrics.isolated.set(i64::from(state.sight.isolated()));
                // Endpoints that went Down since the silence began were the monitor's blindness:
                // back to Unknown. Their outages close; the span is unknown time anyway.
                let mut suspended = 0;
                for i in 0..state.endpoints.len() {
                    let view = &mut state.endpoints[i];
                    let went_down_blind = view.family() == Some(family)
                        && view.icmp.state == State::Down
                        && view.last_transition.is_some_and(|t| t >= since);
                    if went_down_blind {
                        view.icmp.suspend();
                        let change = self.settle(
                            view,
                            state.icmp_decides,
                            SystemTime::now(),
                            &self.icmp_name,
                            &"monitor isolated: nearly every endpoint silent at once",
                        );
                        summary::count_unknown(state, change);
                        suspended += 1;
                    }
                }
                tracing::warn!(
                    family = name,
                    since_ms = unix_ms(since),
                    suspended,
                    isolated = state.sight.isolated(),
                    "the monitor is blind: every reference address of this family, or with none nearly every \
                     endpoint across carriers, fell silent at once; they are Unknown, not Down, until it sees again \
                     (check the monitor's own network)"
                );
            }
            SightChange::Restored { since, until } => {
                self.metrics.blind.with_label_values(&[name]).set(0);
                self.metrics.isolated.set(i64::from(state.sight.isolated()));
                let seconds = until.duration_since(since).unwrap_or_default().as_secs_f64();
                tracing::warn!(
                    family = name,
                    from_ms = unix_ms(since),
                    to_ms = unix_ms(until),
                    seconds = format_args!("{seconds:.1}"),
                    "the monitor sees again: the blind span is recorded as unknown time"
                );
                if let Some(recorder) = self.recorder.get() {
                    recorder.blind(name, since, until);
                }
            }
        }
    }
}

/// Carriers per address family (an endpoint without an address counts in neither).
pub(super) fn carriers_of(views: &[EndpointView]) -> [usize; 2] {
    [0, 1].map(|f| {
        views
            .iter()
            .filter(|v| v.family() == Some(f))
            .map(|v| &*v.endpoint.labels.carrier)
            .collect::<HashSet<&str>>()
            .len()
    })
}

/// Endpoints per address family.
pub(super) fn family_counts(views: &[EndpointView]) -> [usize; 2] {
    [0, 1].map(|f| views.iter().filter(|v| v.family() == Some(f)).count())
}
