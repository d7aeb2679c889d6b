//! Flap damping, one rule for ICMP rounds and service checks alike: Down after `down_after`
//! consecutive failures; once Down, back up only after `up_after` consecutive successes. A
//! confirmation (a round sent at once to check a contradicting result) settles a streak
//! without waiting for more intervals.
//!
//! A change is dated at the start of the streak that caused it: an outage begins at its first
//! silent round and ends at its first answering one, whatever the confirmations or the damping
//! cost in time.

use std::time::SystemTime;

use super::health::{HealthPolicy, State};

/// What one result means for a damped state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Leave Down (or stay up): the caller says which answering state (Up or Degraded).
    Answering,
    Down,
    /// Not enough evidence to change.
    Hold,
}

/// Counts of consecutive failures and successes, and when the current streak began.
#[derive(Clone, Copy, Debug, Default)]
pub struct Damper {
    failing: u32,
    passing: u32,
    since: Option<SystemTime>,
}

impl Damper {
    /// Folds one result in, given the current state; `at` is when the attempt began.
    pub fn observe(&mut self, success: bool, current: State, policy: &HealthPolicy, at: SystemTime) -> Verdict {
        if success {
            if self.passing == 0 {
                self.since = Some(at);
            }
            self.failing = 0;
            self.passing = self.passing.saturating_add(1);
            if current != State::Down || self.passing >= policy.up_after {
                return Verdict::Answering;
            }
        } else {
            if self.failing == 0 {
                self.since = Some(at);
            }
            self.passing = 0;
            self.failing = self.failing.saturating_add(1);
            if self.failing >= policy.down_after {
                return Verdict::Down;
            }
        }
        Verdict::Hold
    }

    /// Whether the last result contradicts `current` without having changed it yet: a failure
    /// while not Down, a success while Down. Such a result is worth confirming at once.
    pub fn contradicted(&self, current: State) -> bool {
        match current {
            State::Down => self.passing > 0,
            _ => self.failing > 0,
        }
    }

    /// Folds in a confirmation's result: it settles a contradicting streak either way (a
    /// confirmation that came too late to find one changes nothing).
    pub fn confirm(&mut self, success: bool, current: State, policy: &HealthPolicy) -> Verdict {
        if !self.contradicted(current) {
            return Verdict::Hold;
        }
        match (current == State::Down, success) {
            // The silence is confirmed: Down, dated at its first silent round.
            (false, false) => {
                self.failing = self.failing.max(policy.down_after);
                Verdict::Down
            }
            // The recovery is confirmed.
            (true, true) => {
                self.passing = self.passing.max(policy.up_after);
                Verdict::Answering
            }
            // Refuted: the contradicting result was a fluke (loss, or a break too short to
            // confirm); the streak is over.
            (false, true) => {
                self.failing = 0;
                self.passing = 1;
                Verdict::Hold
            }
            (true, false) => {
                self.passing = 0;
                self.failing = 1;
                Verdict::Hold
            }
        }
    }

    /// When the current streak began: the date of a change it causes.
    pub fn since(&self) -> Option<SystemTime> {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn down_after_n_failures_up_after_m_successes() {
        let p = HealthPolicy {
            down_after: 3,
            up_after: 2,
            ..Default::default()
        };
        let mut d = Damper::default();
        assert_eq!(d.observe(false, State::Up, &p, t(10)), Verdict::Hold);
        assert_eq!(d.observe(false, State::Up, &p, t(20)), Verdict::Hold);
        assert_eq!(d.observe(false, State::Up, &p, t(30)), Verdict::Down);
        assert_eq!(d.since(), Some(t(10)), "the outage starts at its first silent round");
        assert_eq!(d.observe(true, State::Down, &p, t(40)), Verdict::Hold);
        assert_eq!(d.observe(true, State::Down, &p, t(50)), Verdict::Answering);
        assert_eq!(d.since(), Some(t(40)), "and ends at its first answering round");
        // A failure in between restarts the count.
        assert_eq!(d.observe(false, State::Up, &p, t(60)), Verdict::Hold);
        assert_eq!(d.observe(true, State::Up, &p, t(70)), Verdict::Answering);
    }

    #[test]
    fn a_confirmation_settles_a_contradiction_either_way() {
        let p = HealthPolicy::default();
        let mut d = Damper::default();
        d.observe(true, State::Unknown, &p, t(0));
        assert!(!d.contradicted(State::Up));
        assert_eq!(d.observe(false, State::Up, &p, t(10)), Verdict::Hold);
        assert!(d.contradicted(State::Up));
        // Refuted: back to passing, no change.
        assert_eq!(d.confirm(true, State::Up, &p), Verdict::Hold);
        assert!(!d.contradicted(State::Up));
        // Confirmed: Down at once, dated at the silent round.
        d.observe(false, State::Up, &p, t(20));
        assert_eq!(d.confirm(false, State::Up, &p), Verdict::Down);
        assert_eq!(d.since(), Some(t(20)));
        // Recovery: one answering round, confirmed.
        assert_eq!(d.observe(true, State::Down, &p, t(30)), Verdict::Hold);
        assert!(d.contradicted(State::Down));
        assert_eq!(d.confirm(true, State::Down, &p), Verdict::Answering);
        assert_eq!(d.since(), Some(t(30)));
        // A confirmation with nothing to settle changes nothing.
        assert_eq!(d.confirm(false, State::Up, &p), Verdict::Hold);
    }
}
