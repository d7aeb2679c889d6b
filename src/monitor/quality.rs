//! Per-endpoint conference quality: the counters behind `diemcau_endpoint_rtt_seconds_*` and
//! `diemcau_endpoint_jitter_seconds_*` (any window can be computed from them in PromQL), and the
//! E-model score over the health window.

use crate::domain::emodel;
use crate::domain::health::{Health, State};
use crate::domain::quality::QualityPolicy;
use crate::domain::{Endpoint, RoundStats};

/// What an endpoint's view keeps for quality (56 bytes).
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
    /// The quantised window the last score was computed for (see [`Quantised`]).
    scored: Option<Quantised>,
}

/// A window's E-model inputs rounded to 0.5 ms of RTT and jitter and 0.01 % of loss: the
/// score of a steady line is computed once, not every round (its `exp`, `pow` and `log10`
/// were a tenth of a round's cost). Rounding moves the score by less than 0.001 MOS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Quantised {
    codec: u8,
    rtt_half_ms: u32,
    jitter_half_ms: u32,
    loss_bp: u32,
}

impl Quantised {
    fn of(net: &emodel::Network, codec: u8) -> Quantised {
        let half_ms = |s: f64| (s * 2e3).round().clamp(0.0, f64::from(u32::MAX)) as u32;
        Quantised {
            codec,
            rtt_half_ms: half_ms(net.rtt),
            jitter_half_ms: half_ms(net.jitter),
            loss_bp: (net.loss.clamp(0.0, 1.0) * 1e4).round() as u32,
        }
    }

    fn network(&self) -> emodel::Network {
        emodel::Network {
            rtt: f64::from(self.rtt_half_ms) / 2e3,
            jitter: f64::from(self.jitter_half_ms) / 2e3,
            loss: f64::from(self.loss_bp) / 1e4,
        }
    }
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

    /// After a reload: the codec may have changed, and so may the policy's table and limits.
    pub fn reconfigure(&mut self, codec: u8) {
        self.codec = codec;
        self.scored = None;
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
        let window = match state.reachable() {
            Some(true) => icmp.figures().network().map(|n| Quantised::of(&n, self.codec)),
            _ => None,
        };
        if window != self.scored || window.is_none() {
            let score = window.map(|q| emodel::score(&q.network(), policy.codec(q.codec)));
            self.mos = score.map_or(f32::NAN, |s| s.mos as f32);
            self.r = score.map_or(f32::NAN, |s| s.r as f32);
            self.poor = score.is_some_and(|s| s.mos < policy.poor_mos);
            self.scored = window;
        }
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
