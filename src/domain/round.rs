//! The figures of one probe round, computed from per-packet RTTs in send order, and what kind
//! of round it was.

use std::time::{Duration, SystemTime};

/// Why a round was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoundKind {
    /// Its place on the paced timeline, once per interval.
    #[default]
    Regular,
    /// Asked for right after a regular round that contradicted the state (silent while up,
    /// answering while down): it confirms or refutes that round within seconds.
    Confirmation,
    /// One request every `watch_spacing` while an endpoint is Down, between its regular
    /// rounds: the first answered one dates the recovery to within half that spacing.
    Watch,
}

/// What the state logic wants after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followup {
    Nothing,
    /// Send a confirmation round now (the engine may refuse when its budget is spent).
    Confirm,
    /// The first silent round of an answering endpoint: confirm it, and trace its path now,
    /// while the fault is fresh, to place it (see [`crate::domain::path`]).
    ConfirmAndTrace,
    /// As [`Followup::ConfirmAndTrace`] when no confirmation is wanted (none configured).
    Trace,
    /// A Down endpoint whose fault is not placed yet (its first trace was refused or lost):
    /// watch it and trace it again.
    WatchAndTrace,
    /// The endpoint is Down and its round was silent: watch it with a single request one
    /// `watch_spacing` after this round began (the engine may refuse, as for a confirmation).
    Watch,
}

/// A finished round as the engine reports it.
#[derive(Clone, Copy, Debug)]
pub struct FinishedRound<'a> {
    pub stats: &'a RoundStats,
    /// Each packet's RTT in seconds, in send order (`NaN` = no reply).
    pub rtts: &'a [f32],
    pub kind: RoundKind,
    /// When its first request left.
    pub started: SystemTime,
    /// Time between its requests: request `j` left about `started + j × spacing`.
    pub spacing: Duration,
    pub finished: SystemTime,
}

/// The figures of one completed round of echo requests to one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundStats {
    pub sent: u32,
    pub received: u32,
    /// Seconds; `None` when no reply came back.
    pub rtt_min: Option<f64>,
    pub rtt_avg: Option<f64>,
    pub rtt_max: Option<f64>,
    /// Mean absolute difference of consecutive RTTs, in send order, over the replies received.
    /// `None` with fewer than two replies.
    pub jitter: Option<f64>,
}

impl RoundStats {
    /// Builds the figures from per-packet RTTs in send order (`None` = no reply).
    pub fn from_rtts(rtts: impl IntoIterator<Item = Option<f64>>) -> RoundStats {
        let mut stats = RoundStats::default();
        let (mut sum, mut diff_sum, mut diffs) = (0.0, 0.0, 0u32);
        let mut previous: Option<f64> = None;
        for rtt in rtts {
            stats.sent += 1;
            let Some(rtt) = rtt else { continue };
            stats.received += 1;
            sum += rtt;
            stats.rtt_min = Some(stats.rtt_min.map_or(rtt, |m: f64| m.min(rtt)));
            stats.rtt_max = Some(stats.rtt_max.map_or(rtt, |m: f64| m.max(rtt)));
            if let Some(p) = previous {
                diff_sum += (rtt - p).abs();
                diffs += 1;
            }
            previous = Some(rtt);
        }
        if stats.received > 0 {
            stats.rtt_avg = Some(sum / f64::from(stats.received));
        }
        if diffs > 0 {
            stats.jitter = Some(diff_sum / f64::from(diffs));
        }
        stats
    }

    /// Fraction of echo requests that got no reply (0 when nothing was sent).
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            f64::from(self.sent - self.received) / f64::from(self.sent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_figures_follow_send_order() {
        let s = RoundStats::from_rtts([Some(0.010), None, Some(0.014), Some(0.012)]);
        assert_eq!((s.sent, s.received), (4, 3));
        assert_eq!(s.rtt_min, Some(0.010));
        assert_eq!(s.rtt_max, Some(0.014));
        assert!((s.rtt_avg.unwrap() - 0.012).abs() < 1e-12);
        // |14-10| and |12-14| over two pairs of consecutive replies
        assert!((s.jitter.unwrap() - 0.003).abs() < 1e-12);
        assert!((s.loss_ratio() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn silent_round_has_no_rtt() {
        let s = RoundStats::from_rtts([None, None, None]);
        assert_eq!((s.sent, s.received, s.rtt_avg, s.jitter), (3, 0, None, None));
        assert_eq!(s.loss_ratio(), 1.0);
    }
}
