//! Per-endpoint ICMP state machine: Unknown → Up/Degraded/Down, damped by [`Damper`].
//!
//! A round "answers" when at least one echo reply came back. Down needs `down_after`
//! consecutive silent rounds; leaving Down needs `up_after` consecutive answering rounds.
//! Degraded is judged over a sliding window of the last `window` rounds, so one unlucky round of
//! three packets does not flip the state.

use std::time::{Duration, SystemTime};

use super::damper::{Damper, Verdict};
use super::emodel;
use super::quality::QualityPolicy;
use crate::domain::{FinishedRound, Followup, RoundKind, RoundStats};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    Unknown = 0,
    Up = 1,
    Degraded = 2,
    Down = 3,
}

impl State {
    pub const ALL: [State; 4] = [State::Unknown, State::Up, State::Degraded, State::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
        }
    }

    /// Reachable in the sense of `diemcau_endpoint_up`: `None` while unknown.
    pub fn reachable(self) -> Option<bool> {
        match self {
            State::Unknown => None,
            State::Up | State::Degraded => Some(true),
            State::Down => Some(false),
        }
    }
}

/// Limits beyond which an answering endpoint counts as Degraded.
#[derive(Clone, Debug, PartialEq)]
pub struct DegradedLimits {
    /// Packet loss over the window, 0..1.
    pub loss_ratio: f64,
    /// Mean RTT over the window.
    pub rtt: Duration,
    /// Mean jitter over the window.
    pub jitter: Duration,
    /// Rounds in the window.
    pub window: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HealthPolicy {
    pub down_after: u32,
    pub up_after: u32,
    pub degraded: DegradedLimits,
    /// The conference-quality score computed over the same window.
    pub quality: QualityPolicy,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            down_after: 3,
            up_after: 2,
            degraded: DegradedLimits {
                loss_ratio: 0.2,
                rtt: Duration::from_millis(150),
                jitter: Duration::from_millis(30),
                window: 6,
            },
            quality: QualityPolicy::default(),
        }
    }
}

/// One round as kept in the quality window; compact because every endpoint keeps `window` of
/// them (f32 seconds keep sub-microsecond precision at these magnitudes).
#[derive(Clone, Copy, Debug, Default)]
struct WindowRound {
    sent: u8,
    received: u8,
    /// Replies that came after the jitter buffer would have played them (see [`Health::observe`]).
    late: u8,
    rtt_sum: f32,
    /// NaN when the round had fewer than two replies.
    jitter: f32,
}

/// The health of one endpoint.
#[derive(Clone, Debug)]
pub struct Health {
    pub state: State,
    damper: Damper,
    window: Vec<WindowRound>,
    next: usize,
    edges: Edges,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: State::Unknown,
            damper: Damper::default(),
            window: Vec::new(),
            next: 0,
            edges: Edges::default(),
        }
    }
}

/// When requests last got and last missed a reply: a break began between the last reply and
/// the first loss after it, and ended between the last loss and the first reply after it.
/// Dating each at the midpoint halves the error of dating it at a round's start (at a 10 s
/// interval, ±4.8 s instead of 0 to 9.6 s late), and watch requests while Down narrow the end
/// to ±half their spacing.
#[derive(Clone, Copy, Debug, Default)]
struct Edges {
    last_reply: Option<SystemTime>,
    last_loss: Option<SystemTime>,
    /// The current break's estimated start, while requests go unanswered.
    break_began: Option<SystemTime>,
}

impl Edges {
    /// Folds a round's requests in, in send order; returns the estimated end of the break
    /// before its first reply (the round's first request time when no loss preceded it).
    fn fold(&mut self, round: &FinishedRound<'_>) -> Option<SystemTime> {
        let mut ended = None;
        for (j, rtt) in round.rtts.iter().enumerate() {
            let sent = round.started + round.spacing * j as u32;
            if rtt.is_nan() {
                if self.break_began.is_none() {
                    self.break_began = Some(self.last_reply.map_or(sent, |r| midpoint(r, sent)));
                }
                self.last_loss = Some(sent);
            } else {
                if ended.is_none() {
                    ended = Some(self.last_loss.map_or(sent, |l| midpoint(l, sent)));
                }
                self.break_began = None;
                self.last_reply = Some(sent);
            }
        }
        ended
    }
}

/// Halfway from `a` to `b`; `b` when the clock went backwards between them.
fn midpoint(a: SystemTime, b: SystemTime) -> SystemTime {
    b.duration_since(a).map_or(b, |d| a + d / 2)
}

/// What one finished round did to an endpoint's ICMP health.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    pub state: State,
    /// When a change happened: into or out of Down, the start of the streak that caused it
    /// (the first silent or answering round); otherwise the end of this round.
    pub at: SystemTime,
    pub followup: Followup,
    /// A break too short to confirm: a silent round whose confirmation lost its first half and
    /// then got replies. From the silent round's start to the first answered request.
    pub brief: Option<(SystemTime, SystemTime)>,
}

/// The figures of the quality window: what the last `window` rounds add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowFigures {
    pub rounds: u32,
    pub sent: u32,
    pub received: u32,
    /// Replies later than the mean RTT plus the jitter buffer at their time.
    pub late: u32,
    /// Mean RTT of the replies, seconds (`None` without a reply).
    pub rtt: Option<f64>,
    /// Mean of the rounds' jitter, seconds (`None` when no round had two replies).
    pub jitter: Option<f64>,
}

impl WindowFigures {
    /// The network as the E-model sees it: lost and late packets both count as lost. `None`
    /// without a reply in the window.
    pub fn network(&self) -> Option<emodel::Network> {
        let rtt = self.rtt?;
        Some(emodel::Network {
            rtt,
            jitter: self.jitter.unwrap_or(0.0),
            loss: f64::from(self.sent - self.received + self.late) / f64::from(self.sent.max(1)),
        })
    }
}

impl Health {
    /// Folds one regular round in, begun at `at`; returns the (possibly unchanged) ICMP state. `rtts` are the round's
    /// per-packet RTTs in seconds (NaN for no reply); a reply is late when it is slower than the
    /// window's mean RTT plus the jitter buffer sized from the window's jitter, both as they
    /// stood before this round ([`emodel::late_after`]).
    pub fn observe(&mut self, round: &RoundStats, rtts: &[f32], policy: &HealthPolicy, at: SystemTime) -> State {
        let late = self.late_replies(rtts);
        self.remember(round, late, policy.degraded.window as usize);
        match self.damper.observe(round.received > 0, self.state, policy, at) {
            Verdict::Answering => self.state = self.quality(&policy.degraded),
            Verdict::Down => self.state = State::Down,
            Verdict::Hold => {}
        }
        self.state
    }

    /// Folds in a finished round of either kind. A confirmation round settles the regular
    /// round before it and stays out of the quality window (its packets are extra evidence
    /// about reachability, not a sample of the line's quality).
    pub fn observe_finished(&mut self, round: &FinishedRound<'_>, policy: &HealthPolicy) -> Observation {
        let before = self.state;
        let answered = round.stats.received > 0;
        // The date a streak starting with this round would carry (see [`Edges`]).
        let ended = self.edges.fold(round);
        let at = if answered {
            ended.unwrap_or(round.started)
        } else {
            self.edges.break_began.unwrap_or(round.started)
        };
        let mut brief = None;
        match round.kind {
            RoundKind::Regular => {
                self.observe(round.stats, round.rtts, policy, at);
            }
            // A watch request counts as a round of one for the damper, but stays out of the
            // quality window: it is extra evidence about reachability, like a confirmation.
            RoundKind::Watch => match self.damper.observe(answered, self.state, policy, at) {
                Verdict::Answering => self.state = self.quality(&policy.degraded),
                Verdict::Down => self.state = State::Down,
                Verdict::Hold => {}
            },
            RoundKind::Confirmation => {
                let questioned = self.damper.contradicted(before);
                let since = self.damper.since();
                match self.damper.confirm(answered, before, policy) {
                    Verdict::Answering => self.state = self.quality(&policy.degraded),
                    Verdict::Down => self.state = State::Down,
                    Verdict::Hold if questioned && before != State::Down => {
                        let (silent, loss) = self.last_round_and_loss_before();
                        brief = since.zip(brief_break_end(round, silent, loss));
                    }
                    Verdict::Hold => {}
                }
            }
        }
        let crossed_down = (before == State::Down) != (self.state == State::Down);
        let at = match self.damper.since() {
            Some(since) if crossed_down => since,
            _ => round.finished,
        };
        let followup = if round.kind != RoundKind::Confirmation && self.damper.contradicted(self.state) {
            Followup::Confirm
        } else if self.state == State::Down && !self.damper.contradicted(self.state) {
            Followup::Watch
        } else {
            Followup::Nothing
        };
        Observation {
            state: self.state,
            at,
            followup,
            brief,
        }
    }

    /// Forgets the state (Unknown) and the streak behind it, keeping the quality window: what
    /// was seen while the monitor itself was blind says nothing about the endpoint.
    pub fn suspend(&mut self) {
        self.state = State::Unknown;
        self.damper = Damper::default();
        self.edges = Edges::default();
    }

    fn late_replies(&self, rtts: &[f32]) -> u8 {
        let f = self.figures();
        let (Some(rtt), Some(jitter)) = (f.rtt, f.jitter) else {
            return 0;
        };
        let after = emodel::late_after(rtt, jitter);
        rtts.iter().filter(|r| f64::from(**r) > after).count().min(255) as u8
    }

    fn remember(&mut self, round: &RoundStats, late: u8, size: usize) {
        let entry = WindowRound {
            sent: round.sent.min(255) as u8,
            received: round.received.min(255) as u8,
            late,
            rtt_sum: (round.rtt_avg.unwrap_or(0.0) * f64::from(round.received)) as f32,
            jitter: round.jitter.map_or(f32::NAN, |j| j as f32),
        };
        if self.window.len() < size {
            self.window.push(entry);
        } else if size > 0 {
            self.window[self.next % size] = entry;
        }
        self.next = (self.next + 1) % size.max(1);
    }

    /// Requests of the last regular round, and the loss ratio of the window's rounds before it.
    fn last_round_and_loss_before(&self) -> (u32, f64) {
        let size = self.window.len();
        if size == 0 {
            return (0, 0.0);
        }
        let last = (self.next + size - 1) % size;
        let (mut sent, mut received) = (0u32, 0u32);
        for (i, r) in self.window.iter().enumerate() {
            if i != last {
                sent += u32::from(r.sent);
                received += u32::from(r.received);
            }
        }
        let loss = if sent == 0 {
            0.0
        } else {
            f64::from(sent - received) / f64::from(sent)
        };
        (u32::from(self.window[last].sent), loss)
    }

    /// The window's figures (the rounds folded in so far, at most `window`).
    pub fn figures(&self) -> WindowFigures {
        let sent: u32 = self.window.iter().map(|r| u32::from(r.sent)).sum();
        let received: u32 = self.window.iter().map(|r| u32::from(r.received)).sum();
        let late: u32 = self.window.iter().map(|r| u32::from(r.late)).sum();
        let rtt =
            (received > 0).then(|| self.window.iter().map(|r| f64::from(r.rtt_sum)).sum::<f64>() / f64::from(received));
        let (jitter_sum, jitter_n) = self
            .window
            .iter()
            .filter(|r| !r.jitter.is_nan())
            .map(|r| f64::from(r.jitter))
            .fold((0.0, 0u32), |(s, n), j| (s + j, n + 1));
        WindowFigures {
            rounds: self.window.len() as u32,
            sent,
            received,
            late,
            rtt,
            jitter: (jitter_n > 0).then(|| jitter_sum / f64::from(jitter_n)),
        }
    }

    /// Up or Degraded, judged over the window.
    fn quality(&self, limits: &DegradedLimits) -> State {
        let f = self.figures();
        // Loss is judged once half the window is filled: one lost packet of a first round of
        // three is 33 % and would flag healthy endpoints as degraded at start-up.
        let half_full = self.window.len() * 2 >= limits.window as usize;
        let loss = if f.sent == 0 || !half_full {
            0.0
        } else {
            f64::from(f.sent - f.received) / f64::from(f.sent)
        };
        let rtt = f.rtt.unwrap_or(0.0);
        let jitter = f.jitter.unwrap_or(0.0);
        if loss > limits.loss_ratio || rtt > limits.rtt.as_secs_f64() || jitter > limits.jitter.as_secs_f64() {
            State::Degraded
        } else {
            State::Up
        }
    }
}

/// A run of lost requests this likely by chance or less, given the line's recent loss, is a
/// break rather than loss: about one false count in 10,000 rounds.
const BRIEF_CHANCE: f64 = 1e-4;
/// The recent loss assumed at least (a clean window is a short sample).
const MIN_LOSS_ESTIMATE: f64 = 0.02;

/// When the first reply of a confirmation round was asked for, when the requests lost in a
/// row before it (the silent regular round's `silent` and the confirmation's first ones) are
/// too unlikely to be random loss at rate `loss`: the line was cut, only shorter than
/// confirming. On a clean line one silent round is enough; at 30 % loss it takes eight lost
/// requests in a row.
fn brief_break_end(round: &FinishedRound<'_>, silent: u32, loss: f64) -> Option<SystemTime> {
    let first_answer = round.rtts.iter().position(|r| !r.is_nan())?;
    let run = silent as usize + first_answer;
    let chance = loss.clamp(MIN_LOSS_ESTIMATE, 1.0).powi(run.min(64) as i32);
    (chance < BRIEF_CHANCE).then(|| round.started + round.spacing * first_answer as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn good() -> RoundStats {
        RoundStats::from_rtts([Some(0.01), Some(0.01), Some(0.01)])
    }
    fn silent() -> RoundStats {
        RoundStats::from_rtts([None, None, None])
    }

    #[test]
    fn unknown_until_first_round_then_up() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        assert_eq!(h.state, State::Unknown);
        assert_eq!(h.observe(&good(), &[], &p, T0), State::Up);
    }

    #[test]
    fn down_after_n_silent_rounds_and_up_after_m_good_ones() {
        let p = HealthPolicy {
            down_after: 3,
            up_after: 2,
            ..Default::default()
        };
        let mut h = Health::default();
        h.observe(&good(), &[], &p, T0);
        assert_eq!(h.observe(&silent(), &[], &p, T0), State::Up);
        assert_eq!(h.observe(&silent(), &[], &p, T0), State::Up);
        assert_eq!(h.observe(&silent(), &[], &p, T0), State::Down);
        assert_eq!(
            h.observe(&good(), &[], &p, T0),
            State::Down,
            "one good round is not enough"
        );
        // The window still remembers three silent rounds out of six: loss 50 % → Degraded.
        assert_eq!(h.observe(&good(), &[], &p, T0), State::Degraded);
    }

    #[test]
    fn silent_start_goes_down_from_unknown() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        h.observe(&silent(), &[], &p, T0);
        h.observe(&silent(), &[], &p, T0);
        assert_eq!(h.state, State::Unknown);
        assert_eq!(h.observe(&silent(), &[], &p, T0), State::Down);
    }

    #[test]
    fn slow_or_jittery_or_lossy_is_degraded() {
        let p = HealthPolicy::default();
        for round in [
            RoundStats::from_rtts([Some(0.2), Some(0.2), Some(0.2)]),
            RoundStats::from_rtts([Some(0.01), Some(0.09), Some(0.01)]),
            RoundStats::from_rtts([Some(0.01), None, None]),
        ] {
            let mut h = Health::default();
            for _ in 0..3 {
                h.observe(&round, &[], &p, T0);
            }
            assert_eq!(h.state, State::Degraded, "{round:?}");
        }
    }

    #[test]
    fn one_lost_packet_in_the_first_round_is_not_degraded() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        h.observe(&RoundStats::from_rtts([Some(0.01), None, Some(0.01)]), &[], &p, T0);
        assert_eq!(h.state, State::Up);
    }

    #[test]
    fn one_lossy_round_in_a_window_stays_up() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        for _ in 0..5 {
            h.observe(&good(), &[], &p, T0);
        }
        h.observe(&RoundStats::from_rtts([Some(0.01), None, Some(0.01)]), &[], &p, T0);
        assert_eq!(h.state, State::Up);
    }

    #[test]
    fn late_replies_are_judged_against_the_window_before_the_round() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        // 100 ms mean, 30 ms jitter: the buffer is 60 ms, so a reply after 160 ms is late.
        let steady = [0.085f32, 0.115, 0.085];
        for _ in 0..3 {
            let r = RoundStats::from_rtts(steady.iter().map(|x| Some(f64::from(*x))));
            h.observe(&r, &steady, &p, T0);
        }
        let f = h.figures();
        assert_eq!((f.sent, f.received, f.late), (9, 9, 0));
        assert!((f.rtt.unwrap() - 0.095).abs() < 1e-6 && (f.jitter.unwrap() - 0.030).abs() < 1e-6);
        let slow = [0.150f32, f32::NAN, 0.170];
        h.observe(&RoundStats::from_rtts([Some(0.150), None, Some(0.170)]), &slow, &p, T0);
        let f = h.figures();
        assert_eq!(
            (f.sent, f.received, f.late),
            (12, 11, 1),
            "170 ms > 95 + 60 ms; 150 ms is not"
        );
        let n = f.network().unwrap();
        assert!((n.loss - 2.0 / 12.0).abs() < 1e-12, "one lost and one late of twelve");
    }

    /// A finished round begun `at_s` seconds after T0 with per-request RTTs (NaN = lost).
    fn finished<'a>(kind: RoundKind, at_s: f64, rtts: &'a [f32], stats: &'a RoundStats) -> FinishedRound<'a> {
        let started = T0 + Duration::from_secs_f64(at_s);
        FinishedRound {
            stats,
            rtts,
            kind,
            started,
            spacing: Duration::from_millis(200),
            finished: started + Duration::from_secs(1),
        }
    }

    fn stats_of(rtts: &[f32]) -> RoundStats {
        RoundStats::from_rtts(rtts.iter().map(|r| (!r.is_nan()).then_some(f64::from(*r))))
    }

    #[test]
    fn outages_are_dated_midway_between_requests_and_watched_while_down() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        let (ok, lost) = ([0.01f32; 3], [f32::NAN; 3]);
        let (ok_s, lost_s) = (stats_of(&ok), stats_of(&lost));
        let o = h.observe_finished(&finished(RoundKind::Regular, 0.0, &ok, &ok_s), &p);
        assert_eq!((o.state, o.followup), (State::Up, Followup::Nothing));
        // Silent at 10 s: confirm at once.
        let o = h.observe_finished(&finished(RoundKind::Regular, 10.0, &lost, &lost_s), &p);
        assert_eq!((o.state, o.followup), (State::Up, Followup::Confirm));
        let confirm = [f32::NAN; 10];
        let confirm_s = stats_of(&confirm);
        let o = h.observe_finished(&finished(RoundKind::Confirmation, 10.5, &confirm, &confirm_s), &p);
        assert_eq!(o.state, State::Down);
        // The last reply's request left at 0.4 s, the first lost one at 10 s: midway, 5.2 s.
        assert_eq!(o.at, T0 + Duration::from_millis(5200));
        assert_eq!(o.followup, Followup::Watch, "a Down endpoint is watched");
        // A silent watch keeps it Down and watched; an answered one asks for a confirmation.
        let (one_lost, one_ok) = ([f32::NAN], [0.01f32]);
        let (one_lost_s, one_ok_s) = (stats_of(&one_lost), stats_of(&one_ok));
        let o = h.observe_finished(&finished(RoundKind::Watch, 13.0, &one_lost, &one_lost_s), &p);
        assert_eq!((o.state, o.followup), (State::Down, Followup::Watch));
        let o = h.observe_finished(&finished(RoundKind::Watch, 14.0, &one_ok, &one_ok_s), &p);
        assert_eq!((o.state, o.followup), (State::Down, Followup::Confirm));
        let good = [0.01f32; 10];
        let good_s = stats_of(&good);
        let o = h.observe_finished(&finished(RoundKind::Confirmation, 14.1, &good, &good_s), &p);
        assert_eq!((o.state, o.followup), (State::Up, Followup::Nothing));
        // Between the silent watch (13 s) and the answered one (14 s).
        assert_eq!(o.at, T0 + Duration::from_millis(13_500));
        // Watches stay out of the quality window: two regular rounds so far.
        assert_eq!(h.figures().rounds, 2);
    }

    #[test]
    fn a_refuted_recovery_goes_back_to_watching() {
        let p = HealthPolicy::default();
        let mut h = Health::default();
        let (lost, ok) = ([f32::NAN; 3], [0.01f32; 3]);
        let (lost_s, ok_s) = (stats_of(&lost), stats_of(&ok));
        for i in 0..3 {
            h.observe_finished(&finished(RoundKind::Regular, f64::from(i) * 10.0, &lost, &lost_s), &p);
        }
        assert_eq!(h.state, State::Down);
        let o = h.observe_finished(&finished(RoundKind::Regular, 30.0, &ok, &ok_s), &p);
        assert_eq!(o.followup, Followup::Confirm);
        let confirm = [f32::NAN; 10];
        let confirm_s = stats_of(&confirm);
        let o = h.observe_finished(&finished(RoundKind::Confirmation, 31.0, &confirm, &confirm_s), &p);
        assert_eq!((o.state, o.followup), (State::Down, Followup::Watch));
    }
}
