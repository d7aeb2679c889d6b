//! One paced timeline for every probe packet of every endpoint.
//!
//! Endpoint `i` of `n` starts its round at `i × interval / n` into each cycle and sends packet
//! `j` `j × spacing` later, so the load is spread evenly over the interval. All (endpoint,
//! packet) slots live in one array sorted by offset; the engine walks it cyclically, which costs
//! no allocation and no per-endpoint task or timer.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Nanoseconds after the start of a cycle.
    pub offset_ns: u64,
    pub endpoint: u32,
    pub packet: u8,
}

#[derive(Debug)]
pub struct Timeline {
    slots: Vec<Slot>,
    interval: Duration,
    cycle_start: Instant,
    position: usize,
    cycles: u64,
}

impl Timeline {
    /// `offsets[i]` is endpoint i's round start within the cycle (see [`even_offsets`]).
    pub fn new(
        offsets: &[Duration],
        packets: u32,
        interval: Duration,
        spacing: Duration,
        start: Instant,
    ) -> Timeline {
        let interval_ns = interval.as_nanos().max(1) as u64;
        let mut slots = Vec::with_capacity(offsets.len() * packets as usize);
        for (i, offset) in offsets.iter().enumerate() {
            for j in 0..packets {
                let at = offset.as_nanos() as u64 + u64::from(j) * spacing.as_nanos() as u64;
                slots.push(Slot {
                    offset_ns: at % interval_ns,
                    endpoint: i as u32,
                    packet: j as u8,
                });
            }
        }
        slots.sort_unstable_by_key(|s| (s.offset_ns, s.endpoint, s.packet));
        Timeline {
            slots,
            interval,
            cycle_start: start,
            position: 0,
            cycles: 0,
        }
    }

    /// When the next slot is due, or `None` for an empty inventory.
    pub fn next_due(&self) -> Option<Instant> {
        self.slots
            .get(self.position)
            .map(|s| self.cycle_start + Duration::from_nanos(s.offset_ns))
    }

    /// Takes the next slot if it is due at `now`, with the time it was due.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Slot, Instant)> {
        let due = self.next_due()?;
        if due > now {
            return None;
        }
        let slot = self.slots[self.position];
        self.position += 1;
        if self.position == self.slots.len() {
            self.position = 0;
            self.cycle_start += self.interval;
            self.cycles += 1;
        }
        Some((slot, due))
    }

    /// Full passes over every slot so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Round starts spread evenly over the interval.
pub fn even_offsets(n: usize, interval: Duration) -> Vec<Duration> {
    let step = interval.as_nanos() / (n.max(1) as u128);
    (0..n)
        .map(|i| Duration::from_nanos((step * i as u128) as u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spread_evenly_and_cycle() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut t = Timeline::new(
            &even_offsets(4, interval),
            2,
            interval,
            Duration::from_millis(100),
            start,
        );
        assert_eq!(t.len(), 8);
        let mut seen = Vec::new();
        let end = start + interval + Duration::from_secs(5);
        while let Some((slot, due)) = t.pop_due(end) {
            seen.push((slot.endpoint, slot.packet, (due - start).as_millis()));
        }
        assert_eq!(
            &seen[..8],
            &[
                (0, 0, 0),
                (0, 1, 100),
                (1, 0, 2500),
                (1, 1, 2600),
                (2, 0, 5000),
                (2, 1, 5100),
                (3, 0, 7500),
                (3, 1, 7600)
            ]
        );
        assert_eq!(seen[8], (0, 0, 10_000));
        assert_eq!(t.cycles(), 1);
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let start = Instant::now();
        let mut t = Timeline::new(
            &[Duration::from_secs(1)],
            1,
            Duration::from_secs(10),
            Duration::ZERO,
            start,
        );
        assert!(t.pop_due(start).is_none());
        assert!(t.pop_due(start + Duration::from_secs(1)).is_some());
    }
}
