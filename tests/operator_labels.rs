//! Under the Prometheus Operator every ServiceMonitor target gets the label `endpoint` (the port
//! name). diemcau's series carry their own `endpoint` (the endpoint id), so by default
//! Prometheus renames it `exported_endpoint` and every `on(endpoint)` join in the rules misfires.
//! The kit's ServiceMonitor sets `honorLabels: true`; this test reproduces the operator's
//! relabelling in a real Prometheus, once with and once without honoured labels.

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

#[test]
fn honoured_labels_keep_the_endpoint_label_under_the_operators_relabelling() {
    if !require_tool("prometheus") {
        return;
    }
    let mut d = Daemon::start(&fast_config("1s", 2, 1), &loopback_inventory(N));
    d.wait_until(Duration::from_secs(30), "/-/ready", |d| d.get("/-/ready").0 == 200);
    // What the operator generates for a ServiceMonitor endpoint (trimmed): target labels
    // namespace, service, pod, container and endpoint (the port name).
    let job = |name: &str, honor: bool| {
        format!(
            "  - job_name: {name}\n    honor_labels: {honor}\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n    \
             relabel_configs:\n\
             \x20     - {{ target_label: namespace, replacement: diemcau }}\n\
             \x20     - {{ target_label: service, replacement: diemcau }}\n\
             \x20     - {{ target_label: pod, replacement: diemcau-0 }}\n\
             \x20     - {{ target_label: endpoint, replacement: metrics }}\n",
            d.port
        )
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("honoured", true),
        job("operator-default", false)
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
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
            && query(port, "count(diemcau_endpoint_up{job=\"honoured\"})") == n
            && query(port, "count(diemcau_endpoint_up{job=\"operator-default\"})") == n;
        if ok || started.elapsed() > Duration::from_secs(60) {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let results = (
        query(port, "count(diemcau_endpoint_up{job=\"honoured\", endpoint=~\"E.+\"})"),
        query(
            port,
            "count(diemcau_endpoint_up{job=\"honoured\", exported_endpoint!=\"\"})",
        ),
        query(
            port,
            "count(diemcau_endpoint_up{job=\"honoured\"} unless on(endpoint) (diemcau_endpoint_maintenance{job=\"honoured\"} == 1))",
        ),
        query(
            port,
            "count(diemcau_endpoint_up{job=\"operator-default\", exported_endpoint=~\"E.+\"})",
        ),
        query(
            port,
            "count(diemcau_endpoint_up{job=\"operator-default\", endpoint=\"metrics\"})",
        ),
    );
    let _ = prom.kill();
    let _ = prom.wait();
    d.stop();
    assert!(ready, "Prometheus scraped both jobs");
    let (kept, renamed, joined, default_renamed, default_port) = results;
    assert_eq!(kept, n, "honoured: the endpoint label is the endpoint id");
    assert_eq!(renamed, 0.0, "honoured: no exported_endpoint");
    assert_eq!(joined, n, "honoured: on(endpoint) joins one series per endpoint");
    // Without honoured labels the operator's label wins: the failure the kit avoids.
    assert_eq!(default_renamed, n);
    assert_eq!(default_port, n);
    let kit = std::fs::read_to_string("deploy/kubernetes/shared/servicemonitor.yaml").expect("servicemonitor");
    assert!(
        kit.contains("honorLabels: true"),
        "the kit's ServiceMonitor honours labels"
    );
}
