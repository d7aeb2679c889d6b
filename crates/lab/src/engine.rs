//! The emulator thread: one OS thread owning the TUN device, a delay queue and all
//! per-endpoint state.
//!
//! Why one thread and poll(2): at 30 kpps the work per packet is tiny; what matters is
//! waking up on time. A single thread with `ppoll` (nanosecond timeout) and 1 ns timer
//! slack wakes within tens of microseconds of the next due reply without locks or
//! cross-thread hand-offs. Replies are built as soon as the request is read and parked in
//! a binary heap keyed by due time, so each packet gets exactly its own delay regardless
//! of arrival order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use nix::sys::eventfd::EventFd;
use nix::sys::time::TimeSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tun_rs::SyncDevice;

use crate::index::AddrIndex;
use crate::packet::{self, Kind, Parsed, TcpAction};
use crate::path::{Network, Verdict};
use crate::scenario::{Decision, Profile, SipMode};
use crate::shared::{Shared, bump};
use crate::sip;
use crate::truth::{EpStats, StopLine, TruthWriter};
use crate::{EmulatedEndpoint, LabError, LabStats};

/// Below this remaining wait we poll the device without sleeping: a sleep this short
/// would overshoot by more than it saves.
const SPIN_NS: u64 = 10_000;
/// Longest sleep, so stop requests and outage bookkeeping are never starved.
const MAX_SLEEP_NS: u64 = 50_000_000;
/// Packets read per wakeup before due replies are flushed again.
const READ_BATCH: usize = 64;
/// Truth lines written per loop iteration, so a flap affecting 100k endpoints does not
/// stall replies for tens of milliseconds.
const TRUTH_LINES_PER_TICK: usize = 256;
/// A reply written more than this after its due time counts as "late" in `LabStats`.
const LATE_THRESHOLD_NS: u64 = 1_000_000;
/// Read buffer: larger than any MTU we configure.
const READ_BUF: usize = 65_536;

/// Which per-endpoint counter a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Echo,
    Sip,
    Tcp,
    /// A router's ICMP Time Exceeded for a request to the endpoint.
    TimeExceeded,
}

/// A built reply waiting for its due time. Buffers are recycled through a free list.
struct Slot {
    buf: Vec<u8>,
    ep: u32,
    recv_ns: u64,
    kind: ReqKind,
    /// The router answering, for `ReqKind::TimeExceeded`.
    router: u32,
}

/// A window occurrence still to be reported in the truth file.
struct PendingWindow {
    profile: u32,
    kind: &'static str,
    start: u64,
    end: u64,
    open: bool,
    cursor: usize,
}

/// (end ns, start ns, profile index, window index, occurrence k) of a window occurrence.
type WindowKey = (u64, u64, u32, u16, u64);

pub(crate) struct EngineConfig {
    pub endpoints: Vec<EmulatedEndpoint>,
    pub profiles: Vec<Profile>,
    pub ep_profile: Vec<u32>,
    pub seed: u64,
    pub sip_port: u16,
    pub open_tcp_ports: Vec<u16>,
    pub t0: Instant,
    pub wall0_ns: u64,
    pub truth: TruthWriter,
    pub net: Network,
}

pub(crate) struct Engine {
    dev: SyncDevice,
    wake: Arc<EventFd>,
    shared: Arc<Shared>,
    endpoints: Vec<EmulatedEndpoint>,
    profiles: Vec<Profile>,
    ep_profile: Vec<u32>,
    index: AddrIndex,
    stats: Vec<EpStats>,
    rng: SmallRng,
    t0: Instant,
    wall0_ns: u64,
    sip_port: u16,
    open_tcp: Vec<u64>,
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    seq: u64,
    scratch: Vec<u8>,
    truth: TruthWriter,
    eps_by_profile: Vec<Vec<u32>>,
    /// Next occurrence of every scenario window, soonest end first.
    windows: BinaryHeap<Reverse<WindowKey>>,
    pending: VecDeque<PendingWindow>,
    /// Routers and the monitor's uplink between the prober and the endpoints.
    net: Network,
}

impl Engine {
    pub(crate) fn new(dev: SyncDevice, wake: Arc<EventFd>, shared: Arc<Shared>, cfg: EngineConfig) -> Engine {
        let index = AddrIndex::new(cfg.endpoints.iter().map(|e| &e.addr));
        let mut open_tcp = vec![0u64; 1024];
        for p in cfg.open_tcp_ports {
            open_tcp[usize::from(p) / 64] |= 1 << (p % 64);
        }
        let mut eps_by_profile = vec![Vec::new(); cfg.profiles.len()];
        for (i, &p) in cfg.ep_profile.iter().enumerate() {
            eps_by_profile[p as usize].push(i as u32);
        }
        let mut windows = BinaryHeap::new();
        if cfg.truth.enabled() {
            for (pi, prof) in cfg.profiles.iter().enumerate() {
                for (wi, w) in prof.windows.iter().enumerate() {
                    if let Some((s, e)) = w.occurrence(0) {
                        windows.push(Reverse((e, s, pi as u32, wi as u16, 0)));
                    }
                }
            }
        }
        let n = cfg.endpoints.len();
        Engine {
            dev,
            wake,
            shared,
            endpoints: cfg.endpoints,
            profiles: cfg.profiles,
            ep_profile: cfg.ep_profile,
            index,
            stats: vec![EpStats::default(); n],
            rng: SmallRng::seed_from_u64(cfg.seed),
            t0: cfg.t0,
            wall0_ns: cfg.wall0_ns,
            sip_port: cfg.sip_port,
            open_tcp,
            heap: BinaryHeap::with_capacity(4096),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            scratch: Vec::with_capacity(2048),
            truth: cfg.truth,
            eps_by_profile,
            windows,
            pending: VecDeque::new(),
            net: cfg.net,
        }
    }

    #[inline]
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Runs until `Shared::stop` is set; then writes the final truth lines. Dropping the
    /// engine closes the TUN fd, which removes the (non-persistent) device and its routes.
    pub(crate) fn run(mut self) -> Result<LabStats, LabError> {
        if let Err(e) = nix::sys::prctl::set_timerslack(1) {
            tracing::warn!(error = %e, "PR_SET_TIMERSLACK failed; wakeups may be up to 50 µs late");
        }
        self.dev.set_nonblocking(true).map_err(LabError::Device)?;
        self.truth.start(self.wall0_ns, self.endpoints.len());
        let mut rbuf = vec![0u8; READ_BUF];
        let mut last_cpu = 0u64;
        let result = loop {
            if self.shared.stop.load(Ordering::Acquire) {
                break Ok(());
            }
            let now = self.now_ns();
            self.flush_due();
            self.truth_tick(now);
            if now.saturating_sub(last_cpu) > 100_000_000 {
                last_cpu = now;
                self.publish_cpu();
            }
            let next_due = self.heap.peek().map(|Reverse((d, _, _))| *d);
            let next_window = self.windows.peek().map(|Reverse((e, ..))| *e);
            let mut wait = MAX_SLEEP_NS;
            for t in [next_due, next_window].into_iter().flatten() {
                wait = wait.min(t.saturating_sub(self.now_ns()));
            }
            if !self.pending.is_empty() {
                wait = 0;
            }
            if wait > SPIN_NS {
                let fd = self.dev.as_fd();
                let mut fds = [
                    PollFd::new(fd, PollFlags::POLLIN),
                    PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                ];
                match nix::poll::ppoll(&mut fds, Some(TimeSpec::from(Duration::from_nanos(wait))), None) {
                    Ok(0) => continue,
                    Ok(_) => {
                        let bad = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
                        if fds[0].revents().is_some_and(|r| r.intersects(bad)) {
                            break Err(LabError::Device(io::Error::other("TUN device error/hangup")));
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => break Err(LabError::Device(e.into())),
                }
            }
            if let Err(e) = self.read_batch(&mut rbuf) {
                break Err(LabError::Device(e));
            }
        };
        self.finish(result)
    }

    fn publish_cpu(&self) {
        if let Ok(ts) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
            let ns = ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64;
            self.shared.cpu_ns.store(ns, Ordering::Relaxed);
        }
    }

    /// Reads up to `READ_BATCH` packets without blocking and handles each one.
    fn read_batch(&mut self, rbuf: &mut [u8]) -> io::Result<()> {
        for _ in 0..READ_BATCH {
            match self.dev.recv(rbuf) {
                Ok(n) => {
                    let now = self.now_ns();
                    self.handle(&rbuf[..n.min(rbuf.len())], now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn alloc_slot(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    buf: Vec::with_capacity(1600),
                    ep: 0,
                    recv_ns: 0,
                    kind: ReqKind::Echo,
                    router: 0,
                });
                (self.slots.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn tcp_open(&self, port: u16) -> bool {
        self.open_tcp[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Classifies one packet, applies the endpoint's profile and queues the reply.
    fn handle(&mut self, pkt: &[u8], now: u64) {
        let sh = Arc::clone(&self.shared);
        bump(&sh.packets_in);
        let Ok(p) = packet::parse(pkt) else {
            bump(&sh.malformed);
            return;
        };
        let Some(ep) = self.index.get(p.dst) else {
            bump(&sh.unknown_destination);
            return;
        };
        let epu = ep as usize;
        // Classify first (cheap, no RNG) so ignored traffic does not consume randomness.
        let (kind, sip_req, tcp_action) = match p.kind {
            Kind::Echo { .. } => (ReqKind::Echo, None, TcpAction::Ignore),
            Kind::Udp { dport, payload, .. } if dport == self.sip_port => match sip::parse_options(payload) {
                Ok(r) => (ReqKind::Sip, Some(r), TcpAction::Ignore),
                Err(sip::Reject::Malformed) => {
                    bump(&sh.malformed);
                    return;
                }
                Err(sip::Reject::NotOptions) => {
                    bump(&sh.ignored);
                    return;
                }
            },
            Kind::Tcp(t) => match packet::tcp_action(&t, self.tcp_open(t.dport)) {
                TcpAction::Ignore => {
                    bump(&sh.ignored);
                    return;
                }
                a => (ReqKind::Tcp, None, a),
            },
            Kind::Udp { .. } | Kind::Other => {
                bump(&sh.ignored);
                return;
            }
        };
        let verdict = if self.net.active() {
            self.net.walk(ep, p.ttl, now, &mut self.rng)
        } else {
            Verdict::Reach
        };
        let profile = &self.profiles[self.ep_profile[epu] as usize];
        let sip_mode = profile.sip;
        let st = &mut self.stats[epu];
        match kind {
            ReqKind::Echo => st.echo_requests += 1,
            ReqKind::Sip => st.sip_requests += 1,
            ReqKind::Tcp => st.tcp_requests += 1,
            ReqKind::TimeExceeded => {}
        }
        match verdict {
            Verdict::Reach => {}
            Verdict::MonitorDown | Verdict::RouterDown(_) => {
                st.dropped_path += 1;
                bump(&sh.dropped_path);
                return;
            }
            Verdict::Expired { router, answer } => {
                st.expired += 1;
                bump(&sh.expired);
                if let Some(delay_ns) = answer {
                    self.queue_time_exceeded(pkt, &p, ep, router, now, delay_ns);
                }
                return;
            }
        }
        let delay_ns = match profile.decide(now, &mut self.rng) {
            Decision::Outage => {
                st.dropped_outage += 1;
                bump(&sh.dropped_outage);
                return;
            }
            Decision::Loss => {
                st.dropped_loss += 1;
                bump(&sh.dropped_loss);
                return;
            }
            Decision::Reply { delay_ns } => delay_ns,
        };
        if kind == ReqKind::Sip && sip_mode == SipMode::Silent {
            st.dropped_silent += 1;
            bump(&sh.sip_silent);
            return;
        }
        let isn: u32 = self.rng.random();
        let slot = self.alloc_slot();
        let mut buf = std::mem::take(&mut self.slots[slot as usize].buf);
        let built = match (p.kind, sip_req) {
            (Kind::Echo { id, seq, payload }, _) => packet::build_echo_reply(&p, id, seq, payload, &mut buf),
            (Kind::Udp { sport, dport, .. }, Some(req)) => {
                let status = if sip_mode == SipMode::Unavailable503 {
                    sip::Status::Unavailable503
                } else {
                    sip::Status::Ok200
                };
                packet::build_sip_reply(&p, sport, dport, &req, status, ep, &mut self.scratch, &mut buf)
            }
            (Kind::Tcp(t), _) => packet::build_tcp_reply(&p, &t, tcp_action, isn, &mut buf),
            _ => false,
        };
        self.enqueue(slot, buf, built, (ep, kind, 0), now, delay_ns);
    }

    /// Builds router `router`'s Time Exceeded for request `raw` and queues it.
    fn queue_time_exceeded(&mut self, raw: &[u8], p: &Parsed<'_>, ep: u32, router: u32, now: u64, delay_ns: u64) {
        let slot = self.alloc_slot();
        let mut buf = std::mem::take(&mut self.slots[slot as usize].buf);
        let from = self.net.routers[router as usize].addr;
        let built = packet::build_time_exceeded(raw, p, from, &mut self.scratch, &mut buf);
        self.enqueue(slot, buf, built, (ep, ReqKind::TimeExceeded, router), now, delay_ns);
    }

    /// Parks a built reply in `slot` until `now + delay_ns`; frees the slot if not `built`.
    fn enqueue(
        &mut self,
        slot: u32,
        buf: Vec<u8>,
        built: bool,
        (ep, kind, router): (u32, ReqKind, u32),
        now: u64,
        delay_ns: u64,
    ) {
        let s = &mut self.slots[slot as usize];
        s.buf = buf;
        if !built {
            self.free.push(slot);
            bump(&self.shared.malformed);
            return;
        }
        s.ep = ep;
        s.recv_ns = now;
        s.kind = kind;
        s.router = router;
        self.seq += 1;
        self.heap.push(Reverse((now + delay_ns, self.seq, slot)));
        self.shared.queued.store(self.heap.len() as u64, Ordering::Relaxed);
    }

    /// Writes every reply whose due time has passed, oldest first.
    fn flush_due(&mut self) {
        let sh = Arc::clone(&self.shared);
        let mut now = self.now_ns();
        while let Some(&Reverse((due, _, slot))) = self.heap.peek() {
            if due > now {
                now = self.now_ns();
                if due > now {
                    break;
                }
            }
            self.heap.pop();
            let s = &self.slots[slot as usize];
            let write_ns = self.now_ns();
            match self.dev.send(&s.buf) {
                Ok(_) => {
                    let late = write_ns.saturating_sub(due);
                    sh.late_hist.record(late);
                    if late > LATE_THRESHOLD_NS {
                        bump(&sh.late);
                    }
                    let (ep, kind, recv_ns) = (s.ep as usize, s.kind, s.recv_ns);
                    let st = &mut self.stats[ep];
                    match kind {
                        ReqKind::Echo => st.echo_replied += 1,
                        ReqKind::Sip => st.sip_replied += 1,
                        ReqKind::Tcp => st.tcp_replied += 1,
                        ReqKind::TimeExceeded => {
                            st.time_exceeded += 1;
                            self.net.hops[s.router as usize].time_exceeded += 1;
                            bump(&sh.time_exceeded);
                            self.free.push(slot);
                            continue;
                        }
                    }
                    bump(&sh.replied);
                    st.record_delay(write_ns.saturating_sub(recv_ns) as f64 / 1e6, &mut self.rng);
                }
                Err(e) => {
                    bump(&sh.write_errors);
                    tracing::debug!(error = %e, "TUN write failed");
                }
            }
            self.free.push(slot);
        }
        sh.queued.store(self.heap.len() as u64, Ordering::Relaxed);
    }

    /// Moves ended window occurrences to the pending list and writes a bounded number of
    /// pending truth lines.
    fn truth_tick(&mut self, now: u64) {
        while let Some(&Reverse((end, start, p, w, k))) = self.windows.peek() {
            if end > now {
                break;
            }
            self.windows.pop();
            let window = self.profiles[p as usize].windows[w as usize];
            self.pending.push_back(PendingWindow {
                profile: p,
                kind: if window.is_degrade() { "degrade" } else { "outage" },
                start,
                end,
                open: false,
                cursor: 0,
            });
            if let Some((s, e)) = window.occurrence(k + 1) {
                self.windows.push(Reverse((e, s, p, w, k + 1)));
            }
        }
        self.drain_pending(TRUTH_LINES_PER_TICK);
    }

    fn drain_pending(&mut self, mut budget: usize) {
        while budget > 0 {
            let Some(pw) = self.pending.front_mut() else {
                return;
            };
            let eps = &self.eps_by_profile[pw.profile as usize];
            while budget > 0 && pw.cursor < eps.len() {
                let id = &self.endpoints[eps[pw.cursor] as usize].id;
                self.truth
                    .window(pw.kind, id, self.wall0_ns + pw.start, self.wall0_ns + pw.end, pw.open);
                pw.cursor += 1;
                budget -= 1;
            }
            if pw.cursor >= eps.len() {
                self.pending.pop_front();
            }
        }
    }

    /// Final truth lines: ended and still-open windows, per-endpoint summaries, stop line.
    fn finish(mut self, result: Result<(), LabError>) -> Result<LabStats, LabError> {
        let now = self.now_ns();
        self.publish_cpu();
        let abandoned = self.heap.len();
        if abandoned > 0 {
            tracing::debug!(abandoned, "replies still queued at stop were not sent");
        }
        if self.truth.enabled() {
            self.truth_tick(now);
            self.drain_pending(usize::MAX);
            while let Some(Reverse((_end, start, p, w, _))) = self.windows.pop() {
                if start < now {
                    let window = self.profiles[p as usize].windows[w as usize];
                    self.pending.push_back(PendingWindow {
                        profile: p,
                        kind: if window.is_degrade() { "degrade" } else { "outage" },
                        start,
                        end: now,
                        open: true,
                        cursor: 0,
                    });
                }
            }
            for (pi, prof) in self.profiles.iter().enumerate() {
                if prof.never {
                    self.pending.push_back(PendingWindow {
                        profile: pi as u32,
                        kind: "outage",
                        start: 0,
                        end: now,
                        open: true,
                        cursor: 0,
                    });
                }
            }
            self.drain_pending(usize::MAX);
            self.truth.network(&self.net, self.wall0_ns, now, self.endpoints.len());
            let mut path = Vec::new();
            for (i, st) in self.stats.iter_mut().enumerate() {
                if st.saw_traffic() {
                    path.clear();
                    path.extend(
                        self.net
                            .path(i as u32)
                            .iter()
                            .map(|&r| self.net.routers[r as usize].addr),
                    );
                    self.truth.endpoint(&self.endpoints[i].id, st, &path);
                }
            }
        }
        let snap = self.shared.snapshot();
        let stop = StopLine {
            kind: "stop",
            unix_ns: self.wall0_ns + now,
            late_p50_us: snap.late_p50_us,
            late_p99_us: snap.late_p99_us,
            late_max_us: snap.late_max_us,
            packets_in: snap.packets_in,
            replied: snap.replied,
            dropped_loss: snap.dropped_loss,
            dropped_outage: snap.dropped_outage,
            malformed: snap.malformed,
            unknown_destination: snap.unknown_destination,
            dropped_path: snap.dropped_path,
            expired: snap.expired,
            time_exceeded: snap.time_exceeded,
        };
        let flushed = self.truth.finish(&stop).map_err(LabError::Truth);
        // Keep the eventfd alive until here; it is only used to interrupt ppoll.
        let _ = &self.wake;
        result?;
        flushed?;
        Ok(snap)
    }
}
