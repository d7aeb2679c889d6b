//! Fast confirmation against the emulator's ground truth (2 s interval, the default
//! confirmation of 10 requests 100 ms apart):
//!
//! * 40 endpoints with an 8 s outage each (staggered starts): each is one outage in the ledger,
//!   dated from its first silent round and ended at its first answering one, so its start and
//!   its end are each within one round of the truth;
//! * 20 endpoints with a 1.3 s break, shorter than a confirmation: never Down, but recorded as
//!   brief interruptions within the break;
//! * 100 endpoints at 30 % random loss: never Down.
//!
//! Detection and recovery delays are printed as `RESULT` lines (figures, not asserted: a busy
//! machine delays the polling, not the dating). `scripts/bench confirm` reruns both tests on the
//! release build at the default 10 s interval (`CONFIRM_INTERVAL_S`) and over 1,000
//! endpoint-hours of random loss (`FALSE_DOWN_ENDPOINTS`, `FALSE_DOWN_SECONDS`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Daemon;
use diemcau::store::StoreReader;

/// Longest regular round: 2 × 100 ms spacing + 500 ms timeout.
const ROUND_S: f64 = 0.7;
/// `[probe] watch_spacing` at its default: a Down endpoint gets one request a second.
const WATCH_S: f64 = 1.0;

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The probe interval; the scenario's times scale with it.
fn interval_s() -> f64 {
    env_or("CONFIRM_INTERVAL_S", 2.0)
}
const OUTAGES: usize = 40;
const BREAKS: usize = 20;
const LOSSY: usize = 100;

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    let mut host = 1u32;
    for (prefix, n, province) in [
        ("O", OUTAGES, "Tỉnh Lào Cai"),
        ("B", BREAKS, "Tỉnh Điện Biên"),
        ("L", LOSSY, "Tỉnh Sơn La"),
    ] {
        for i in 0..n {
            let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + host);
            host += 1;
            s.push_str(&format!("{prefix}{i:02},{province},,Xã {prefix} {i},VNPT,{ip}\n"));
        }
    }
    s
}

fn outage_start(i: usize) -> f64 {
    (4.0 + i as f64 * 0.185) * interval_s()
}

fn outage_length() -> f64 {
    4.0 * interval_s()
}

fn break_start(i: usize) -> f64 {
    (4.5 + i as f64 * 0.265) * interval_s()
}

fn scenario() -> String {
    let mut s = String::from("[defaults]\ndelay = { kind = \"fixed\", ms = 2.0 }\n");
    for i in 0..OUTAGES {
        let t = outage_start(i);
        s.push_str(&format!(
            "[[rule]]\nselect = {{ ids = [\"O{i:02}\"] }}\noutages = [ {{ start_s = {t:.2}, end_s = {:.2} }} ]\n",
            t + outage_length()
        ));
    }
    for i in 0..BREAKS {
        let t = break_start(i);
        s.push_str(&format!(
            "[[rule]]\nselect = {{ ids = [\"B{i:02}\"] }}\noutages = [ {{ start_s = {t:.2}, end_s = {:.2} }} ]\n",
            t + 1.3
        ));
    }
    s.push_str("[[rule]]\nselect = { province = \"Tỉnh Sơn La\" }\nloss = 0.3\n");
    s
}

fn config() -> String {
    let interval = interval_s();
    format!(
        "[web]\nlisten_address = \"127.0.0.1:{{port}}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [probe]\ninterval = \"{interval}s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
         [state]\ndown_after = 3\nup_after = 2\n[store]\nheartbeat = \"1s\"\n"
    )
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn outages_are_dated_within_a_round_and_short_breaks_are_counted_not_lost() {
    if !common::require_tool("ip") {
        return;
    }
    let mut d = Daemon::start_with_lab(&config(), &inventory(), &scenario());
    let mut down_at: HashMap<String, f64> = HashMap::new();
    let mut up_at: HashMap<String, f64> = HashMap::new();
    let interval = interval_s();
    let last_end = outage_start(OUTAGES - 1) + outage_length();
    let started = Instant::now();
    // Until every outage has ended and recovered (the lab started just before the daemon).
    while started.elapsed() < Duration::from_secs_f64(last_end + 3.0 * interval + 2.0) {
        let m = d.metrics();
        let now = unix_now();
        for (endpoint, up) in m.by_endpoint("diemcau_endpoint_up") {
            if up == 0.0 {
                down_at.entry(endpoint).or_insert(now);
            } else if down_at.contains_key(&endpoint) {
                up_at.entry(endpoint).or_insert(now);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = d.metrics();
    let watches = m
        .value("diemcau_watch_requests_total", &["result=\"sent\""])
        .unwrap_or(0.0);
    println!(
        "RESULT confirmation rounds_sent={} over_budget={}",
        m.value("diemcau_confirmation_rounds_total", &["result=\"sent\""])
            .unwrap_or(0.0),
        m.value("diemcau_confirmation_rounds_total", &["result=\"over_budget\""])
            .unwrap_or(0.0)
    );
    d.stop();

    let truth: Vec<serde_json::Value> = std::fs::read_to_string(d.truth_path())
        .expect("the emulator wrote its ground truth")
        .lines()
        .map(|l| serde_json::from_str(l).expect("truth lines are JSON"))
        .collect();
    let window = |id: &str| {
        let t = truth
            .iter()
            .find(|t| t["kind"] == "outage" && t["endpoint"] == id)
            .unwrap_or_else(|| panic!("{id}: no outage in the truth"));
        (
            t["start_unix_ns"].as_f64().expect("start") / 1e9,
            t["end_unix_ns"].as_f64().expect("end") / 1e9,
        )
    };
    let db = d.dir.path().join("data").join("diemcau.db");
    let reader = StoreReader::open(&db).expect("open the ledger");
    let outages = reader.outages(None, 0, i64::MAX).expect("outages");
    let interruptions = reader.interruptions(0, i64::MAX).expect("interruptions");

    // Nothing but the real outages went down.
    let downed: Vec<&str> = outages.iter().map(|o| o.endpoint.as_str()).collect();
    assert!(
        downed.iter().all(|id| id.starts_with('O')),
        "only the real outages are outages: {downed:?}"
    );

    let (mut start_errors, mut end_errors, mut length_errors) = (Vec::new(), Vec::new(), Vec::new());
    let (mut detection, mut recovery) = (Vec::new(), Vec::new());
    for i in 0..OUTAGES {
        let id = format!("O{i:02}");
        let (t0, t1) = window(&id);
        let mine: Vec<_> = outages.iter().filter(|o| o.endpoint == id).collect();
        assert_eq!(mine.len(), 1, "{id}: one outage, got {mine:?}");
        let start = mine[0].start_ms as f64 / 1e3;
        let end = mine[0].end_ms.expect("closed") as f64 / 1e3;
        // Dated midway between the last answered and the first lost request: within half an
        // interval of the truth. The end likewise, between a lost and an answered watch
        // request (`watch_spacing`, 1 s, apart) or, at worst, regular round.
        let log = || {
            std::fs::read_to_string(d.dir.path().join("daemon.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&format!("endpoint={id} ")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            (start - t0).abs() <= interval / 2.0 + 0.3,
            "{id}: outage recorded from {start:.2}, truth {t0:.2}\n{}",
            log()
        );
        assert!(
            (end - t1).abs() <= WATCH_S / 2.0 + 0.3,
            "{id}: outage recorded until {end:.2}, truth {t1:.2}\n{}",
            log()
        );
        start_errors.push(start - t0);
        end_errors.push(end - t1);
        length_errors.push((end - start) - (t1 - t0));
        if let (Some(down), Some(up)) = (down_at.get(&id), up_at.get(&id)) {
            detection.push(down - t0);
            recovery.push(up - t1);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let worst = |v: &[f64]| v.iter().fold(0.0f64, |w, x| w.max(x.abs()));
    let within_5s = length_errors.iter().filter(|e| e.abs() <= 5.0).count();
    println!(
        "RESULT confirmation interval_s={interval} outages={OUTAGES} start_error_mean_s={:.2} \
         end_error_mean_s={:.2} downtime_error_mean_s={:+.2} downtime_abs_error_mean_s={:.2} \
         downtime_abs_error_p95_s={:.2} downtime_error_worst_s={:.2} downtime_within_5s={within_5s}/{OUTAGES} \
         watch_requests_sent={watches}",
        mean(&start_errors),
        mean(&end_errors),
        mean(&length_errors),
        mean(&length_errors.iter().map(|e| e.abs()).collect::<Vec<_>>()),
        percentile(length_errors.iter().map(|e| e.abs()).collect(), 0.95),
        worst(&length_errors)
    );
    assert!(
        detection.len() >= OUTAGES / 2,
        "the poller saw the outages: {}",
        detection.len()
    );
    println!(
        "RESULT confirmation down_exported_p50_s={:.2} p95_s={:.2} up_exported_p50_s={:.2} p95_s={:.2}",
        percentile(detection.clone(), 0.5),
        percentile(detection, 0.95),
        percentile(recovery.clone(), 0.5),
        percentile(recovery, 0.95)
    );

    // The short breaks: never outages (checked above); those a round fell into are brief
    // interruptions, from the silent round's start to the first answered request (which can
    // only leave once the silent round has timed out).
    let mut counted = 0;
    for i in 0..BREAKS {
        let id = format!("B{i:02}");
        let (t0, t1) = window(&id);
        for b in interruptions.iter().filter(|b| b.endpoint == id) {
            let (s, e) = (b.start_ms as f64 / 1e3, b.end_ms as f64 / 1e3);
            assert!(
                s >= t0 - interval / 2.0 - 0.3 && e <= t1 + ROUND_S + 0.3 && s < e,
                "{id}: interruption {s:.2}..{e:.2} outside the break {t0:.2}..{t1:.2}"
            );
            counted += 1;
        }
    }
    let noise = interruptions.iter().filter(|b| b.endpoint.starts_with('L')).count();
    println!("RESULT confirmation brief_interruptions_recorded={counted}/{BREAKS} random_loss_noise={noise}");
    assert!(counted >= 1, "some short breaks were recorded: {interruptions:?}");

    // The SLA report counts them in their own column, and they are no downtime.
    let ts = |ms: i64| jiff::Timestamp::from_millisecond(ms).expect("timestamp").to_string();
    let first = interruptions.iter().map(|b| b.start_ms).min().unwrap_or(0) - 60_000;
    let period = format!("{}..{}", ts(first), ts(unix_now() as i64 * 1000 + 1000));
    let out = std::process::Command::new(common::bin())
        .args(["report", "sla", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .args(["--period", &period, "--by", "province", "--format", "json"])
        .output()
        .expect("run report");
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let breaks = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["labels"]["province"] == "Tỉnh Điện Biên")
        .expect("the short breaks' province");
    assert_eq!(breaks["brief_interruptions"].as_u64(), Some(counted as u64), "{breaks}");
    assert_eq!(breaks["downtime_s"].as_i64(), Some(0), "{breaks}");
}

/// Random loss of 20 % and 30 % never makes an endpoint Down: a silent round (3 requests) must
/// be followed by a silent confirmation (10 more). Expected false Downs per round: 1.3e-7 at
/// 30 %, 1e-9 at 20 %; the suite runs a few thousand rounds, `scripts/bench confirm` 360,000 per
/// loss level (1,000 endpoint-hours at a 10 s interval).
#[test]
fn random_loss_never_takes_an_endpoint_down() {
    if !common::require_tool("ip") {
        return;
    }
    let per_level = env_or("FALSE_DOWN_ENDPOINTS", 100.0) as usize;
    let seconds = env_or("FALSE_DOWN_SECONDS", 20.0);
    let mut inventory = String::from("id,province,district,commune,carrier,address\n");
    for (level, province) in [(20, "Tỉnh Sơn La"), (30, "Tỉnh Lai Châu")] {
        for i in 0..per_level {
            let n = u32::try_from(i + if level == 30 { per_level } else { 0 }).expect("fits") + 1;
            let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + n);
            inventory.push_str(&format!("L{level}-{i:05},{province},,Xã {i},VNPT,{ip}\n"));
        }
    }
    let scenario = "[defaults]\ndelay = { kind = \"fixed\", ms = 2.0 }\n\
                    [[rule]]\nselect = { province = \"Tỉnh Sơn La\" }\nloss = 0.2\n\
                    [[rule]]\nselect = { province = \"Tỉnh Lai Châu\" }\nloss = 0.3\n";
    let config = "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
                  [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n";
    let mut d = Daemon::start_with_lab(config, &inventory, scenario);
    d.wait_until(Duration::from_secs(60), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        let m = d.metrics();
        let downs = m.sum("diemcau_state_transitions_total", &["to=\"down\""]);
        assert_eq!(downs, 0.0, "an endpoint went down on random loss");
    }
    let m = d.metrics();
    let rounds = m.sum("diemcau_rounds_total", &[]);
    let (sent, refused) = (
        m.value("diemcau_confirmation_rounds_total", &["result=\"sent\""])
            .unwrap_or(0.0),
        m.value("diemcau_confirmation_rounds_total", &["result=\"over_budget\""])
            .unwrap_or(0.0),
    );
    let brief = m.sum("diemcau_endpoint_brief_interruptions_total", &[]);
    println!(
        "RESULT false_down endpoints={} rounds={rounds} endpoint_hours_at_10s={:.0} false_downs=0 \
         confirmations_sent={sent} over_budget={refused} brief_interruptions={brief}",
        2 * per_level,
        rounds * 10.0 / 3600.0
    );
    assert!(rounds > 0.0);
    d.stop();
}
