//! Hot reload under load: an inventory change is applied by endpoint id without losing the
//! state, counters or timeline place of unchanged endpoints; an invalid config changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, http};

const N: usize = 10_000;
const INTERVAL_S: f64 = 5.0;

fn config() -> String {
    common::fast_config("5s", 3, 2)
}

const SENT: &str = "diemcau_endpoint_packets_sent_total";

#[test]
fn reload_adds_removes_and_changes_endpoints_without_touching_the_others() {
    let base = common::loopback_inventory(N);
    let mut d = Daemon::start(&config(), &base);
    d.wait_until(Duration::from_secs(30), "/-/ready", |d| d.get("/-/ready").0 == 200);

    // New inventory: E09000–E09999 removed, 500 added, E08000–E08099 re-addressed,
    // E08100–E08199 moved to another province.
    let mut next = String::new();
    for (i, line) in base.lines().enumerate() {
        if i == 0 {
            next.push_str(line);
            next.push('\n');
            continue;
        }
        let e = i - 1;
        match e {
            9000.. => continue,
            8000..=8099 => next.push_str(&line.replace(",127.1.", ",127.2.")),
            8100..=8199 => next.push_str(&line.replacen(line.split(',').nth(1).unwrap(), "Tỉnh Điện Biên", 1)),
            _ => next.push_str(line),
        }
        next.push('\n');
    }
    for i in 0..500 {
        next.push_str(&format!(
            "NEW{i:04},Tỉnh Lai Châu,Huyện Mường Tè,Xã Mới {i},VNPT,127.5.0.{}\n",
            i % 250 + 1
        ));
    }
    let unchanged: Vec<String> = (0..8000).step_by(7).map(|i| format!("E{i:05}")).collect();

    let before = d.metrics().by_endpoint(SENT);
    let t_before = Instant::now();
    std::fs::write(d.dir.path().join("inventory.csv"), &next).unwrap();
    let (status, body) = http(d.port, "POST", "/-/reload", &[]);
    let took = t_before.elapsed();
    eprintln!("reload of {N} endpoints: HTTP {status} in {took:?}: {body}");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("8800 unchanged, 200 changed, 500 added, 1000 removed"),
        "{body}"
    );

    // Counters of unchanged endpoints only ever grow.
    let mut last = d.metrics().by_endpoint(SENT);
    let mut last_at = Instant::now();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(2));
        let m = d.metrics().by_endpoint(SENT);
        let at = Instant::now();
        for id in &unchanged {
            assert!(m.get(id) >= last.get(id), "{id}: counter went back");
        }
        last = m;
        last_at = at;
    }
    let before_at = t_before;
    // No round of an unchanged endpoint was skipped: each completed ⌊Δt/I⌋ or ⌈Δt/I⌉ rounds,
    // and on average Δt/I (their phases are spread evenly over the interval).
    let expected = last_at.duration_since(before_at).as_secs_f64() / INTERVAL_S;
    let rounds: Vec<f64> = unchanged.iter().map(|id| (last[id] - before[id]) / 3.0).collect();
    let mean = rounds.iter().sum::<f64>() / rounds.len() as f64;
    eprintln!("unchanged endpoints: {mean:.3} rounds on average over the reload, expected {expected:.3}");
    assert!(
        rounds.iter().all(|r| *r >= expected.floor() - 0.01),
        "a round was skipped: min {:?}",
        rounds.iter().cloned().fold(f64::MAX, f64::min)
    );
    assert!((mean - expected).abs() < 0.2, "mean rounds {mean} vs {expected}");
    let m = d.metrics();
    let transitions = m.by_endpoint("diemcau_endpoint_transitions_total");
    for id in &unchanged {
        assert_eq!(transitions[id], 1.0, "{id} kept its state");
    }
    let sent_now = m.by_endpoint(SENT);

    // Removed endpoints left every series; added ones are there; changed ones kept counting.
    assert_eq!(sent_now.get("E09500"), None);
    assert!(!m.0.contains("endpoint=\"E09999\""));
    assert_eq!(m.value("diemcau_endpoints", &[]), Some(9500.0));
    assert!(sent_now["NEW0042"] >= 3.0, "an added endpoint is probed");
    assert!(
        sent_now["E08000"] > before["E08000"],
        "a re-addressed endpoint keeps counting"
    );
    assert!(m.0.contains("endpoint=\"E08100\",province=\"Tỉnh Điện Biên\""));
    assert_eq!(
        m.sum("diemcau_region_endpoints", &["province=\"Tỉnh Điện Biên\""]),
        100.0
    );
    assert_eq!(m.sum("diemcau_region_endpoints", &[]), 9500.0);
    assert_eq!(m.value("diemcau_config_last_reload_successful", &[]), Some(1.0));

    // An invalid config changes nothing and says so in the metric; SIGHUP reloads a fixed one.
    let good = std::fs::read_to_string(d.dir.path().join("diemcau.toml")).unwrap();
    std::fs::write(
        d.dir.path().join("diemcau.toml"),
        format!("{good}\n[probe.extra]\nx = 1\n"),
    )
    .unwrap();
    let (status, body) = http(d.port, "POST", "/-/reload", &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("unknown key"), "{body}");
    let m = d.metrics();
    assert_eq!(m.value("diemcau_config_last_reload_successful", &[]), Some(0.0));
    assert_eq!(m.value("diemcau_endpoints", &[]), Some(9500.0));
    let (status, _) = http(d.port, "GET", "/-/reload", &[]);
    assert_eq!(status, 405, "reload needs POST");

    std::fs::write(d.dir.path().join("diemcau.toml"), good).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    d.wait_until(Duration::from_secs(10), "the SIGHUP reload", |d| {
        d.metrics().value("diemcau_config_last_reload_successful", &[]) == Some(1.0)
    });
    d.stop();
}
