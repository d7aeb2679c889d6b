//! Probes: ways to ask an endpoint whether it is alive.
//!
//! ICMP echo runs in the batch engine ([`icmp`]): one socket per address family, one paced
//! timeline for every endpoint. Service checks (TCP, HTTP, SIP, …) are kinds: each kind's file
//! owns its typed settings, its attempt and its `/probe` series through the [`Kind`] trait, and
//! is listed once in the table below. To add a kind, see docs/architecture.md.

pub mod http;
pub mod icmp;
pub mod kind;
pub mod outcome;
pub mod params;
pub mod sip;
pub mod target;
pub mod tcp;
pub mod tls;

use std::net::IpAddr;

pub use kind::{DEFAULT_TIMEOUT, Gauges, Kind, ProbeContext};
use outcome::Outcome;
use params::Params;

/// The table of service-check kinds: `Variant(settings type)`, one line per kind.
macro_rules! kinds {
    ($($variant:ident($settings:ty)),* $(,)?) => {
        /// One service check to run against an endpoint address: the settings of one kind.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Check {
            $($variant($settings)),*
        }

        /// Every kind's name, in table order.
        pub const KINDS: &[&str] = &[$(<$settings as Kind>::NAME),*];

        impl Check {
            /// The kind's name, used as the `kind` label.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Check::$variant(_) => <$settings as Kind>::NAME),*
                }
            }

            /// Reads a check of kind `kind`; `Err(())` when no kind has that name. Unknown keys
            /// are reported through `params`.
            #[allow(clippy::result_unit_err)]
            pub fn from_params(kind: &str, mut params: Params<'_>) -> Result<Option<Check>, ()> {
                let check = match kind {
                    $(n if n == <$settings as Kind>::NAME => {
                        <$settings as Kind>::from_params(&mut params).map(Check::$variant)
                    })*
                    _ => return Err(()),
                };
                params.finish(kind);
                Ok(check)
            }

            /// One attempt against `target`.
            pub async fn attempt(&self, target: IpAddr, ctx: &ProbeContext) -> Outcome {
                match self {
                    $(Check::$variant(c) => c.attempt(target, ctx).await),*
                }
            }

            /// Overrides the configured port (`/probe?target=host:port`).
            pub fn set_port(&mut self, port: u16) {
                match self {
                    $(Check::$variant(c) => c.set_port(port)),*
                }
            }

            /// The kind's own `/probe` series for an attempt's detail.
            pub fn blackbox_metrics(&self, detail: &outcome::Detail, out: &mut Gauges<'_>) {
                match self {
                    $(Check::$variant(c) => c.blackbox_metrics(detail, out)),*
                }
            }
        }
    };
}

kinds! {
    Tcp(tcp::TcpCheck),
    Http(http::HttpCheck),
    Sip(sip::SipCheck),
}
