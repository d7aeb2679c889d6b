//! Per-endpoint metric families in the Prometheus text format, written in chunks straight from
//! the endpoint table so a scrape of 100,000 endpoints never holds the whole page in memory.

use std::io::Write;

use crate::model::Endpoint;
use crate::monitor::{EndpointView, MonitorState, unix_seconds};

/// Escapes a label value per the text exposition format.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `{endpoint="…",province="…",district="…",commune="…",carrier="…"}`.
pub fn label_set(e: &Endpoint) -> String {
    let mut s = String::with_capacity(160);
    let pairs = [
        ("endpoint", e.id.as_str()),
        ("province", &*e.labels.province),
        ("district", &*e.labels.district),
        ("commune", &*e.labels.commune),
        ("carrier", &*e.labels.carrier),
    ];
    s.push('{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(name);
        s.push_str("=\"");
        escape_label_value(&mut s, value);
        s.push('"');
    }
    s.push('}');
    s
}

enum Value {
    Float(f64),
    Int(u64),
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// `None` leaves the endpoint out of this family (e.g. no RTT without a reply).
    value: fn(&EndpointView) -> Option<Value>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "diemcau_endpoint_up",
        kind: "gauge",
        help: "1 if the endpoint is reachable (up or degraded), 0 if down; absent while unknown.",
        value: |v| v.health.state.reachable().map(|r| Value::Int(u64::from(r))),
    },
    Family {
        name: "diemcau_endpoint_state",
        kind: "gauge",
        help: "Endpoint state: 0 unknown, 1 up, 2 degraded, 3 down.",
        value: |v| Some(Value::Int(v.health.state as u64)),
    },
    Family {
        name: "diemcau_endpoint_rtt_seconds",
        kind: "gauge",
        help: "Mean round-trip time of the last round's replies.",
        value: |v| v.last.and_then(|r| r.rtt_avg).map(Value::Float),
    },
    Family {
        name: "diemcau_endpoint_jitter_seconds",
        kind: "gauge",
        help: "Mean absolute difference of consecutive RTTs in the last round.",
        value: |v| v.last.and_then(|r| r.jitter).map(Value::Float),
    },
    Family {
        name: "diemcau_endpoint_loss_ratio",
        kind: "gauge",
        help: "Share of the last round's echo requests that got no reply.",
        value: |v| v.last.map(|r| Value::Float(r.loss_ratio())),
    },
    Family {
        name: "diemcau_endpoint_packets_sent_total",
        kind: "counter",
        help: "Echo requests sent to the endpoint.",
        value: |v| Some(Value::Int(v.packets_sent)),
    },
    Family {
        name: "diemcau_endpoint_packets_received_total",
        kind: "counter",
        help: "Echo replies received from the endpoint in time.",
        value: |v| Some(Value::Int(v.packets_received)),
    },
    Family {
        name: "diemcau_endpoint_transitions_total",
        kind: "counter",
        help: "State changes of the endpoint.",
        value: |v| Some(Value::Int(v.transitions)),
    },
    Family {
        name: "diemcau_endpoint_last_transition_timestamp_seconds",
        kind: "gauge",
        help: "Unix time of the endpoint's last state change.",
        value: |v| v.last_transition.map(|t| Value::Float(unix_seconds(t))),
    },
];

/// Series per endpoint, at most (documented in the README).
pub const SERIES_PER_ENDPOINT: usize = FAMILIES.len();

/// Where a chunked rendering stands.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    family: usize,
    endpoint: usize,
}

impl Cursor {
    pub fn done(&self) -> bool {
        self.family >= FAMILIES.len()
    }
}

/// Appends series to `out` until about `budget` bytes were written or all are done.
pub fn render_chunk(state: &MonitorState, cursor: &mut Cursor, out: &mut Vec<u8>, budget: usize) {
    let start = out.len();
    while !cursor.done() && out.len() - start < budget {
        let f = &FAMILIES[cursor.family];
        if cursor.endpoint == 0 {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind);
        }
        while let Some(view) = state.endpoints.get(cursor.endpoint) {
            cursor.endpoint += 1;
            match (f.value)(view) {
                Some(Value::Int(n)) => {
                    let _ = writeln!(out, "{}{} {n}", f.name, view.label_text);
                }
                Some(Value::Float(x)) => {
                    let _ = writeln!(out, "{}{} {x}", f.name, view.label_text);
                }
                None => {}
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
        let mut s = String::new();
        escape_label_value(&mut s, "Phường \"Cát\" Lái\\\n");
        assert_eq!(s, "Phường \\\"Cát\\\" Lái\\\\\\n");
    }
}
