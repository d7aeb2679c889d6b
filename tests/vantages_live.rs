//! Two vantages, an HA pair of Prometheus servers and a global view, all real (issue 12 §5).
//!
//! Two daemons, `vnpt-hanoi` and `viettel-hanoi` (`[vantage] name`), each in its own private
//! network namespace, probe the same loopback endpoints. An nftables rule in `viettel-hanoi`'s
//! namespace drops the echo requests to one of them ([`CUT_OFF`]): the vantages disagree about
//! it for real. Two Prometheus replicas (the replica configuration of docs/ha-prometheus.md,
//! `replica: a` and `replica: b`) scrape both daemons and send alerts to two real Alertmanagers;
//! a global Prometheus (the global configuration of the same page) federates both replicas.
//! The configurations are read from the docs, so the page shows exactly what ran; only
//! addresses, intervals and rule paths are put in.
//!
//! Checks, in order:
//! 1. on each replica, every panel query of every dashboard runs without error with two
//!    vantages (the `on(job, instance)` joins on diemcau_vantage_info stay one-to-one), the
//!    vantage variable offers both vantages, the "vantages disagree" panel lists exactly the
//!    cut-off endpoint with who sees what, the per-vantage down counts are 1 and 0, one vantage
//!    alone disagrees with nobody, and the endpoint dashboard shows one state per vantage;
//! 2. the global view holds both vantages from both replicas, each series twice raw and once
//!    after `max without(replica)`; the overview's vantage panels, their selectors deduplicated,
//!    give the replicas' answer there, and fail raw (duplicate series in the join);
//! 3. each replica sent the alerts of a test rule to both Alertmanagers, and each Alertmanager
//!    holds every alert once, without the replica label;
//! 4. replica a is killed: its series in the global view go stale, the deduplicated view stays
//!    complete at every step across the kill, and it stays live from replica b alone (a second
//!    endpoint cut off afterwards, from the other vantage, appears as a new disagreement).

mod common;
#[path = "dashboards_live/dashboards.rs"]
mod dashboards;
#[path = "dashboards_live/prometheus.rs"]
mod prometheus;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Daemon, fast_config, free_port, http, loopback_inventory, require_tool};
use dashboards::{Dashboard, load_dashboards, resolve, substitute};
use prometheus::Prometheus;
use serde_json::Value;

const N: usize = 12;
const VNPT: &str = "vnpt-hanoi";
const VIETTEL: &str = "viettel-hanoi";
/// Dropped in `viettel-hanoi`'s namespace from the start: E00003 at 127.1.0.4 (Thủ Đức, HCM).
const CUT_OFF: (&str, &str) = ("E00003", "127.1.0.4");
/// Dropped in `vnpt-hanoi`'s namespace once replica a is dead.
const CUT_OFF_LATER: (&str, &str) = ("E00007", "127.1.0.8");
const DISAGREE: &str = "Các điểm đo không thống nhất (vantages disagree)";
const DOWN_BY_VANTAGE: &str = "Số điểm cầu mất kết nối theo điểm đo";
const PROBE_ALERT: &str = "VantagesLiveReplicaProbe";

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// An nftables rule in the daemon's namespace that drops everything it sends to `address`.
fn cut_off(d: &Daemon, address: &str) {
    d.nft(&format!(
        "table inet vantage {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr {address} drop\n }}\n}}\n"
    ));
}

fn start_vantage(name: &str) -> Daemon {
    let config = format!("{}[vantage]\nname = \"{name}\"\n", fast_config("1s", 2, 1));
    Daemon::start(&config, &loopback_inventory(N))
}

// ------------------------------------------------------------------ the configs, from the docs

/// The YAML block after `<!-- vantages_live: {name} -->` in docs/ha-prometheus.md.
fn docs_config(name: &str) -> String {
    let docs =
        std::fs::read_to_string(dashboards::repo().join("docs/ha-prometheus.md")).expect("docs/ha-prometheus.md");
    let marker = format!("<!-- vantages_live: {name} -->\n```yaml\n");
    let start = docs
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker:?} in docs/ha-prometheus.md"))
        + marker.len();
    let len = docs[start..].find("```").expect("end of the YAML block");
    docs[start..start + len].to_string()
}

/// Replaces `from` (which must occur) by `to` everywhere.
fn put(config: String, from: &str, to: &str) -> String {
    assert!(config.contains(from), "{from:?} in the docs' configuration:\n{config}");
    config.replace(from, to)
}

/// The production intervals of the docs, 1 s here.
fn fast(config: String) -> String {
    let config = put(config, "scrape_interval: 15s", "scrape_interval: 1s");
    let config = put(config, "scrape_timeout: 10s", "scrape_timeout: 1s");
    put(config, "evaluation_interval: 15s", "evaluation_interval: 1s")
}

/// The docs' replica configuration for replica `replica`, scraping the two daemons and sending
/// to the two Alertmanagers, with the repository's rules and the test's alert rule.
fn replica_config(replica: &str, vnpt: u16, viettel: u16, ams: [u16; 2], probe_rule: &str) -> String {
    let config = docs_config("replica");
    assert_eq!(config.matches("replica: a").count(), 1, "one line names the replica");
    let config = put(config, "replica: a", &format!("replica: {replica}"));
    let rules = dashboards::repo().join("deploy/prometheus/rules");
    let config = put(config, "rule_files:\n", &format!("rule_files:\n  - {probe_rule:?}\n"));
    let config = put(config, "  - rules/", &format!("  - {}/", rules.display()));
    let config = put(config, "vnpt-hanoi.diemcau.example:9808", &format!("127.0.0.1:{vnpt}"));
    let config = put(
        config,
        "viettel-hanoi.diemcau.example:9808",
        &format!("127.0.0.1:{viettel}"),
    );
    let config = put(config, "alertmanager-1:9093", &format!("127.0.0.1:{}", ams[0]));
    let config = put(config, "alertmanager-2:9093", &format!("127.0.0.1:{}", ams[1]));
    fast(config)
}

fn global_config(a: u16, b: u16) -> String {
    let config = put(docs_config("global"), "prometheus-a:9090", &format!("127.0.0.1:{a}"));
    fast(put(config, "prometheus-b:9090", &format!("127.0.0.1:{b}")))
}

// ------------------------------------------------------------------ Alertmanager

/// A real Alertmanager on 127.0.0.1 (no cluster), killed on drop.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--cluster.listen-address=", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus-alertmanager");
        let am = Alertmanager { child, port, _dir: dir };
        wait("Alertmanager /-/ready", Duration::from_secs(20), || {
            http(am.port, "GET", "/-/ready", &[]).0 == 200
        });
        am
    }

    /// The label sets of the alerts it holds named `name`.
    fn alerts(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let (status, body) = http(self.port, "GET", "/api/v2/alerts", &[]);
        assert_eq!(status, 200, "GET /api/v2/alerts: {body}");
        let alerts: Value = serde_json::from_str(&body).expect("alerts JSON");
        alerts
            .as_array()
            .expect("a list of alerts")
            .iter()
            .map(|a| {
                let labels = a["labels"].as_object().into_iter().flatten();
                labels
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|l| l.get("alertname").map(String::as_str) == Some(name))
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 250 ms; panics once `limit` has passed.
fn wait(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ------------------------------------------------------------------ queries

/// Instant query: each series' value, keyed by its labels `keys` (missing ones empty).
fn rows(prom: &Prometheus, expr: &str, keys: &[&str]) -> Result<BTreeMap<Vec<String>, f64>, String> {
    let (status, v) = prom.api("/api/v1/query", &[("query", expr)]);
    if status != 200 || v["status"] != "success" {
        return Err(format!("HTTP {status}: {}", v["error"]));
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    Ok(result
        .iter()
        .map(|s| {
            let key = keys
                .iter()
                .map(|k| s["metric"][*k].as_str().unwrap_or_default().to_string())
                .collect();
            let value = s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN);
            (key, value)
        })
        .collect())
}

/// Instant query: every series' full label set (minus `monitor`, the replicas' external label
/// that only the federated view shows) and value.
fn labelled(prom: &Prometheus, expr: &str) -> Result<BTreeMap<String, f64>, String> {
    let (status, v) = prom.api("/api/v1/query", &[("query", expr)]);
    if status != 200 || v["status"] != "success" {
        return Err(format!("HTTP {status}: {}", v["error"]));
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    Ok(result
        .iter()
        .map(|s| {
            let mut m = s["metric"].as_object().cloned().unwrap_or_default();
            m.remove("monitor");
            let value = s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN);
            (Value::Object(m).to_string(), value)
        })
        .collect())
}

/// `expr` with every `diemcau_…{…}` selector wrapped in `max without(replica) (…)`: the query
/// for the global view, where each series exists once per replica. Instant selectors only.
fn dedup_selectors(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find("diemcau_") {
        let before = rest[..at].chars().next_back();
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            out.push_str("diemcau_");
            rest = &tail["diemcau_".len()..];
            continue;
        }
        let name_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let sel_len = if tail[name_len..].starts_with('{') {
            name_len + tail[name_len..].find('}').expect("end of the selector") + 1
        } else {
            name_len
        };
        assert!(
            !tail[sel_len..].starts_with('['),
            "a range selector: apply the function per replica first\n{expr}"
        );
        out.push_str(&format!("max without(replica) ({})", &tail[..sel_len]));
        rest = &tail[sel_len..];
    }
    out.push_str(rest);
    out
}

fn overview(dashboards: &[Dashboard]) -> &Dashboard {
    dashboards
        .iter()
        .find(|d| d.file == "overview.json")
        .expect("overview.json")
}

fn panel_expr(dash: &Dashboard, title: &str, bound: &[(String, String)]) -> String {
    let t = dash
        .targets
        .iter()
        .find(|t| t.panel == title)
        .unwrap_or_else(|| panic!("{} has no panel {title:?}", dash.file));
    substitute(&t.expr, bound)
}

/// (endpoint, vantage) → what that vantage sees (1 up, 0 down), as the disagreement panel
/// lists them; checks the area and province of each row on the way.
fn disagreements(prom: &Prometheus, expr: &str) -> Result<BTreeMap<(String, String), f64>, String> {
    let got = rows(prom, expr, &["endpoint", "vantage", "area", "district", "province"])?;
    for k in got.keys() {
        assert!(!k[2].is_empty() && k[2] == k[3], "area is the district: {k:?}");
    }
    Ok(got
        .into_iter()
        .map(|(k, v)| ((k[0].clone(), k[1].clone()), v))
        .collect())
}

fn expected(pairs: &[(&str, &str, f64)]) -> BTreeMap<(String, String), f64> {
    pairs
        .iter()
        .map(|(e, v, x)| ((e.to_string(), v.to_string()), *x))
        .collect()
}

// ------------------------------------------------------------------ the test

#[test]
fn two_vantages_an_ha_pair_and_a_global_view_with_deduplication() {
    for tool in ["prometheus", "prometheus-alertmanager", "nft", "nsenter"] {
        if !require_tool(tool) {
            return;
        }
    }
    let t0 = Instant::now();
    let mut vnpt = start_vantage(VNPT);
    let mut viettel = start_vantage(VIETTEL);
    cut_off(&viettel, CUT_OFF.1);
    let up = |id: &str| format!("endpoint=\"{id}\"");
    vnpt.wait_until(Duration::from_secs(30), "vnpt-hanoi sees every endpoint up", |d| {
        d.metrics().sum("diemcau_endpoint_up", &[]) == N as f64
    });
    viettel.wait_until(Duration::from_secs(30), "viettel-hanoi sees E00003 down", |d| {
        let m = d.metrics();
        m.value("diemcau_endpoint_up", &[&up(CUT_OFF.0)]) == Some(0.0)
            && m.sum("diemcau_endpoint_up", &[]) == (N - 1) as f64
    });

    let ams = [Alertmanager::start(), Alertmanager::start()];
    let rule_dir = tempfile::tempdir().expect("temp dir");
    let probe_rule = rule_dir.path().join("probe.yml");
    std::fs::write(
        &probe_rule,
        format!("groups:\n  - name: vantages_live\n    rules:\n      - alert: {PROBE_ALERT}\n        expr: diemcau_vantage_info == 1\n"),
    )
    .unwrap();
    let config = |replica| {
        replica_config(
            replica,
            vnpt.port,
            viettel.port,
            [ams[0].port, ams[1].port],
            &probe_rule.display().to_string(),
        )
    };
    let (config_a, config_b) = (config("a"), config("b"));
    let differ: Vec<(&str, &str)> = config_a.lines().zip(config_b.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(
        differ,
        [("    replica: a", "    replica: b")],
        "the replicas' configs differ in one line"
    );
    let mut replica_a = Prometheus::start_with(&config_a);
    let mut replica_b = Prometheus::start_with(&config_b);
    let mut global = Prometheus::start_with(&global_config(replica_a.port, replica_b.port));
    // The same with the replicas' timestamps kept: what `honor_timestamps: false` avoids.
    let mut honouring = Prometheus::start_with(&put(
        global_config(replica_a.port, replica_b.port),
        "honor_timestamps: false",
        "honor_timestamps: true",
    ));

    let both = (2 * N) as f64;
    for p in [&mut replica_a, &mut replica_b] {
        p.wait_until(Duration::from_secs(60), "both vantages scraped, 5 s of data", |p| {
            p.scalar("count(diemcau_endpoint_up)") == both
                && p.scalar(r#"min(count_over_time(up{job="diemcau"}[1m]))"#) >= 5.0
        });
    }
    for p in [&mut global, &mut honouring] {
        p.wait_until(Duration::from_secs(60), "both replicas federated", |p| {
            p.scalar("count(diemcau_endpoint_up)") == 2.0 * both
        });
    }
    let global_ready = unix_now();
    eprintln!("vantages_live: data everywhere after {:.1?}", t0.elapsed());

    // 1. The dashboards on each replica.
    let dashboards = load_dashboards();
    let dash = overview(&dashboards);
    let bound = resolve(&replica_a, dash);
    let want_now = expected(&[(CUT_OFF.0, VNPT, 1.0), (CUT_OFF.0, VIETTEL, 0.0)]);
    for (name, p) in [("a", &replica_a), ("b", &replica_b)] {
        every_query_runs(p, &dashboards, name);
        assert_eq!(
            p.label_values("vantage", Some("diemcau_vantage_info")).unwrap(),
            [VIETTEL, VNPT]
        );
        let expr = panel_expr(dash, DISAGREE, &bound);
        assert_eq!(disagreements(p, &expr).unwrap(), want_now, "replica {name}:\n{expr}");
        let end = unix_now();
        assert!(
            p.query_range(&expr, end - 10.0, end, "1s").unwrap() >= 2,
            "over a range"
        );
        let down = rows(p, &panel_expr(dash, DOWN_BY_VANTAGE, &bound), &["vantage"]).unwrap();
        assert_eq!(
            down,
            BTreeMap::from([(vec![VIETTEL.to_string()], 1.0), (vec![VNPT.to_string()], 0.0)])
        );
        let mut one = bound.clone();
        one.retain(|(k, _)| k != "vantage");
        one.push(("vantage".into(), VNPT.into()));
        assert_eq!(
            p.query(&panel_expr(dash, DISAGREE, &one)),
            Ok(0),
            "one vantage agrees with itself"
        );
        endpoint_dashboard_shows_each_vantage(p, &dashboards);
    }

    // 2. The global view: both vantages, both replicas, deduplicated in the query.
    assert_eq!(
        global.label_values("vantage", Some("diemcau_vantage_info")).unwrap(),
        [VIETTEL, VNPT]
    );
    assert_eq!(global.label_values("replica", None).unwrap(), ["a", "b"]);
    assert_eq!(global.scalar("count(max without(replica) (diemcau_endpoint_up))"), both);
    for title in [DISAGREE, DOWN_BY_VANTAGE] {
        let raw = panel_expr(dash, title, &bound);
        let err = global.query(&raw).expect_err("the raw join meets each series twice");
        assert!(
            err.contains("many-to-many") || err.contains("duplicate series"),
            "{title}: {err}"
        );
        let deduped = dedup_selectors(&raw);
        let mut last = (Ok(BTreeMap::new()), Ok(BTreeMap::new()));
        wait(
            &format!("{title}: the global view agrees with replica a"),
            Duration::from_secs(20),
            || {
                last = (labelled(&global, &deduped), labelled(&replica_a, &raw));
                last.0.as_ref().is_ok_and(|g| !g.is_empty()) && last.0 == last.1
            },
        );
    }
    let deduped_disagree = dedup_selectors(&panel_expr(dash, DISAGREE, &bound));
    assert_eq!(disagreements(&global, &deduped_disagree).unwrap(), want_now);

    // 3. Alerts: from both replicas to both Alertmanagers, held once, no replica label.
    for am in &ams {
        wait(
            "the probe alert of both vantages in each Alertmanager",
            Duration::from_secs(30),
            || am.alerts(PROBE_ALERT).len() >= 2,
        );
    }
    for (name, p) in [("a", &replica_a), ("b", &replica_b)] {
        for am in &ams {
            let sel = format!("alertmanager=\"http://127.0.0.1:{}/api/v2/alerts\"", am.port);
            let (mut sent, mut errors) = (0.0, 0.0);
            wait(
                &format!("replica {name} sends both alerts to {sel}"),
                Duration::from_secs(30),
                || {
                    let (status, body) = http(p.port, "GET", "/metrics", &[]);
                    assert_eq!(status, 200);
                    let m = common::Metrics(body);
                    sent = m.value("prometheus_notifications_sent_total", &[&sel]).unwrap_or(0.0);
                    errors = m.value("prometheus_notifications_errors_total", &[&sel]).unwrap_or(0.0);
                    sent >= 2.0
                },
            );
            assert_eq!(errors, 0.0, "replica {name} → {sel}: {sent} sent, {errors} errors");
        }
    }
    for am in &ams {
        let alerts = am.alerts(PROBE_ALERT);
        let mut vantages: Vec<&str> = alerts.iter().map(|a| a["vantage"].as_str()).collect();
        vantages.sort_unstable();
        assert_eq!(
            vantages,
            [VIETTEL, VNPT],
            "each alert once, though both replicas sent it: {alerts:?}"
        );
        assert!(alerts.iter().all(|a| !a.contains_key("replica")), "{alerts:?}");
    }

    // 4. Replica a dies: the global view goes on from replica b, complete and live.
    let count = "count(max without(replica) (diemcau_endpoint_up))";
    // At least 5 s of the global view from both replicas before the kill, for the range below.
    let before = global_ready + 6.0 - unix_now();
    if before > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(before));
    }
    let killed = unix_now();
    replica_a.kill();
    global.wait_until(
        Duration::from_secs(30),
        "replica a's series stale, replica b's samples 5 s past the kill",
        |p| {
            p.scalar(r#"count(diemcau_endpoint_up{replica="a"})"#) == 0.0
                && p.scalar(r#"min(timestamp(diemcau_endpoint_up{replica="b"}))"#) > killed + 5.0
        },
    );
    // Federated with the replicas' timestamps, replica a's last values stay for the 5 min lookback:
    // no staleness markers for samples that carry their own timestamps (Prometheus 2.42).
    assert_eq!(
        honouring.scalar(r#"count(diemcau_endpoint_up{replica="a"})"#),
        both,
        "honor_timestamps: true keeps a dead replica's series"
    );
    drop(honouring);
    let end = unix_now().floor();
    let start = (killed - 10.0).max(global_ready + 1.0).ceil();
    assert!(start + 4.0 < killed && end > killed + 2.0, "the range covers the kill");
    let (status, v) = global.api(
        "/api/v1/query_range",
        &[
            ("query", count),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", "1s"),
        ],
    );
    assert_eq!(status, 200, "{v}");
    let series = v["data"]["result"].as_array().expect("a matrix");
    assert_eq!(series.len(), 1, "{v}");
    let points: Vec<f64> = series[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        points.len(),
        (end - start) as usize + 1,
        "a value at every step across the kill"
    );
    assert!(
        points.iter().all(|x| *x == both),
        "every endpoint of both vantages at every step: {points:?}"
    );
    eprintln!(
        "vantages_live: replica a killed; the global view has all {both} series at each of {} steps, {:.1} s before to {:.1} s after",
        points.len(),
        killed - start,
        end - killed
    );

    cut_off(&vnpt, CUT_OFF_LATER.1);
    let want_later = expected(&[
        (CUT_OFF.0, VNPT, 1.0),
        (CUT_OFF.0, VIETTEL, 0.0),
        (CUT_OFF_LATER.0, VNPT, 0.0),
        (CUT_OFF_LATER.0, VIETTEL, 1.0),
    ]);
    let mut seen = BTreeMap::new();
    global.wait_until(
        Duration::from_secs(30),
        "the later disagreement in the global view",
        |p| {
            seen = disagreements(p, &deduped_disagree).unwrap_or_default();
            seen == want_later
        },
    );
    assert!(global.scalar(r#"count(diemcau_endpoint_up{replica="a"})"#) == 0.0);
    assert_eq!(
        disagreements(&replica_b, &panel_expr(dash, DISAGREE, &bound)).unwrap(),
        want_later
    );

    drop(global);
    drop(replica_b);
    drop(replica_a);
    vnpt.stop();
    viettel.stop();
    eprintln!("vantages_live: done in {:.1?}", t0.elapsed());
}

/// Every panel target of every dashboard, variables resolved, instant and over a range: no
/// errors (empty results are dashboards_live's business, with its scenario).
fn every_query_runs(prom: &Prometheus, dashboards: &[Dashboard], replica: &str) {
    let mut failures = Vec::new();
    let mut n = 0;
    for dash in dashboards {
        let bound = resolve(prom, dash);
        let end = unix_now();
        for t in &dash.targets {
            let expr = substitute(&t.expr, &bound);
            for (kind, r) in [
                ("instant", prom.query(&expr)),
                ("range", prom.query_range(&expr, end - 30.0, end, "5s")),
            ] {
                n += 1;
                if let Err(e) = r {
                    failures.push(format!("{} / {}: {kind}: {e}\n    {expr}", dash.file, t.panel));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "replica {replica}: {} queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("vantages_live: replica {replica}: {n} dashboard queries ran without error");
}

/// The endpoint dashboard on the cut-off endpoint: one current state per vantage.
fn endpoint_dashboard_shows_each_vantage(prom: &Prometheus, dashboards: &[Dashboard]) {
    let dash = dashboards
        .iter()
        .find(|d| d.file == "endpoint.json")
        .expect("endpoint.json");
    let mut bound = resolve(prom, dash);
    bound.retain(|(k, _)| k != "endpoint");
    bound.push(("endpoint".into(), CUT_OFF.0.into()));
    let state = rows(prom, &panel_expr(dash, "Trạng thái hiện tại", &bound), &["vantage"]).unwrap();
    // 1 up (or 2 degraded on a loaded machine: reachable either way), 3 down.
    assert_eq!(state.len(), 2, "{state:?}");
    let seen_up = state[&vec![VNPT.to_string()]];
    assert!(seen_up == 1.0 || seen_up == 2.0, "{state:?}");
    assert_eq!(state[&vec![VIETTEL.to_string()]], 3.0, "{state:?}");
}
