//! Endpoints and their labels: the vocabulary every layer above speaks.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Stable identity of an endpoint across reloads (the inventory `id` column).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub Arc<str>);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EndpointId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an endpoint sits in the administrative tree and which carrier links it: the one label
/// set of the daemon (inventory, monitor, ledger, SLA figures, maintenance scopes).
/// Values are UTF-8 Vietnamese names, kept exactly as written in the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Labels {
    pub province: Arc<str>,
    /// `None` in the two-tier map in force since 1 July 2025 (provinces and communes only); the
    /// district (huyện, quận, thị xã) of the 2021 three-tier map otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<Arc<str>>,
    pub commune: Arc<str>,
    pub carrier: Arc<str>,
}

/// One monitored video-conference endpoint ("điểm cầu").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub labels: Labels,
    /// The address probed: the literal from the inventory, or the address its host name resolves
    /// to. `None` while a host name has no address (not resolved yet, or its resolution failed):
    /// such an endpoint is never probed, and its state stays Unknown.
    pub address: Option<IpAddr>,
    /// The host name as written in the inventory, when the address was not a literal.
    pub host: Option<Arc<str>>,
    /// Where the address comes from, and how the host name's last resolution went.
    pub resolution: Resolution,
    /// Service checks beyond ICMP (ids into the config's named checks).
    pub checks: Arc<[u16]>,
}

/// How an endpoint got its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// An IP address written in the inventory.
    Literal,
    /// A host name not resolved yet (no address: not probed).
    Pending,
    /// A host name whose last resolution gave the address.
    Resolved,
    /// A host name whose last resolution failed, for this reason (`"NXDOMAIN: …"`). With an
    /// address, the endpoint is still probed at the last good one (served stale); without one it
    /// is not probed.
    Failed(Arc<str>),
}

impl Labels {
    /// The district, or "" in the two-tier map (for places that need a string: SQL, CSV).
    pub fn district_or_empty(&self) -> &str {
        self.district.as_deref().unwrap_or("")
    }
}

impl Endpoint {
    /// Why the endpoint is not probed, or what is wrong with the name it is probed by:
    /// `dns: resolving`, `dns: NXDOMAIN …`, `dns: timed out …; probing the last good address`.
    /// `None` for a literal address or a name that resolves.
    pub fn dns_problem(&self) -> Option<String> {
        match (&self.resolution, self.address) {
            (Resolution::Literal | Resolution::Resolved, _) => None,
            (Resolution::Pending, _) => Some("dns: resolving".into()),
            (Resolution::Failed(why), None) => Some(format!("dns: {why}")),
            (Resolution::Failed(why), Some(_)) => Some(format!("dns: {why}; probing the last good address")),
        }
    }

    /// The address for people: `10.0.0.5`, `dc.example.vn (10.0.0.5)`, `dc.example.vn (no
    /// address)`.
    pub fn address_text(&self) -> String {
        match (&self.host, self.address) {
            (None, Some(a)) => a.to_string(),
            (Some(h), Some(a)) => format!("{h} ({a})"),
            (Some(h), None) => format!("{h} (no address)"),
            (None, None) => "(no address)".into(),
        }
    }

    /// Whether any label value needs escaping in the Prometheus text format (`\\`, `"`, newline):
    /// checked once per endpoint at load, so a scrape copies the usual plain values straight
    /// through.
    pub fn labels_need_escaping(&self) -> bool {
        [
            self.id.as_str(),
            &self.labels.province,
            self.labels.district.as_deref().unwrap_or(""),
            &self.labels.commune,
            &self.labels.carrier,
        ]
        .into_iter()
        .any(|v| v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')))
    }
}
