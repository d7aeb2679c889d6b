//! A monitor that stands still (SIGSTOP, a suspended VM, a starved machine) saw nothing in that
//! time. Stopped for a few seconds and continued, the daemon must not turn the stall into loss,
//! false outages or up time: every endpoint stays Up, no packet is counted lost, the stall is
//! logged and counted, the ledger holds it as a pause, and `report sla` counts it as unknown.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Daemon, bin, fast_config, loopback_inventory, require_tool};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const N: usize = 30;
const UP: &str = "diemcau_endpoint_up";
const STOPPED: Duration = Duration::from_secs(6);

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn lost_packets(d: &Daemon) -> f64 {
    let m = d.metrics();
    m.sum("diemcau_endpoint_packets_sent_total", &[]) - m.sum("diemcau_endpoint_packets_received_total", &[])
}

#[test]
fn a_stopped_monitor_records_unknown_time_not_loss_or_outages() {
    if !require_tool("unshare") {
        return;
    }
    let from_s = now_s();
    let config = fast_config("1s", 2, 1) + "[store]\nheartbeat = \"1s\"\n";
    let mut d = Daemon::start(&config, &loopback_inventory(N));
    d.wait_until(Duration::from_secs(30), "every endpoint to be up", |d| {
        d.metrics().sum(UP, &[]) == N as f64
    });
    assert_eq!(lost_packets(&d), 0.0, "loopback loses nothing before the stall");

    let pid = Pid::from_raw(d.child.id() as i32);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let stopped = Instant::now();
    std::thread::sleep(STOPPED);
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
    let stopped_for = stopped.elapsed();

    // A few rounds after the stall: each endpoint has probed again.
    let rounds_before = d.metrics().sum("diemcau_rounds_total", &[]);
    d.wait_until(Duration::from_secs(60), "three more rounds of every endpoint", |d| {
        d.metrics().sum("diemcau_rounds_total", &[]) >= rounds_before + 3.0 * N as f64
    });
    let m = d.metrics();
    assert_eq!(m.sum(UP, &[]), N as f64, "no endpoint left Up");
    assert_eq!(
        m.sum("diemcau_state_transitions_total", &["from=\"up\""]),
        0.0,
        "no state change after the first"
    );
    assert_eq!(
        lost_packets(&d),
        0.0,
        "packets cut short by the stall are not counted lost"
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
        unknown >= (STOPPED.as_secs() as i64 - 1) * N as i64,
        "at least the stall of every endpoint is unknown: {unknown} s ({total})"
    );
}
