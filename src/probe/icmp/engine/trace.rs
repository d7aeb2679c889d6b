//! Path traces on the engine's sockets: asked through [`super::EngineController::trace`],
//! paced and budgeted by the confirmation queue, one request per TTL with the TTL set per
//! packet, answered by routers (Time Exceeded, Unreachable) and at last by the endpoint.
//!
//! A raw lane sends them in its own batch with its identifier (the routers' errors arrive on
//! the raw socket as packets quoting them). A ping-socket lane sends them on its trace socket,
//! whose errors come through the error queue; a queued error fails that socket's next send
//! once (see [`super::super::errqueue`]), so the queue is drained before each send and a
//! failed send is tried once more.

use std::time::Instant;

use super::super::errqueue;
use super::super::inflight::InFlight;
use super::super::packet::{self, Reply};
use super::super::send_batch::Tag;
use super::super::settings::MAX_IN_FLIGHT_PER_FAMILY;
use super::super::socket::{BATCH, Family, SocketKind};
use super::super::trace::{Hop, MAX_HOPS, TRACE_FLAG, TRACE_SPACING, ttl_of};
use super::{Engine, deadline_us, lane_index, wall_ns};

impl Engine {
    /// Queues a trace of endpoint `e` if the budget allows it now.
    pub(super) fn ask_trace(&mut self, e: usize) {
        let Some(Some(target)) = self.targets.get(e).copied() else {
            return;
        };
        self.ask_trace_to(e, target);
    }

    /// Queues a trace of endpoint `e` when it still has the address `target` (a request from
    /// outside the engine thread may predate an inventory change).
    pub(super) fn ask_trace_of(&mut self, e: usize, target: std::net::IpAddr) {
        if self.targets.get(e).copied().flatten() == Some(target) {
            self.ask_trace_to(e, target);
        }
    }

    fn ask_trace_to(&mut self, e: usize, target: std::net::IpAddr) {
        let li = lane_index(Family::of(&target));
        let traceable = self.lanes[li]
            .as_ref()
            .is_some_and(|l| l.socket.kind == SocketKind::Raw || l.tracer.is_some());
        if !traceable {
            self.telemetry.traces_refused.inc();
            return;
        }
        let Some(id) = self.traces.start(e as u32, target) else {
            return; // already under way
        };
        if !self
            .confirms
            .schedule_trace(e as u32, id, MAX_HOPS, TRACE_SPACING, Instant::now())
        {
            self.traces.cancel(id);
            self.telemetry.traces_refused.inc();
            tracing::debug!(endpoint = e, "path trace refused: the confirmation budget is spent");
        } else {
            self.telemetry.traces.inc();
        }
    }

    /// Sends the request with TTL `ttl` of trace `id`.
    pub(super) fn send_trace_request(&mut self, id: u32, ttl: u8) {
        let Some(t) = self.traces.get(id) else {
            return; // dropped since (a stall, a reload)
        };
        if !t.worth_sending(ttl) {
            // Reserved when the trace was scheduled, never sent: back to the budget.
            self.confirms.refund(1.0);
            self.trace_silent(id, ttl);
            return;
        }
        let (e, target) = (t.endpoint, t.target);
        let li = lane_index(Family::of(&target));
        match self.lanes[li].as_ref().map(|l| l.tracer.is_some()) {
            Some(false) => self.queue_raw_trace(li, e, id, ttl),
            Some(true) => self.send_dgram_trace(li, e, id, ttl),
            None => self.trace_silent(id, ttl),
        }
    }

    fn trace_entry(&self, e: u32, id: u32, ttl: u8, seq: u16) -> InFlight {
        InFlight {
            endpoint: e,
            round: id,
            seq,
            packet: TRACE_FLAG | ttl,
            sent_ns: wall_ns(),
            deadline_us: deadline_us(self.epoch, Instant::now() + self.timeout),
        }
    }

    /// Into the raw lane's batch, beside the regular requests, with the lane's identifier.
    fn queue_raw_trace(&mut self, li: usize, e: u32, id: u32, ttl: u8) {
        let Some(target) = self.traces.get(id).map(|t| t.target) else {
            return;
        };
        if self.lanes[li].as_ref().is_some_and(|l| l.batch.is_full()) {
            self.flush_lane(li);
        }
        let Some(lane) = self.lanes[li].as_mut() else {
            return;
        };
        let seq = match lane.flight.next_seq() {
            Some(seq) if (lane.flight.span() as f64) < MAX_IN_FLIGHT_PER_FAMILY => seq,
            _ => return self.trace_silent(id, ttl),
        };
        let (family, ident) = (lane.socket.family, lane.ident);
        let Some(buf) = lane.batch.next_buffer() else {
            return self.trace_silent(id, ttl);
        };
        packet::build_trace_request(buf, family, SocketKind::Raw, ident, seq);
        lane.batch.push(target, Tag { endpoint: e, seq }, Some(ttl));
        self.telemetry.trace_requests.inc();
        let entry = self.trace_entry(e, id, ttl, seq);
        if let Some(lane) = self.lanes[li].as_mut() {
            lane.flight.insert(entry);
        }
    }

    /// Out through the lane's trace socket now, after draining its error queue.
    fn send_dgram_trace(&mut self, li: usize, e: u32, id: u32, ttl: u8) {
        let Some(target) = self.traces.get(id).map(|t| t.target) else {
            return;
        };
        for attempt in 0..2 {
            self.drain_trace_errors(li);
            let mut entry = self.trace_entry(e, id, ttl, 0);
            let Some(t) = self.lanes[li].as_mut().and_then(|l| l.tracer.as_mut()) else {
                return self.trace_silent(id, ttl);
            };
            let Some(seq) = t.flight.next_seq() else {
                return self.trace_silent(id, ttl);
            };
            let Some(buf) = t.batch.next_buffer() else {
                return self.trace_silent(id, ttl);
            };
            packet::build_trace_request(buf, t.socket.family, SocketKind::Dgram, 0, seq);
            t.batch.push(target, Tag { endpoint: e, seq }, Some(ttl));
            let mut error = None;
            t.batch.flush(&t.socket, |_, err| error = Some(err));
            let Some(error) = error else {
                entry.seq = seq;
                t.flight.insert(entry);
                self.telemetry.trace_requests.inc();
                return;
            };
            if attempt == 1 {
                tracing::debug!(%error, ttl, "sending a trace request failed");
                self.trace_silent(id, ttl);
            }
        }
    }

    /// Reads the errors queued on each trace socket, then its echo replies.
    pub(super) fn receive_trace_sockets(&mut self) {
        for li in 0..2 {
            if self.lanes[li].as_ref().is_none_or(|l| l.tracer.is_none()) {
                continue;
            }
            self.drain_trace_errors(li);
            for _ in 0..64 {
                let Some(t) = self.lanes[li].as_ref().and_then(|l| l.tracer.as_ref()) else {
                    break;
                };
                let mut replies = Vec::new();
                let telemetry = &self.telemetry;
                let read = self
                    .batch
                    .receive(&t.socket, |d| match packet::parse(d.data, d.from, SocketKind::Dgram) {
                        Ok(reply) => replies.push(reply),
                        Err(_) => telemetry.rejected_malformed.inc(),
                    });
                for reply in replies {
                    self.trace_socket_reply(li, reply);
                }
                match read {
                    Ok(n) if n == BATCH => {}
                    Ok(_) => break,
                    // An error that arrived since: the pending error failed this read.
                    Err(_) => self.drain_trace_errors(li),
                }
            }
        }
    }

    fn drain_trace_errors(&mut self, li: usize) {
        let mut got = Vec::new();
        if let Some(t) = self.lanes[li].as_ref().and_then(|l| l.tracer.as_ref()) {
            errqueue::drain(&t.socket, |r| got.push(r));
        }
        for reply in got {
            match reply {
                Some(reply) => self.trace_socket_reply(li, reply),
                None => self.telemetry.rejected_malformed.inc(),
            }
        }
    }

    /// An answer read from a trace socket: it must quote a trace request in flight to the
    /// endpoint it was sent to (the kernel already matched the identifier).
    fn trace_socket_reply(&mut self, li: usize, reply: Reply) {
        let (addr, seq) = match reply {
            Reply::Echo { from, seq, .. } => (from, seq),
            Reply::Error { to, seq, .. } => (to, seq),
            Reply::Ignored => return,
        };
        let targets = &self.targets;
        let entry = self.lanes[li].as_mut().and_then(|l| l.tracer.as_mut()).and_then(|t| {
            let entry = *t.flight.get(seq)?;
            (targets.get(entry.endpoint as usize) == Some(&Some(addr))).then(|| t.flight.remove(seq))?
        });
        match entry.and_then(|e| Some((e.round, ttl_of(e.packet)?))) {
            Some((id, ttl)) => self.trace_answer(id, ttl, reply),
            None => self.telemetry.rejected_unmatched.inc(),
        }
    }

    /// Records what answered TTL `ttl` of trace `id`; reports the trace once it is complete.
    pub(super) fn trace_answer(&mut self, id: u32, ttl: u8, reply: Reply) {
        let hop = match reply {
            Reply::Echo { .. } => Hop::Endpoint,
            Reply::Error {
                from,
                time_exceeded: true,
                ..
            } => Hop::Router(from),
            Reply::Error { from, .. } => Hop::Unreachable(from),
            Reply::Ignored => Hop::Silent,
        };
        self.trace_hop(id, ttl, hop);
    }

    /// Nothing came back for TTL `ttl` of trace `id` (timed out, or never sent).
    pub(super) fn trace_silent(&mut self, id: u32, ttl: u8) {
        self.trace_hop(id, ttl, Hop::Silent);
    }

    fn trace_hop(&mut self, id: u32, ttl: u8, hop: Hop) {
        if let Some(t) = self.traces.get_mut(id) {
            t.answer(ttl, hop);
        }
        if let Some(done) = self.traces.take_done(id) {
            let trace = done.finish();
            self.sink.trace(done.endpoint as usize, &trace);
        }
    }

    /// Trace requests on the trace sockets whose timeout passed: silent hops.
    pub(super) fn expire_trace_sockets(&mut self, now_us: u32) {
        for li in 0..2 {
            while let Some(entry) = self.lanes[li]
                .as_mut()
                .and_then(|l| l.tracer.as_mut())
                .and_then(|t| t.flight.pop_expired(now_us))
            {
                if let Some(ttl) = ttl_of(entry.packet) {
                    self.trace_silent(entry.round, ttl);
                }
            }
        }
    }
}
