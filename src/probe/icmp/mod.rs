//! ICMP echo probing at national scale: see [`engine`] for the design.

mod confirm;
pub mod engine;
pub mod errqueue;
mod inflight;
pub mod oneshot;
pub mod packet;
mod send_batch;
pub mod settings;
pub mod socket;
mod stall;
mod telemetry;
pub mod timeline;
mod trace;

pub use engine::{EngineController, EngineHandle, EngineTelemetry, Replacement, RoundSink, Sockets};
pub use socket::{Family, IcmpSocket, OpenError, SocketKind};
pub use stall::{STALL_AFTER, Stall};
pub use trace::{MAX_HOPS, TRACE_SPACING};

use std::net::IpAddr;

pub use settings::{MAX_PACKETS_PER_ROUND, ProbeConfig, SocketPreference};

/// Opens one socket per address family that `targets` use.
pub fn open_sockets(targets: &[IpAddr], preference: SocketPreference) -> Result<Sockets, OpenError> {
    open_missing_sockets(targets, preference, [false, false])
}

/// Like [`open_sockets`], but skips the families already open (`[v4, v6]`): for reloads.
pub fn open_missing_sockets(
    targets: &[IpAddr],
    preference: SocketPreference,
    open: [bool; 2],
) -> Result<Sockets, OpenError> {
    let needs = |f: Family| targets.iter().any(|a| Family::of(a) == f);
    let v4 = if needs(Family::V4) && !open[0] {
        Some(socket::open(Family::V4, preference)?)
    } else {
        None
    };
    let v6 = if needs(Family::V6) && !open[1] {
        Some(socket::open(Family::V6, preference)?)
    } else {
        None
    };
    Ok(Sockets { v4, v6 })
}
