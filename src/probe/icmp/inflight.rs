//! Echo requests waiting for their replies, on one socket, indexed by sequence number.
//!
//! Sequence numbers are handed out in send order, so the oldest request is always at the tail
//! and expiry is a walk from there. The ring is indexed by the low bits of the 16-bit sequence
//! number and each entry keeps the full number, so a stale reply never matches a newer request
//! that shares its slot. It starts small and doubles when the next sequence number would land on
//! a slot still in use: it is as large as the busiest moment needed, not 65,536 × 24 bytes per
//! address family. At 10,000 endpoints that is 1,024 slots while all answer, and 4,096 once one
//! does not: its unanswered request pins the tail for the 1 s timeout, 3,000 requests long.

/// Marks a free slot (no endpoint has this index).
pub const EMPTY: u32 = u32::MAX;
/// Slots a new ring starts with; a power of two.
const INITIAL_SLOTS: usize = 1024;
/// The whole 16-bit sequence space: the ring never grows past it.
const ALL_SLOTS: usize = 1 << 16;

/// A request waiting for its reply: 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InFlight {
    pub endpoint: u32,
    pub round: u32,
    /// The full sequence number: the ring is indexed by its low bits only.
    pub seq: u16,
    pub packet: u8,
    /// Wall-clock send time (ns since the Unix epoch), against the kernel's receive stamp.
    pub sent_ns: u64,
    /// Monotonic deadline, µs since the engine's epoch, wrapping (see [`expired`]).
    pub deadline_us: u32,
}

const FREE: InFlight = InFlight {
    endpoint: EMPTY,
    round: 0,
    seq: 0,
    packet: 0,
    sent_ns: 0,
    deadline_us: 0,
};

/// Whether a wrapping µs deadline has passed at `now_us` (valid within ±35 minutes).
pub fn expired(deadline_us: u32, now_us: u32) -> bool {
    (now_us.wrapping_sub(deadline_us) as i32) >= 0
}

pub struct InFlightRing {
    slots: Vec<InFlight>,
    /// The oldest sequence number not yet walked past by [`InFlightRing::pop_expired`].
    oldest: u16,
    /// The sequence number the next request gets.
    next: u16,
}

impl Default for InFlightRing {
    fn default() -> Self {
        InFlightRing {
            slots: vec![FREE; INITIAL_SLOTS],
            oldest: 0,
            next: 0,
        }
    }
}

impl InFlightRing {
    /// Sequence numbers from the oldest not yet expired or walked past to the next one.
    pub fn span(&self) -> usize {
        self.next.wrapping_sub(self.oldest) as usize
    }

    /// Slots allocated now.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn slot(&self, seq: u16) -> usize {
        usize::from(seq) & (self.slots.len() - 1)
    }

    /// The request in flight with exactly this sequence number.
    #[inline]
    pub fn get(&self, seq: u16) -> Option<&InFlight> {
        let entry = &self.slots[self.slot(seq)];
        (entry.endpoint != EMPTY && entry.seq == seq).then_some(entry)
    }

    /// Sets the send time of the request with this sequence number, if it is in flight.
    pub fn set_sent(&mut self, seq: u16, sent_ns: u64) {
        let slot = self.slot(seq);
        let entry = &mut self.slots[slot];
        if entry.endpoint != EMPTY && entry.seq == seq {
            entry.sent_ns = sent_ns;
        }
    }

    /// Forgets the request with this sequence number (its reply arrived).
    pub fn remove(&mut self, seq: u16) -> Option<InFlight> {
        let entry = *self.get(seq)?;
        let slot = self.slot(seq);
        self.slots[slot] = FREE;
        Some(entry)
    }

    /// The sequence number the next request will carry, after making room for it; `None` when
    /// the whole sequence space is in flight.
    pub fn next_seq(&mut self) -> Option<u16> {
        // A full lap of sequence numbers would make `span` read 0.
        if self.span() >= ALL_SLOTS - 1 {
            return None;
        }
        // Doubling keeps every request in [oldest, next) in its own slot: that span is never
        // longer than the old ring, so it is shorter than the new one.
        while self.span() >= self.slots.len() || self.slots[self.slot(self.next)].endpoint != EMPTY {
            if self.slots.len() >= ALL_SLOTS {
                return None;
            }
            let mut grown = vec![FREE; self.slots.len() * 2];
            let mask = grown.len() - 1;
            for entry in self.slots.iter().filter(|e| e.endpoint != EMPTY) {
                grown[usize::from(entry.seq) & mask] = *entry;
            }
            self.slots = grown;
        }
        Some(self.next)
    }

    /// Records a request sent with the sequence number [`InFlightRing::next_seq`] returned.
    pub fn insert(&mut self, entry: InFlight) {
        debug_assert_eq!(entry.seq, self.next, "requests are recorded in sequence order");
        let slot = self.slot(entry.seq);
        self.slots[slot] = entry;
        self.next = entry.seq.wrapping_add(1);
    }

    /// Forgets every request in flight. Sequence numbers carry on from where they were, so a
    /// late reply to a forgotten request can never match a new one.
    pub fn clear(&mut self) {
        self.slots.fill(FREE);
        self.oldest = self.next;
    }

    /// Deadline of the oldest request still waiting.
    pub fn oldest_deadline(&self) -> Option<u32> {
        self.get(self.oldest).map(|e| e.deadline_us)
    }

    /// Removes and returns the oldest request if its deadline passed, walking past sequence
    /// numbers already answered; `None` once the oldest one left is still within its timeout.
    pub fn pop_expired(&mut self, now_us: u32) -> Option<InFlight> {
        while self.span() > 0 {
            let seq = self.oldest;
            if let Some(entry) = self.get(seq) {
                if !expired(entry.deadline_us, now_us) {
                    return None;
                }
                self.oldest = seq.wrapping_add(1);
                return self.remove(seq);
            }
            self.oldest = seq.wrapping_add(1);
        }
        None
    }

    /// Every request in flight, to renumber their endpoints after a reload.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut InFlight> {
        self.slots.iter_mut().filter(|e| e.endpoint != EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleared_requests_are_gone_and_sequence_numbers_carry_on() {
        let mut ring = InFlightRing::default();
        for n in 0..5u32 {
            let seq = ring.next_seq().expect("room");
            ring.insert(InFlight {
                endpoint: n,
                seq,
                packet: 0,
                round: 0,
                sent_ns: 0,
                deadline_us: 1_000,
            });
        }
        ring.clear();
        assert_eq!(ring.span(), 0);
        assert!((0..5).all(|seq| ring.get(seq).is_none()));
        assert_eq!(ring.oldest_deadline(), None);
        assert_eq!(ring.next_seq(), Some(5));
    }

    fn request(ring: &mut InFlightRing, endpoint: u32, deadline_us: u32) -> u16 {
        let seq = ring.next_seq().expect("room");
        ring.insert(InFlight {
            endpoint,
            round: 7,
            seq,
            packet: 0,
            sent_ns: 1,
            deadline_us,
        });
        seq
    }

    #[test]
    fn replies_match_exact_sequence_numbers() {
        let mut ring = InFlightRing::default();
        let a = request(&mut ring, 1, 100);
        let b = request(&mut ring, 2, 100);
        assert_eq!(ring.get(a).map(|e| e.endpoint), Some(1));
        // Same slot, other sequence number: a stale reply from a full lap ago.
        assert!(ring.get(a.wrapping_add(ring.capacity() as u16)).is_none());
        assert_eq!(ring.remove(b).map(|e| e.endpoint), Some(2));
        assert!(ring.remove(b).is_none(), "a duplicate reply matches nothing");
    }

    #[test]
    fn grows_only_as_far_as_the_span_in_flight_needs() {
        let mut ring = InFlightRing::default();
        // One endpoint that never answers pins the tail; everyone else answers at once.
        request(&mut ring, 0, 1_000);
        for i in 0..5_000u32 {
            let seq = request(&mut ring, 1 + i, 1_000);
            ring.remove(seq);
        }
        assert_eq!(ring.span(), 5_001);
        assert_eq!(ring.capacity(), 8_192);
        assert_eq!(
            ring.get(0).map(|e| e.endpoint),
            Some(0),
            "the pinned request survived growth"
        );
        // Once it expires, the walk passes every answered sequence number.
        assert_eq!(ring.pop_expired(999), None);
        assert_eq!(ring.pop_expired(1_000).map(|e| e.endpoint), Some(0));
        assert_eq!(ring.pop_expired(1_000), None);
        assert_eq!(ring.span(), 0);
        assert_eq!(ring.oldest_deadline(), None);
    }

    #[test]
    fn steady_traffic_keeps_the_ring_small_across_sequence_wraps() {
        let mut ring = InFlightRing::default();
        for now in 0..200_000u32 {
            // 500 requests in flight at any time, each expiring 500 µs after it was sent.
            request(&mut ring, now % 3, now + 500);
            while ring.pop_expired(now).is_some() {}
        }
        assert_eq!(ring.capacity(), 1024);
        assert!(ring.span() <= 501, "{}", ring.span());
    }

    #[test]
    fn the_whole_sequence_space_is_the_limit() {
        let mut ring = InFlightRing::default();
        for i in 0..ALL_SLOTS as u32 - 1 {
            request(&mut ring, i, u32::MAX / 2);
        }
        assert_eq!(ring.capacity(), ALL_SLOTS);
        assert_eq!(ring.next_seq(), None);
        ring.remove(0);
        assert_eq!(ring.next_seq(), None, "answered but not yet walked past");
        assert_eq!(ring.pop_expired(0), None);
        assert_eq!(ring.next_seq(), Some(u16::MAX));
    }

    #[test]
    fn deadlines_compare_across_the_u32_wrap() {
        assert!(expired(u32::MAX - 5, 3));
        assert!(!expired(3, u32::MAX - 5));
        assert!(expired(10, 10));
    }
}
