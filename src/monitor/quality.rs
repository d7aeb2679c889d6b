//! Per-endpoint conference quality: the counters behind `diemcau_endpoint_rtt_seconds_*` and
//! `diemcau_endpoint_jitter_seconds_*` (any window can be computed from them in PromQL), and the
//! E-model score over the health window.

use crate::domain::emodel;
use crate::domain::health::{Health, State};
use crate::domain::quality::QualityPolicy;
use crate::domain::{Endpoint, RoundStats};

/// What an endpoint's view keeps for quality (40 bytes).
#[derive(Clone, Debug, Default)]
pub struct QualityView {
    /// Index into the policy's codec table.
    pub codec: u8,
    /// Whether the last score was below the policy's `poor_mos`.
    pub poor: bool,
    /// Sum of every reply's RTT, seconds (its count is `packets_received`).
    pub rtt_sum: f64,
    /// Sum of the absolute differences of consecutive RTTs within rounds, seconds.
    pub jitter_sum: f64,
    /// How many such differences.
    pub jitter_pairs: u64,
    /// Seconds of rounds whose score was poor (one probe interval per round).
    pub poor_seconds: f64,
    /// MOS and R of the last round's window; NaN without a score.
    mos: f32,
    r: f32,
}

impl QualityView {
    pub fn new(e: &Endpoint, policy: &QualityPolicy) -> QualityView {
        QualityView {
            codec: policy.codec_index(e),
            mos: f32::NAN,
            r: f32::NAN,
            ..Default::default()
        }
    }

    /// Counts a round and scores the window. `state` is the endpoint's combined state after the
    /// round: an Unknown or Down endpoint has no score (nobody holds a meeting over it).
    pub fn record(&mut self, round: &RoundStats, icmp: &Health, state: State, policy: &QualityPolicy) {
        if let Some(avg) = round.rtt_avg {
            self.rtt_sum += avg * f64::from(round.received);
        }
        if let Some(j) = round.jitter {
            let pairs = round.received.saturating_sub(1);
            self.jitter_sum += j * f64::from(pairs);
            self.jitter_pairs += u64::from(pairs);
        }
        let score = match state.reachable() {
            Some(true) => icmp
                .figures()
                .network()
                .map(|n| emodel::score(&n, policy.codec(self.codec))),
            _ => None,
        };
        self.mos = score.map_or(f32::NAN, |s| s.mos as f32);
        self.r = score.map_or(f32::NAN, |s| s.r as f32);
        self.poor = score.is_some_and(|s| s.mos < policy.poor_mos);
        if self.poor {
            self.poor_seconds += policy.round_seconds;
        }
    }

    /// The last score's MOS, if there is one.
    pub fn mos(&self) -> Option<f64> {
        (!self.mos.is_nan()).then_some(f64::from(self.mos))
    }

    /// The last score's R (on the codec's own scale), if there is one.
    pub fn r(&self) -> Option<f64> {
        (!self.r.is_nan()).then_some(f64::from(self.r))
    }
}
