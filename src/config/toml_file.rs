//! The TOML config file: raw serde structs (every value spanned, so errors can point at it) and
//! the search for unknown keys.
//!
//! Unknown keys are collected with `serde_ignored` rather than `deny_unknown_fields`, so that
//! every misspelt key in the file is reported in one go, each with its line and column.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::diag::{LineIndex, LoadError, Problem, line_col};

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub web: RawWeb,
    #[serde(default)]
    pub inventory: RawInventory,
    #[serde(default)]
    pub probe: RawProbe,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub check: std::collections::BTreeMap<String, super::checks::RawCheck>,
    #[serde(default)]
    pub checks: super::checks::RawChecks,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub maintenance: Vec<crate::domain::maintenance::RawMaintenance>,
    #[serde(default)]
    pub report: RawReport,
    #[serde(default)]
    pub geo: RawGeo,
    #[serde(default)]
    pub quality: RawQuality,
    #[serde(default)]
    pub dns: RawDns,
    #[serde(default)]
    pub vantage: RawVantage,
    #[serde(default)]
    pub shard: RawShard,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub monitor: RawMonitor,
}

/// `[monitor]`: the monitor's own network (see `config::paths`).
#[derive(Debug, Default, Deserialize)]
pub struct RawMonitor {
    pub references: Option<Vec<Spanned<String>>>,
}

/// `[paths]`: path tracing (see [`super::paths`]).
#[derive(Debug, Default, Deserialize)]
pub struct RawPaths {
    pub trace: Option<Spanned<bool>>,
    pub budget: Option<Spanned<f64>>,
    pub refresh: Option<Spanned<String>>,
}

/// `[shard]`: this instance's share of the inventory (see [`super::shard`]).
#[derive(Debug, Default, Deserialize)]
pub struct RawShard {
    pub count: Option<Spanned<i64>>,
    pub index: Option<Spanned<i64>>,
    pub index_from_hostname: Option<Spanned<bool>>,
    pub replicas: Option<Spanned<i64>>,
}

/// `[vantage]`: where this instance probes from (see [`super::vantage`]).
#[derive(Debug, Default, Deserialize)]
pub struct RawVantage {
    pub name: Option<Spanned<String>>,
    /// `"all"` or a count of vantages.
    pub quorum: Option<Spanned<toml::Value>>,
}

/// `[quality]`: the conference-quality score (docs/quality.md).
#[derive(Debug, Default, Deserialize)]
pub struct RawQuality {
    /// Codec of every endpoint not named below.
    pub codec: Option<Spanned<String>>,
    pub poor_mos: Option<Spanned<f64>>,
    /// Carrier → codec.
    pub carriers: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    /// Endpoint id → codec.
    pub endpoints: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    /// Built-in codec name → planning values that replace its own.
    pub codecs: Option<std::collections::BTreeMap<String, Spanned<RawCodec>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCodec {
    pub ie: Option<Spanned<f64>>,
    pub bpl: Option<Spanned<f64>>,
}

/// `[dns]`: how inventory host names are resolved (see [`super::dns`]).
#[derive(Debug, Default, Deserialize)]
pub struct RawDns {
    pub servers: Option<SpannedList>,
    pub timeout: Option<Spanned<String>>,
    pub min_ttl: Option<Spanned<String>>,
    pub max_ttl: Option<Spanned<String>>,
    pub stale_limit: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<i64>>,
    pub prefer: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGeo {
    /// CSV with columns `province` (or `province_name`), `lat`, `lon`.
    pub province_centroids: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub path: Option<Spanned<String>>,
    pub heartbeat: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawReport {
    pub time_zone: Option<Spanned<String>>,
    pub default_target: Option<Spanned<f64>>,
    pub targets: Option<std::collections::BTreeMap<String, Spanned<f64>>>,
    /// Which fault places count against a carrier's target (see `domain::sla_cause`).
    pub charge: Option<Spanned<Vec<String>>>,
    pub charge_by_carrier: Option<std::collections::BTreeMap<String, Spanned<Vec<String>>>>,
    /// `[[report.schedule]]`: monthly reports written to a directory, optionally mailed.
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
    /// `[report.smtp]`: the mail server of the scheduled reports.
    pub smtp: Option<RawSmtp>,
}

/// Strings as written, each with its place in the file.
pub type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Default, Deserialize)]
pub struct RawSchedule {
    pub name: Option<Spanned<String>>,
    pub formats: Option<SpannedList>,
    pub by: Option<SpannedList>,
    pub directory: Option<Spanned<String>>,
    pub mail_to: Option<SpannedList>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSmtp {
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub security: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawWeb {
    pub listen_address: Option<Spanned<String>>,
    pub probe_targets: Option<Spanned<String>>,
    pub enable_lifecycle: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawInventory {
    pub files: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawProbe {
    pub interval: Option<Spanned<String>>,
    pub packets: Option<Spanned<i64>>,
    pub packet_spacing: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub socket: Option<Spanned<String>>,
    pub confirm_packets: Option<Spanned<i64>>,
    pub confirm_spacing: Option<Spanned<String>>,
    pub confirm_budget: Option<Spanned<f64>>,
    pub watch_spacing: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawState {
    pub down_after: Option<Spanned<i64>>,
    pub up_after: Option<Spanned<i64>>,
    #[serde(default)]
    pub degraded: RawDegraded,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDegraded {
    pub loss_ratio: Option<Spanned<f64>>,
    pub rtt: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
    pub window: Option<Spanned<i64>>,
}

/// Parses the text; syntax and type errors end the parse (TOML cannot be read past them), but
/// unknown keys are all collected and reported together with any later validation problems.
pub fn parse(file: &Path, text: &str, errors: &mut LoadError) -> Option<RawConfig> {
    let deserializer = toml::Deserializer::parse(text);
    let deserializer = match deserializer {
        Ok(d) => d,
        Err(e) => {
            errors.push(toml_problem(file, text, &e));
            return None;
        }
    };
    let mut unknown: Vec<Vec<String>> = Vec::new();
    let raw: Result<RawConfig, _> = serde_ignored::deserialize(deserializer, |path| {
        unknown.push(segments(&path));
    });
    if !unknown.is_empty() {
        // One pass over the document and one line index for every unknown key: a file of
        // thousands of misspelt keys is reported in linear time, the first ones in full.
        let spans = key_spans(text);
        let lines = LineIndex::new(text);
        let shown = unknown.len().min(MAX_UNKNOWN_KEYS_SHOWN);
        for keys in &unknown[..shown] {
            let (line, column) = spans.get(keys).map_or((0, 0), |start| lines.line_col(text, *start));
            errors.push(
                Problem::at(file, line, Some(column), keys.join("."))
                    .says("unknown key")
                    .fix("remove it or correct its spelling; the README lists every key"),
            );
        }
        if unknown.len() > shown {
            errors.push(
                Problem::at(file, 0, None, "file")
                    .says(format!("{} more unknown keys not listed", unknown.len() - shown))
                    .fix("is this a diemcau config? The README lists every key"),
            );
        }
    }
    match raw {
        Ok(raw) => Some(raw),
        Err(e) => {
            errors.push(toml_problem(file, text, &e));
            None
        }
    }
}

fn toml_problem(file: &Path, text: &str, e: &toml::de::Error) -> Problem {
    let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
    let message = e.message().trim().replace('\n', " ");
    Problem::at(file, line, Some(column), "toml")
        .says(message)
        .fix("correct the value's type or the TOML syntax at this place")
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Seq { parent, index } => {
            let mut v = segments(parent);
            v.push(index.to_string());
            v
        }
        P::Map { parent, key } => {
            let mut v = segments(parent);
            v.push(key.clone());
            v
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => segments(parent),
    }
}

/// Unknown keys reported one by one at most; the rest are counted.
const MAX_UNKNOWN_KEYS_SHOWN: usize = 100;

/// Where every key of the document starts, by its path of table keys.
fn key_spans(text: &str) -> HashMap<Vec<String>, usize> {
    fn walk(table: &toml::de::DeTable<'_>, path: &mut Vec<String>, out: &mut HashMap<Vec<String>, usize>) {
        for (k, v) in table.iter() {
            path.push(k.get_ref().to_string());
            out.insert(path.clone(), k.span().start);
            match v.get_ref() {
                toml::de::DeValue::Table(t) => walk(t, path, out),
                // `[[report.schedule]]`: the element's index is the next path segment.
                toml::de::DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let toml::de::DeValue::Table(t) = item.get_ref() {
                            path.push(i.to_string());
                            walk(t, path, out);
                            path.pop();
                        }
                    }
                }
                _ => {}
            }
            path.pop();
        }
    }
    let mut out = HashMap::new();
    if let Ok(root) = toml::de::DeTable::parse(text) {
        walk(root.get_ref(), &mut Vec::new(), &mut out);
    }
    out
}

/// Where the `index`-th `[[key]]` table starts, for errors about it.
pub fn array_table_position(text: &str, key: &str, index: usize) -> Option<(usize, usize)> {
    table_position(text, &[key], Some(index))
}

/// Where the table at `path` starts (`["report", "smtp"]`), or its `index`-th element when it
/// is an array of tables (`["report", "schedule"]`, `Some(0)`).
pub fn table_position(text: &str, path: &[&str], index: Option<usize>) -> Option<(usize, usize)> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let (last, parents) = path.split_last()?;
    for key in parents {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref() == key)?;
        table = value.get_ref().as_table()?;
    }
    let (k, value) = table.iter().find(|(k, _)| k.get_ref() == last)?;
    let span = match index {
        Some(i) => value.get_ref().as_array()?.get(i)?.span(),
        None => k.span(),
    };
    Some(line_col(text, span.start))
}

/// Position of a spanned value as (line, column).
pub fn position<T>(text: &str, value: &Spanned<T>) -> (usize, usize) {
    line_col(text, value.span().start)
}
