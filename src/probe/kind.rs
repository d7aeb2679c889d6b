//! What every service-check kind provides, in one signature (as blackbox_exporter's
//! `prober/<kind>.go`): typed settings read from its `[check.NAME]` table, one attempt against
//! an address, and its own blackbox-style series for `/probe`. The caller, not the kind, records
//! success and duration, so every kind is measured the same way.

use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::outcome::{Detail, Outcome};
use super::params::Params;
use super::sip::SipClient;

/// Default per-check timeout: long enough for a congested rural link, short enough that a
/// probe round is not held up by one dead endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared resources kinds may use (opened once, not per attempt).
#[derive(Clone)]
pub struct ProbeContext {
    /// One pair of UDP sockets for every SIP OPTIONS request.
    pub sip: Arc<SipClient>,
}

/// Writes `/probe` gauges in the Prometheus text format.
pub struct Gauges<'a>(pub &'a mut String);

impl Gauges<'_> {
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
}

/// One kind of service check. Implemented by the settings type of each kind.
pub trait Kind: Sized + Clone + std::fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// `kind = "…"` in a `[check.NAME]` table, and the `kind` label.
    const NAME: &'static str;

    /// Reads the typed settings; problems go to `params`. `None` when the check is unusable.
    fn from_params(params: &mut Params<'_>) -> Option<Self>;

    /// One attempt against `target`.
    fn attempt(&self, target: IpAddr, ctx: &ProbeContext) -> impl Future<Output = Outcome> + Send;

    /// `/probe?target=host:port` overrides the configured port.
    fn set_port(&mut self, port: u16);

    /// The kind's own `/probe` series (blackbox_exporter names where they exist).
    fn blackbox_metrics(&self, _detail: &Detail, _out: &mut Gauges<'_>) {}
}
