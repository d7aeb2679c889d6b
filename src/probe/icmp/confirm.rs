//! Confirmation rounds off the timeline: the queue of their requests and the budget that paces
//! them. A regular round that contradicts an endpoint's state (silent while up, answering while
//! down) asks for one; its requests go out `spacing` apart from the next wake-up on, mixed with
//! the timeline's. The budget is a token bucket of requests per second, a fraction of the
//! regular rate: when thousands of endpoints fall silent at once, the first are confirmed at
//! once and the rest wait for their regular rounds, which is the behaviour without confirmation.
//! Watch requests (one at a time to a Down endpoint, to date its recovery) queue here too and
//! spend only the upper half of the bucket: confirmations always find the lower half.
//! Path traces (one request per TTL, to place a fault on the path) share that upper half too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::settings::{MIN_CONFIRM_RATE, ProbeConfig};

/// What a queued request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlotKind {
    Confirm,
    /// A watch request: a round of one.
    Watch,
    /// One TTL of a path trace: `round` is the trace's id, `packet` the TTL.
    Trace,
}

/// One request of a confirmation round, a watch request or one request of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfirmSlot {
    pub due: Instant,
    pub endpoint: u32,
    /// The round that asked for it: it is dropped when another round began since.
    pub round: u32,
    pub packet: u8,
    pub kind: SlotKind,
}

/// Requests of confirmation rounds waiting for their time, earliest first.
#[derive(Default)]
pub struct ConfirmQueue {
    slots: BinaryHeap<Reverse<ConfirmSlot>>,
    budget: Budget,
}

impl ConfirmQueue {
    /// Queues a confirmation round of `packets` requests from `start`, `spacing` apart, if the
    /// budget allows it now.
    pub fn schedule(&mut self, endpoint: u32, round: u32, packets: u8, spacing: Duration, start: Instant) -> bool {
        if packets == 0 || !self.budget.take(f64::from(packets), start) {
            return false;
        }
        for packet in 0..packets {
            self.slots.push(Reverse(ConfirmSlot {
                due: start + spacing * u32::from(packet),
                endpoint,
                round,
                packet,
                kind: SlotKind::Confirm,
            }));
        }
        true
    }

    /// Queues a trace of `hops` requests (TTL 1..=hops) from `start`, `spacing` apart, if the
    /// budget has more than half a bucket left after it, as for watches.
    pub fn schedule_trace(&mut self, endpoint: u32, trace: u32, hops: u8, spacing: Duration, start: Instant) -> bool {
        if hops == 0 || !self.budget.take_above(f64::from(hops), self.budget.burst / 2.0, start) {
            return false;
        }
        for ttl in 1..=hops {
            self.slots.push(Reverse(ConfirmSlot {
                due: start + spacing * u32::from(ttl - 1),
                endpoint,
                round: trace,
                packet: ttl,
                kind: SlotKind::Trace,
            }));
        }
        true
    }

    /// Queues one watch request at `due` if the budget has more than half a bucket left now.
    pub fn schedule_watch(&mut self, endpoint: u32, round: u32, due: Instant, now: Instant) -> bool {
        if !self.budget.take_above(1.0, self.budget.burst / 2.0, now) {
            return false;
        }
        self.slots.push(Reverse(ConfirmSlot {
            due,
            endpoint,
            round,
            packet: 0,
            kind: SlotKind::Watch,
        }));
        true
    }

    /// Gives back the tokens of `n` requests that were reserved and not sent (a trace's TTLs
    /// past the one that reached its endpoint): the budget counts packets, not reservations.
    pub fn refund(&mut self, n: f64) {
        self.budget.tokens = (self.budget.tokens + n).min(self.budget.burst);
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.slots.peek().map(|s| s.0.due)
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<ConfirmSlot> {
        if self.next_due()? > now {
            return None;
        }
        self.slots.pop().map(|s| s.0)
    }

    /// Renumbers queued requests after an inventory change: `to` gives an endpoint's new index,
    /// `None` to drop its requests.
    pub fn remap(&mut self, to: impl Fn(u32) -> Option<u32>) {
        let slots = std::mem::take(&mut self.slots);
        self.slots = slots
            .into_iter()
            .filter_map(|Reverse(s)| to(s.endpoint).map(|endpoint| Reverse(ConfirmSlot { endpoint, ..s })))
            .collect();
    }

    /// Forgets every queued request (a stall).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    pub fn set_rate(&mut self, probe: &ProbeConfig, endpoints: usize) {
        let regular = endpoints as f64 * f64::from(probe.packets) / probe.interval.as_secs_f64().max(1e-3);
        self.budget.rate = (regular * probe.confirm.budget).max(MIN_CONFIRM_RATE);
        // A second's worth at once, and at least one whole round.
        self.budget.burst = self.budget.rate.max(f64::from(probe.confirm.packets));
        if probe.confirm.budget == 0.0 {
            self.budget.rate = 0.0;
            self.budget.burst = 0.0;
        }
    }
}

/// A token bucket of requests.
#[derive(Debug, Default)]
struct Budget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    fn take(&mut self, n: f64, now: Instant) -> bool {
        self.take_above(n, 0.0, now)
    }

    /// Takes `n` tokens if `reserve` are left afterwards.
    fn take_above(&mut self, n: f64, reserve: f64, now: Instant) -> bool {
        let elapsed = self.last.map_or(Duration::MAX, |l| now.saturating_duration_since(l));
        self.tokens = (self.tokens + elapsed.as_secs_f64().min(1e6) * self.rate).min(self.burst);
        self.last = Some(now);
        if self.tokens - n >= reserve && self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(endpoints_rate_budget: f64) -> ProbeConfig {
        let mut p = ProbeConfig::default();
        p.confirm.budget = endpoints_rate_budget;
        p
    }

    #[test]
    fn requests_come_out_in_time_order_spaced() {
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 100);
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert!(q.schedule(1, 7, 3, ms(100), t));
        assert!(q.schedule(2, 9, 2, ms(100), t + ms(50)));
        let mut order = Vec::new();
        while let Some(s) = q.pop_due(t + ms(1000)) {
            order.push((s.endpoint, s.packet, (s.due - t).as_millis()));
        }
        assert_eq!(order, [(1, 0, 0), (2, 0, 50), (1, 1, 100), (2, 1, 150), (1, 2, 200)]);
        assert_eq!(q.pop_due(t + ms(5000)), None);
    }

    #[test]
    fn remapping_follows_endpoints_and_drops_the_removed() {
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 100);
        let t = Instant::now();
        assert!(q.schedule(3, 1, 2, Duration::ZERO, t));
        assert!(q.schedule(5, 1, 2, Duration::ZERO, t));
        q.remap(|old| (old == 3).then_some(0));
        let left: Vec<u32> = std::iter::from_fn(|| q.pop_due(t)).map(|s| s.endpoint).collect();
        assert_eq!(left, [0, 0]);
    }

    #[test]
    fn the_budget_bounds_a_national_event_and_refills() {
        // 10,000 endpoints, 3 packets every 10 s: 3,000 requests/s; 10 % = 300 confirmation
        // requests/s, 30 rounds of 10.
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 10_000);
        let t = Instant::now();
        let granted = (0..10_000u32)
            .filter(|&e| q.schedule(e, 0, 10, Duration::ZERO, t))
            .count();
        assert_eq!(granted, 30);
        // One second later, another second's worth.
        let later = t + Duration::from_secs(1);
        let granted = (0..10_000u32)
            .filter(|&e| q.schedule(e, 1, 10, Duration::ZERO, later))
            .count();
        assert_eq!(granted, 30);
    }

    #[test]
    fn a_small_inventory_still_gets_the_floor_and_zero_turns_it_off() {
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 3);
        let t = Instant::now();
        assert_eq!(
            (0..100u32).filter(|&e| q.schedule(e, 0, 10, Duration::ZERO, t)).count(),
            20
        );
        let mut off = ConfirmQueue::default();
        off.set_rate(&probe(0.0), 3);
        assert!(!off.schedule(0, 0, 10, Duration::ZERO, t));
        assert!(!off.schedule_watch(0, 0, t, t));
    }

    #[test]
    fn watches_spend_only_the_upper_half_of_the_bucket() {
        // 10,000 endpoints: 300 requests/s, a bucket of 300.
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 10_000);
        let t = Instant::now();
        let watched = (0..10_000u32).filter(|&e| q.schedule_watch(e, 0, t, t)).count();
        assert_eq!(
            watched, 150,
            "a national outage watches 150 endpoints a second, not 10,000"
        );
        // The lower half is left for confirmations: 15 rounds of 10.
        let confirmed = (0..100u32).filter(|&e| q.schedule(e, 0, 10, Duration::ZERO, t)).count();
        assert_eq!(confirmed, 15);
        let popped: Vec<ConfirmSlot> = std::iter::from_fn(|| q.pop_due(t)).collect();
        assert_eq!(
            popped
                .iter()
                .filter(|s| s.kind == SlotKind::Watch && s.packet == 0)
                .count(),
            150
        );
        assert_eq!(popped.len(), 150 + 150);
    }

    #[test]
    fn traces_are_paced_ttl_by_ttl_and_leave_confirmations_their_half() {
        // 10,000 endpoints: a bucket of 300; traces of 16 requests may spend 150 of it.
        let mut q = ConfirmQueue::default();
        q.set_rate(&probe(0.1), 10_000);
        let t = Instant::now();
        let ms = Duration::from_millis;
        let traced = (0..10_000u32).filter(|&e| q.schedule_trace(e, e, 16, ms(5), t)).count();
        assert_eq!(traced, 9, "a national outage traces a few paths a second, not 10,000");
        assert_eq!(
            (0..100u32).filter(|&e| q.schedule(e, 0, 10, Duration::ZERO, t)).count(),
            15
        );
        // The TTLs a trace does not send come back to the bucket: a reached endpoint leaves
        // room for more traces.
        assert!(!q.schedule_trace(99, 99, 16, ms(5), t));
        q.refund(200.0);
        assert!(
            q.schedule_trace(99, 99, 16, ms(5), t),
            "refunded tokens are spent again"
        );
        let first: Vec<(u8, u128)> = std::iter::from_fn(|| q.pop_due(t + ms(100)))
            .filter(|s| s.kind == SlotKind::Trace && s.endpoint == 0)
            .map(|s| (s.packet, (s.due - t).as_millis()))
            .collect();
        assert_eq!(
            first,
            (1..=16).map(|ttl| (ttl, 5 * u128::from(ttl - 1))).collect::<Vec<_>>()
        );
    }
}
