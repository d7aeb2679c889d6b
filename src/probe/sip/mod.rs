//! SIP OPTIONS probe (RFC 3261): is the endpoint's SIP stack alive?
//!
//! Any final response counts as success, whatever its status: a 404 or 503 still proves that
//! a SIP stack parsed our request and answered. The status and reason go into
//! [`Detail::Sip`](crate::probe::outcome::Detail) for the caller to judge.
//!
//! [`SipClient`] owns one UDP socket per address family shared by all UDP probes ([`udp`]);
//! TCP and TLS probes use one connection each ([`tcp`]). [`message`] builds requests and
//! parses responses.

pub mod message;
pub mod tcp;
pub mod udp;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::probe::check::{SipCheck, SipTransport};
use crate::probe::outcome::{Detail, FailureReason, Outcome};
use udp::{Demux, UdpSide};

/// Shared SIP prober: create once, probe from many tasks concurrently.
#[derive(Debug)]
pub struct SipClient {
    v4: UdpSide,
    /// `None` when the host has no IPv6 (IPv6 targets then fail with an io reason).
    v6: Option<UdpSide>,
    demux: Arc<Demux>,
}

impl SipClient {
    /// Binds the shared UDP sockets (IPv4 required, IPv6 when available) and starts their
    /// receive tasks. Must be called inside a tokio runtime.
    pub async fn new() -> std::io::Result<Arc<SipClient>> {
        let demux = Arc::new(Demux::default());
        let v4 = UdpSide::bind(false, demux.clone())?;
        let v6 = match UdpSide::bind(true, demux.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no IPv6 UDP socket for SIP probes");
                None
            }
        };
        Ok(Arc::new(SipClient { v4, v6, demux }))
    }

    /// Sends OPTIONS to `target:check.port` over the check's transport.
    pub async fn probe(&self, target: IpAddr, check: &SipCheck) -> Outcome {
        match check.transport {
            SipTransport::Udp => {
                let side = match target {
                    IpAddr::V4(_) => Some(&self.v4),
                    IpAddr::V6(_) => self.v6.as_ref(),
                };
                match side {
                    Some(s) => s.probe(&self.demux, target, check).await,
                    None => Outcome::fail(
                        Duration::ZERO,
                        FailureReason::Io("no IPv6 UDP socket".into()),
                        Detail::None,
                    ),
                }
            }
            SipTransport::Tcp | SipTransport::Tls => tcp::probe(&self.demux, target, check).await,
        }
    }

    /// Messages received that were not well-formed SIP responses (dropped).
    pub fn malformed_total(&self) -> u64 {
        self.demux.malformed.load(Ordering::Relaxed)
    }

    /// Well-formed responses that answered no pending probe (late, duplicate, or stray).
    pub fn unmatched_total(&self) -> u64 {
        self.demux.unmatched.load(Ordering::Relaxed)
    }
}
