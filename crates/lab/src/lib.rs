//! User-space endpoint emulator ("lab") for tests and demos.
//!
//! Inside a private network namespace, emulated address ranges are routed to a TUN
//! device; one emulator thread answers ICMP echo, SIP OPTIONS (UDP) and TCP SYN for every
//! emulated endpoint with the delay, jitter, loss and outages programmed by a
//! [`Scenario`], and writes a ground-truth JSON-lines file of what it actually did, so a
//! prober's measurements can be checked against reality rather than against intentions.
//!
//! A scenario may also put routers between the prober and the endpoints: a request whose
//! IP TTL (IPv6 hop limit) runs out on the way is answered with ICMP Time Exceeded from the
//! router where it expired, so traceroute-style probes see every hop (see `path.rs`).
//!
//! Nothing here touches the host network: [`Lab::start`] must be called from inside a
//! namespace the caller owns (e.g. after `unshare -rn`).

mod engine;
mod index;
mod packet;
mod path;
mod scenario;
mod shared;
mod sip;
mod truth;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::sys::eventfd::{EfdFlags, EventFd};

pub use scenario::{DelaySpec, Scenario, ScenarioError, SipMode, WindowSpec};

use engine::{Engine, EngineConfig};
use shared::Shared;
use truth::TruthWriter;

/// Address the lab gives its TUN device for IPv4. The kernel needs a local address on
/// the route's device to pick a source for probes; this one (end of 100.64.0.0/10, shared
/// address space) is chosen to be far from the benchmarking ranges used for endpoints.
pub const LAB_LOCAL_V4: Ipv4Addr = Ipv4Addr::new(100, 127, 255, 254);
/// IPv6 counterpart of [`LAB_LOCAL_V4`] (ULA), added with `nodad` so it is usable at once.
pub const LAB_LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x1ab, 0, 0, 0, 0, 0, 1);

/// One emulated commune endpoint. Labels are used by scenario rules to select endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedEndpoint {
    pub id: String,
    pub province: String,
    pub district: String,
    pub commune: String,
    pub carrier: String,
    pub addr: IpAddr,
}

/// How the lab sets up its device and what it answers on.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// TUN interface name (≤ 15 bytes).
    pub tun_name: String,
    /// IPv4 prefixes routed to the device; every IPv4 endpoint must be inside one.
    pub v4_routes: Vec<(Ipv4Addr, u8)>,
    /// IPv6 prefixes routed to the device; every IPv6 endpoint must be inside one.
    pub v6_routes: Vec<(Ipv6Addr, u8)>,
    /// Ground-truth JSON-lines file; `None` disables it.
    pub truth_path: Option<PathBuf>,
    /// RNG seed: same seed + same packet sequence = same losses and delays.
    pub seed: u64,
    /// UDP port answered as SIP (normally 5060).
    pub sip_port: u16,
    /// TCP ports that answer SYN with SYN-ACK; all others answer RST-ACK.
    pub open_tcp_ports: Vec<u16>,
}

impl Default for LabOptions {
    /// The RFC 2544 / RFC 5180 benchmarking ranges, SIP on 5060, TCP 80 open.
    fn default() -> Self {
        LabOptions {
            tun_name: "diemlab0".into(),
            v4_routes: vec![(Ipv4Addr::new(198, 18, 0, 0), 15)],
            v6_routes: vec![(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48)],
            truth_path: None,
            seed: 1,
            sip_port: 5060,
            open_tcp_ports: vec![80],
        }
    }
}

/// Emulator counters. `late_*` is the emulator's own delay error (write time − due time).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LabStats {
    /// Packets read from the device (including malformed and unknown ones).
    pub packets_in: u64,
    /// Replies written to the device.
    pub replied: u64,
    /// Requests dropped by the loss probability (including degrade ramps).
    pub dropped_loss: u64,
    /// Requests dropped because the endpoint was in an outage window or `never`.
    pub dropped_outage: u64,
    /// Unparseable IP packets, malformed SIP, replies that could not be built.
    pub malformed: u64,
    /// Packets to addresses that are not endpoints (dropped).
    pub unknown_destination: u64,
    /// Valid packets we do not answer (other ICMP types, other UDP ports, bare ACKs...).
    pub ignored: u64,
    /// SIP OPTIONS not answered because the profile says `sip = "silent"`.
    pub sip_silent: u64,
    /// Failed writes to the device.
    pub write_errors: u64,
    /// Replies written more than 1 ms after their due time.
    pub late: u64,
    pub late_p50_us: u64,
    pub late_p99_us: u64,
    pub late_max_us: u64,
    /// Requests dropped on the way: the monitor's uplink or a router on the path was down.
    pub dropped_path: u64,
    /// Requests whose TTL ran out at a router (answered with Time Exceeded or not).
    pub expired: u64,
    /// ICMP Time Exceeded messages written (not counted in `replied`).
    pub time_exceeded: u64,
    /// Replies currently waiting in the delay queue.
    pub queued: u64,
    /// CPU time consumed by the emulator thread so far (updated every ~100 ms).
    pub emulator_cpu_ms: f64,
}

/// Everything that can go wrong starting or running the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("scenario: {0}")]
    Scenario(#[from] ScenarioError),
    #[error("invalid lab options: {0}")]
    Options(String),
    #[error("creating TUN device {name:?} (need CAP_NET_ADMIN in a private netns): {source}")]
    Tun { name: String, source: std::io::Error },
    #[error("`{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    #[error("opening truth file {path:?}: {source}")]
    TruthOpen { path: PathBuf, source: std::io::Error },
    #[error("writing truth file: {0}")]
    Truth(std::io::Error),
    #[error("eventfd: {0}")]
    EventFd(nix::Error),
    #[error("spawning emulator thread: {0}")]
    Spawn(std::io::Error),
    #[error("TUN device I/O: {0}")]
    Device(std::io::Error),
    #[error("emulator thread panicked")]
    ThreadPanicked,
}

/// Handle to a running emulator. Dropping it stops the emulator too (errors are logged).
pub struct Lab {
    shared: Arc<Shared>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<Result<LabStats, LabError>>>,
    t0: Instant,
    wall0_ns: u64,
    tun_name: String,
}

fn run_ip(args: &[&str]) -> Result<(), LabError> {
    let cmd = format!("ip {}", args.join(" "));
    tracing::debug!(%cmd, "lab setup");
    let out = Command::new("ip").args(args).output().map_err(|e| LabError::Command {
        cmd: cmd.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd,
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        })
    }
}

fn v4_in(a: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from(a) & mask == u32::from(net) & mask
}

fn v6_in(a: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    u128::from(a) & mask == u128::from(net) & mask
}

fn check_options(endpoints: &[EmulatedEndpoint], opts: &LabOptions) -> Result<(), LabError> {
    if opts.tun_name.is_empty()
        || opts.tun_name.len() > 15
        || !opts
            .tun_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(LabError::Options(format!("bad tun_name {:?}", opts.tun_name)));
    }
    if opts.v4_routes.iter().any(|r| r.1 > 32) || opts.v6_routes.iter().any(|r| r.1 > 128) {
        return Err(LabError::Options("route prefix length out of range".into()));
    }
    if opts.sip_port == 0 {
        return Err(LabError::Options("sip_port must not be 0".into()));
    }
    for ep in endpoints {
        let routed = match ep.addr {
            IpAddr::V4(a) => a != LAB_LOCAL_V4 && opts.v4_routes.iter().any(|r| v4_in(a, *r)),
            IpAddr::V6(a) => a != LAB_LOCAL_V6 && opts.v6_routes.iter().any(|r| v6_in(a, *r)),
        };
        if !routed {
            return Err(LabError::Options(format!(
                "endpoint {} address {} is not inside any lab route (or is the lab's own address)",
                ep.id, ep.addr
            )));
        }
    }
    Ok(())
}

impl Lab {
    /// Creates the TUN device in the CURRENT network namespace (caller must already be in
    /// a private netns with CAP_NET_ADMIN), brings it up, adds the routes (via `ip`),
    /// spawns the emulator thread. Scenario time zero is the moment this returns.
    pub fn start(endpoints: Vec<EmulatedEndpoint>, scenario: Scenario, opts: LabOptions) -> Result<Lab, LabError> {
        check_options(&endpoints, &opts)?;
        let (profiles, ep_profile) = scenario.resolve(&endpoints)?;
        let net = scenario.resolve_network(&endpoints)?;
        let truth_file = match &opts.truth_path {
            Some(path) => Some(File::create(path).map_err(|source| LabError::TruthOpen {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let dev = tun_rs::DeviceBuilder::new()
            .name(&opts.tun_name)
            .mtu(1500)
            .build_sync()
            .map_err(|source| LabError::Tun {
                name: opts.tun_name.clone(),
                source,
            })?;
        // If any step below fails, `dev` is dropped and the kernel removes the device.
        let name = opts.tun_name.as_str();
        // A long kernel->emulator queue absorbs probe bursts. Set via netlink (`ip`): the
        // SIOCSIFTXQLEN ioctl tun-rs would use needs CAP_NET_ADMIN in the initial userns.
        if let Err(e) = run_ip(&["link", "set", "dev", name, "txqueuelen", "10000"]) {
            tracing::warn!(error = %e, "could not raise txqueuelen; bursts may be dropped by the kernel");
        }
        run_ip(&["link", "set", "dev", name, "up"])?;
        if !opts.v4_routes.is_empty() {
            run_ip(&["addr", "add", &format!("{LAB_LOCAL_V4}/32"), "dev", name])?;
        }
        for (net, len) in &opts.v4_routes {
            run_ip(&["route", "add", &format!("{net}/{len}"), "dev", name])?;
        }
        // Time Exceeded comes from the routers' addresses: route those outside the lab's
        // prefixes to the device too, so the kernel accepts and can answer them.
        for a in scenario.router_addresses() {
            let routed = match a {
                IpAddr::V4(a) => opts.v4_routes.iter().any(|r| v4_in(a, *r)),
                IpAddr::V6(a) => opts.v6_routes.iter().any(|r| v6_in(a, *r)),
            };
            if !routed {
                let (fam, len) = if a.is_ipv4() { ("-4", 32) } else { ("-6", 128) };
                run_ip(&[fam, "route", "add", &format!("{a}/{len}"), "dev", name])?;
            }
        }
        if !opts.v6_routes.is_empty() {
            run_ip(&[
                "-6",
                "addr",
                "add",
                &format!("{LAB_LOCAL_V6}/128"),
                "dev",
                name,
                "nodad",
            ])?;
        }
        for (net, len) in &opts.v6_routes {
            run_ip(&["-6", "route", "add", &format!("{net}/{len}"), "dev", name])?;
        }
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(LabError::EventFd)?,
        );
        let shared = Arc::new(Shared::new());
        let n = endpoints.len();
        let t0 = Instant::now();
        let wall0_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let engine = Engine::new(
            dev,
            Arc::clone(&wake),
            Arc::clone(&shared),
            EngineConfig {
                endpoints,
                profiles,
                ep_profile,
                seed: opts.seed,
                sip_port: opts.sip_port,
                open_tcp_ports: opts.open_tcp_ports.clone(),
                t0,
                wall0_ns,
                truth: TruthWriter::new(truth_file),
                net,
            },
        );
        let thread = std::thread::Builder::new()
            .name("diemcau-lab".into())
            .spawn(move || engine.run())
            .map_err(LabError::Spawn)?;
        tracing::info!(tun = %opts.tun_name, endpoints = n, "lab started");
        Ok(Lab {
            shared,
            wake,
            thread: Some(thread),
            t0,
            wall0_ns,
            tun_name: opts.tun_name,
        })
    }

    /// Live counters (cheap; may be read at any rate).
    pub fn stats(&self) -> LabStats {
        self.shared.snapshot()
    }

    /// Scenario time zero as a monotonic instant.
    pub fn started_at(&self) -> Instant {
        self.t0
    }

    /// Scenario time zero as unix nanoseconds (the truth file's time base).
    pub fn started_unix_ns(&self) -> u64 {
        self.wall0_ns
    }

    /// Stops the thread, flushes the truth file, removes the device (by closing it).
    pub fn stop(mut self) -> Result<LabStats, LabError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<LabStats, LabError> {
        let Some(thread) = self.thread.take() else {
            return Ok(self.shared.snapshot());
        };
        self.shared.stop.store(true, Ordering::Release);
        if let Err(e) = self.wake.write(1) {
            tracing::warn!(error = %e, "eventfd write failed; emulator stops at its next wakeup");
        }
        let res = thread.join().map_err(|_| LabError::ThreadPanicked)?;
        tracing::info!(tun = %self.tun_name, "lab stopped");
        res
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.thread.is_some()
            && let Err(e) = self.shutdown()
        {
            tracing::error!(error = %e, "lab stopped with error");
        }
    }
}
