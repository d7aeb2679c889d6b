//! Stalls: wake-ups of the engine so late that the time in between was not watched.

use std::time::{Duration, Instant, SystemTime};

/// A wake-up later than planned by at least [`STALL_AFTER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// The last wake-up before the stall (wall clock).
    pub from: SystemTime,
    /// The first wake-up after it.
    pub to: SystemTime,
    /// Rounds that were open and are dropped: their packets' fate is unknown.
    pub dropped_rounds: usize,
    /// Slots of the timeline whose time passed during the stall; not sent.
    pub skipped_slots: u64,
}

/// How late a wake-up must be to count as a stall. The engine plans to wake at least every
/// second; a busy 2-core machine delays it by tens of milliseconds, a stopped process or a
/// suspended VM by seconds or hours. Shorter stalls only delay packets (the kernel stamps
/// replies), which the rounds absorb.
pub const STALL_AFTER: Duration = Duration::from_secs(2);

/// How long the engine stood still, when it woke at least [`STALL_AFTER`] later than `planned`
/// by either clock: the monotonic one (a stopped process) or the wall clock (a suspended
/// machine, whose monotonic clock stops too).
pub(super) fn stall_length(
    planned: Instant,
    now: Instant,
    last_wake: Instant,
    last_wall: SystemTime,
    wall: SystemTime,
) -> Option<Duration> {
    let late = now.saturating_duration_since(planned);
    // Time the wall clock saw pass and the monotonic clock did not: a suspended machine (or a
    // forward clock step, which is as unobserved).
    let unseen = wall
        .duration_since(last_wall)
        .unwrap_or_default()
        .saturating_sub(now.saturating_duration_since(last_wake));
    let stalled = late + unseen;
    (stalled >= STALL_AFTER).then_some(stalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_wake_ups_and_unseen_wall_time_are_stalls_scheduling_noise_is_not() {
        let (t0, w0) = (Instant::now(), SystemTime::now());
        let planned = t0 + Duration::from_millis(500);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let wall = |ms: u64| w0 + Duration::from_millis(ms);
        // On time, and 300 ms late (a busy machine): no stall.
        assert_eq!(stall_length(planned, at(500), t0, w0, wall(500)), None);
        assert_eq!(stall_length(planned, at(800), t0, w0, wall(800)), None);
        // Stopped for 30 s: both clocks moved on.
        assert_eq!(
            stall_length(planned, at(30_500), t0, w0, wall(30_500)),
            Some(Duration::from_secs(30))
        );
        // Suspended for an hour: the monotonic clock stood still, the wall clock did not.
        assert_eq!(
            stall_length(planned, at(500), t0, w0, wall(3_600_500)),
            Some(Duration::from_secs(3_600))
        );
        // The wall clock stepped back: not a stall.
        assert_eq!(
            stall_length(planned, at(500), t0, w0, w0 - Duration::from_secs(60)),
            None
        );
    }
}
