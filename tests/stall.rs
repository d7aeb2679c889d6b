//! A monitor that stands still (SIGSTOP, a suspended VM, a starved machine) saw nothing in that
//! time. Stopped for a few seconds and continued, the daemon must not turn the stall into loss,
//! false outages or up time: every endpoint stays Up, no packet is counted lost, the stall is
//! logged and counted, the ledger holds it as a pause, and `report sla` counts it as unknown.
//! On both address families: IPv4 endpoints on 127.1.0.0/16, IPv6 ones on 2001:2::/64 made
//! local to the loopback device inside the daemon's namespace.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Daemon, bin, fast_config, http, loopback_inventory, require_tool};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// IPv4 endpoints (`E00000`…) and IPv6 ones (`V00`…).
const N: usize = 30;
const N6: usize = 10;
const ALL: usize = N + N6;
const UP: &str = "diemcau_endpoint_up";
const STOPPED: Duration = Duration::from_secs(6);

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn inventory() -> String {
    let mut s = loopback_inventory(N);
    for i in 0..N6 {
        s.push_str(&format!(
            "V{i:02},Thành phố Hà Nội,Quận Ba Đình,Phường V {i},Viettel,2001:2::{}\n",
            i + 1
        ));
    }
    s
}

/// Packets lost so far by the IPv4 endpoints and by the IPv6 ones.
fn lost_packets(d: &Daemon) -> [f64; 2] {
    let m = d.metrics();
    let (sent, received) = (
        m.by_endpoint("diemcau_endpoint_packets_sent_total"),
        m.by_endpoint("diemcau_endpoint_packets_received_total"),
    );
    let mut lost = [0.0, 0.0];
    for (id, s) in &sent {
        lost[usize::from(id.starts_with('V'))] += s - received.get(id).copied().unwrap_or(0.0);
    }
    lost
}

/// Endpoints up, IPv4 and IPv6.
fn up(d: &Daemon) -> [usize; 2] {
    let mut n = [0, 0];
    for (id, v) in d.metrics().by_endpoint(UP) {
        if v == 1.0 {
            n[usize::from(id.starts_with('V'))] += 1;
        }
    }
    n
}

#[test]
fn a_stopped_monitor_records_unknown_time_not_loss_or_outages() {
    if !require_tool("unshare") || !require_tool("nsenter") || !require_tool("ip") {
        return;
    }
    let from_s = now_s();
    let config = fast_config("1s", 2, 1) + "[store]\nheartbeat = \"1s\"\n";
    let mut d = Daemon::start(&config, &loopback_inventory(N));
    // The IPv6 endpoints join by a reload once their prefix answers, so they answer from their
    // first round (the daemon makes its namespace itself, and probes at once).
    common::ipv6_loopback_prefix(d.child.id(), "2001:2::/64");
    std::fs::write(d.dir.path().join("inventory.csv"), inventory()).expect("inventory");
    let (status, body) = http(d.port, "POST", "/-/reload", &[]);
    assert_eq!(status, 200, "reload: {body}");
    d.wait_until(Duration::from_secs(30), "every endpoint to be up", |d| up(d) == [N, N6]);
    assert_eq!(lost_packets(&d), [0.0, 0.0], "loopback loses nothing before the stall");

    let pid = Pid::from_raw(d.child.id() as i32);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let stopped = Instant::now();
    std::thread::sleep(STOPPED);
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
    let stopped_for = stopped.elapsed();

    // A few rounds after the stall: each endpoint has probed again.
    let rounds_before = d.metrics().sum("diemcau_rounds_total", &[]);
    d.wait_until(Duration::from_secs(60), "three more rounds of every endpoint", |d| {
        d.metrics().sum("diemcau_rounds_total", &[]) >= rounds_before + 3.0 * ALL as f64
    });
    let m = d.metrics();
    assert_eq!(up(&d), [N, N6], "no endpoint of either family left Up");
    assert_eq!(
        m.sum("diemcau_state_transitions_total", &["from=\"up\""]),
        0.0,
        "no state change after the first"
    );
    assert_eq!(
        lost_packets(&d),
        [0.0, 0.0],
        "packets cut short by the stall are not counted lost, on either family"
    );
    assert!(m.value("diemcau_monitor_stalls_total", &[]).unwrap_or(0.0) >= 1.0);
    let stalled = m.value("diemcau_monitor_stalled_seconds_total", &[]).unwrap_or(0.0);
    assert!(
        stalled >= STOPPED.as_secs_f64() - 1.5 && stalled <= stopped_for.as_secs_f64() + 1.5,
        "stalled {stalled} s while stopped for {stopped_for:?}"
    );
    let log = d.stop();
    assert!(log.contains("the monitor stood still"), "the stall is logged:\n{log}");

    let db = d.dir.path().join("data").join("diemcau.db");
    let reader = diemcau::store::StoreReader::open(&db).expect("open the ledger");
    let pauses = reader.pauses().expect("pauses");
    assert_eq!(pauses.len(), 1, "one pause: {pauses:?}");
    let paused_ms = pauses[0].to_ms - pauses[0].from_ms;
    assert!(
        paused_ms >= STOPPED.as_millis() as i64 - 1_000 && paused_ms <= stopped_for.as_millis() as i64 + 2_500,
        "pause of {paused_ms} ms for a stop of {stopped_for:?}"
    );
    assert_eq!(pauses[0].cause, "engine_stall");
    let outages = reader.outages(None, 0, i64::MAX).expect("outages");
    assert!(outages.is_empty(), "no outage was written: {outages:?}");

    // The report counts the pause as unknown time, never as downtime or up time.
    let ts = |s: i64| jiff::Timestamp::from_second(s).expect("timestamp").to_string();
    let period = format!("{}..{}", ts(from_s), ts(now_s() + 1));
    let out = Command::new(bin())
        .args(["report", "sla", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .args(["--period", &period, "--by", "national", "--format", "json"])
        .output()
        .expect("run report");
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let total = &report["total"];
    assert_eq!(total["downtime_s"].as_i64(), Some(0), "{total}");
    let unknown = total["unknown_s"].as_i64().expect("unknown_s");
    assert!(
        unknown >= (STOPPED.as_secs() as i64 - 1) * ALL as i64,
        "at least the stall of every endpoint is unknown: {unknown} s ({total})"
    );
}
