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

use crate::probe::kind::{DEFAULT_TIMEOUT, Gauges, Kind, ProbeContext};
use crate::probe::outcome::{Detail, FailureReason, Outcome};
use crate::probe::params::Params;
use crate::probe::tls::CaFile;
use udp::{Demux, UdpSide};

/// SIP transport for OPTIONS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// The transport token in a Via header (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
            SipTransport::Tls => "TLS",
        }
    }

    /// The well-known port: 5061 for TLS, 5060 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            SipTransport::Tls => 5061,
            _ => 5060,
        }
    }
}

/// SIP OPTIONS check: any final response means the SIP stack is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCheck {
    pub transport: SipTransport,
    pub port: u16,
    pub timeout: Duration,
    /// Request-URI user part.
    pub user: String,
    /// TLS only: accept any certificate.
    pub insecure_skip_verify: bool,
    /// TLS only: CAs trusted besides the bundled roots.
    pub ca_file: Option<CaFile>,
}

impl Default for SipCheck {
    fn default() -> Self {
        SipCheck {
            transport: SipTransport::Udp,
            port: 5060,
            timeout: DEFAULT_TIMEOUT,
            user: "ping".into(),
            insecure_skip_verify: false,
            ca_file: None,
        }
    }
}

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
                        Detail::default(),
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

    /// ICMP errors (port or host unreachable) about datagrams of no pending probe.
    pub fn unmatched_errors_total(&self) -> u64 {
        self.demux.unmatched_errors.load(Ordering::Relaxed)
    }
}

impl Kind for SipCheck {
    const NAME: &'static str = "sip";

    fn from_params(p: &mut Params<'_>) -> Option<Self> {
        let transport = match p.choice("transport", &["udp", "tcp", "tls"], "a SIP transport") {
            Some(1) => SipTransport::Tcp,
            Some(2) => SipTransport::Tls,
            _ => SipTransport::Udp,
        };
        Some(SipCheck {
            transport,
            port: p.port().unwrap_or(transport.default_port()),
            timeout: p.duration("timeout", DEFAULT_TIMEOUT),
            user: p.string("user").unwrap_or_else(|| "ping".into()),
            insecure_skip_verify: p.bool("insecure_skip_verify").unwrap_or(false),
            ca_file: CaFile::from_params(p),
        })
    }

    async fn attempt(&self, target: IpAddr, ctx: &ProbeContext) -> Outcome {
        ctx.sip.probe(target, self).await
    }

    fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    fn blackbox_metrics(&self, detail: &Detail, out: &mut Gauges<'_>) {
        if let Some(status) = detail.status {
            out.gauge(
                "probe_sip_status_code",
                "Final SIP response status (diemcau extension).",
                f64::from(status),
            );
        }
    }
}
