//! The last regular round of an endpoint, as the monitor keeps it for every endpoint.

use crate::domain::RoundStats;

/// The last round's figures as every endpoint keeps them: 20 bytes instead of 80 (f32 seconds
/// keep sub-microsecond precision for RTTs under a minute; NaN = no figure).
#[derive(Clone, Copy, Debug)]
pub(super) struct LastRound {
    sent: u16,
    received: u16,
    rtt_min: f32,
    rtt_avg: f32,
    rtt_max: f32,
    jitter: f32,
}

impl LastRound {
    pub(super) fn of(s: &RoundStats) -> LastRound {
        let f = |v: Option<f64>| v.map_or(f32::NAN, |v| v as f32);
        LastRound {
            sent: s.sent.min(u32::from(u16::MAX)) as u16,
            received: s.received.min(u32::from(u16::MAX)) as u16,
            rtt_min: f(s.rtt_min),
            rtt_avg: f(s.rtt_avg),
            rtt_max: f(s.rtt_max),
            jitter: f(s.jitter),
        }
    }

    pub(super) fn stats(self) -> RoundStats {
        let f = |v: f32| (!v.is_nan()).then_some(f64::from(v));
        RoundStats {
            sent: u32::from(self.sent),
            received: u32::from(self.received),
            rtt_min: f(self.rtt_min),
            rtt_avg: f(self.rtt_avg),
            rtt_max: f(self.rtt_max),
            jitter: f(self.jitter),
        }
    }
}
