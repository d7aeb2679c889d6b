//! The `[web]` section once validated: where the server listens and what its admin routes allow.

use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq)]
pub struct WebConfig {
    pub listen_address: SocketAddr,
    /// Which targets `/probe` may reach.
    pub probe_targets: ProbeTargets,
    /// `POST /-/reload` accepted (as Prometheus's `--web.enable-lifecycle`); off by default, so
    /// whoever reaches the port cannot make the daemon reload. SIGHUP always reloads.
    pub enable_lifecycle: bool,
}

/// `[web] probe_targets`: `/probe` reaches the inventory's addresses only (the default), or any
/// unicast address (an explicit opt-in: it lets whoever reaches the port scan from the monitor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeTargets {
    #[default]
    Inventory,
    Any,
}
