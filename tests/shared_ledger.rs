//! The shared ledger (`[store] url`) on a real PostgreSQL cluster of the test's own: two
//! vantages, each in its own network namespace, ship their ledgers to one database; a fault on
//! one vantage's path stays that vantage's; a PostgreSQL outage loses nothing and keeps order;
//! a second instance with the same vantage and shard is reported loudly.

mod common;

use std::time::Duration;

use common::Daemon;
use common::postgres::{Postgres, ledger_source as source, local_rows as local, shipped};

const N: usize = 6;

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 1..=N {
        s.push_str(&format!("P{i},Tỉnh Lào Cai,,Xã Bản {i},VNPT,127.0.1.{i}\n"));
    }
    s
}

fn config(vantage: &str, url: &str) -> String {
    format!(
        "{}[vantage]\nname = \"{vantage}\"\n[store]\nurl = \"{url}\"\nheartbeat = \"1s\"\n",
        common::fast_config("1s", 2, 1)
    )
}

/// Drops every echo request from this daemon's namespace to the given endpoints (replacing the
/// previous set; empty: none).
fn cut(d: &Daemon, endpoints: &[usize]) {
    let addresses: Vec<String> = endpoints.iter().map(|i| format!("127.0.1.{i}")).collect();
    let rule = if addresses.is_empty() {
        String::new()
    } else {
        format!("ip daddr {{ {} }} drop", addresses.join(", "))
    };
    common::output_rule_in(d.child.id(), "cut", &rule);
}

fn up(d: &Daemon, id: &str) -> Option<f64> {
    d.metrics().by_endpoint("diemcau_endpoint_up").get(id).copied()
}

/// The scrape, shipper metrics included, passes `promtool check metrics`.
fn promtool_clean(d: &Daemon) {
    if !common::require_tool("promtool") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("scrape.txt");
    std::fs::write(&file, d.metrics().0).expect("write the scrape");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", file.display()))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

/// The merged SLA figures of each endpoint (`diemcau report sla` on `d`'s config, which names
/// the shared ledger) from `from_ms` to a few seconds ago (what both have shipped: they
/// heartbeat every second).
fn report(d: &Daemon, from_ms: i64) -> std::collections::BTreeMap<String, serde_json::Value> {
    let ts = |ms: i64| jiff::Timestamp::from_millisecond(ms).expect("timestamp").to_string();
    let period = format!("{}..{}", ts(from_ms + 1_000), ts(now_ms() - 3_000));
    let out = std::process::Command::new(common::bin())
        .args(["report", "sla", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .args(["--period", &period, "--by", "province", "--format", "json"])
        .output()
        .expect("run report");
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    report["worst"]
        .as_array()
        .expect("worst")
        .iter()
        .map(|e| (e["id"].as_str().unwrap_or_default().to_string(), e.clone()))
        .collect()
}

#[test]
fn two_vantages_share_one_ledger_and_a_database_outage_loses_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    let mut a = Daemon::start(&config("vnpt-hanoi", &url), &inventory());
    let mut b = Daemon::start(&config("viettel-hanoi", &url), &inventory());
    for d in [&mut a, &mut b] {
        d.wait_until(Duration::from_secs(30), "every endpoint up", |d| {
            (1..=N).all(|i| up(d, &format!("P{i}")) == Some(1.0))
        });
        shipped(d, "the first shipment");
    }
    assert_eq!(
        pg.query("SELECT vantage FROM sources ORDER BY vantage"),
        "viettel-hanoi\nvnpt-hanoi"
    );
    promtool_clean(&a);
    // From here on both vantages watch.
    let started_ms: i64 = pg.query("SELECT max(started_ms) FROM runs").parse().expect("a start");

    // P1 is cut off from vnpt-hanoi only (its own path); P2 from both (a real outage).
    cut(&a, &[1, 2]);
    cut(&b, &[2]);
    a.wait_until(Duration::from_secs(30), "P1 and P2 down at vnpt-hanoi", |d| {
        up(d, "P1") == Some(0.0) && up(d, "P2") == Some(0.0)
    });
    b.wait_until(Duration::from_secs(30), "P2 down at viettel-hanoi", |d| {
        up(d, "P2") == Some(0.0)
    });
    assert_eq!(up(&b, "P1"), Some(1.0));

    // The live merged view (refreshed from the shared ledger every 10 s): P2 is down for both,
    // P1 only for vnpt-hanoi, which is that vantage's own path fault. Both instances say so.
    for d in [&mut a, &mut b] {
        d.wait_until(Duration::from_secs(60), "the merged view of both vantages", |d| {
            let (status, body) = d.get("/api/v1/merged");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
                return false;
            };
            let ids = |key: &str| -> Vec<String> {
                v["view"]["now"][key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                format!(
                                    "{}@{}",
                                    e["id"].as_str().unwrap_or(""),
                                    e["vantage"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            status == 200 && ids("down") == ["P2@"] && ids("vantage_faults") == ["P1@vnpt-hanoi"]
        });
        let (_, page) = d.get("/status");
        assert!(
            page.contains("Hợp nhất các điểm đo") && page.contains("id=\"vantage-faults\""),
            "{page}"
        );
        assert!(page.contains("viettel-hanoi (phân đoạn 0/1"), "{page}");
    }

    // The database goes away; P2 recovers meanwhile; the records wait in each outbox.
    pg.stop_server();
    cut(&a, &[1]);
    cut(&b, &[]);
    for d in [&mut a, &mut b] {
        d.wait_until(Duration::from_secs(30), "P2 up again, unshipped", |d| {
            let m = d.metrics();
            up(d, "P2") == Some(1.0)
                && m.value("diemcau_store_replica_healthy", &[]) == Some(0.0)
                && m.value("diemcau_store_replica_backlog_rows", &[])
                    .is_some_and(|b| b > 0.0)
        });
    }
    std::thread::sleep(Duration::from_secs(3));
    pg.start_server();
    for d in [&mut a, &mut b] {
        shipped(d, "the backlog replayed");
    }

    // Nothing lost, order kept: every transition and outage of each ledger is in the shared
    // one, with the same ids in the same order.
    for d in [&a, &b] {
        let src = source(d);
        let transitions = "SELECT id, run_id, endpoint, from_state, to_state, at_ms FROM transitions";
        let outages = "SELECT id, endpoint, start_ms, end_ms, end_reason FROM outages";
        for (what, sql) in [("transitions", transitions), ("outages", outages)] {
            let mine = local(d, &format!("{sql} ORDER BY id"));
            let shared = pg.query(&format!("{sql} WHERE source = '{src}' ORDER BY id"));
            assert!(!mine.is_empty(), "{what}: the local ledger has rows");
            assert_eq!(shared, mine, "{what} of {src}");
        }
    }
    let outages = |vantage: &str| {
        pg.query(&format!(
            "SELECT endpoint FROM outages o JOIN sources s USING (source) WHERE s.vantage = '{vantage}' ORDER BY endpoint"
        ))
    };
    assert_eq!(outages("vnpt-hanoi"), "P1\nP2");
    assert_eq!(outages("viettel-hanoi"), "P2");

    // The merged view: P2 was Down for both (an outage), P1 only for vnpt-hanoi (its own path:
    // no downtime); nothing unknown while either ran.
    let figures = report(&a, started_ms);
    assert!(
        figures["P2"]["downtime_s"].as_i64().unwrap_or(0) > 0,
        "{}",
        figures["P2"]
    );
    assert_eq!(figures["P1"]["downtime_s"].as_i64(), Some(0), "{}", figures["P1"]);
    for (id, f) in &figures {
        assert_eq!(f["unknown_s"].as_i64(), Some(0), "{id}: {f}");
    }

    // vnpt-hanoi is killed and stays away a while: viettel-hanoi keeps the record, so the
    // merged view has no unknown time.
    let _ = a.child.kill();
    let _ = a.child.wait();
    std::thread::sleep(Duration::from_secs(4));
    a.restart();
    shipped(&mut a, "the restarted vantage shipped");
    shipped(&mut b, "the other vantage shipped");
    let figures = report(&a, started_ms);
    for (id, f) in &figures {
        assert_eq!(f["unknown_s"].as_i64(), Some(0), "{id} after a vantage was killed: {f}");
    }

    // A second instance with the same vantage and shard: reported loudly by both.
    let mut twin = Daemon::start(&config("vnpt-hanoi", &url), &inventory());
    for d in [&mut twin, &mut a] {
        d.wait_until(Duration::from_secs(30), "the duplicate reported", |d| {
            d.metrics().value("diemcau_store_replica_conflicting_sources", &[]) == Some(1.0)
        });
    }
    let log = twin.stop();
    assert!(log.contains("another live instance"), "{}", common::tail(&log, 20));
    a.stop();
    b.stop();
}

/// A vantage whose clock is 5 minutes ahead (libfaketime) is detected by its shipper, which
/// compares its clock with the database's at every round, logged and exported.
#[test]
fn a_clock_five_minutes_off_is_reported() {
    if !common::require_tool("faketime") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("diemcau.toml"),
        config("vnpt-hanoi", &pg.url()).replace("{port}", "0"),
    )
    .expect("write config");
    std::fs::write(dir.path().join("inventory.csv"), inventory()).expect("write inventory");
    let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
    // libfaketime preloaded into the daemon itself (the `faketime` wrapper would take the
    // SIGTERM meant for it); only the wall clock moves, monotonic timers keep their pace.
    let lib = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime.so.1 beside the faketime tool");
    let child = std::process::Command::new(common::bin())
        .args(["run", "--private-netns", "--log.level", "info", "--config"])
        .arg(dir.path().join("diemcau.toml"))
        .env("LD_PRELOAD", lib)
        .env("FAKETIME", "+300s")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn diemcau with libfaketime");
    let mut d = Daemon {
        child,
        port: 0,
        dir,
        args: Vec::new(),
    };
    d.wait_until(Duration::from_secs(30), "the web port", |d| {
        d.port = common::listening_port(&d.log()).unwrap_or(0);
        d.port != 0 && d.get("/-/healthy").0 == 200
    });
    d.wait_until(Duration::from_secs(30), "the skew measured", |d| {
        d.metrics()
            .value("diemcau_clock_skew_seconds", &[])
            .is_some_and(|s| (s - 300.0).abs() < 10.0)
    });
    let skew: i64 = pg
        .query("SELECT clock_skew_ms FROM sources WHERE vantage = 'vnpt-hanoi'")
        .parse()
        .expect("the skew in sources");
    assert!((skew - 300_000).abs() < 10_000, "sources.clock_skew_ms = {skew}");
    let log = d.stop();
    assert!(log.contains("off the shared ledger's"), "{}", common::tail(&log, 20));
}
