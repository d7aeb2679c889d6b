//! The emulator's routers, seen from a prober: each test re-runs itself inside a private
//! user+network namespace (`unshare -rn`), starts a Lab whose scenario puts routers between
//! the prober and the endpoints, and sends TTL-limited echo requests over a raw socket.
//! Every hop must answer Time Exceeded from its own address quoting our request, the
//! endpoint must answer past the last hop, and router, silent, rate-limited and monitor
//! faults must silence exactly what the scenario says, as the truth file records.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::trace::{Answer, Tracer};
use diemcau_lab::{EmulatedEndpoint, LAB_LOCAL_V4, LAB_LOCAL_V6, Lab, LabOptions, Scenario};
use serde_json::Value;

const MARKER: &str = "LAB_ROUTERS_IN_NS";
/// Long enough for any answer the emulator sends within this test's programmed delays.
const WAIT: Duration = Duration::from_millis(100);

/// True inside the namespace (run the body); otherwise re-runs `test` there and returns false.
fn inside(test: &str) -> bool {
    if std::env::var_os(MARKER).is_some() {
        let st = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(st.success(), "ip link set lo up");
        return true;
    }
    // One namespace child at a time: the fault test times its probes against the scenario's
    // windows, and on a two-core machine a neighbour's burst would eat into the margins.
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    common::rerun_in_namespace("-rn", test, MARKER, &["ip"], Duration::from_secs(60));
    false
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ep(id: &str, province: &str, district: &str, addr: &str) -> EmulatedEndpoint {
    EmulatedEndpoint {
        id: id.into(),
        province: province.into(),
        district: district.into(),
        commune: format!("Xã {id}"),
        carrier: "VNPT".into(),
        addr: addr.parse().expect("addr"),
    }
}

fn ip(a: &str) -> IpAddr {
    a.parse().expect("ip")
}

fn truth_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lab-routers-{tag}-{}.jsonl", std::process::id()))
}

fn start(eps: Vec<EmulatedEndpoint>, scenario: &str, truth: &Path) -> Lab {
    let scenario = Scenario::from_toml_str(scenario, "routers.toml").expect("scenario");
    Lab::start(
        eps,
        scenario,
        LabOptions {
            truth_path: Some(truth.to_path_buf()),
            seed: 11,
            ..LabOptions::default()
        },
    )
    .expect("lab start")
}

fn read_truth(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("truth file");
    let _ = std::fs::remove_file(path);
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn line<'a>(lines: &'a [Value], kind: &str, key: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["kind"] == kind && l[key] == name).collect();
    assert_eq!(found.len(), 1, "one {kind} line for {name}: {found:?}");
    found[0]
}

/// Sleeps until `at` after `t0`.
fn until(t0: Instant, at: f64) {
    let at = Duration::from_secs_f64(at);
    if let Some(left) = at.checked_sub(t0.elapsed()) {
        std::thread::sleep(left);
    }
}

const PATHS: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 20.0 }

[[router]]
name = "core-vnpt"
address = "198.19.0.1"
delay = { kind = "fixed", ms = 2.0 }

[[router]]
name = "dongnai-vnpt"
address = "198.19.1.1"
parent = "core-vnpt"
select = { province = "Tỉnh Đồng Nai" }
delay = { kind = "fixed", ms = 3.0 }

# Outside the lab's prefixes: the lab routes it to its device itself.
[[router]]
name = "bienhoa-vnpt"
address = "10.77.0.1"
parent = "dongnai-vnpt"
select = { district = "Thành phố Biên Hòa" }
delay = { kind = "fixed", ms = 4.0 }

[[router]]
name = "core-vnpt-v6"
address = "2001:2:ff::1"
delay = { kind = "fixed", ms = 2.0 }

[[router]]
name = "dongnai-vnpt-v6"
address = "2001:db8:77::1"
parent = "core-vnpt-v6"
select = { province = "Tỉnh Đồng Nai" }
delay = { kind = "fixed", ms = 3.0 }
"#;

/// Every hop answers Time Exceeded from its own address, no sooner than the delays up to it,
/// quoting our request as it reached that hop; the endpoint answers one hop further.
#[test]
fn each_hop_answers_time_exceeded_then_the_endpoint_replies() {
    if !inside("each_hop_answers_time_exceeded_then_the_endpoint_replies") {
        return;
    }
    let truth = truth_path("paths");
    let eps = vec![
        ep("BH-1", "Tỉnh Đồng Nai", "Thành phố Biên Hòa", "198.18.0.1"),
        ep("LK-1", "Tỉnh Đồng Nai", "Huyện Long Khánh", "198.18.0.2"),
        ep("HN-1", "Thành phố Hà Nội", "Quận Ba Đình", "198.18.0.3"),
        ep("BH-6", "Tỉnh Đồng Nai", "Thành phố Biên Hòa", "2001:2::1"),
    ];
    let lab = start(eps, PATHS, &truth);
    // (endpoint, its hops with the delay accumulated to each, ms)
    let cases: [(&str, &[(&str, f64)]); 4] = [
        (
            "198.18.0.1",
            &[("198.19.0.1", 2.0), ("198.19.1.1", 5.0), ("10.77.0.1", 9.0)],
        ),
        ("198.18.0.2", &[("198.19.0.1", 2.0), ("198.19.1.1", 5.0)]),
        ("198.18.0.3", &[("198.19.0.1", 2.0)]),
        ("2001:2::1", &[("2001:2:ff::1", 2.0), ("2001:db8:77::1", 5.0)]),
    ];
    let mut seq = 0u16;
    for (dst, hops) in cases {
        let dst = ip(dst);
        let v6 = dst.is_ipv6();
        let tracer = Tracer::new(v6, 0x7e57);
        let me = if v6 {
            IpAddr::V6(LAB_LOCAL_V6)
        } else {
            IpAddr::V4(LAB_LOCAL_V4)
        };
        for round in 0..3 {
            for (i, &(hop, ms)) in hops.iter().enumerate() {
                seq += 1;
                let ttl = i as u8 + 1;
                let (a, rtt) = tracer
                    .timed_probe(dst, ttl, seq, WAIT)
                    .unwrap_or_else(|| panic!("{dst} ttl {ttl} (round {round}): no answer"));
                let Answer::TimeExceeded { from, code, quoted } = a else {
                    panic!("{dst} ttl {ttl}: {a:?}")
                };
                assert_eq!((from, code), (ip(hop), 0), "{dst} ttl {ttl}");
                assert_eq!(
                    (quoted.src, quoted.dst, quoted.ttl),
                    (me, dst, 1),
                    "{dst} ttl {ttl}: {quoted:?}"
                );
                assert!(quoted.header_checksum_ok, "{quoted:?}");
                assert_eq!((quoted.id, quoted.seq), (0x7e57, seq));
                assert!(
                    rtt.as_secs_f64() * 1e3 >= ms,
                    "{dst} hop {hop}: answered after {rtt:?}, before {ms} ms"
                );
            }
            for ttl in [hops.len() as u8 + 1, 64] {
                seq += 1;
                let (a, rtt) = tracer.timed_probe(dst, ttl, seq, WAIT).expect("echo reply");
                assert_eq!(a, Answer::EchoReply { from: dst, seq }, "{dst} ttl {ttl}");
                assert!(rtt >= Duration::from_millis(20), "{dst}: reply after {rtt:?}");
            }
        }
    }
    let stats = lab.stop().expect("stop");
    assert_eq!(stats.time_exceeded, 3 * 8, "{stats:?}");
    assert_eq!(
        (stats.expired, stats.replied, stats.dropped_path),
        (3 * 8, 3 * 8, 0),
        "{stats:?}"
    );
    let lines = read_truth(&truth);
    for (id, path, expired) in [
        ("BH-1", &["198.19.0.1", "198.19.1.1", "10.77.0.1"][..], 9),
        ("LK-1", &["198.19.0.1", "198.19.1.1"][..], 6),
        ("HN-1", &["198.19.0.1"][..], 3),
        ("BH-6", &["2001:2:ff::1", "2001:db8:77::1"][..], 6),
    ] {
        let e = line(&lines, "endpoint", "endpoint", id);
        let want: Vec<Value> = path.iter().map(|p| Value::from(*p)).collect();
        assert_eq!(e["path"], Value::from(want), "{e}");
        assert_eq!(
            (e["expired"].as_u64(), e["time_exceeded"].as_u64()),
            (Some(expired), Some(expired)),
            "{e}"
        );
        assert_eq!(e["echo_requests"].as_u64(), Some(expired + 6), "{e}");
        assert_eq!(e["echo_replied"], 6, "{e}");
        // The endpoint's delay is the whole path's: hop delays do not add to it.
        assert!(
            (e["delay_median_ms"].as_f64().expect("median") - 20.0).abs() < 1.0,
            "{e}"
        );
    }
    for (name, parent, behind, expired) in [
        ("core-vnpt", None, 3, 9),
        ("dongnai-vnpt", Some("core-vnpt"), 2, 6),
        ("bienhoa-vnpt", Some("dongnai-vnpt"), 1, 3),
        ("core-vnpt-v6", None, 1, 3),
        ("dongnai-vnpt-v6", Some("core-vnpt-v6"), 1, 3),
    ] {
        let r = line(&lines, "router", "router", name);
        assert_eq!(r["parent"].as_str(), parent, "{r}");
        assert_eq!(r["endpoints_behind"], behind, "{r}");
        assert_eq!(
            (r["expired"].as_u64(), r["time_exceeded"].as_u64()),
            (Some(expired), Some(expired)),
            "{r}"
        );
    }
    assert!(
        lines
            .iter()
            .all(|l| l["kind"] != "router_outage" && l["kind"] != "monitor_outage")
    );
}

const FAULTS: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 1.0 }

[monitor]
outages = [ { start_s = 2.2, end_s = 3.2 } ]

[[router]]
name = "core"
address = "198.19.0.1"

[[router]]
name = "province"
address = "198.19.1.1"
parent = "core"
silent = true

[[router]]
name = "area-a"
address = "198.19.2.1"
parent = "province"
select = { ids = ["A"] }
outages = [ { start_s = 0.5, end_s = 1.7 } ]

[[router]]
name = "area-b"
address = "198.19.2.2"
parent = "province"
select = { ids = ["B"] }
icmp_rate_limit = 5
"#;

/// Which of `ttls` towards `dst` get an answer now, and from where.
fn answering(tracer: &Tracer, dst: IpAddr, ttls: &[u8], seq: &mut u16) -> Vec<Option<IpAddr>> {
    ttls.iter()
        .map(|&ttl| {
            *seq += 1;
            tracer.probe(dst, ttl, *seq, WAIT).map(|a| a.from())
        })
        .collect()
}

/// Asserts the probes of a fault phase were all sent before the fault's window ended (each
/// unanswered probe waits `WAIT`; the windows leave more than twice the time needed).
fn still_inside(t0: Instant, end_s: f64, what: &str) {
    assert!(
        t0.elapsed() < Duration::from_secs_f64(end_s),
        "{what}: the probes ran past the window's end, the result says nothing"
    );
}

/// A silent router hides only its own hop; a router outage silences its hop and everything
/// behind it while the hops before still answer; a monitor outage silences every hop; a
/// rate-limited router answers at most its limit per second yet forwards everything.
#[test]
fn faults_silence_exactly_what_they_should() {
    if !inside("faults_silence_exactly_what_they_should") {
        return;
    }
    let truth = truth_path("faults");
    let lab = start(
        vec![ep("A", "P", "D", "198.18.0.1"), ep("B", "P", "D", "198.18.0.2")],
        FAULTS,
        &truth,
    );
    let t0 = lab.started_at();
    let tracer = Tracer::new(false, 0x0fa1);
    let (a, b) = (ip("198.18.0.1"), ip("198.18.0.2"));
    let (core, area_a, area_b) = (Some(ip("198.19.0.1")), Some(ip("198.19.2.1")), Some(ip("198.19.2.2")));
    let all = [1, 2, 3, 4];
    let mut seq = 0u16;
    // Healthy: the silent province router is a "* * *" hop, the hops behind it answer.
    assert_eq!(answering(&tracer, a, &all, &mut seq), [core, None, area_a, Some(a)]);
    still_inside(t0, 0.5, "healthy");
    // area-a down (0.5 s to 1.7 s): its hop and A are silent, the core still answers; B's
    // path does not go through area-a.
    until(t0, 0.6);
    let down = answering(&tracer, a, &all, &mut seq);
    let b_hops = answering(&tracer, b, &all, &mut seq);
    still_inside(t0, 1.7, "router outage");
    assert_eq!(down, [core, None, None, None]);
    assert_eq!(b_hops, [core, None, area_b, Some(b)]);
    until(t0, 1.75);
    assert_eq!(answering(&tracer, a, &all, &mut seq), [core, None, area_a, Some(a)]);
    // Monitor uplink down (2.2 s to 3.2 s): nothing answers at all.
    until(t0, 2.3);
    let (blind_a, blind_b) = (
        answering(&tracer, a, &all, &mut seq),
        answering(&tracer, b, &[4], &mut seq),
    );
    still_inside(t0, 3.2, "monitor outage");
    assert_eq!((blind_a, blind_b), (vec![None; 4], vec![None]));
    until(t0, 3.25);
    assert_eq!(answering(&tracer, a, &all, &mut seq), [core, None, area_a, Some(a)]);
    // Rate limit: 30 expiries at area-b in about half a second get 5 answers (at most 5 in
    // any second), while all 30 requests with one more hop of TTL reach B.
    let burst = Instant::now();
    let (mut te, mut replies) = (0u64, 0);
    for _ in 0..30 {
        seq += 1;
        te += u64::from(tracer.probe(b, 3, seq, Duration::from_millis(15)).is_some());
        seq += 1;
        replies += usize::from(tracer.probe(b, 4, seq, WAIT).is_some());
    }
    let seconds = burst.elapsed().as_secs_f64().ceil() as u64;
    assert_eq!(replies, 30, "area-b forwards while it rate-limits");
    assert!((5..=5 * seconds).contains(&te), "{te} Time Exceeded in {seconds} s");
    let stats = lab.stop().expect("stop");
    eprintln!("{stats:?}");
    let lines = read_truth(&truth);
    let start_ns = lines[0]["unix_ns"].as_u64().expect("start");
    let out = line(&lines, "router_outage", "router", "area-a");
    assert_eq!(out["address"], "198.19.2.1");
    assert_eq!(out["endpoints_behind"], 1);
    assert_eq!(out["start_unix_ns"].as_u64(), Some(start_ns + 500_000_000));
    assert_eq!(out["end_unix_ns"].as_u64(), Some(start_ns + 1_700_000_000));
    assert!(out.get("open").is_none(), "{out}");
    let mon: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "monitor_outage").collect();
    assert_eq!(mon.len(), 1, "{mon:?}");
    assert_eq!(mon[0]["start_unix_ns"].as_u64(), Some(start_ns + 2_200_000_000));
    assert_eq!(mon[0]["end_unix_ns"].as_u64(), Some(start_ns + 3_200_000_000));
    assert_eq!(mon[0]["endpoints"], 2);
    // area-b: one expiry while area-a was down, then the burst.
    let rb = line(&lines, "router", "router", "area-b");
    let counts =
        |r: &Value| ["expired", "time_exceeded", "rate_limited", "dropped_outage"].map(|k| r[k].as_u64().expect(k));
    assert_eq!(counts(rb), [31, 1 + te, 30 - te, 0], "{rb}");
    let rp = line(&lines, "router", "router", "province");
    assert_eq!(
        (rp["time_exceeded"].as_u64(), rp["endpoints_behind"].as_u64()),
        (Some(0), Some(2)),
        "{rp}"
    );
    assert_eq!(
        counts(line(&lines, "router", "router", "area-a"))[3],
        2,
        "TTL 3 and 4 to A in its outage"
    );
    let ea = line(&lines, "endpoint", "endpoint", "A");
    assert_eq!(
        ea["path"],
        serde_json::json!(["198.19.0.1", "198.19.1.1", "198.19.2.1"])
    );
    // A: 2 requests dropped by area-a, 4 by the monitor's outage; B: 1 by the monitor's.
    assert_eq!(
        (
            ea["dropped_path"].as_u64(),
            line(&lines, "endpoint", "endpoint", "B")["dropped_path"].as_u64()
        ),
        (Some(6), Some(1))
    );
    assert_eq!(stats.dropped_path, 7, "{stats:?}");
}
