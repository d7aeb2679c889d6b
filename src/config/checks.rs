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
use crate::probe::params::{Params, RawParams};
use crate::probe::{Check, KINDS};

/// The built-in ICMP check's name; always probed for every endpoint.
pub const ICMP: &str = "icmp";

/// A `[check.NAME]` table as written; its kind reads it (see [`crate::probe::params`]).
pub type RawCheck = RawParams;

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
        let Some(kind) = r.get("kind") else {
            v.errors.push(
                Problem::at(file, 0, None, field("kind"))
                    .says("is missing")
                    .fix(format!("add kind = {}", kind_list())),
            );
            continue;
        };
        let kind_name = kind.get_ref().as_str().unwrap_or_default().to_string();
        let prefix = format!("check.{name}");
        let params = Params::new(r, &prefix, file, text, v.errors);
        let check = match Check::from_params(&kind_name, params) {
            Ok(Some(check)) => check,
            Ok(None) => continue,
            Err(()) => {
                let shown = kind.get_ref().to_string();
                v.at(
                    kind,
                    &field("kind"),
                    format!("{shown} is not a check kind"),
                    &format!("write {} (ICMP is built in)", kind_list()),
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

/// `"tcp", "http" or "sip"`, from the kinds table.
fn kind_list() -> String {
    let quoted: Vec<String> = KINDS.iter().map(|k| format!("{k:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}
