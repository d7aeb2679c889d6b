//! TCP connect probe: the time to a completed three-way handshake.
//!
//! A connect tells apart the three ways a service can be down: nothing listening (RST →
//! [`FailureReason::Refused`]), no route (ICMP unreachable → [`FailureReason::Unreachable`])
//! and silence (dropped SYN → [`FailureReason::Timeout`]). The connection is closed right
//! away; no data is sent.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::kind::{DEFAULT_TIMEOUT, Kind, ProbeContext};
use super::outcome::{Detail, FailureReason, Outcome};
use super::params::Params;

/// TCP connect check: success is a completed three-way handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    pub port: u16,
    pub timeout: Duration,
}

/// Connects to `target:check.port` within `check.timeout`.
pub async fn probe(target: IpAddr, check: &TcpCheck) -> Outcome {
    let start = Instant::now();
    let addr = SocketAddr::new(target, check.port);
    match tokio::time::timeout(check.timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let took = start.elapsed();
            drop(stream);
            Outcome::ok(took, Detail::default())
        }
        Ok(Err(e)) => Outcome::fail(start.elapsed(), FailureReason::from_io(&e), Detail::default()),
        Err(_) => Outcome::fail(start.elapsed(), FailureReason::Timeout, Detail::default()),
    }
}

impl Kind for TcpCheck {
    const NAME: &'static str = "tcp";

    fn from_params(p: &mut Params<'_>) -> Option<Self> {
        let timeout = p.duration("timeout", DEFAULT_TIMEOUT);
        if !p.has("port") {
            p.problem("port", "a tcp check needs a port", "add port = 1720 (for example)");
        }
        Some(TcpCheck {
            port: p.port()?,
            timeout,
        })
    }

    async fn attempt(&self, target: IpAddr, _ctx: &ProbeContext) -> Outcome {
        probe(target, self).await
    }

    fn set_port(&mut self, port: u16) {
        self.port = port;
    }
}
