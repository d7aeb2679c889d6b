//! The monitor blind: while its own network is cut, silent endpoints are Unknown, not Down, and
//! the blind span goes to the ledger as unknown time (see [`crate::domain::blindness`]).

use std::time::SystemTime;

use super::{Monitor, MonitorState, summary};
use crate::domain::blindness::SightChange;
use crate::domain::health::State;
use crate::domain::unix_ms;

impl Monitor {
    /// Acts on a change of the monitor's sight.
    pub(super) fn sight_changed(&self, state: &mut MonitorState, change: SightChange) {
        match change {
            SightChange::Blinded { since } => {
                self.metrics.isolated.set(1);
                // Endpoints that went Down since the silence began were the monitor's blindness:
                // back to Unknown. Their outages close; the span is unknown time anyway.
                let mut suspended = 0;
                for i in 0..state.endpoints.len() {
                    let view = &mut state.endpoints[i];
                    let went_down_blind =
                        view.icmp.state == State::Down && view.last_transition.is_some_and(|t| t >= since);
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
                    since_ms = unix_ms(since),
                    suspended,
                    "the monitor is blind: nearly every endpoint, across carriers, fell silent at once; \
                     silent endpoints are Unknown, not Down, until it sees again (check the monitor's own network)"
                );
            }
            SightChange::Restored { since, until } => {
                self.metrics.isolated.set(0);
                let seconds = until.duration_since(since).unwrap_or_default().as_secs_f64();
                tracing::warn!(
                    from_ms = unix_ms(since),
                    to_ms = unix_ms(until),
                    seconds = format_args!("{seconds:.1}"),
                    "the monitor sees again: the blind span is recorded as unknown time"
                );
                if let Some(recorder) = self.recorder.get() {
                    recorder.blind(since, until);
                }
            }
        }
    }
}
