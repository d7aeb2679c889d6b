//! TCP connect probe: the time to a completed three-way handshake.
//!
//! A connect tells apart the three ways a service can be down: nothing listening (RST →
//! [`FailureReason::Refused`]), no route (ICMP unreachable → [`FailureReason::Unreachable`])
//! and silence (dropped SYN → [`FailureReason::Timeout`]). The connection is closed right
//! away; no data is sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::net::TcpStream;

use super::check::TcpCheck;
use super::outcome::{Detail, FailureReason, Outcome};

/// Connects to `target:check.port` within `check.timeout`.
pub async fn probe(target: IpAddr, check: &TcpCheck) -> Outcome {
    let start = Instant::now();
    let addr = SocketAddr::new(target, check.port);
    match tokio::time::timeout(check.timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let took = start.elapsed();
            drop(stream);
            Outcome::ok(took, Detail::Tcp)
        }
        Ok(Err(e)) => Outcome::fail(start.elapsed(), FailureReason::from_io(&e), Detail::None),
        Err(_) => Outcome::fail(start.elapsed(), FailureReason::Timeout, Detail::None),
    }
}
