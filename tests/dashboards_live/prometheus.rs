//! A real Prometheus on 127.0.0.1 with the repository's rules, and its HTTP API. Shared by
//! tests/dashboards_live.rs and tests/vantages_live.rs, which each use part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dashboards::repo;

/// A real Prometheus on 127.0.0.1, killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target_port: u16) -> Prometheus {
        let rules_dir = repo().join("deploy/prometheus/rules");
        let mut rules: Vec<PathBuf> = std::fs::read_dir(&rules_dir)
            .expect("deploy/prometheus/rules")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        rules.sort();
        assert!(!rules.is_empty(), "no rule files in {}", rules_dir.display());
        let rule_files: String = rules
            .iter()
            .map(|p| format!("  - {:?}\n", p.display().to_string()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{rule_files}\
             scrape_configs:\n  - job_name: diemcau\n    static_configs:\n      - targets: [\"127.0.0.1:{target_port}\"]\n"
        );
        Self::start_with(&config)
    }

    /// A real Prometheus on 127.0.0.1 with `config` as its prometheus.yml (in a temp dir of its
    /// own, with its data), ready to answer.
    pub fn start_with(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = crate::common::free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut p = Prometheus { child, port, dir };
        p.wait_until(Duration::from_secs(20), "Prometheus /-/ready", |p| {
            crate::common::http(p.port, "GET", "/-/ready", &[]).0 == 200
        });
        p
    }

    /// Kills it (SIGKILL: a crash, no clean shutdown) and waits for it; its files stay until drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    pub fn wait_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&mut Prometheus) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; prometheus log tail:\n{}",
                crate::common::tail(&self.log(), 30)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// GET an API path; returns the HTTP status and the parsed body (Null if not JSON).
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let url = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let (status, body) = crate::common::http(self.port, "GET", &url, &[]);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Instant query; `Err` carries the error, `Ok` the number of series (or 1 for a scalar).
    pub fn query(&self, expr: &str) -> Result<usize, String> {
        let r = self.api("/api/v1/query", &[("query", expr)]);
        count(r)
    }

    /// Instant query; `Ok` carries the label set of every series (none for a scalar).
    pub fn series(&self, expr: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
        let (status, v) = self.api("/api/v1/query", &[("query", expr)]);
        let vector = v["data"]["resultType"] == "vector";
        count((status, v.clone()))?;
        let labels = |s: &Value| -> BTreeMap<String, String> {
            let metric = s["metric"].as_object().into_iter().flatten();
            metric
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        };
        let result = v["data"]["result"].as_array().filter(|_| vector);
        Ok(result.into_iter().flatten().map(labels).collect())
    }

    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: &str) -> Result<usize, String> {
        let (s, e) = (format!("{start:.3}"), format!("{end:.3}"));
        count(self.api(
            "/api/v1/query_range",
            &[("query", expr), ("start", &s), ("end", &e), ("step", step)],
        ))
    }

    /// Instant vector as {label set without __name__ → value}.
    pub fn vector(&self, expr: &str) -> BTreeMap<String, f64> {
        let (_, v) = self.api("/api/v1/query", &[("query", expr)]);
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let mut m = r["metric"].as_object().cloned().unwrap_or_default();
                m.remove("__name__");
                let value = r["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
                (Value::Object(m).to_string(), value)
            })
            .collect()
    }

    pub fn scalar(&self, expr: &str) -> f64 {
        let (_, v) = self.api("/api/v1/query", &[("query", expr)]);
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0)
    }

    /// Values of `label` on the series matching `selector` (or all series when `None`).
    pub fn label_values(&self, label: &str, selector: Option<&str>) -> Result<Vec<String>, String> {
        let path = format!("/api/v1/label/{label}/values");
        let r = match selector {
            Some(sel) => self.api(&path, &[("match[]", sel)]),
            None => self.api(&path, &[]),
        };
        match r {
            (200, v) if v["status"] == "success" => Ok(v["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()),
            (status, v) => Err(format!("HTTP {status}: {v}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count((status, v): (u16, Value)) -> Result<usize, String> {
    if status != 200 || v["status"] != "success" {
        return Err(format!("HTTP {status}: {} {}", v["errorType"], v["error"]));
    }
    match v["data"]["resultType"].as_str() {
        Some("vector" | "matrix") => Ok(v["data"]["result"].as_array().map_or(0, Vec::len)),
        Some("scalar" | "string") => Ok(1),
        other => Err(format!("unexpected resultType {other:?}")),
    }
}

/// Percent-encodes a query parameter (UTF-8 bytes, RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
