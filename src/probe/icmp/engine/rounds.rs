//! The life of one round: opening it, sending its requests, finishing and reporting it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::inflight::InFlight;
use super::super::packet;
use super::super::send_batch::{SEND_BATCH, Tag};
use super::super::settings::MAX_IN_FLIGHT_PER_FAMILY;
use super::super::socket::Family;
use super::{Engine, RoundState, deadline_us, lane_index, wall_ns};
use crate::domain::{FinishedRound, Followup, RoundKind, RoundStats};

impl Engine {
    /// Whether `packet` is the next request of endpoint `e`'s open round of `kind` and `id`.
    pub(super) fn is_next(&self, e: usize, kind: RoundKind, packet: u8, id: u32) -> bool {
        let r = &self.rounds[e];
        r.open && r.kind == kind && r.id == id && r.sent == packet
    }

    /// Whether `e`'s open round has lasted longer than a confirmation round can.
    pub(super) fn overdue(&self, e: usize) -> bool {
        let limit = self.probe.confirm_span().max(self.probe.round_span()) + Duration::from_secs(1);
        wall_ns().saturating_sub(self.rounds[e].started_ns) > limit.as_nanos() as u64
    }

    pub(super) fn open_round(&mut self, e: usize, kind: RoundKind, planned: u8) {
        let r = &mut self.rounds[e];
        *r = RoundState {
            id: r.id.wrapping_add(1),
            sent: 0,
            pending: 0,
            open: true,
            kind,
            planned,
            started_ns: wall_ns(),
        };
        self.rtts[e * self.stride..(e + 1) * self.stride].fill(f32::NAN);
    }

    /// Sends request `packet` of `e`'s open round; a request that cannot be sent counts lost.
    /// Queues request `packet` of `e`'s open round in its socket's batch (sent at the end of
    /// the wake-up, see [`Engine::flush_sends`]); a request that cannot be queued counts lost.
    pub(super) fn send_request(&mut self, e: usize, packet: u8) {
        let Some(target) = self.targets[e] else {
            // Its address went away (a reload) with the round open: drop the round unreported.
            self.rounds[e].open = false;
            return;
        };
        let round_id = self.rounds[e].id;
        self.rounds[e].sent += 1;
        let li = lane_index(Family::of(&target));
        if self.lanes[li].as_ref().is_some_and(|l| l.batch.is_full()) {
            self.flush_lane(li);
        }
        let Some(lane) = self.lanes[li].as_mut() else {
            self.telemetry.send_errors.inc();
            self.finish_if_complete(e);
            return;
        };
        let seq = match lane.flight.next_seq() {
            Some(seq) if (lane.flight.span() as f64) < MAX_IN_FLIGHT_PER_FAMILY => seq,
            _ => {
                self.telemetry.send_errors.inc();
                self.finish_if_complete(e);
                return;
            }
        };
        let (family, kind, ident) = (lane.socket.family, lane.socket.kind, lane.ident);
        let Some(buf) = lane.batch.next_buffer() else {
            self.telemetry.send_errors.inc();
            self.finish_if_complete(e);
            return;
        };
        packet::build_request(buf, family, kind, ident, seq);
        lane.batch.push(
            target,
            Tag {
                endpoint: e as u32,
                seq,
            },
            None,
        );
        lane.flight.insert(InFlight {
            endpoint: e as u32,
            seq,
            packet,
            round: round_id,
            sent_ns: wall_ns(),
            deadline_us: deadline_us(self.epoch, Instant::now() + self.timeout),
        });
        self.rounds[e].pending += 1;
    }

    /// Sends what both sockets have queued.
    pub(super) fn flush_sends(&mut self) {
        self.flush_lane(0);
        self.flush_lane(1);
    }

    pub(super) fn flush_lane(&mut self, li: usize) {
        let Some(lane) = self.lanes[li].as_mut().filter(|l| !l.batch.is_empty()) else {
            return;
        };
        // A request's RTT runs from now, when its batch goes out: not from when it was queued,
        // which was before the rest of the wake-up was built and, for IPv6, before the IPv4
        // batch was sent; both would count as round-trip time.
        let now = wall_ns();
        for tag in lane.batch.tags() {
            lane.flight.set_sent(tag.seq, now);
        }
        let mut failed = [Tag::default(); SEND_BATCH];
        let (mut n, mut last_error) = (0, None);
        lane.batch.flush(&lane.socket, |tag, err| {
            failed[n] = tag;
            n += 1;
            last_error = Some(err);
        });
        if let Some(error) = last_error {
            tracing::debug!(failed = n, %error, "sending echo requests failed");
        }
        for tag in &failed[..n] {
            self.send_failed(li, *tag);
        }
    }

    /// A queued request the kernel refused: lost, like one without a reply.
    fn send_failed(&mut self, li: usize, tag: Tag) {
        let Some(entry) = self.lanes[li].as_mut().and_then(|l| l.flight.remove(tag.seq)) else {
            self.telemetry.send_errors.inc();
            return;
        };
        if let Some(ttl) = super::super::trace::ttl_of(entry.packet) {
            // Out of the packet counters, like every trace request.
            self.trace_silent(entry.round, ttl);
            return;
        }
        self.telemetry.send_errors.inc();
        let e = entry.endpoint as usize;
        let r = &mut self.rounds[e];
        if r.open && r.id == entry.round {
            r.pending -= 1;
            self.finish_if_complete(e);
        }
    }

    pub(super) fn finish_if_complete(&mut self, e: usize) {
        let r = self.rounds[e];
        if r.open && r.sent == r.planned && r.pending == 0 {
            self.finish(e);
        }
    }

    pub(super) fn finish(&mut self, e: usize) {
        self.rounds[e].open = false;
        let r = self.rounds[e];
        let rtts = &self.rtts[e * self.stride..e * self.stride + usize::from(r.sent)];
        let stats = RoundStats::from_rtts(rtts.iter().map(|r| (!r.is_nan()).then_some(f64::from(*r))));
        let (spacing, kind) = match r.kind {
            RoundKind::Regular => (self.probe.packet_spacing, RoundKind::Regular),
            RoundKind::Confirmation => (self.probe.confirm.spacing, RoundKind::Confirmation),
            RoundKind::Watch => (Duration::ZERO, RoundKind::Watch),
        };
        let finished = SystemTime::now();
        let round = FinishedRound {
            stats: &stats,
            rtts,
            kind,
            started: UNIX_EPOCH + Duration::from_nanos(r.started_ns),
            spacing,
            finished,
        };
        let wants = self.sink.round(e, &round);
        match wants {
            // A confirmation settles the question either way: it is never confirmed itself.
            Followup::Confirm if kind != RoundKind::Confirmation => self.ask_confirmation(e, r.id),
            Followup::ConfirmAndTrace if kind != RoundKind::Confirmation => {
                self.ask_confirmation(e, r.id);
                self.ask_trace(e);
            }
            Followup::Trace => self.ask_trace(e),
            Followup::WatchAndTrace => {
                if !self.probe.confirm.watch_spacing.is_zero() {
                    self.ask_watch(e, r.id, r.started_ns);
                }
                self.ask_trace(e);
            }
            Followup::Watch if !self.probe.confirm.watch_spacing.is_zero() => {
                self.ask_watch(e, r.id, r.started_ns);
            }
            _ => {}
        }
    }

    fn ask_confirmation(&mut self, e: usize, round: u32) {
        let packets = self.probe.confirm.packets as u8;
        if self
            .confirms
            .schedule(e as u32, round, packets, self.probe.confirm.spacing, Instant::now())
        {
            self.telemetry.confirmations.inc();
        } else if packets > 0 {
            self.telemetry.confirmations_refused.inc();
        }
    }

    /// The next watch request: one `watch_spacing` after the round that asked began, or now.
    fn ask_watch(&mut self, e: usize, round: u32, started_ns: u64) {
        let now = Instant::now();
        let due_ns = started_ns.saturating_add(self.probe.confirm.watch_spacing.as_nanos() as u64);
        let due = now + Duration::from_nanos(due_ns.saturating_sub(wall_ns()));
        if self.confirms.schedule_watch(e as u32, round, due, now) {
            self.telemetry.watches.inc();
        } else {
            self.telemetry.watches_refused.inc();
        }
    }
}
