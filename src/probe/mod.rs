//! Probes: ways to ask an endpoint whether it is alive. ICMP echo is the first kind.

pub mod check;
pub mod http;
pub mod icmp;
pub mod outcome;
pub mod sip;
pub mod tcp;

use std::net::IpAddr;

use check::Check;
use outcome::{Detail, FailureReason, Outcome};
use sip::SipClient;

/// Runs one attempt of `check` against `target`.
pub async fn attempt(check: &Check, target: IpAddr, sip: &SipClient) -> Outcome {
    match check {
        Check::Tcp(c) => tcp::probe(target, c).await,
        Check::Http(c) => http::probe(target, c).await,
        Check::Sip(c) => sip.probe(target, c).await,
        // ICMP runs in the batch engine, never here; answer honestly if asked.
        Check::Icmp => Outcome::fail(
            std::time::Duration::ZERO,
            FailureReason::Protocol("ICMP is probed by the engine".into()),
            Detail::None,
        ),
    }
}
