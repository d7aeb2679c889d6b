//! Per-endpoint metric families in the Prometheus text format, written in chunks straight from
//! the endpoint table so a scrape of 100,000 endpoints never holds the whole page in memory.

use std::collections::BTreeMap;
use std::io::Write;

use crate::domain::unix_seconds;
use crate::domain::{Endpoint, State};
use crate::monitor::{CheckView, EndpointView, MonitorState};

/// Appends a label value escaped per the text exposition format (UTF-8 kept as is).
pub fn escape_label_value(out: &mut Vec<u8>, value: &str) {
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

/// `{endpoint="…",province="…",district="…",commune="…",carrier="…"[,check="…"]}`, written at
/// scrape time: keeping 10,000 pre-rendered label sets would cost 1.5 MB, writing them costs
/// a few milliseconds per scrape. `escape` is [`Endpoint::labels_need_escaping`].
pub fn write_label_set(out: &mut Vec<u8>, e: &Endpoint, escape: bool, check: Option<&str>) {
    // No district label at all (not an empty one) in the two-tier map.
    let pairs = [
        Some(("{endpoint=\"", e.id.as_str())),
        Some(("\",province=\"", &*e.labels.province)),
        e.labels.district.as_deref().map(|d| ("\",district=\"", d)),
        Some(("\",commune=\"", &*e.labels.commune)),
        Some(("\",carrier=\"", &*e.labels.carrier)),
    ];
    for (prefix, value) in pairs.into_iter().flatten() {
        out.extend_from_slice(prefix.as_bytes());
        match escape {
            true => escape_label_value(out, value),
            false => out.extend_from_slice(value.as_bytes()),
        }
    }
    if let Some(check) = check {
        // Check names are validated to [A-Za-z0-9_-]: nothing to escape.
        out.extend_from_slice(b"\",check=\"");
        out.extend_from_slice(check.as_bytes());
    }
    out.extend_from_slice(b"\"}");
}

enum Value {
    Float(f64),
    Int(u64),
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// `None` leaves the endpoint out of this family (e.g. no RTT without a reply). For a
    /// summary, the `_sum` sample.
    value: fn(&EndpointView) -> Option<Value>,
    /// For a summary, the `_count` sample.
    count: Option<fn(&EndpointView) -> Option<Value>>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "diemcau_endpoint_up",
        kind: "gauge",
        help: "1 if the endpoint is reachable (up or degraded), 0 if down; absent while unknown.",
        value: |v| v.state.reachable().map(|r| Value::Int(u64::from(r))),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_state",
        kind: "gauge",
        help: "Endpoint state: 0 unknown, 1 up, 2 degraded, 3 down.",
        value: |v| Some(Value::Int(v.state as u64)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_rtt_seconds",
        kind: "gauge",
        help: "Mean round-trip time of the last round's replies.",
        value: |v| v.last().and_then(|r| r.rtt_avg).map(Value::Float),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_jitter_seconds",
        kind: "gauge",
        help: "Mean absolute difference of consecutive RTTs in the last round.",
        value: |v| v.last().and_then(|r| r.jitter).map(Value::Float),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_loss_ratio",
        kind: "gauge",
        help: "Share of the last round's echo requests that got no reply.",
        value: |v| v.last().map(|r| Value::Float(r.loss_ratio())),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_packets_sent_total",
        kind: "counter",
        help: "Echo requests sent to the endpoint.",
        value: |v| Some(Value::Int(v.packets_sent)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_packets_received_total",
        kind: "counter",
        help: "Echo replies received from the endpoint in time.",
        value: |v| Some(Value::Int(v.packets_received)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_transitions_total",
        kind: "counter",
        help: "State changes of the endpoint.",
        value: |v| Some(Value::Int(v.transitions)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_brief_interruptions_total",
        kind: "counter",
        help: "Breaks too short to confirm: a silent round whose confirmation round lost its first requests, then got replies (not downtime).",
        value: |v| Some(Value::Int(v.brief_interruptions)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_maintenance",
        kind: "gauge",
        help: "1 while the endpoint is inside a planned maintenance window, else 0.",
        value: |v| Some(Value::Int(u64::from(v.in_maintenance))),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_last_transition_timestamp_seconds",
        kind: "gauge",
        help: "Unix time of the endpoint's last state change.",
        value: |v| v.last_transition.map(|t| Value::Float(unix_seconds(t))),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_reply_rtt_seconds",
        kind: "summary",
        help: "Round-trip times of every echo reply (sum and count): rate(_sum)/rate(_count) is the mean RTT over any window.",
        value: |v| Some(Value::Float(v.quality.rtt_sum)),
        count: Some(|v| Some(Value::Int(v.packets_received))),
    },
    Family {
        name: "diemcau_endpoint_reply_jitter_seconds",
        kind: "summary",
        help: "Absolute differences of consecutive RTTs within rounds (sum and count): rate(_sum)/rate(_count) is the mean jitter over any window.",
        value: |v| Some(Value::Float(v.quality.jitter_sum)),
        count: Some(|v| Some(Value::Int(v.quality.jitter_pairs))),
    },
    Family {
        name: "diemcau_endpoint_mos",
        kind: "gauge",
        help: "Conference-quality score (ITU-T G.107/G.107.1 E-model MOS, 1 to 4.5) over the health window's rounds; absent while the endpoint is unknown or down.",
        value: |v| v.mos().map(Value::Float),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_poor_quality_seconds_total",
        kind: "counter",
        help: "Seconds of rounds whose conference-quality score was below [quality] poor_mos.",
        value: |v| Some(Value::Float(v.quality.poor_seconds)),
        count: None,
    },
    Family {
        name: "diemcau_endpoint_resolved",
        kind: "gauge",
        help: "Endpoints written as a host name: 1 while the name has an address (probed), 0 while it has none (not probed); absent for IP addresses.",
        value: |v| {
            v.endpoint
                .host
                .as_ref()
                .map(|_| Value::Int(u64::from(v.endpoint.address.is_some())))
        },
        count: None,
    },
];

/// ICMP series per endpoint, at most (documented in the README): one per family, two per
/// summary.
pub const SERIES_PER_ENDPOINT: usize = series_per_endpoint();

const fn series_per_endpoint() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < FAMILIES.len() {
        n += if FAMILIES[i].count.is_some() { 2 } else { 1 };
        i += 1;
    }
    n
}

/// A per-(endpoint, service check) family; series carry an extra `check` label.
struct CheckFamily {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&CheckView) -> Option<Value>,
}

const CHECK_FAMILIES: &[CheckFamily] = &[
    CheckFamily {
        name: "diemcau_endpoint_check_up",
        kind: "gauge",
        help: "1 if the service check is up, 0 if down (after down_after/up_after damping); absent while unknown.",
        value: |c| c.state.reachable().map(|r| Value::Int(u64::from(r))),
    },
    CheckFamily {
        name: "diemcau_endpoint_check_success",
        kind: "gauge",
        help: "1 if the last attempt of the service check succeeded, else 0.",
        value: |c| c.last.as_ref().map(|o| Value::Int(u64::from(o.success))),
    },
    CheckFamily {
        name: "diemcau_endpoint_check_duration_seconds",
        kind: "gauge",
        help: "Duration of the last attempt of the service check (connect, response or failure).",
        value: |c| c.last.as_ref().map(|o| Value::Float(o.duration.as_secs_f64())),
    },
    CheckFamily {
        name: "diemcau_endpoint_check_status_code",
        kind: "gauge",
        help: "HTTP or SIP status code of the last response of the service check.",
        value: |c| c.status_code().map(|s| Value::Int(u64::from(s))),
    },
    CheckFamily {
        name: "diemcau_endpoint_check_tls_cert_expiry_timestamp_seconds",
        kind: "gauge",
        help: "Unix time at which the TLS certificate seen by the service check expires.",
        value: |c| c.cert_not_after().map(|t| Value::Float(unix_seconds(t))),
    },
    CheckFamily {
        name: "diemcau_endpoint_check_failures_total",
        kind: "counter",
        help: "Failed attempts of the service check.",
        value: |c| Some(Value::Int(c.failures)),
    },
];

/// Series per service check of an endpoint, at most.
pub const SERIES_PER_CHECK: usize = CHECK_FAMILIES.len();

/// Where a chunked rendering stands: endpoint families first, then check families.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    family: usize,
    endpoint: usize,
}

impl Cursor {
    pub fn done(&self) -> bool {
        self.family >= FAMILIES.len() + CHECK_FAMILIES.len()
    }
}

fn write_value(out: &mut Vec<u8>, name: &str, view: &EndpointView, check: Option<&str>, value: Option<Value>) {
    write_sample(out, name, "", view, check, value);
}

fn write_sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    view: &EndpointView,
    check: Option<&str>,
    value: Option<Value>,
) {
    let Some(value) = value else { return };
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    write_label_set(out, &view.endpoint, view.labels_need_escaping, check);
    let _ = match value {
        Value::Int(n) => writeln!(out, " {n}"),
        Value::Float(x) => writeln!(out, " {x}"),
    };
}

/// Appends series to `out` until about `budget` bytes were written or all are done.
/// `diemcau_region_endpoints{province,carrier,state}`: endpoints per region and state, counted
/// from the endpoint table at scrape time (every state written, zeros included, so a region's
/// series never vanish while it has endpoints).
pub fn render_regions(state: &MonitorState, out: &mut Vec<u8>) {
    let mut regions: BTreeMap<(&str, &str), [u32; 4]> = BTreeMap::new();
    for v in &state.endpoints {
        let labels = &v.endpoint.labels;
        regions.entry((&*labels.province, &*labels.carrier)).or_default()[v.state as usize] += 1;
    }
    let name = "diemcau_region_endpoints";
    let _ = writeln!(
        out,
        "# HELP {name} Endpoints per province and carrier, by state.\n# TYPE {name} gauge"
    );
    for ((province, carrier), counts) in regions {
        for s in State::ALL {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"{province=\"");
            escape_label_value(out, province);
            out.extend_from_slice(b"\",carrier=\"");
            escape_label_value(out, carrier);
            let _ = writeln!(out, "\",state=\"{}\"}} {}", s.as_str(), counts[s as usize]);
        }
    }
}

pub fn render_chunk(state: &MonitorState, cursor: &mut Cursor, out: &mut Vec<u8>, budget: usize) {
    let start = out.len();
    while !cursor.done() && out.len() - start < budget {
        let (name, kind, help) = match FAMILIES.get(cursor.family) {
            Some(f) => (f.name, f.kind, f.help),
            None => {
                let f = &CHECK_FAMILIES[cursor.family - FAMILIES.len()];
                (f.name, f.kind, f.help)
            }
        };
        if cursor.endpoint == 0 {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        while let Some(view) = state.endpoints.get(cursor.endpoint) {
            cursor.endpoint += 1;
            match FAMILIES.get(cursor.family) {
                Some(f) => match f.count {
                    None => write_value(out, name, view, None, (f.value)(view)),
                    Some(count) => {
                        write_sample(out, name, "_sum", view, None, (f.value)(view));
                        write_sample(out, name, "_count", view, None, count(view));
                    }
                },
                None => {
                    let f = &CHECK_FAMILIES[cursor.family - FAMILIES.len()];
                    for c in &view.checks {
                        write_value(out, name, view, Some(&c.name), (f.value)(c));
                    }
                }
            }
            if out.len() - start >= budget {
                break;
            }
        }
        if cursor.endpoint >= state.endpoints.len() {
            cursor.family += 1;
            cursor.endpoint = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_diacritics_kept() {
        let mut s = Vec::new();
        escape_label_value(&mut s, "Phường \"Cát\" Lái\\\n");
        assert_eq!(String::from_utf8(s).unwrap(), "Phường \\\"Cát\\\" Lái\\\\\\n");
    }

    #[test]
    fn label_sets_are_written_whole_with_the_check_last() {
        let e = Endpoint {
            id: crate::domain::EndpointId("HN-1".into()),
            labels: crate::domain::Labels {
                province: "Hà Nội".into(),
                district: Some("Ba Đình".into()),
                commune: "Phường \"Cống\" Vị".into(),
                carrier: "VNPT".into(),
            },
            address: Some("127.0.0.1".parse().unwrap()),
            host: None,
            resolution: crate::domain::Resolution::Literal,
            checks: std::sync::Arc::from(Vec::new()),
        };
        assert!(e.labels_need_escaping());
        let mut out = Vec::new();
        write_label_set(&mut out, &e, true, Some("sip"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{endpoint="HN-1",province="Hà Nội",district="Ba Đình",commune="Phường \"Cống\" Vị",carrier="VNPT",check="sip"}"#
        );
        // The two-tier map: no district label at all.
        let e = Endpoint {
            labels: crate::domain::Labels {
                district: None,
                ..e.labels.clone()
            },
            ..e
        };
        let mut out = Vec::new();
        write_label_set(&mut out, &e, true, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{endpoint="HN-1",province="Hà Nội",commune="Phường \"Cống\" Vị",carrier="VNPT"}"#
        );
    }
}
