//! Flap damping, one rule for ICMP rounds and service checks alike: Down after `down_after`
//! consecutive failures; once Down, back up only after `up_after` consecutive successes.

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

/// Counts of consecutive failures and successes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Damper {
    failing: u32,
    passing: u32,
}

impl Damper {
    /// Folds one result in, given the current state.
    pub fn observe(&mut self, success: bool, current: State, policy: &HealthPolicy) -> Verdict {
        if success {
            self.failing = 0;
            self.passing = self.passing.saturating_add(1);
            if current != State::Down || self.passing >= policy.up_after {
                return Verdict::Answering;
            }
        } else {
            self.passing = 0;
            self.failing = self.failing.saturating_add(1);
            if self.failing >= policy.down_after {
                return Verdict::Down;
            }
        }
        Verdict::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_n_failures_up_after_m_successes() {
        let p = HealthPolicy {
            down_after: 3,
            up_after: 2,
            ..Default::default()
        };
        let mut d = Damper::default();
        assert_eq!(d.observe(false, State::Up, &p), Verdict::Hold);
        assert_eq!(d.observe(false, State::Up, &p), Verdict::Hold);
        assert_eq!(d.observe(false, State::Up, &p), Verdict::Down);
        assert_eq!(d.observe(true, State::Down, &p), Verdict::Hold);
        assert_eq!(d.observe(true, State::Down, &p), Verdict::Answering);
        // A failure in between restarts the count.
        assert_eq!(d.observe(false, State::Up, &p), Verdict::Hold);
        assert_eq!(d.observe(true, State::Up, &p), Verdict::Answering);
    }
}
