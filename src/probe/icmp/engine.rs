//! The ICMP engine: one OS thread, one socket per address family, one paced timeline.
//!
//! Each wake-up it (1) drains both sockets in `recvmmsg` batches, (2) sends every packet that has
//! come due, (3) expires requests whose timeout passed, then sleeps until the next due packet or
//! deadline — but never wakes more often than every [`tick`], because a wake-up costs more CPU
//! than a send. Kernel receive timestamps keep RTTs exact however late a reply is read.
//!
//! Requests in flight live in a ring indexed by sequence number ([`super::inflight`]). A reply is
//! matched by (sequence, source address): two endpoints behind one NAT address never collide
//! because their requests carry different sequence numbers.
//!
//! Path traces (TTL-limited requests, `engine/trace.rs`) share the lanes but open no round.

use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::confirm::{ConfirmQueue, SlotKind};
use super::inflight::InFlightRing;
use super::packet::{self, Reply};
use super::send_batch::SendBatch;
use super::settings::ProbeConfig;
use super::socket::{Family, IcmpSocket, RecvBatch, SocketKind};
use super::stall::{Stall, stall_length};
pub use super::telemetry::EngineTelemetry;
use super::timeline::{Timeline, interleaved_offsets};
use super::trace::{self as path_trace, Traces};

mod replace;
mod rounds;
#[cfg(test)]
mod tests;
mod trace;
use crate::domain::path::Trace;
use crate::domain::{FinishedRound, Followup, RoundKind};

/// Requests sent together in one wake-up, at most (on average). Bursts much larger than this
/// queue in front of the endpoint (or the emulator) and show up as extra RTT: measured here,
/// 150-request bursts added 0.4 ms to a 5 ms RTT at 10,000 endpoints, 30-request ones did not.
const BURST: f64 = 30.0;

/// Shortest sleep between wake-ups: sends due within one tick go out together. Long enough to
/// batch (a wake-up costs more than a send), short enough that a request leaves well within 1 %
/// of the interval and bursts stay near [`BURST`] requests.
pub fn tick(probe: &ProbeConfig, endpoints: usize) -> Duration {
    let per_second = (endpoints as f64 * f64::from(probe.packets) / probe.interval.as_secs_f64()).max(1.0);
    let by_interval = probe.interval.as_secs_f64() / 200.0;
    let by_buffer = BURST / per_second;
    Duration::from_secs_f64(by_interval.min(by_buffer).clamp(0.002, 0.05))
}

/// Receives every finished round. Called on the engine thread: keep it short and never block.
pub trait RoundSink: Send + 'static {
    /// A finished round of `endpoint`; the answer may ask for a confirmation round.
    fn round(&mut self, endpoint: usize, round: &FinishedRound<'_>) -> Followup;

    /// The engine did not run from `stall.from` to `stall.to` (process stopped, machine
    /// suspended, starved of CPU): the rounds it had open were dropped, unreported.
    fn stall(&mut self, stall: &Stall) {
        let _ = stall;
    }

    /// A finished path trace of `endpoint` (asked through [`EngineController::trace`]).
    fn trace(&mut self, endpoint: usize, trace: &Trace) {
        let _ = (endpoint, trace);
    }
}

enum Command {
    Stop,
    Replace(Box<Replacement>),
    Trace(Vec<(usize, IpAddr)>),
}

/// Callback run on the engine thread with the carried-from map once a replacement is in force.
pub type OnApplied = Box<dyn FnOnce(&[Option<usize>]) + Send>;

/// The engine thread has stopped; the change was not applied.
#[derive(Debug, thiserror::Error)]
#[error("the probe engine has stopped")]
pub struct EngineStopped;

/// A changed inventory or probe config, applied on the engine thread between two wake-ups.
pub struct Replacement {
    /// The new inventory's addresses, by new endpoint index (`None`: not probed).
    pub targets: Vec<Option<IpAddr>>,
    /// For each new endpoint, its index in the current inventory if it is carried over (same
    /// id). A carried endpoint keeps its place on the timeline and, when its address and the
    /// round settings are unchanged, its round in progress.
    pub carried_from: Vec<Option<usize>>,
    pub probe: ProbeConfig,
    /// Sockets for address families the current inventory did not use.
    pub new_sockets: Sockets,
    /// Called on the engine thread once the new inventory is in force, before any round of it
    /// is reported: the place to switch the round sink's own endpoint table.
    pub on_applied: OnApplied,
}

/// A clonable way to send changes to a running engine.
#[derive(Clone)]
pub struct EngineController {
    commands: Sender<Command>,
}

impl EngineController {
    /// Hands the change to the engine; `Err` if the engine has stopped.
    pub fn replace(&self, r: Replacement) -> Result<(), EngineStopped> {
        self.commands
            .send(Command::Replace(Box::new(r)))
            .map_err(|_| EngineStopped)
    }

    /// Asks for a path trace of each endpoint (index and the address it is expected to have;
    /// TTL 1..=[`super::MAX_HOPS`]), reported through [`RoundSink::trace`]. Paced and budgeted
    /// like confirmations: a trace the budget cannot afford now, of an endpoint already being
    /// traced, or of one whose address changed since, is dropped unreported.
    pub fn trace(&self, endpoints: Vec<(usize, IpAddr)>) -> Result<(), EngineStopped> {
        self.commands.send(Command::Trace(endpoints)).map_err(|_| EngineStopped)
    }
}

/// Owner's side of a running engine.
pub struct EngineHandle {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    pub fn controller(&self) -> EngineController {
        EngineController {
            commands: self.commands.clone(),
        }
    }

    /// Stops the engine and waits for its thread; rounds still open are dropped.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// The ICMP sockets in use, one per family that the inventory needs.
pub struct Sockets {
    pub v4: Option<IcmpSocket>,
    pub v6: Option<IcmpSocket>,
}

/// Starts probing `targets` (index = endpoint index) on its own thread. An endpoint without an
/// address (a host name that does not resolve) keeps its place on the timeline but is sent
/// nothing and never reports a round.
pub fn start(
    targets: Vec<Option<IpAddr>>,
    probe: &ProbeConfig,
    sockets: Sockets,
    sink: Box<dyn RoundSink>,
    telemetry: EngineTelemetry,
) -> std::io::Result<EngineHandle> {
    let (tx, rx) = channel();
    let mut engine = Engine::new(targets, probe, sockets, sink, telemetry);
    let thread = std::thread::Builder::new()
        .name("icmp-engine".into())
        .spawn(move || engine.run(rx))?;
    Ok(EngineHandle {
        commands: tx,
        thread: Some(thread),
    })
}

/// Requests in flight on one socket.
struct Lane {
    socket: IcmpSocket,
    ident: u16,
    flight: InFlightRing,
    /// Requests built this wake-up, sent together at its end.
    batch: SendBatch,
    /// A ping-socket lane's trace requests go through a socket of their own (its error queue
    /// on); a raw lane's share `socket`, its identifier and its sequence numbers.
    tracer: Option<TraceSocket>,
}

struct TraceSocket {
    socket: IcmpSocket,
    flight: InFlightRing,
    batch: SendBatch,
}

impl Lane {
    fn new(socket: IcmpSocket) -> Lane {
        let tracer = if socket.kind == SocketKind::Dgram {
            super::socket::open_trace(socket.family)
                .map_err(|e| tracing::warn!(error = %e, "no trace socket: paths will not be traced"))
                .ok()
                .map(|socket| TraceSocket {
                    socket,
                    flight: InFlightRing::default(),
                    batch: SendBatch::default(),
                })
        } else {
            None
        };
        Lane {
            socket,
            ident: rand::random(),
            flight: InFlightRing::default(),
            batch: SendBatch::default(),
            tracer,
        }
    }
}

/// The round an endpoint is in.
#[derive(Clone, Copy, Default)]
struct RoundState {
    id: u32,
    sent: u8,
    pending: u8,
    open: bool,
    kind: RoundKind,
    /// Requests this round sends.
    planned: u8,
    /// When its first request left (ns since the Unix epoch).
    started_ns: u64,
}

struct Engine {
    targets: Vec<Option<IpAddr>>,
    /// Requests of a regular round.
    packets: u8,
    /// RTT slots per endpoint: room for a regular or a confirmation round.
    stride: usize,
    timeout: Duration,
    probe: ProbeConfig,
    offsets: Vec<Duration>,
    timeline: Timeline,
    lanes: [Option<Lane>; 2],
    rounds: Vec<RoundState>,
    /// `stride` RTTs per endpoint, seconds; NaN = none (yet).
    rtts: Vec<f32>,
    confirms: ConfirmQueue,
    traces: Traces,
    batch: RecvBatch,
    /// Origin of the engine's monotonic µs clock.
    epoch: Instant,
    sink: Box<dyn RoundSink>,
    telemetry: EngineTelemetry,
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `t` as µs since `epoch`, wrapping (see [`Engine::expired`]).
fn deadline_us(epoch: Instant, t: Instant) -> u32 {
    t.saturating_duration_since(epoch).as_micros() as u32
}

fn lane_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

impl Engine {
    fn new(
        targets: Vec<Option<IpAddr>>,
        probe: &ProbeConfig,
        sockets: Sockets,
        sink: Box<dyn RoundSink>,
        telemetry: EngineTelemetry,
    ) -> Engine {
        let now = Instant::now();
        let n = targets.len();
        let packets = probe.packets.min(super::MAX_PACKETS_PER_ROUND) as u8;
        let offsets = interleaved_offsets(n, probe.interval);
        let stride = probe.max_round_packets() as usize;
        let mut confirms = ConfirmQueue::default();
        confirms.set_rate(probe, n);
        Engine {
            timeline: Timeline::new(&offsets, u32::from(packets), probe.interval, probe.packet_spacing, now),
            offsets,
            probe: probe.clone(),
            targets,
            packets,
            stride,
            timeout: probe.timeout,
            lanes: [sockets.v4.map(Lane::new), sockets.v6.map(Lane::new)],
            rounds: vec![RoundState::default(); n],
            rtts: vec![f32::NAN; n * stride],
            confirms,
            traces: Traces::default(),
            batch: RecvBatch::new(),
            epoch: now,
            sink,
            telemetry,
        }
    }

    fn run(&mut self, commands: Receiver<Command>) {
        let mut last_wake = Instant::now();
        let mut last_wall = SystemTime::now();
        let mut planned = last_wake;
        loop {
            let now = Instant::now();
            let wall = SystemTime::now();
            if let Some(late) = stall_length(planned, now, last_wake, last_wall, wall) {
                self.recover_from_stall(last_wall, wall, now, late);
            }
            last_wall = wall;
            self.receive();
            self.send_due(now);
            self.expire(Instant::now());
            let in_flight: usize = self.lanes.iter().flatten().map(|lane| lane.flight.span()).sum();
            self.telemetry.in_flight.set(in_flight as i64);

            let wake = self.next_wake().max(last_wake + tick(&self.probe, self.targets.len()));
            last_wake = now;
            planned = wake;
            let sleep = wake.saturating_duration_since(Instant::now());
            match commands.recv_timeout(sleep) {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Command::Replace(r)) => {
                    // Settle what is due first, so the switch happens between two slots.
                    self.receive();
                    self.send_due(Instant::now());
                    self.replace(*r);
                }
                Ok(Command::Trace(endpoints)) => {
                    for (e, target) in endpoints {
                        self.ask_trace_of(e, target);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Forgets what the stall made unknowable: replies read now answer requests whose timeout
    /// passed while nobody watched, and the slots whose time passed are not sent in a burst
    /// (a burst would cut every round short and count its packets lost).
    fn recover_from_stall(&mut self, from: SystemTime, to: SystemTime, now: Instant, late: Duration) {
        self.discard_waiting_replies();
        for lane in self.lanes.iter_mut().flatten() {
            lane.flight.clear();
            if let Some(t) = lane.tracer.as_mut() {
                t.flight.clear();
            }
        }
        self.traces.clear();
        let mut dropped_rounds = 0;
        for round in &mut self.rounds {
            if round.open {
                round.open = false;
                dropped_rounds += 1;
            }
        }
        let skipped_slots = self.timeline.skip_to(now);
        self.confirms.clear();
        self.telemetry.stalls.inc();
        self.telemetry.stalled_seconds.inc_by(late.as_secs_f64());
        self.sink.stall(&Stall {
            from,
            to,
            dropped_rounds,
            skipped_slots,
        });
    }

    fn discard_waiting_replies(&mut self) {
        for lane in self.lanes.iter().flatten() {
            let tracer = lane.tracer.as_ref().map(|t| &t.socket);
            for socket in std::iter::once(&lane.socket).chain(tracer) {
                if socket.kind == SocketKind::Dgram {
                    super::errqueue::drain(socket, |_| {});
                }
                while let Ok(n) = self.batch.receive(socket, |_| {}) {
                    if n < super::socket::BATCH {
                        break;
                    }
                }
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(1);
        if let Some(due) = self.timeline.next_due() {
            wake = wake.min(due);
        }
        if let Some(due) = self.confirms.next_due() {
            wake = wake.min(due);
        }
        for lane in self.lanes.iter().flatten() {
            let tracer = lane.tracer.as_ref().map(|t| &t.flight);
            for flight in std::iter::once(&lane.flight).chain(tracer) {
                if let Some(deadline) = flight.oldest_deadline() {
                    wake = wake.min(self.instant_of(deadline));
                }
            }
        }
        wake
    }

    fn receive(&mut self) {
        for li in 0..2 {
            while let Some(lane) = self.lanes[li].as_ref() {
                let mut replies: [(Reply, u64); super::socket::BATCH] = [(Reply::Ignored, 0); super::socket::BATCH];
                let mut count = 0;
                let kind = lane.socket.kind;
                let telemetry = &self.telemetry;
                let read = self
                    .batch
                    .receive(&lane.socket, |d| match packet::parse(d.data, d.from, kind) {
                        Ok(reply) => {
                            replies[count] = (reply, d.received_ns);
                            count += 1;
                        }
                        Err(_) => telemetry.rejected_malformed.inc(),
                    });
                let read = match read {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the ICMP socket failed");
                        break;
                    }
                };
                for &(reply, received_ns) in &replies[..count] {
                    self.on_reply(li, reply, received_ns);
                }
                if read < super::socket::BATCH {
                    break;
                }
            }
        }
        self.receive_trace_sockets();
    }

    fn on_reply(&mut self, li: usize, reply: Reply, received_ns: u64) {
        let Some(lane) = self.lanes[li].as_mut() else {
            return;
        };
        let (addr, ident, seq, is_error) = match reply {
            Reply::Echo { from, ident, seq } => (from, ident, seq, false),
            Reply::Error { to, ident, seq, .. } => (to, ident, seq, true),
            Reply::Ignored => return,
        };
        // Ping sockets: the kernel already matched the identifier to this socket.
        if lane.socket.kind == SocketKind::Raw && ident != lane.ident {
            return;
        }
        let Some(&entry) = lane
            .flight
            .get(seq)
            .filter(|e| self.targets[e.endpoint as usize] == Some(addr))
        else {
            self.telemetry.rejected_unmatched.inc();
            return;
        };
        if let Some(ttl) = path_trace::ttl_of(entry.packet) {
            lane.flight.remove(seq);
            self.trace_answer(entry.round, ttl, reply);
            return;
        }
        let received_ns = if received_ns == 0 { wall_ns() } else { received_ns };
        let rtt_ns = received_ns.saturating_sub(entry.sent_ns);
        if is_error {
            self.telemetry.icmp_errors.inc();
        } else if rtt_ns > self.timeout.as_nanos() as u64 {
            // Arrived after its timeout: the expiry walk will count it lost.
            self.telemetry.rejected_late.inc();
            return;
        }
        lane.flight.remove(seq);
        let e = entry.endpoint as usize;
        let round = &mut self.rounds[e];
        if !round.open || round.id != entry.round {
            return;
        }
        if !is_error {
            self.rtts[e * self.stride + usize::from(entry.packet)] = rtt_ns as f32 / 1e9;
        }
        round.pending -= 1;
        self.finish_if_complete(e);
    }

    fn send_due(&mut self, now: Instant) {
        loop {
            // The earlier of the timeline's next slot and the next confirmation request.
            let confirm_first = match (self.timeline.next_due(), self.confirms.next_due()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(t), Some(c)) => c < t,
            };
            if confirm_first {
                let Some(slot) = self.confirms.pop_due(now) else { break };
                let e = slot.endpoint as usize;
                if slot.kind == SlotKind::Trace {
                    self.send_trace_request(slot.round, slot.packet);
                    continue;
                } else if slot.kind == SlotKind::Watch {
                    // Dropped when another round began since the one that asked for it.
                    if self.rounds[e].open || self.rounds[e].id != slot.round {
                        continue;
                    }
                    self.open_round(e, RoundKind::Watch, 1);
                } else if slot.packet == 0 {
                    // The regular round that asked for it may have been overtaken by the next.
                    if self.rounds[e].open || self.rounds[e].id != slot.round {
                        continue;
                    }
                    self.open_round(e, RoundKind::Confirmation, self.probe.confirm.packets as u8);
                } else if !self.is_next(e, RoundKind::Confirmation, slot.packet, slot.round.wrapping_add(1)) {
                    continue;
                }
                self.send_request(e, slot.packet);
                continue;
            }
            let Some((slot, due)) = self.timeline.pop_due(now) else {
                break;
            };
            self.telemetry
                .scheduler_lag
                .observe(now.saturating_duration_since(due).as_secs_f64());
            let e = slot.endpoint as usize;
            if self.targets[e].is_none() {
                continue; // no address: nothing is ever sent, no round opens
            }
            if slot.packet == 0 {
                match (self.rounds[e].open, self.rounds[e].kind) {
                    // A confirmation under way stands in for this regular round, unless it has
                    // outlived any confirmation (requests lost to a send error): report it.
                    (true, RoundKind::Confirmation) if !self.overdue(e) => continue,
                    (true, RoundKind::Confirmation) => self.finish(e),
                    // A watch gives way to the regular round, unreported: the round says more.
                    (true, RoundKind::Watch) => self.rounds[e].open = false,
                    // Cannot happen with a validated config (a round is shorter than the interval).
                    (true, RoundKind::Regular) => self.finish(e),
                    (false, _) => {}
                }
                self.open_round(e, RoundKind::Regular, self.packets);
            } else if !self.is_next(e, RoundKind::Regular, slot.packet, self.rounds[e].id) {
                continue; // a follow-up packet of a round that never started
            }
            self.send_request(e, slot.packet);
        }
        self.flush_sends();
        self.telemetry
            .cycles
            .inc_by(self.timeline.cycles() - self.telemetry.cycles.get());
    }

    fn expire(&mut self, now: Instant) {
        let now_us = self.mono_us(now);
        for li in 0..2 {
            while let Some(entry) = self.lanes[li].as_mut().and_then(|lane| lane.flight.pop_expired(now_us)) {
                if let Some(ttl) = path_trace::ttl_of(entry.packet) {
                    self.trace_silent(entry.round, ttl);
                    continue;
                }
                let e = entry.endpoint as usize;
                let round = &mut self.rounds[e];
                if round.open && round.id == entry.round {
                    round.pending -= 1;
                    self.finish_if_complete(e);
                }
            }
        }
        self.expire_trace_sockets(now_us);
    }

    /// µs since the engine's epoch, wrapping every 71 minutes (deadlines are seconds away).
    fn mono_us(&self, t: Instant) -> u32 {
        deadline_us(self.epoch, t)
    }

    fn instant_of(&self, deadline_us: u32) -> Instant {
        let now = Instant::now();
        let ahead = deadline_us.wrapping_sub(self.mono_us(now)) as i32;
        now + Duration::from_micros(ahead.max(0) as u64)
    }
}
