//! Under the Prometheus Operator every ServiceMonitor target gets the label `endpoint` (the port
//! name). diemcau's series carry their own `endpoint` (the endpoint id), so by default
//! Prometheus renames it `exported_endpoint` and every `on(endpoint)` join in the rules misfires.
//!
//! `deploy/checks/operator_scrape_config.py` turns the kit's own ServiceMonitor, Service and
//! StatefulSet into the scrape job the operator generates (its relabelling rules, with a static
//! target carrying the `__meta_kubernetes_*` labels Kubernetes discovery would give the pod).
//! A real Prometheus scrapes a live daemon through four such jobs:
//! - the kit as shipped (honorLabels);
//! - the kit under a Prometheus with `overrideHonorLabels: true` (honor_labels forced off: the
//!   ServiceMonitor's metricRelabelings move `exported_endpoint` back);
//! - the kit with its Service renamed as a per-vantage overlay does (job stays "diemcau");
//! - the operator's defaults (no honorLabels, no metricRelabelings): the failure the kit avoids.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, fast_config, free_port, http, loopback_inventory, require_tool};

const N: usize = 20;

fn query(port: u16, expr: &str) -> f64 {
    let path = format!(
        "/api/v1/query?query={}",
        percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC)
    );
    let (status, body) = http(port, "GET", &path, &[]);
    assert_eq!(status, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// The operator's scrape job for the kit's ServiceMonitor, from the generator.
fn operator_job(target: &str, variant: &str, flags: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg("deploy/checks/operator_scrape_config.py")
        .args([
            "--target",
            target,
            "--job-name",
            variant,
            "--variant",
            variant,
            "--interval",
            "1s",
        ])
        .args(flags)
        .output()
        .expect("run python3 deploy/checks/operator_scrape_config.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("job JSON")
}

#[test]
fn the_kits_service_monitor_keeps_the_endpoint_label_under_the_operators_relabelling() {
    if !require_tool("prometheus") || !require_tool("python3") {
        return;
    }
    let mut d = Daemon::start(&fast_config("1s", 2, 1), &loopback_inventory(N));
    d.wait_until(Duration::from_secs(30), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let target = format!("127.0.0.1:{}", d.port);
    let variants: [(&str, &[&str]); 4] = [
        ("kit", &[]),
        ("kit-override", &["--override-honor-labels"]),
        ("kit-vantage", &["--service-name", "diemcau-vnpt-hanoi"]),
        ("operator-default", &["--bare"]),
    ];
    let jobs: Vec<serde_json::Value> = variants
        .iter()
        .map(|(v, flags)| operator_job(&target, v, flags))
        .collect();
    assert_eq!(jobs[0]["honor_labels"], true, "the kit honours labels");
    assert_eq!(
        jobs[1]["honor_labels"], false,
        "overrideHonorLabels forces honor_labels off"
    );
    assert!(jobs[3].get("metric_relabel_configs").is_none());
    let config = serde_json::json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": jobs,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    // JSON is YAML: Prometheus reads it as is.
    std::fs::write(dir.path().join("prometheus.yml"), config.to_string()).expect("config");
    let port = free_port();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    let started = Instant::now();
    let n = N as f64;
    let ready = loop {
        let ok = http(port, "GET", "/-/ready", &[]).0 == 200
            && variants
                .iter()
                .all(|(v, _)| query(port, &format!("count(diemcau_endpoint_up{{variant=\"{v}\"}})")) == n);
        if ok || started.elapsed() > Duration::from_secs(60) {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let q = |expr: String| query(port, &expr);
    let mut results = Vec::new();
    for (v, _) in &variants[..3] {
        results.push((
            *v,
            [
                // The endpoint label is the endpoint id, on every endpoint series…
                q(format!(
                    "count(diemcau_endpoint_up{{variant=\"{v}\", endpoint=~\"E.+\"}})"
                )),
                // …no exported_endpoint anywhere…
                q(format!("count({{variant=\"{v}\", exported_endpoint!=\"\"}})")),
                // …an on(endpoint) join as the rules write them gives one series per endpoint…
                q(format!(
                    "count(diemcau_endpoint_up{{variant=\"{v}\"}} unless on(endpoint) \
                     (diemcau_endpoint_maintenance{{variant=\"{v}\"}} == 1))"
                )),
                // …job is "diemcau" whatever the Service is called…
                q(format!(
                    "count(diemcau_endpoint_up{{variant=\"{v}\", job=\"diemcau\"}})"
                )),
                // …and the target itself (up) carries the operator's labels.
                q(format!(
                    "count(up{{variant=\"{v}\", job=\"diemcau\", namespace=\"diemcau\", pod=\"diemcau-0\", \
                     container=\"diemcau\", endpoint=\"metrics\"}} == 1)"
                )),
            ],
        ));
    }
    let vantage_service = q("count(up{variant=\"kit-vantage\", service=\"diemcau-vnpt-hanoi\"})".into());
    let default_renamed =
        q("count(diemcau_endpoint_up{variant=\"operator-default\", exported_endpoint=~\"E.+\"})".into());
    let default_port = q("count(diemcau_endpoint_up{variant=\"operator-default\", endpoint=\"metrics\"})".into());
    let _ = prom.kill();
    let _ = prom.wait();
    d.stop();
    assert!(ready, "Prometheus scraped every job");
    for (v, [kept, renamed, joined, job, up]) in results {
        assert_eq!(kept, n, "{v}: the endpoint label is the endpoint id");
        assert_eq!(renamed, 0.0, "{v}: no exported_endpoint");
        assert_eq!(joined, n, "{v}: on(endpoint) joins one series per endpoint");
        assert_eq!(job, n, "{v}: job=\"diemcau\"");
        assert_eq!(up, 1.0, "{v}: the operator's target labels");
    }
    assert_eq!(vantage_service, 1.0, "kit-vantage: service is the renamed Service");
    // Without honoured labels or the metric relabelling the operator's label wins.
    assert_eq!(default_renamed, n);
    assert_eq!(default_port, n);
}
