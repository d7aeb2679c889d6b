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
    /// The address probed: the literal from the inventory, or the first address its host name
    /// resolved to at load time.
    pub address: IpAddr,
    /// The host name as written in the inventory, when the address was not a literal.
    pub host: Option<Arc<str>>,
    /// Service checks beyond ICMP (ids into the config's named checks).
    pub checks: Arc<[u16]>,
}

impl Labels {
    /// The district, or "" in the two-tier map (for places that need a string: SQL, CSV).
    pub fn district_or_empty(&self) -> &str {
        self.district.as_deref().unwrap_or("")
    }
}

impl Endpoint {
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
