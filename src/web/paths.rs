//! Faults by failing element, for the API (`/api/v1/incidents`), the status page and the
//! metrics: endpoints whose paths break at the same router are one incident.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::domain::blindness::FAMILIES;
use crate::domain::unix_seconds;
use crate::monitor::MonitorState;
use crate::web::exposition::{escape_label_value, write_label_set};

/// One failing router and the endpoints cut off behind it.
#[derive(Debug, Serialize)]
pub struct IncidentRow {
    /// The router that stopped answering (the next hop after the last one that did).
    pub hop: IpAddr,
    /// `path` (a router on the way) or `monitor` (one of the monitor's own hops).
    pub domain: &'static str,
    /// The carrier most of those endpoints use: whose router it is.
    pub carrier: String,
    pub carriers: Vec<String>,
    pub provinces: Vec<String>,
    /// How many endpoints cannot be reached behind it.
    pub endpoints: usize,
    pub endpoint_ids: Vec<String>,
    /// Unix seconds: the earliest of their faults.
    pub since: Option<f64>,
}

impl IncidentRow {
    /// "Chặng 10.2.3.1 — VNPT — 30 điểm cầu không kết nối được" for the page.
    pub fn text(&self) -> String {
        format!(
            "Chặng {} — {} — {} điểm cầu không kết nối được ({})",
            self.hop,
            self.carrier,
            self.endpoints,
            self.provinces.join(", ")
        )
    }
}

/// Every current incident, largest first.
pub fn incidents(state: &MonitorState) -> Vec<IncidentRow> {
    state
        .incidents()
        .into_iter()
        .map(|i| {
            let mut carriers: BTreeMap<&str, usize> = BTreeMap::new();
            let mut provinces: BTreeMap<&str, ()> = BTreeMap::new();
            let mut since: Option<f64> = None;
            let mut ids = Vec::with_capacity(i.endpoints.len());
            for v in i.endpoints.iter().filter_map(|e| state.endpoints.get(*e)) {
                *carriers.entry(&v.endpoint.labels.carrier).or_default() += 1;
                provinces.insert(&v.endpoint.labels.province, ());
                if let Some((_, at)) = v.path.finding {
                    let at = unix_seconds(at);
                    since = Some(since.map_or(at, |s| s.min(at)));
                }
                ids.push(v.endpoint.id.to_string());
            }
            let carrier = carriers
                .iter()
                .max_by_key(|(name, n)| (**n, std::cmp::Reverse(*name)))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            IncidentRow {
                hop: i.hop,
                domain: i.domain.as_str(),
                carrier,
                carriers: carriers.keys().map(|c| c.to_string()).collect(),
                provinces: provinces.keys().map(|p| p.to_string()).collect(),
                endpoints: ids.len(),
                endpoint_ids: ids,
                since,
            }
        })
        .collect()
}

/// The path series, written at scrape time:
/// - `diemcau_path_baselines{family}`: endpoints whose path is known;
/// - `diemcau_path_incident_endpoints{hop,domain,carrier}`: endpoints cut off behind each
///   failing router, present only while it fails (bounded by the routers failing now);
/// - `diemcau_endpoint_fault_info{…,domain,failing_hop}`: where each faulted endpoint's fault
///   lies, present only while it is not Up (alerts join on it to group and inhibit by hop).
pub fn render(state: &MonitorState, out: &mut Vec<u8>) {
    let baselines = state.baselines();
    let name = "diemcau_path_baselines";
    let _ = writeln!(
        out,
        "# HELP {name} Endpoints whose baseline path (traced while they answered) is known, by address family.\n# TYPE {name} gauge"
    );
    for (f, n) in FAMILIES.iter().zip(baselines) {
        let _ = writeln!(out, "{name}{{family=\"{f}\"}} {n}");
    }
    let name = "diemcau_path_incident_endpoints";
    let _ = writeln!(
        out,
        "# HELP {name} Endpoints cut off behind a failing router (the hop after the last one that answered), while it fails.\n# TYPE {name} gauge"
    );
    for i in incidents(state) {
        let _ = write!(out, "{name}{{hop=\"{}\",domain=\"{}\",carrier=\"", i.hop, i.domain);
        escape_label_value(out, &i.carrier);
        let _ = writeln!(out, "\"}} {}", i.endpoints);
    }
    let name = "diemcau_endpoint_fault_info";
    let _ = writeln!(
        out,
        "# HELP {name} Where a silent endpoint's fault lies (domain endpoint, path, monitor or unknown; failing_hop the router that stopped answering, empty when none is named), while it is not Up.\n# TYPE {name} gauge"
    );
    for v in &state.endpoints {
        let Some((finding, _)) = v.path.finding else { continue };
        if v.state.reachable() == Some(true) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        write_label_set(out, &v.endpoint, v.labels_need_escaping, None);
        out.pop(); // the closing brace: two labels more
        let hop = finding.failing_hop.map(|h| h.to_string()).unwrap_or_default();
        let _ = writeln!(out, ",domain=\"{}\",failing_hop=\"{hop}\"}} 1", finding.domain.as_str());
    }
}
