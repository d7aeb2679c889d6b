//! A changed inventory or probe config, applied between two wake-ups.

use std::time::Instant;

use super::super::inflight::EMPTY;
use super::super::timeline;
use super::{Engine, Lane, Replacement, RoundState};

impl Engine {
    pub(super) fn replace(&mut self, r: Replacement) {
        let now = Instant::now();
        let packets = r.probe.packets.min(super::super::MAX_PACKETS_PER_ROUND) as u8;
        let same_rounds = r.probe.packets == self.probe.packets
            && r.probe.packet_spacing == self.probe.packet_spacing
            && r.probe.timeout == self.probe.timeout;
        for (lane, socket) in self.lanes.iter_mut().zip([r.new_sockets.v4, r.new_sockets.v6]) {
            if lane.is_none() {
                *lane = socket.map(Lane::new);
            }
        }
        // Old index → new index, for endpoints whose round in progress carries over.
        let mut old_to_new = vec![EMPTY; self.targets.len()];
        for (i, from) in r.carried_from.iter().enumerate() {
            if let Some(o) = *from
                && same_rounds
                && self.targets.get(o) == r.targets.get(i)
            {
                old_to_new[o] = i as u32;
            }
        }
        let n = r.targets.len();
        let (k, old_k) = (r.probe.max_round_packets() as usize, self.stride);
        let mut rounds = vec![RoundState::default(); n];
        let mut rtts = vec![f32::NAN; n * k];
        for (i, from) in r.carried_from.iter().enumerate() {
            let Some(o) = *from else { continue };
            if old_to_new[o] == i as u32 {
                rounds[i] = self.rounds[o];
                let kept = k.min(old_k);
                rtts[i * k..i * k + kept].copy_from_slice(&self.rtts[o * old_k..o * old_k + kept]);
            } else {
                // A new round starts at the next slot; its id must differ from the dropped one's.
                rounds[i].id = self.rounds[o].id.wrapping_add(1);
            }
        }
        for lane in self.lanes.iter_mut().flatten() {
            for entry in lane.flight.entries_mut() {
                entry.endpoint = old_to_new[entry.endpoint as usize];
            }
            if let Some(t) = lane.tracer.as_mut() {
                for entry in t.flight.entries_mut() {
                    entry.endpoint = old_to_new[entry.endpoint as usize];
                }
            }
        }
        let offsets = timeline::carry_offsets(&self.offsets, &r.carried_from, self.probe.interval, r.probe.interval);
        self.timeline = self.timeline.resume(
            &offsets,
            u32::from(packets),
            r.probe.interval,
            r.probe.packet_spacing,
            now,
        );
        self.offsets = offsets;
        self.targets = r.targets;
        self.rounds = rounds;
        self.rtts = rtts;
        self.stride = k;
        self.packets = packets;
        // Queued confirmation requests follow their endpoint's new index; those of endpoints
        // whose round was not carried go (their round went with it).
        self.confirms
            .remap(|old| Some(old_to_new[old as usize]).filter(|&i| i != EMPTY));
        // A trace follows its endpoint like its round; its requests in flight are matched by
        // the trace's id, which does not change.
        self.traces
            .remap(|old| Some(old_to_new[old as usize]).filter(|&i| i != EMPTY));
        self.confirms.set_rate(&r.probe, n);
        self.timeout = r.probe.timeout;
        self.probe = r.probe;
        (r.on_applied)(&r.carried_from);
    }
}
