//! The monitor's own uplink cut (issue 11's first scenario): 300 emulated endpoints over two
//! carriers and both address families (half of each carrier on IPv6), every packet dropped for
//! 20 s by the emulator's `[monitor] outages`, no configuration beyond the inventory. No endpoint may be exported Down at any moment,
//! `diemcau_monitor_isolated` goes to 1 and back to 0, the ledger records the blind span as a
//! pause (unknown time) and no outage, and `report sla` charges 0 s of downtime.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Daemon, bin};
use diemcau::store::StoreReader;

const N: usize = 300;
const CUT_START_S: f64 = 10.0;
const CUT_END_S: f64 = 30.0;

/// Carriers alternate with every endpoint, address families with every second one.
fn v6(i: usize) -> bool {
    (i / 2) % 2 == 1
}

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..N {
        let ip: IpAddr = match v6(i) {
            false => Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 1 + i as u32).into(),
            true => Ipv6Addr::from(u128::from(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0)) + 1 + i as u128).into(),
        };
        let carrier = if i % 2 == 0 { "VNPT" } else { "Viettel" };
        s.push_str(&format!("I{i:03},Tỉnh Đồng Nai,,Xã {i},{carrier},{ip}\n"));
    }
    s
}

/// How many of `ids` (endpoint ids `Innn`) are on IPv4 and on IPv6.
fn by_family<'a>(ids: impl Iterator<Item = &'a String>) -> [usize; 2] {
    let mut n = [0, 0];
    for id in ids {
        let i: usize = id[1..].parse().expect("an I-number");
        n[usize::from(v6(i))] += 1;
    }
    n
}

fn unix_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `report sla --by national` over `[from_s, to_s)` (unix seconds), as JSON.
fn national_sla(d: &Daemon, from_s: i64, to_s: i64) -> serde_json::Value {
    let ts = |s: i64| jiff::Timestamp::from_second(s).expect("timestamp").to_string();
    let period = format!("{}..{}", ts(from_s), ts(to_s));
    let out = Command::new(bin())
        .args(["report", "sla", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .args(["--period", &period, "--by", "national", "--format", "json"])
        .output()
        .expect("report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

#[test]
fn a_cut_monitor_uplink_is_unknown_time_not_three_hundred_outages() {
    if !common::require_tool("ip") {
        return;
    }
    let from_s = unix_s();
    let scenario = format!(
        "[defaults]\ndelay = {{ kind = \"fixed\", ms = 2.0 }}\n\
         [monitor]\noutages = [ {{ start_s = {CUT_START_S}, end_s = {CUT_END_S} }} ]\n"
    );
    let config = "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
                  [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
                  [store]\nheartbeat = \"1s\"\n";
    let started = Instant::now();
    let mut d = Daemon::start_with_lab(config, &inventory(), &scenario);
    let (mut ever_down, mut saw_isolated, mut polls) = ([0, 0], false, 0);
    while started.elapsed() < Duration::from_secs_f64(CUT_END_S + 8.0) {
        let m = d.metrics();
        let up = m.by_endpoint("diemcau_endpoint_up");
        let down = by_family(up.iter().filter(|(_, v)| **v == 0.0).map(|(id, _)| id));
        ever_down = [ever_down[0].max(down[0]), ever_down[1].max(down[1])];
        if m.value("diemcau_monitor_isolated", &[]) == Some(1.0) && !saw_isolated {
            saw_isolated = true;
            std::thread::sleep(Duration::from_millis(1_500));
            let (status, body) = d.get("/api/v1/endpoints?state=unknown");
            assert_eq!(status, 200);
            let rows: Vec<serde_json::Value> = serde_json::from_str(&body).expect("endpoints JSON");
            // On both families: the API says where the fault is.
            for v6 in [false, true] {
                assert!(
                    rows.iter().any(|r| r["fault"]["domain"] == "monitor"
                        && r["address"].as_str().is_some_and(|a| a.contains(':') == v6)),
                    "the API says where the fault is (IPv6: {v6}): {}",
                    rows.first().map(|r| r.to_string()).unwrap_or_default()
                );
            }
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    d.wait_until(Duration::from_secs(30), "every endpoint up again", |d| {
        d.metrics().sum("diemcau_endpoint_up", &[]) == N as f64
    });
    let m = d.metrics();
    let up = m.by_endpoint("diemcau_endpoint_up");
    assert_eq!(
        by_family(up.iter().filter(|(_, v)| **v == 1.0).map(|(id, _)| id)),
        [N / 2, N / 2],
        "every endpoint of both families is up again"
    );
    assert_eq!(
        ever_down,
        [0, 0],
        "no endpoint of either family was ever exported Down ({polls} polls)"
    );
    assert!(saw_isolated, "diemcau_monitor_isolated went to 1 during the cut");
    assert_eq!(m.value("diemcau_monitor_isolated", &[]), Some(0.0));
    assert_eq!(m.sum("diemcau_state_transitions_total", &["to=\"down\""]), 0.0);
    let log = d.stop();
    assert!(log.contains("the monitor is blind"), "{}", common::tail(&log, 20));
    assert!(log.contains("the monitor sees again"), "{}", common::tail(&log, 20));

    let truth: Vec<serde_json::Value> = std::fs::read_to_string(d.truth_path())
        .expect("truth")
        .lines()
        .map(|l| serde_json::from_str(l).expect("truth JSON"))
        .collect();
    let cut = truth
        .iter()
        .find(|t| t["kind"] == "monitor_outage")
        .expect("the monitor outage in the truth");
    let (t0, t1) = (
        cut["start_unix_ns"].as_f64().expect("start") / 1e6,
        cut["end_unix_ns"].as_f64().expect("end") / 1e6,
    );
    let reader = StoreReader::open(&d.dir.path().join("data").join("diemcau.db")).expect("ledger");
    let pauses = reader.pauses().expect("pauses");
    let blind: Vec<_> = pauses.iter().filter(|p| p.cause == "monitor_isolated").collect();
    // One pause per address family, each covering the cut: from its first silent round to the
    // first answering one.
    let mut families: Vec<&str> = blind.iter().map(|p| p.family.as_str()).collect();
    families.sort_unstable();
    assert_eq!(families, ["ipv4", "ipv6"], "{pauses:?}");
    for p in &blind {
        let (p0, p1) = (p.from_ms as f64, p.to_ms as f64);
        println!(
            "RESULT isolation endpoints={N} family={} cut_s={:.1} blind_from_error_s={:+.2} blind_to_error_s={:+.2}",
            p.family,
            (t1 - t0) / 1e3,
            (p0 - t0) / 1e3,
            (p1 - t1) / 1e3
        );
        assert!(p0 >= t0 - 100.0 && p0 <= t0 + 1_500.0, "pause from {p0}, cut from {t0}");
        assert!(p1 >= t1 - 1_000.0 && p1 <= t1 + 3_000.0, "pause to {p1}, cut to {t1}");
    }
    assert!(reader.outages(None, 0, i64::MAX).expect("outages").is_empty());

    let report = national_sla(&d, from_s, unix_s() + 1);
    assert_eq!(report["total"]["downtime_s"].as_i64(), Some(0), "{}", report["total"]);
    assert!(
        report["total"]["unknown_s"].as_i64().expect("unknown") >= 15 * N as i64,
        "the blind span is unknown time: {}",
        report["total"]
    );
}

/// The monitor's IPv6 uplink alone is cut (a root router of the IPv6 tree goes down for 20 s):
/// the IPv6 half is Unknown, never Down, the IPv4 half stays Up, the monitor is blind on IPv6
/// only (not isolated), and the ledger's pause covers the IPv6 endpoints only.
#[test]
fn a_cut_ipv6_uplink_blinds_that_family_only() {
    if !common::require_tool("ip") {
        return;
    }
    let from_s = unix_s();
    let scenario = format!(
        "[defaults]\ndelay = {{ kind = \"fixed\", ms = 2.0 }}\n\
         [[router]]\nname = \"uplink-v6\"\naddress = \"2001:2:ff::1\"\n\
         outages = [ {{ start_s = {CUT_START_S}, end_s = {CUT_END_S} }} ]\n"
    );
    let config = "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
                  [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
                  [store]\nheartbeat = \"1s\"\n";
    let started = Instant::now();
    let mut d = Daemon::start_with_lab(config, &inventory(), &scenario);
    let (mut ever_down, mut saw_blind, mut ever_isolated, mut ever_blind_v4) = ([0, 0], false, false, false);
    while started.elapsed() < Duration::from_secs_f64(CUT_END_S + 8.0) {
        let m = d.metrics();
        let up = m.by_endpoint("diemcau_endpoint_up");
        let down = by_family(up.iter().filter(|(_, v)| **v == 0.0).map(|(id, _)| id));
        ever_down = [ever_down[0].max(down[0]), ever_down[1].max(down[1])];
        saw_blind |= m.value("diemcau_monitor_blind", &["family=\"ipv6\""]) == Some(1.0);
        ever_blind_v4 |= m.value("diemcau_monitor_blind", &["family=\"ipv4\""]) == Some(1.0);
        ever_isolated |= m.value("diemcau_monitor_isolated", &[]) == Some(1.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    d.wait_until(Duration::from_secs(30), "every endpoint up again", |d| {
        d.metrics().sum("diemcau_endpoint_up", &[]) == N as f64
    });
    assert_eq!(ever_down, [0, 0], "no endpoint of either family was ever exported Down");
    assert!(
        saw_blind,
        "diemcau_monitor_blind{{family=\"ipv6\"}} went to 1 during the cut"
    );
    assert!(
        !ever_blind_v4 && !ever_isolated,
        "IPv4 kept its sight: the monitor was never isolated"
    );
    let log = d.stop();
    assert!(log.contains("family=ipv6"), "{}", common::tail(&log, 20));

    let reader = StoreReader::open(&d.dir.path().join("data").join("diemcau.db")).expect("ledger");
    let pauses = reader.pauses().expect("pauses");
    let blind: Vec<_> = pauses.iter().filter(|p| p.cause == "monitor_isolated").collect();
    assert_eq!(blind.len(), 1, "{pauses:?}");
    assert_eq!(blind[0].family, "ipv6");
    assert!(reader.outages(None, 0, i64::MAX).expect("outages").is_empty());

    // The SLA charges nothing, and only the IPv6 endpoints lose seen time.
    let to_s = unix_s() + 1;
    let report = national_sla(&d, from_s, to_s);
    assert_eq!(report["total"]["downtime_s"].as_i64(), Some(0), "{}", report["total"]);
    let histories = reader
        .histories(diemcau::domain::interval::Interval::new(from_s, to_s), to_s * 1000)
        .expect("histories");
    let seen = |v6_wanted: bool| -> Vec<i64> {
        histories
            .iter()
            .filter(|h| v6(h.id[1..].parse().unwrap_or(0)) == v6_wanted)
            .map(|h| diemcau::domain::interval::total(&h.monitored))
            .collect()
    };
    let (s4, s6) = (seen(false), seen(true));
    assert_eq!((s4.len(), s6.len()), (N / 2, N / 2));
    let (min4, max6) = (
        s4.iter().min().copied().unwrap_or(0),
        s6.iter().max().copied().unwrap_or(0),
    );
    println!("RESULT isolation_v6 ipv4_seen_s_min={min4} ipv6_seen_s_max={max6}");
    assert!(
        max6 + 15 <= min4,
        "the IPv6 endpoints' blind span is unknown time, not the IPv4 ones': seen {max6} s against {min4} s"
    );
}
