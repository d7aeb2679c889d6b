//! What one probe of any kind found out, in one shape for every kind.
//!
//! Probes never record metrics themselves: the caller (the daemon's scheduler) turns an
//! [`Outcome`] into success/duration samples, so every kind is measured the same way and the
//! probe modules stay testable without a registry.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

/// Why a probe failed. Coarse on purpose: [`FailureReason::label`] is a metric label, so its set
/// of values must stay small and fixed; the free text (when any) is for logs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// No answer before the check's timeout (dropped SYN, silent SIP stack, slow server).
    Timeout,
    /// The host answered that nothing listens there (TCP RST / ECONNREFUSED).
    Refused,
    /// The network said the host cannot be reached (EHOSTUNREACH / ENETUNREACH).
    Unreachable,
    /// A name could not be resolved (kept for configurations that name hosts).
    Dns,
    /// TLS handshake or certificate verification failed.
    Tls(String),
    /// An HTTP response arrived but its status is outside the expected ranges.
    BadStatus(u16),
    /// The peer spoke, but not the protocol we expected (malformed response, early close).
    Protocol(String),
    /// Any other local or socket error.
    Io(String),
}

impl FailureReason {
    /// The metric label for this reason; one of a fixed set of eight values.
    pub fn label(&self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Refused => "refused",
            FailureReason::Unreachable => "unreachable",
            FailureReason::Dns => "dns",
            FailureReason::Tls(_) => "tls",
            FailureReason::BadStatus(_) => "bad_status",
            FailureReason::Protocol(_) => "protocol",
            FailureReason::Io(_) => "io",
        }
    }

    /// Classifies a socket error so that refused, unreachable and timed-out connections are
    /// told apart (they mean different things to an operator: service down, route down, or
    /// packets silently dropped).
    pub fn from_io(e: &io::Error) -> FailureReason {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => return FailureReason::Refused,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                return FailureReason::Unreachable;
            }
            io::ErrorKind::TimedOut => return FailureReason::Timeout,
            _ => {}
        }
        match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => FailureReason::Refused,
            Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => FailureReason::Unreachable,
            Some(libc::ETIMEDOUT) => FailureReason::Timeout,
            _ => FailureReason::Io(e.to_string()),
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Tls(m) => write!(f, "tls: {m}"),
            FailureReason::BadStatus(s) => write!(f, "bad status {s}"),
            FailureReason::Protocol(m) => write!(f, "protocol: {m}"),
            FailureReason::Io(m) => write!(f, "io: {m}"),
            other => f.write_str(other.label()),
        }
    }
}

/// Facts a probe learned beyond success and duration; each kind fills what its protocol has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// Status of the final response (HTTP, SIP); `None` when no response head arrived.
    pub status: Option<u16>,
    /// The response's reason phrase (SIP), when one arrived.
    pub reason: Option<String>,
    /// The leaf certificate's not-after, when TLS got far enough to see a certificate (also on
    /// verification failure, so an expired certificate is visible as such).
    pub tls_cert_not_after: Option<SystemTime>,
    /// Redirects followed (HTTP).
    pub redirects: Option<u8>,
}

impl Detail {
    /// One line for people: `, HTTP 200, 0 redirects, certificate valid until …`.
    pub fn describe(&self, kind: &str) -> String {
        let mut s = String::new();
        if let Some(status) = self.status {
            s += &format!(", {} {status}", kind.to_uppercase());
            if let Some(r) = &self.reason {
                s += &format!(" {r}");
            }
        }
        if let Some(n) = self.redirects {
            s += &format!(", {n} redirects");
        }
        if let Some(t) = self.tls_cert_not_after {
            s += &format!(", certificate valid until {}", humantime::format_rfc3339_seconds(t));
        }
        s
    }
}

/// The result of one probe. `duration` is the time to the decisive event (connect, final
/// response, or the failure), measured by the probe; the caller records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    pub duration: Duration,
    /// `Some` exactly when `success` is false.
    pub failure: Option<FailureReason>,
    pub detail: Detail,
}

impl Outcome {
    /// A successful probe.
    pub fn ok(duration: Duration, detail: Detail) -> Outcome {
        Outcome {
            success: true,
            duration,
            failure: None,
            detail,
        }
    }

    /// A failed probe.
    pub fn fail(duration: Duration, reason: FailureReason, detail: Detail) -> Outcome {
        Outcome {
            success: false,
            duration,
            failure: Some(reason),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(FailureReason::from_io(&e), FailureReason::Refused);
        let e = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(FailureReason::from_io(&e), FailureReason::Unreachable);
        let e = io::Error::from_raw_os_error(libc::ENETUNREACH);
        assert_eq!(FailureReason::from_io(&e), FailureReason::Unreachable);
        let e = io::Error::from_raw_os_error(libc::ETIMEDOUT);
        assert_eq!(FailureReason::from_io(&e), FailureReason::Timeout);
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(FailureReason::from_io(&e).label(), "io");
    }
}
