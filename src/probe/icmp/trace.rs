//! Path traces in progress: one echo request per TTL 1..=[`MAX_HOPS`] to an endpoint, what
//! answered each, and the finished [`Trace`] once every request is answered or timed out.
//!
//! Trace requests ride the engine's own sockets and sequence numbers (on a ping-socket lane, a
//! ping socket of their own: see [`super::errqueue`]) and are told apart in flight by
//! [`TRACE_FLAG`] in their packet number; they open no round and count in no round.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::domain::path::Trace;

/// The longest path traced: TTLs 1..=16.
pub const MAX_HOPS: u8 = 16;
/// Between the requests of one trace: all are in flight together, a few ms apart, so a
/// router that rate-limits its ICMP errors sees no burst.
pub const TRACE_SPACING: Duration = Duration::from_millis(5);
/// Marks a trace request in [`super::inflight::InFlight::packet`]; the TTL is in the low bits.
/// Regular rounds send at most [`super::MAX_PACKETS_PER_ROUND`] packets, far below it.
pub const TRACE_FLAG: u8 = 0x80;

/// The TTL of a request in flight, if it belongs to a trace.
pub fn ttl_of(packet: u8) -> Option<u8> {
    (packet & TRACE_FLAG != 0).then_some(packet & !TRACE_FLAG)
}

/// What came back for one TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Not sent yet, or sent and still within its timeout.
    Waiting,
    /// Timed out, could not be sent, or not sent because a lower TTL already reached the
    /// endpoint.
    Silent,
    /// Time Exceeded from this router.
    Router(IpAddr),
    /// Destination Unreachable from this router: the path ends there.
    Unreachable(IpAddr),
    /// The endpoint's echo reply.
    Endpoint,
}

/// One trace under way.
#[derive(Clone, Debug)]
pub struct Tracing {
    pub endpoint: u32,
    pub target: IpAddr,
    hops: [Hop; MAX_HOPS as usize],
}

impl Tracing {
    fn new(endpoint: u32, target: IpAddr) -> Tracing {
        Tracing {
            endpoint,
            target,
            hops: [Hop::Waiting; MAX_HOPS as usize],
        }
    }

    /// Records the answer to TTL `ttl`; the first answer counts (a duplicate changes nothing).
    pub fn answer(&mut self, ttl: u8, hop: Hop) {
        if let Some(h) = self.hops.get_mut(usize::from(ttl).wrapping_sub(1))
            && *h == Hop::Waiting
        {
            *h = hop;
        }
    }

    /// Whether a request with this TTL is still worth sending: not once a lower TTL reached
    /// the endpoint or met an unreachable router.
    pub fn worth_sending(&self, ttl: u8) -> bool {
        !self.hops[..usize::from(ttl.min(MAX_HOPS)).saturating_sub(1)]
            .iter()
            .any(|h| matches!(h, Hop::Endpoint | Hop::Unreachable(_)))
    }

    pub fn done(&self) -> bool {
        !self.hops.contains(&Hop::Waiting)
    }

    /// The routers before the endpoint, in order, and whether it answered. An unanswered trace
    /// ends one silent hop after the furthest router that answered (further TTLs add nothing).
    pub fn finish(&self) -> Trace {
        let end = self
            .hops
            .iter()
            .position(|h| matches!(h, Hop::Endpoint | Hop::Unreachable(_)));
        let reached = end.is_some_and(|i| self.hops[i] == Hop::Endpoint);
        let addr = |h: &Hop| match *h {
            Hop::Router(a) | Hop::Unreachable(a) => Some(a),
            _ => None,
        };
        let hops = match end {
            Some(i) if reached => self.hops[..i].iter().map(addr).collect(),
            Some(i) => self.hops[..=i].iter().map(addr).collect(),
            None => {
                let mut hops: Vec<Option<IpAddr>> = self.hops.iter().map(addr).collect();
                let answered = hops.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
                hops.truncate(answered + 1);
                hops
            }
        };
        Trace { hops, reached }
    }
}

/// Every trace under way, by id.
#[derive(Default)]
pub struct Traces {
    active: HashMap<u32, Tracing>,
    next_id: u32,
}

impl Traces {
    /// Starts a trace of `endpoint` unless one is under way; its id.
    pub fn start(&mut self, endpoint: u32, target: IpAddr) -> Option<u32> {
        if self.active.values().any(|t| t.endpoint == endpoint) {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.active.insert(id, Tracing::new(endpoint, target));
        Some(id)
    }

    /// A trace the budget refused after all.
    pub fn cancel(&mut self, id: u32) {
        self.active.remove(&id);
    }

    pub fn get(&self, id: u32) -> Option<&Tracing> {
        self.active.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Tracing> {
        self.active.get_mut(&id)
    }

    /// Removes and returns trace `id` if every TTL has its answer.
    pub fn take_done(&mut self, id: u32) -> Option<Tracing> {
        if self.active.get(&id)?.done() {
            self.active.remove(&id)
        } else {
            None
        }
    }

    /// Renumbers endpoints after an inventory change; traces of endpoints not carried go.
    pub fn remap(&mut self, to: impl Fn(u32) -> Option<u32>) {
        self.active.retain(|_, t| match to(t.endpoint) {
            Some(e) => {
                t.endpoint = e;
                true
            }
            None => false,
        });
    }

    /// Forgets every trace (a stall: their requests are forgotten too).
    pub fn clear(&mut self) {
        self.active.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn traced(answers: &[Hop]) -> Trace {
        let mut t = Tracing::new(0, ip("10.201.0.2"));
        for ttl in 1..=MAX_HOPS {
            t.answer(ttl, answers.get(usize::from(ttl) - 1).copied().unwrap_or(Hop::Silent));
        }
        assert!(t.done());
        t.finish()
    }

    #[test]
    fn a_reached_trace_is_the_routers_before_the_endpoint() {
        let (a, b) = (ip("10.200.0.2"), ip("10.200.1.2"));
        let t = traced(&[
            Hop::Router(a),
            Hop::Silent,
            Hop::Router(b),
            Hop::Endpoint,
            Hop::Endpoint,
        ]);
        assert_eq!(t.hops, [Some(a), None, Some(b)]);
        assert!(t.reached);
    }

    #[test]
    fn an_unanswered_trace_ends_one_silent_hop_past_the_last_router() {
        let (a, b) = (ip("10.200.0.2"), ip("10.200.1.2"));
        let t = traced(&[Hop::Router(a), Hop::Router(b)]);
        assert_eq!((t.hops, t.reached), (vec![Some(a), Some(b), None], false));
        let nothing = traced(&[]);
        assert_eq!((nothing.hops, nothing.reached), (vec![None], false));
        // An unreachable router ends the path: the hops after it are its own answers again.
        let u = traced(&[Hop::Router(a), Hop::Unreachable(b), Hop::Unreachable(b)]);
        assert_eq!((u.hops, u.reached), (vec![Some(a), Some(b)], false));
    }

    #[test]
    fn requests_past_the_endpoint_are_not_worth_sending_and_duplicates_change_nothing() {
        let mut t = Tracing::new(0, ip("10.201.0.2"));
        t.answer(3, Hop::Endpoint);
        assert!(t.worth_sending(3));
        assert!(!t.worth_sending(4));
        t.answer(3, Hop::Router(ip("10.9.9.9")));
        t.answer(0, Hop::Endpoint);
        t.answer(200, Hop::Endpoint);
        assert!(!t.done());
        assert!(ttl_of(TRACE_FLAG | 16) == Some(16) && ttl_of(15).is_none());
    }

    #[test]
    fn one_trace_per_endpoint_at_a_time_and_remapping_follows_it() {
        let mut traces = Traces::default();
        let id = traces.start(4, ip("10.201.0.2")).expect("started");
        assert_eq!(traces.start(4, ip("10.201.0.2")), None);
        traces.remap(|e| (e == 4).then_some(1));
        assert_eq!(traces.get(id).map(|t| t.endpoint), Some(1));
        traces.remap(|_| None);
        assert!(traces.get(id).is_none());
    }
}
