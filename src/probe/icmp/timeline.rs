//! One paced timeline for every probe packet of every endpoint.
//!
//! The `n` endpoints start their rounds `interval / n` apart in each cycle, in an interleaved
//! order (see [`interleaved_offsets`]), and send packet `j` `j × spacing` later, so the load is
//! spread evenly over the interval. All (endpoint,
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
    pub fn new(offsets: &[Duration], packets: u32, interval: Duration, spacing: Duration, start: Instant) -> Timeline {
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

    /// A timeline for a changed inventory that carries on where `self` stands: slots whose offset
    /// lies before `self`'s next slot are treated as already passed in this cycle, so an
    /// unchanged endpoint keeps its place and is neither probed twice nor skipped. A changed
    /// interval keeps the phase (the fraction of the cycle already walked).
    pub fn resume(
        &self,
        offsets: &[Duration],
        packets: u32,
        interval: Duration,
        spacing: Duration,
        now: Instant,
    ) -> Timeline {
        let mut next = Timeline::new(offsets, packets, interval, spacing, self.cycle_start);
        let old_ns = self.interval.as_nanos().max(1) as f64;
        let new_ns = interval.as_nanos().max(1) as f64;
        // Where the walk stands in the old cycle: the next slot's offset (or, with no slots,
        // how far into the cycle `now` is).
        let old_phase = match self.slots.get(self.position) {
            Some(s) => Duration::from_nanos(s.offset_ns),
            None => Duration::from_nanos(
                (now.saturating_duration_since(self.cycle_start).as_nanos() as f64 % old_ns) as u64,
            ),
        };
        let resume_ns = (old_phase.as_nanos() as f64 * new_ns / old_ns) as u64;
        let phase = Duration::from_nanos(resume_ns);
        // Same moment in wall time, new cycle length.
        next.cycle_start = (self.cycle_start + old_phase)
            .checked_sub(phase)
            .unwrap_or(self.cycle_start);
        next.position = next.slots.partition_point(|s| s.offset_ns < resume_ns);
        if next.position == next.slots.len() {
            next.position = 0;
            next.cycle_start += interval;
        }
        next.cycles = self.cycles;
        next
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

    /// Passes over every slot whose time has come by `now`, without returning them: the way out
    /// of a stall, whose missed slots must not go out in one burst. Returns how many were
    /// skipped. Whole cycles are stepped over arithmetically, so an hour of suspend costs no
    /// more than a second of it.
    pub fn skip_to(&mut self, now: Instant) -> u64 {
        let Some(due) = self.next_due() else {
            return 0;
        };
        if due > now {
            return 0;
        }
        let n = self.slots.len() as u128;
        let interval_ns = self.interval.as_nanos().max(1);
        let behind = now.saturating_duration_since(self.cycle_start).as_nanos();
        let whole = behind / interval_ns;
        let into = (behind % interval_ns) as u64;
        let landing = self.slots.partition_point(|s| s.offset_ns <= into) as u128;
        let skipped = whole * n + landing - self.position as u128;
        self.cycle_start += Duration::from_nanos(u64::try_from(whole * interval_ns).unwrap_or(u64::MAX));
        self.position = landing as usize;
        if self.position == self.slots.len() {
            self.position = 0;
            self.cycle_start += self.interval;
        }
        u64::try_from(skipped).unwrap_or(u64::MAX)
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

/// Round starts for a changed inventory: carried endpoints keep their offset (scaled if the
/// interval changed); each new endpoint goes into the middle of the widest gap left, so the
/// load stays spread out without moving anyone who is already on the timeline.
pub fn carry_offsets(
    old: &[Duration],
    carried_from: &[Option<usize>],
    old_interval: Duration,
    interval: Duration,
) -> Vec<Duration> {
    use std::collections::BinaryHeap;
    let scale = interval.as_nanos() as f64 / old_interval.as_nanos().max(1) as f64;
    let mut offsets: Vec<Option<u64>> = carried_from
        .iter()
        .map(|c| c.and_then(|o| old.get(o)).map(|d| (d.as_nanos() as f64 * scale) as u64))
        .collect();
    let period = interval.as_nanos().max(1) as u64;
    let mut taken: Vec<u64> = offsets.iter().flatten().copied().collect();
    taken.sort_unstable();
    // Gaps as (length, start); the cyclic gap wraps from the last offset to the first.
    let mut gaps = BinaryHeap::new();
    if taken.is_empty() {
        gaps.push((period, 0u64));
    } else {
        for w in taken.windows(2) {
            gaps.push((w[1] - w[0], w[0]));
        }
        let (first, last) = (taken[0], taken[taken.len() - 1]);
        gaps.push((period - last + first, last));
    }
    let mut first_new = taken.is_empty();
    for slot in offsets.iter_mut().filter(|o| o.is_none()) {
        let Some((len, start)) = gaps.pop() else { break };
        // With nothing on the timeline yet, the first endpoint starts the cycle.
        let at = if first_new { start } else { start + len / 2 };
        let (left, right) = if first_new { (0, len) } else { (len / 2, len - len / 2) };
        first_new = false;
        *slot = Some(at % period);
        if left > 0 {
            gaps.push((left, start));
        }
        gaps.push((right, at));
    }
    offsets
        .into_iter()
        .map(|o| Duration::from_nanos(o.unwrap_or(0)))
        .collect()
}

/// Round starts spread evenly over the interval, in inventory order.
pub fn even_offsets(n: usize, interval: Duration) -> Vec<Duration> {
    let step = interval.as_nanos() / (n.max(1) as u128);
    (0..n)
        .map(|i| Duration::from_nanos((step * i as u128) as u64))
        .collect()
}

/// Round starts spread evenly over the interval, in an interleaved order: slot `p` goes to
/// endpoint `p × g mod n`, `g` the stride nearest `n / φ` that is coprime to `n`. Neighbours in
/// the inventory (sorted by province and district, so behind the same routers) are then far
/// apart in time: a district's outage is spread thinly over the interval instead of filling a
/// stretch of it, so any run of consecutive rounds (the blindness detector's window) samples the
/// whole inventory, and no router sees its communes' requests in one burst.
pub fn interleaved_offsets(n: usize, interval: Duration) -> Vec<Duration> {
    let step = interval.as_nanos() / (n.max(1) as u128);
    let g = interleave_stride(n) as u128;
    let mut offsets = vec![Duration::ZERO; n];
    for p in 0..n as u128 {
        offsets[(p * g % n as u128) as usize] = Duration::from_nanos((step * p) as u64);
    }
    offsets
}

/// The integer nearest `n / φ` that is coprime to `n` (1 for tiny `n`): multiplying by it
/// modulo `n` is a permutation, and the golden ratio spreads its consecutive values most evenly.
fn interleave_stride(n: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let target = (n as f64 / 1.618_033_988_749_895).round() as usize;
    (0..n)
        .flat_map(|d| [target + d, target.wrapping_sub(d)])
        .find(|&g| g > 0 && g < n && gcd(g, n) == 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_a_stall_lands_where_popping_every_slot_would() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let build = || {
            Timeline::new(
                &even_offsets(7, interval),
                3,
                interval,
                Duration::from_millis(300),
                start,
            )
        };
        for stall_ms in [0u64, 1, 99, 2_500, 9_999, 10_000, 10_001, 37_777, 123_456, 3_600_000] {
            let now = start + Duration::from_millis(stall_ms);
            let (mut popped, mut skipped) = (build(), build());
            // Both walks start part-way through a cycle.
            popped.pop_due(start);
            skipped.pop_due(start);
            let mut count = 0u64;
            while popped.pop_due(now).is_some() {
                count += 1;
            }
            assert_eq!(skipped.skip_to(now), count, "stall of {stall_ms} ms");
            assert_eq!(skipped.next_due(), popped.next_due(), "stall of {stall_ms} ms");
            assert!(skipped.next_due().is_some_and(|d| d > now));
        }
    }

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
    fn carried_offsets_stay_and_new_ones_fill_the_widest_gaps() {
        let i = Duration::from_secs(10);
        let old = even_offsets(4, i); // 0, 2.5, 5, 7.5 s
        // Keep endpoints 0 and 2, drop 1 and 3, add two new ones.
        let carried = [Some(0), Some(2), None, None];
        let new = carry_offsets(&old, &carried, i, i);
        assert_eq!(new[0], Duration::ZERO);
        assert_eq!(new[1], Duration::from_secs(5));
        let mut added = vec![new[2], new[3]];
        added.sort();
        assert_eq!(added, vec![Duration::from_millis(2500), Duration::from_millis(7500)]);
        // From nothing: evenly spread, starting at zero.
        let fresh = carry_offsets(&[], &[None, None, None, None], i, i);
        let mut fresh_sorted = fresh.clone();
        fresh_sorted.sort();
        assert_eq!(fresh_sorted, even_offsets(4, i));
    }

    #[test]
    fn a_resumed_timeline_neither_repeats_nor_skips_slots() {
        let start = Instant::now();
        let i = Duration::from_secs(10);
        let offsets = even_offsets(4, i);
        let mut t = Timeline::new(&offsets, 1, i, Duration::ZERO, start);
        // Walk past endpoints 0 and 1 (offsets 0 and 2.5 s).
        let now = start + Duration::from_secs(3);
        while t.pop_due(now).is_some() {}
        // Reload: same endpoints plus one new one, in the middle of a widest gap (8.75 s).
        let carried = [Some(0), Some(1), Some(2), Some(3), None];
        let new_offsets = carry_offsets(&offsets, &carried, i, i);
        let mut r = t.resume(&new_offsets, 1, i, Duration::ZERO, now);
        let mut order = Vec::new();
        while let Some((slot, due)) = r.pop_due(start + Duration::from_secs(12)) {
            order.push((slot.endpoint, (due - start).as_millis()));
        }
        assert_eq!(order, vec![(2, 5000), (3, 7500), (4, 8750), (0, 10_000)]);
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

    #[test]
    fn interleaved_offsets_are_a_permutation_that_spreads_neighbours() {
        let interval = Duration::from_secs(10);
        for n in [0usize, 1, 2, 3, 10, 160, 300, 3_321, 10_000] {
            let offsets = interleaved_offsets(n, interval);
            let step = interval.as_nanos() / n.max(1) as u128;
            let mut slots: Vec<u128> = offsets.iter().map(|o| o.as_nanos() / step.max(1)).collect();
            slots.sort_unstable();
            assert_eq!(slots, (0..n as u128).collect::<Vec<_>>(), "n = {n}: every slot once");
        }
        // 160 endpoints: a block of 22 neighbours (a district) never fills a window of 16
        // consecutive slots; at most a few of them fall in any one.
        let offsets = interleaved_offsets(160, interval);
        let step = interval.as_nanos() / 160;
        let mut in_block = [false; 160];
        for o in &offsets[..22] {
            in_block[(o.as_nanos() / step) as usize] = true;
        }
        let worst = (0..160)
            .map(|p| (0..16).filter(|k| in_block[(p + k) % 160]).count())
            .max()
            .unwrap_or(0);
        assert!(worst <= 4, "{worst} of a window of 16 from one block of 22");
    }
}
