//! Service checks beyond ICMP: named `[check.NAME]` tables, the `[checks]` defaults (per file,
//! per carrier, or per endpoint through the inventory's optional `checks` column) and which
//! checks decide an endpoint's Up/Down state.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::diag::{LoadError, Problem, line_col};
use crate::probe::check::{Check, DEFAULT_TIMEOUT, HttpCheck, SipCheck, SipTransport, TcpCheck};

/// The built-in ICMP check's name; always probed for every endpoint.
pub const ICMP: &str = "icmp";

#[derive(Debug, Default, Deserialize)]
pub struct RawCheck {
    pub kind: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
    // sip
    pub transport: Option<Spanned<String>>,
    pub user: Option<String>,
    // http
    pub scheme: Option<Spanned<String>>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub expected_status: Option<Spanned<Vec<RawStatus>>>,
    pub max_redirects: Option<Spanned<i64>>,
    pub body_limit: Option<Spanned<i64>>,
    // http, sip over TLS
    pub insecure_skip_verify: Option<bool>,
}

/// `200` or `"200-299"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    Code(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
pub struct RawChecks {
    pub default: Option<Spanned<Vec<Spanned<String>>>>,
    pub carrier: Option<BTreeMap<String, Spanned<Vec<Spanned<String>>>>>,
    pub decide: Option<Spanned<Vec<Spanned<String>>>>,
    pub interval: Option<Spanned<String>>,
    pub max_in_flight: Option<Spanned<i64>>,
}

/// A configured check with its name (the `check` metric label).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedCheck {
    pub name: Arc<str>,
    pub check: Check,
    /// Whether this check takes part in deciding Up/Down.
    pub decides: bool,
}

/// Validated check settings. Check ids are indexes into `named`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChecksConfig {
    pub named: Vec<NamedCheck>,
    /// Checks of endpoints whose carrier has no entry in `by_carrier` and whose inventory row
    /// names none.
    pub default: Vec<u16>,
    pub by_carrier: BTreeMap<String, Vec<u16>>,
    pub icmp_decides: bool,
    /// One attempt per service check per endpoint per interval, spread over it.
    pub interval: Duration,
    /// Service checks running at once, at most.
    pub max_in_flight: usize,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            named: Vec::new(),
            default: Vec::new(),
            by_carrier: BTreeMap::new(),
            icmp_decides: true,
            interval: Duration::from_secs(30),
            max_in_flight: 256,
        }
    }
}

impl ChecksConfig {
    pub fn id(&self, name: &str) -> Option<u16> {
        self.named.iter().position(|c| &*c.name == name).map(|i| i as u16)
    }

    /// The checks of an endpoint with this carrier and no per-row list.
    pub fn for_carrier(&self, carrier: &str) -> &[u16] {
        self.by_carrier.get(carrier).unwrap_or(&self.default)
    }

    /// Parses a `checks` inventory cell (`icmp;sip;web`) into check ids.
    pub fn parse_list(&self, cell: &str) -> Result<Vec<u16>, String> {
        let mut ids = Vec::new();
        for name in cell.split([';', ' ']).map(str::trim).filter(|n| !n.is_empty()) {
            if name == ICMP {
                continue;
            }
            match self.id(name) {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => return Err(name.to_string()),
            }
        }
        Ok(ids)
    }
}

struct V<'a> {
    file: &'a Path,
    text: &'a str,
    errors: &'a mut LoadError,
}

impl V<'_> {
    fn at<T>(&mut self, value: &Spanned<T>, field: &str, message: String, fix: &str) {
        let (l, c) = line_col(self.text, value.span().start);
        self.errors
            .push(Problem::at(self.file, l, Some(c), field).says(message).fix(fix));
    }

    fn duration(&mut self, value: &Option<Spanned<String>>, field: &str, default: Duration) -> Duration {
        let Some(v) = value else { return default };
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(3600) => d,
            _ => {
                self.at(
                    v,
                    field,
                    format!("{:?} is not a duration from 1ms to 1h", v.get_ref()),
                    "write e.g. \"3s\"",
                );
                default
            }
        }
    }

    fn number(&mut self, value: &Option<Spanned<i64>>, field: &str, range: RangeInclusive<i64>) -> Option<i64> {
        let v = value.as_ref()?;
        if range.contains(v.get_ref()) {
            Some(*v.get_ref())
        } else {
            self.at(
                v,
                field,
                format!("{} is out of range", v.get_ref()),
                &format!("choose a whole number from {} to {}", range.start(), range.end()),
            );
            None
        }
    }
}

/// Validates the `[check.*]` tables and the `[checks]` section.
pub fn validate(
    file: &Path,
    text: &str,
    raw_named: &BTreeMap<String, RawCheck>,
    raw: &RawChecks,
    errors: &mut LoadError,
) -> ChecksConfig {
    let mut v = V { file, text, errors };
    let mut cfg = ChecksConfig::default();
    for (name, r) in raw_named {
        let field = |f: &str| format!("check.{name}.{f}");
        if name == ICMP || name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            v.errors.push(
                Problem::at(file, 0, None, format!("check.{name}"))
                    .says("is not a usable check name")
                    .fix("use letters, digits, '-' and '_', and not \"icmp\" (built in)"),
            );
            continue;
        }
        let Some(kind) = &r.kind else {
            v.errors.push(
                Problem::at(file, 0, None, field("kind"))
                    .says("is missing")
                    .fix("add kind = \"tcp\", \"http\" or \"sip\""),
            );
            continue;
        };
        let timeout = v.duration(&r.timeout, &field("timeout"), DEFAULT_TIMEOUT);
        let port = v.number(&r.port, &field("port"), 1..=65535).map(|p| p as u16);
        let check = match kind.get_ref().as_str() {
            "tcp" => match port {
                Some(port) => Check::Tcp(TcpCheck { port, timeout }),
                None => {
                    v.at(
                        kind,
                        &field("port"),
                        "a tcp check needs a port".into(),
                        "add port = 1720 (for example)",
                    );
                    continue;
                }
            },
            "http" => {
                let https = match r.scheme.as_ref() {
                    None => false,
                    Some(s) if s.get_ref() == "http" => false,
                    Some(s) if s.get_ref() == "https" => true,
                    Some(s) => {
                        v.at(
                            s,
                            &field("scheme"),
                            format!("{:?} is not a scheme", s.get_ref()),
                            "write \"http\" or \"https\"",
                        );
                        false
                    }
                };
                let mut expected = Vec::new();
                if let Some(list) = &r.expected_status {
                    for item in list.get_ref() {
                        let item = match item {
                            RawStatus::Code(n) => n.to_string(),
                            RawStatus::Text(t) => t.clone(),
                        };
                        match parse_status_range(&item) {
                            Some(range) => expected.push(range),
                            None => v.at(
                                list,
                                &field("expected_status"),
                                format!("{item:?} is not a status or range"),
                                "write e.g. [200, \"300-399\"]",
                            ),
                        }
                    }
                }
                let d = HttpCheck::default();
                Check::Http(HttpCheck {
                    scheme_https: https,
                    port,
                    path: r.path.clone().unwrap_or(d.path),
                    host: r.host.clone(),
                    expected_status: if expected.is_empty() {
                        d.expected_status
                    } else {
                        expected
                    },
                    timeout,
                    insecure_skip_verify: r.insecure_skip_verify.unwrap_or(false),
                    max_redirects: v
                        .number(&r.max_redirects, &field("max_redirects"), 0..=10)
                        .map_or(d.max_redirects, |n| n as u8),
                    body_limit: v
                        .number(&r.body_limit, &field("body_limit"), 0..=16 << 20)
                        .map_or(d.body_limit, |n| n as usize),
                })
            }
            "sip" => {
                let transport = match r.transport.as_ref().map(|t| t.get_ref().as_str()) {
                    None | Some("udp") => SipTransport::Udp,
                    Some("tcp") => SipTransport::Tcp,
                    Some("tls") => SipTransport::Tls,
                    Some(other) => {
                        let other = other.to_string();
                        if let Some(t) = &r.transport {
                            v.at(
                                t,
                                &field("transport"),
                                format!("{other:?} is not a SIP transport"),
                                "write \"udp\", \"tcp\" or \"tls\"",
                            );
                        }
                        SipTransport::Udp
                    }
                };
                Check::Sip(SipCheck {
                    transport,
                    port: port.unwrap_or(transport.default_port()),
                    timeout,
                    user: r.user.clone().unwrap_or_else(|| "ping".into()),
                    insecure_skip_verify: r.insecure_skip_verify.unwrap_or(false),
                })
            }
            other => {
                let other = other.to_string();
                v.at(
                    kind,
                    &field("kind"),
                    format!("{other:?} is not a check kind"),
                    "write \"tcp\", \"http\" or \"sip\" (ICMP is built in)",
                );
                continue;
            }
        };
        cfg.named.push(NamedCheck {
            name: name.as_str().into(),
            check,
            decides: false,
        });
    }

    let names = |list: &Spanned<Vec<Spanned<String>>>, field: &str, v: &mut V<'_>| -> (Vec<u16>, bool) {
        let mut ids = Vec::new();
        let mut icmp = false;
        for n in list.get_ref() {
            if n.get_ref() == ICMP {
                icmp = true;
            } else if let Some(id) = cfg.id(n.get_ref()) {
                ids.push(id);
            } else {
                v.at(
                    n,
                    field,
                    format!("names the unknown check {:?}", n.get_ref()),
                    "define it as [check.NAME] or remove it",
                );
            }
        }
        (ids, icmp)
    };
    let default = raw
        .default
        .as_ref()
        .map(|l| names(l, "checks.default", &mut v).0)
        .unwrap_or_default();
    let mut by_carrier = BTreeMap::new();
    for (carrier, list) in raw.carrier.iter().flatten() {
        by_carrier.insert(
            carrier.clone(),
            names(list, &format!("checks.carrier.{carrier}"), &mut v).0,
        );
    }
    let decide = raw
        .decide
        .as_ref()
        .map(|l| (names(l, "checks.decide", &mut v), l.span()));
    let interval = v.duration(&raw.interval, "checks.interval", Duration::from_secs(30));
    let max_in_flight = v
        .number(&raw.max_in_flight, "checks.max_in_flight", 1..=10_000)
        .map_or(256, |n| n as usize);
    cfg.default = default;
    cfg.by_carrier = by_carrier;
    cfg.interval = interval;
    cfg.max_in_flight = max_in_flight;
    if let Some(((ids, icmp), span)) = decide {
        if ids.is_empty() && !icmp {
            let (l, c) = line_col(text, span.start);
            errors.push(
                Problem::at(file, l, Some(c), "checks.decide")
                    .says("is empty: nothing would decide whether an endpoint is up")
                    .fix("list at least one check, e.g. [\"icmp\"]"),
            );
        }
        cfg.icmp_decides = icmp;
        for id in ids {
            cfg.named[id as usize].decides = true;
        }
    }
    cfg
}

fn parse_status_range(s: &str) -> Option<RangeInclusive<u16>> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    ((100..=599).contains(&a) && a <= b && b <= 599).then_some(a..=b)
}
