//! What to probe on an endpoint: one enum holding every probe kind, so a configuration can list
//! several checks per endpoint and the scheduler can dispatch on one type.

use std::ops::RangeInclusive;
use std::time::Duration;

/// One check to run against an endpoint address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// ICMP echo, run by the batch engine in [`crate::probe::icmp`] (no per-check settings).
    Icmp,
    Tcp(TcpCheck),
    Http(HttpCheck),
    Sip(SipCheck),
}

impl Check {
    /// The kind's name, used as the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Icmp => "icmp",
            Check::Tcp(_) => "tcp",
            Check::Http(_) => "http",
            Check::Sip(_) => "sip",
        }
    }
}

/// Default per-check timeout: long enough for a congested rural link, short enough that a
/// probe round is not held up by one dead endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP connect check: success is a completed three-way handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    pub port: u16,
    pub timeout: Duration,
}

/// HTTP(S) GET check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub scheme_https: bool,
    /// Defaults to 80 or 443 by scheme.
    pub port: Option<u16>,
    /// Request path (origin form, e.g. `/health`); an empty path means `/`.
    pub path: String,
    /// Host header and TLS SNI; the target address when absent.
    pub host: Option<String>,
    /// Status ranges that count as success; empty means 200..=299.
    pub expected_status: Vec<RangeInclusive<u16>>,
    /// Budget for the whole probe, redirects and body included.
    pub timeout: Duration,
    /// Accept any certificate (self-signed devices); explicit per check, never global.
    pub insecure_skip_verify: bool,
    /// Redirects followed at most, only to the same scheme, host and port.
    pub max_redirects: u8,
    /// Body bytes read at most; the rest is never read or buffered.
    pub body_limit: usize,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            scheme_https: false,
            port: None,
            path: "/".into(),
            host: None,
            expected_status: vec![200..=299],
            timeout: DEFAULT_TIMEOUT,
            insecure_skip_verify: false,
            max_redirects: 3,
            body_limit: 64 * 1024,
        }
    }
}

impl HttpCheck {
    /// The TCP port to connect to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(if self.scheme_https { 443 } else { 80 })
    }

    /// Whether `status` counts as success.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expected_status.is_empty() {
            return (200..=299).contains(&status);
        }
        self.expected_status.iter().any(|r| r.contains(&status))
    }
}

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
}

impl Default for SipCheck {
    fn default() -> Self {
        SipCheck {
            transport: SipTransport::Udp,
            port: 5060,
            timeout: DEFAULT_TIMEOUT,
            user: "ping".into(),
            insecure_skip_verify: false,
        }
    }
}
