//! The life of one round: opening it, sending its requests, finishing and reporting it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::inflight::InFlight;
use super::super::packet::{self, REQUEST_LEN};
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
    pub(super) fn send_request(&mut self, e: usize, packet: u8, buf: &mut [u8; REQUEST_LEN]) {
        let Some(target) = self.targets[e] else {
            // Its address went away (a reload) with the round open: drop the round unreported.
            self.rounds[e].open = false;
            return;
        };
        let round_id = self.rounds[e].id;
        self.rounds[e].sent += 1;
        let Some(lane) = self.lanes[lane_index(Family::of(&target))].as_mut() else {
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
        packet::build_request(buf, lane.socket.family, lane.socket.kind, lane.ident, seq);
        let sent_ns = wall_ns();
        match lane.socket.send_to(buf, target) {
            Ok(_) => {
                lane.flight.insert(InFlight {
                    endpoint: e as u32,
                    seq,
                    packet,
                    round: round_id,
                    sent_ns,
                    deadline_us: deadline_us(self.epoch, Instant::now() + self.timeout),
                });
                self.rounds[e].pending += 1;
            }
            Err(err) => {
                self.telemetry.send_errors.inc();
                tracing::debug!(endpoint = e, %target, error = %err, "sending an echo request failed");
                self.finish_if_complete(e);
            }
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
        // Only a regular round is confirmed: a confirmation settles the question either way.
        if wants == Followup::Confirm && kind == RoundKind::Regular {
            let packets = self.probe.confirm.packets as u8;
            if self
                .confirms
                .schedule(e as u32, r.id, packets, self.probe.confirm.spacing, Instant::now())
            {
                self.telemetry.confirmations.inc();
            } else if packets > 0 {
                self.telemetry.confirmations_refused.inc();
            }
        }
    }
}
