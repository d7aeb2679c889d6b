//! The dashboards as the test sees them: every panel target and template variable of
//! grafana/dashboards/*.json, the variables resolved to real label values the way Grafana does.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::prometheus::Prometheus;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Target {
    pub panel: String,
    pub expr: String,
}

pub struct Variable {
    pub name: String,
    pub kind: String,
    query: String,
    pub multi: bool,
    /// The value of "All" (`allValue`), when the variable offers it.
    all_value: Option<String>,
}

pub struct Dashboard {
    pub file: String,
    pub targets: Vec<Target>,
    pub variables: Vec<Variable>,
}

pub fn load_dashboards() -> Vec<Dashboard> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("grafana/dashboards"))
        .expect("grafana/dashboards")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in grafana/dashboards");
    files.iter().map(|f| load_dashboard(f)).collect()
}

fn load_dashboard(path: &Path) -> Dashboard {
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{file}: invalid JSON: {e}"));
    let mut targets = Vec::new();
    // Top-level panels, panels nested in (collapsed) rows, and legacy `rows[].panels`.
    fn walk(panels: &Value, out: &mut Vec<Target>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                    out.push(Target {
                        panel: title.clone(),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&d["panels"], &mut targets);
    for row in d["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut targets);
    }
    let variables = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| Variable {
            name: v["name"].as_str().unwrap_or_default().to_string(),
            kind: v["type"].as_str().unwrap_or_default().to_string(),
            query: match &v["query"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or_default().to_string(),
                _ => v["definition"].as_str().unwrap_or_default().to_string(),
            },
            multi: v["multi"].as_bool().unwrap_or(false) || v["includeAll"].as_bool().unwrap_or(false),
            all_value: v["allValue"]
                .as_str()
                .filter(|_| v["includeAll"].as_bool().unwrap_or(false))
                .map(String::from),
        })
        .collect();
    Dashboard {
        file,
        targets,
        variables,
    }
}

/// Grafana built-ins, with durations that suit a 1 s scrape and a 60 s range.
fn builtins() -> Vec<(String, String)> {
    [
        ("__rate_interval", "1m"),
        ("__interval", "1m"),
        ("__range", "5m"),
        ("datasource", "prometheus"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Replaces `${name}`, `${name:fmt}`, `[[name]]` and `$name` (longest names first).
pub fn substitute(expr: &str, bindings: &[(String, String)]) -> String {
    let mut b: Vec<&(String, String)> = bindings.iter().collect();
    b.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut s = expr.to_string();
    for (k, v) in &b {
        s = s.replace(&format!("${{{k}}}"), v).replace(&format!("[[{k}]]"), v);
        for fmt in ["regex", "pipe", "raw"] {
            s = s.replace(&format!("${{{k}:{fmt}}}"), v);
        }
    }
    for (k, v) in &b {
        s = s.replace(&format!("${k}"), v);
    }
    s
}

/// A value as it must appear inside a PromQL double-quoted string.
pub fn promql_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Multi-value variable: a regex alternation of the real values (metacharacters escaped).
fn regex_of(values: &[String]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .map(|c| {
                    if "\\.+*?()|[]{}^$".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    promql_str(&escaped.join("|"))
}

/// The values a variable offers, given the variables bound before it.
fn variable_values(prom: &Prometheus, dash: &str, v: &Variable, bound: &[(String, String)]) -> Vec<String> {
    let q = substitute(v.query.trim(), bound);
    let values = match v.kind.as_str() {
        "query" => {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!(
                        "{dash}: variable ${}: unsupported query {q:?} (teach this test)",
                        v.name
                    )
                });
            let (selector, label) = match inner.rsplit_once(',') {
                Some((sel, label)) => (Some(sel.trim()), label.trim()),
                None => (None, inner.trim()),
            };
            prom.label_values(label, selector)
                .unwrap_or_else(|e| panic!("{dash}: variable ${} query {q:?} failed: {e}", v.name))
        }
        "custom" => q.split(',').map(|s| s.trim().to_string()).collect(),
        "interval" => vec!["1m".into()],
        "constant" | "textbox" => vec![q.clone()],
        other => panic!(
            "{dash}: variable ${}: unsupported type {other:?} (teach this test)",
            v.name
        ),
    };
    assert!(
        !values.is_empty() || v.all_value.is_some(),
        "{dash}: variable ${} ({q}) has no values and no All",
        v.name
    );
    values
}

/// A multi-value variable: the regex of every value, or "All" when it has none (Grafana then
/// offers All alone, e.g. the districts of a province of the two-tier map).
fn multi_value(v: &Variable, values: &[String]) -> String {
    match (&v.all_value, values.is_empty()) {
        (Some(all), true) => all.clone(),
        _ => regex_of(values),
    }
}

/// Binds the variables from `from` on: multi-value → regex of every value, single → the first.
fn complete(
    prom: &Prometheus,
    dash: &Dashboard,
    from: usize,
    mut bound: Vec<(String, String)>,
) -> Vec<(String, String)> {
    for v in dash.variables.iter().skip(from).filter(|v| v.kind != "datasource") {
        let values = variable_values(prom, &dash.file, v, &bound);
        let value = if v.multi {
            multi_value(v, &values)
        } else {
            promql_str(&values[0])
        };
        bound.push((v.name.clone(), value));
    }
    bound
}

/// Resolves every variable to real values. A single-value variable gets the candidate (up to 12,
/// spread over its values) under which the most of the dashboard's queries return data, e.g.
/// the province that has a down district, an endpoint that answers.
pub fn resolve(prom: &Prometheus, dash: &Dashboard) -> Vec<(String, String)> {
    let mut bound = builtins();
    for (i, v) in dash.variables.iter().enumerate() {
        if v.kind == "datasource" {
            continue;
        }
        let values = variable_values(prom, &dash.file, v, &bound);
        let value = if v.multi {
            multi_value(v, &values)
        } else {
            let step = values.len().div_ceil(12);
            let mut best: Option<(usize, String)> = None;
            for cand in values.iter().step_by(step) {
                let mut b = bound.clone();
                b.push((v.name.clone(), promql_str(cand)));
                let b = complete(prom, dash, i + 1, b);
                let score = dash
                    .targets
                    .iter()
                    .filter(|t| prom.query(&substitute(&t.expr, &b)).is_ok_and(|n| n > 0))
                    .count();
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, cand.clone()));
                }
            }
            promql_str(&best.unwrap().1)
        };
        bound.push((v.name.clone(), value));
    }
    bound
}
