//! `diemcau report sla` over an emulated month: a ledger for 3,000 endpoints is written through
//! the library with an injected clock driving November 2026 (Asia/Ho_Chi_Minh) — three runs, a
//! crash and a clean stop, outages across the crash and both period edges, one-off and recurring
//! (cron) maintenance windows over some outages and over unknown time — then the real binary's
//! CSV, JSON and HTML reports are checked against figures computed here with plain arithmetic.
//! `two_tier` checks a ledger of the two-tier map (no districts): `--by district` is refused.

mod common;
#[path = "report_cli/two_tier.rs"]
mod two_tier;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use diemcau::domain::EndpointId;
use diemcau::domain::Labels;
use diemcau::domain::health::State;
use diemcau::store::{InventoryRecord, ManualClock, Store, StoreConfig, Transition};

use common::{bin, require_tool};

const N: usize = 3_000;
const M: i64 = 60;
const H: i64 = 3_600;
const D: i64 = 86_400;
const PROVINCES: [&str; 12] = [
    "Thành phố Hà Nội",
    "Thành phố Hồ Chí Minh",
    "Thành phố Đà Nẵng",
    "Thành phố Hải Phòng",
    "Thành phố Cần Thơ",
    "Thành phố Huế",
    "Tỉnh Quảng Ninh",
    "Tỉnh Lào Cai",
    "Tỉnh Điện Biên",
    "Tỉnh Đắk Lắk",
    "Tỉnh Khánh Hòa",
    "Tỉnh Cà Mau",
];
const CARRIERS: [&str; 3] = ["VNPT", "Viettel", "MobiFone"];

/// 2026-11-01T00:00:00+07:00: Vietnam has kept UTC+7 without daylight saving since 1975.
fn p0() -> i64 {
    let t: jiff::Timestamp = "2026-10-31T17:00:00Z".parse().expect("timestamp");
    t.as_second()
}

/// Unix seconds of November `day`, `h:m` local time.
fn local(day: i64, h: i64, m: i64) -> i64 {
    p0() + (day - 1) * D + h * H + m * M
}

fn province(i: usize) -> &'static str {
    PROVINCES[i % 12]
}

fn carrier(i: usize) -> &'static str {
    CARRIERS[(i / 12) % 3]
}

fn id(i: usize) -> String {
    format!("DC-{i:04}")
}

type Span = (i64, i64);

/// Length of `a ∩ b`.
fn overlap(a: Span, b: Span) -> i64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0)
}

/// Sorted, merged copy.
fn union(mut v: Vec<Span>) -> Vec<Span> {
    v.sort_unstable();
    let mut out: Vec<Span> = Vec::new();
    for s in v {
        match out.last_mut() {
            Some(l) if s.0 <= l.1 => l.1 = l.1.max(s.1),
            _ => out.push(s),
        }
    }
    out
}

/// Length of `a` minus the (merged) set `minus`.
fn len_minus(a: Span, minus: &[Span]) -> i64 {
    (a.1 - a.0).max(0) - minus.iter().map(|&m| overlap(a, m)).sum::<i64>()
}

/// The month's timeline, as the test designs it.
struct Plan {
    period: Span,
    /// Runs: [start, end]; run 1 crashes, run 2 stops cleanly, run 3 stops cleanly after p1.
    runs: [Span; 3],
    /// Per endpoint: its outages as (down at, up at or the end of its run).
    outages: Vec<Vec<Span>>,
    /// Endpoints down when run 2 starts (their outage crossed the crash).
    down_at_run2: Vec<usize>,
}

fn plan() -> Plan {
    let p0 = p0();
    let p1 = p0 + 30 * D;
    let crash = local(10, 0, 0);
    let run2 = local(10, 3, 0); // 3 h unknown after the crash
    let stop2 = local(22, 1, 0);
    let run3 = local(22, 6, 0); // 5 h unknown, over Sunday's 02:00 Viettel window
    let runs = [(p0 - H, crash), (run2, stop2), (run3, p1 + H)];
    let mut outages = vec![Vec::new(); N];
    let mut down_at_run2 = Vec::new();
    for (i, o) in outages.iter_mut().enumerate() {
        let k = i as i64;
        // A: a plain outage on Thursday the 12th.
        if i % 5 == 0 {
            let s = local(12, k % 24, k % 60);
            o.push((s, s + (10 + k % 37) * M));
        }
        // B: Sunday the 8th from 00:30, 60–120 min: meets the VNPT one-off (01:00–03:00) and
        // the Viettel weekly window (02:00–03:00).
        if i % 7 == 0 {
            let s = local(8, 0, 30);
            o.push((s, s + (60 + k % 61) * M));
        } else if i % 13 == 0 {
            // C: 01:15–02:45 on the 8th: wholly inside the VNPT window.
            o.push((local(8, 1, 15), local(8, 2, 45)));
        }
        // D: down 2 h before the crash, seen down again when run 2 starts, up 30 min later.
        if i % 97 == 1 {
            o.push((crash - 2 * H, crash));
            o.push((run2, run2 + 30 * M));
            down_at_run2.push(i);
        }
        // E: across the period's start.
        if i % 101 == 2 {
            o.push((p0 - 30 * M, p0 + 30 * M));
        }
        // F: across its end, still down at the final stop.
        if i % 103 == 3 {
            o.push((p1 - 2 * H, p1 + H));
        }
        // G: every Viettel endpoint of Cà Mau down 10 h on the 18th: the group breaches 99.0 %.
        if province(i) == "Tỉnh Cà Mau" && carrier(i) == "Viettel" {
            o.push((local(18, 8, 0), local(18, 18, 0)));
        }
        // I: Sunday the 15th 01:30–02:30, half in the Viettel window.
        if i % 11 == 0 {
            o.push((local(15, 1, 30), local(15, 2, 30)));
        }
    }
    Plan {
        period: (p0, p1),
        runs,
        outages,
        down_at_run2,
    }
}

/// Maintenance per carrier, written independently of the config parser: the VNPT one-off on
/// the 8th, and Viettel's `0 2 * * SUN` (Sundays 1, 8, 15, 22, 29 November 2026) for 1 h.
fn maintenance(carrier: &str) -> Vec<Span> {
    match carrier {
        "VNPT" => vec![(local(8, 1, 0), local(8, 3, 0))],
        "Viettel" => [1, 8, 15, 22, 29]
            .iter()
            .map(|&d| (local(d, 2, 0), local(d, 3, 0)))
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Default, Clone, Debug)]
struct Expect {
    endpoints: usize,
    inventory: i64,
    maintenance: i64,
    unknown: i64,
    eligible: i64,
    downtime: i64,
    outages: i64,
}

impl Expect {
    fn add(&mut self, o: &Expect) {
        self.endpoints += o.endpoints;
        self.inventory += o.inventory;
        self.maintenance += o.maintenance;
        self.unknown += o.unknown;
        self.eligible += o.eligible;
        self.downtime += o.downtime;
        self.outages += o.outages;
    }
}

/// One endpoint's figures by plain interval arithmetic.
fn expect_endpoint(plan: &Plan, i: usize) -> Expect {
    let period = plan.period;
    let maint: Vec<Span> = maintenance(carrier(i))
        .into_iter()
        .map(|m| (m.0.max(period.0), m.1.min(period.1)))
        .filter(|m| m.1 > m.0)
        .collect();
    let maintenance_s: i64 = maint.iter().map(|m| m.1 - m.0).sum();
    // Unmonitored gaps inside the period.
    let mut gaps = Vec::new();
    let mut cursor = period.0;
    for r in plan.runs {
        if r.0 > cursor {
            gaps.push((cursor, r.0.min(period.1)));
        }
        cursor = cursor.max(r.1);
    }
    if cursor < period.1 {
        gaps.push((cursor, period.1));
    }
    let gaps = union(gaps);
    let excluded = union(maint.iter().chain(gaps.iter()).copied().collect());
    let eligible = len_minus(period, &excluded);
    let unknown = (period.1 - period.0) - maintenance_s - eligible;
    let (mut downtime, mut outages) = (0, 0);
    for &o in &plan.outages[i] {
        let clipped = (o.0.max(period.0), o.1.min(period.1));
        let d = if clipped.1 > clipped.0 {
            len_minus(clipped, &excluded)
        } else {
            0
        };
        if d > 0 {
            downtime += d;
            outages += 1;
        }
    }
    Expect {
        endpoints: 1,
        inventory: period.1 - period.0,
        maintenance: maintenance_s,
        unknown,
        eligible,
        downtime,
        outages,
    }
}

fn target(carrier: &str) -> f64 {
    match carrier {
        "VNPT" => 99.5,
        "Viettel" => 99.0,
        _ => 99.5, // the default target
    }
}

struct Fixture {
    dir: PathBuf,
    config: PathBuf,
    plan: Plan,
    transitions: u64,
}

fn rec(i: usize, from: State, to: State, t: i64) -> Transition {
    Transition {
        endpoint: EndpointId(Arc::from(id(i))),
        from,
        to,
        at_ms: t * 1000,
        reason: if to == State::Down {
            "no echo reply in 3 requests".into()
        } else {
            "0% loss".into()
        },
        check: "icmp".into(),
    }
}

/// Builds the ledger and the config once for both tests.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let took = Instant::now();
        // Kept after the test (the HTML and the ledger can be looked at), one per process;
        // those of earlier runs are removed.
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_cli");
        let dir = root.join(format!("run-{}", std::process::id()));
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("run-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let plan = plan();
        let inventory: Vec<InventoryRecord> = (0..N)
            .map(|i| InventoryRecord {
                id: id(i).into(),
                labels: Labels {
                    province: province(i).into(),
                    district: Some(format!("Huyện Số {}", i % 40).into()),
                    commune: format!("Xã Điểm Cầu {i}").into(),
                    carrier: carrier(i).into(),
                },
                address: format!("127.16.{}.{}", i / 250, i % 250 + 1),
            })
            .collect();
        let mut csv = String::from("id,province,district,commune,carrier,address\n");
        for e in &inventory {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                e.id,
                e.labels.province,
                e.labels.district_or_empty(),
                e.labels.commune,
                e.labels.carrier,
                e.address
            ));
        }
        std::fs::write(dir.join("inventory.csv"), csv).expect("inventory");
        let config = dir.join("diemcau.toml");
        std::fs::write(
            &config,
            "[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"ledger/diemcau.db\"\n\
             [report]\ntargets = { VNPT = 99.5, Viettel = 99.0 }\n\n\
             [[maintenance]]\nname = \"VNPT core upgrade\"\nscope = { carrier = \"VNPT\" }\n\
             start = \"2026-11-08T01:00:00+07:00\"\nend = \"2026-11-08T03:00:00+07:00\"\n\n\
             [[maintenance]]\nname = \"Viettel weekly window\"\nscope = { carrier = \"Viettel\" }\n\
             cron = \"0 2 * * SUN\"\nduration = \"1h\"\ntime_zone = \"Asia/Ho_Chi_Minh\"\n",
        )
        .expect("config");

        // Events in time order; at equal times: run start, transitions (ups before downs), stop.
        #[derive(Clone, Copy)]
        enum Ev {
            Start(usize),
            Tr(usize, State, State),
            Crash,
            Stop,
            Decommission,
        }
        let rank = |e: &Ev| match e {
            Ev::Start(_) => 0,
            Ev::Tr(_, _, State::Up) => 1,
            Ev::Tr(..) => 2,
            Ev::Decommission => 3,
            Ev::Crash | Ev::Stop => 4,
        };
        let mut events: Vec<(i64, Ev)> = vec![
            (plan.runs[0].0, Ev::Start(0)),
            (plan.runs[0].1, Ev::Crash),
            (plan.runs[1].0, Ev::Start(1)),
            (plan.runs[1].1, Ev::Stop),
            (plan.runs[2].0, Ev::Start(2)),
            // The CLI counts an endpoint still in the inventory as existing up to the *real*
            // now, which may lie inside November 2026 (this machine's clock does). An empty
            // inventory snapshot 1 h after the month makes the figures those of a report run
            // after the month, whatever the real date.
            (plan.runs[2].1, Ev::Decommission),
            (plan.runs[2].1, Ev::Stop),
        ];
        for (i, os) in plan.outages.iter().enumerate() {
            for &(s, e) in os {
                let ends_run = plan.runs.iter().any(|r| r.1 == e);
                let starts_run = plan.runs.iter().any(|r| r.0 == s);
                if !starts_run {
                    events.push((s, Ev::Tr(i, State::Up, State::Down)));
                }
                if !ends_run {
                    events.push((e, Ev::Tr(i, State::Down, State::Up)));
                }
            }
        }
        events.sort_by_key(|(t, e)| (*t, rank(e)));

        let cfg = StoreConfig {
            batch_interval: Duration::from_millis(20),
            ..StoreConfig::new(dir.join("ledger").join("diemcau.db"))
        };
        let clock = Arc::new(ManualClock::new(plan.runs[0].0 * 1000));
        let mut store: Option<Store> = None;
        let mut state = vec![State::Unknown; N];
        let mut transitions = 0u64;
        for (t, ev) in events {
            clock.set(t * 1000);
            match ev {
                Ev::Start(run) => {
                    let s = Store::open(cfg.clone(), clock.clone()).expect("open");
                    s.sync_inventory(inventory.clone());
                    for (i, st) in state.iter_mut().enumerate() {
                        let to = if run == 1 && plan.down_at_run2.contains(&i) {
                            State::Down
                        } else {
                            State::Up
                        };
                        s.record_transition(rec(i, State::Unknown, to, t));
                        *st = to;
                        transitions += 1;
                    }
                    store = Some(s);
                }
                Ev::Tr(i, from, to) => {
                    assert_eq!(state[i], from, "plan for {} at {t}", id(i));
                    store.as_ref().expect("running").record_transition(rec(i, from, to, t));
                    state[i] = to;
                    transitions += 1;
                }
                Ev::Crash => {
                    let s = store.take().expect("running");
                    s.flush().expect("flush");
                    drop(s); // no clean stop: the run ends at this last heartbeat
                    state.fill(State::Unknown);
                }
                Ev::Decommission => store.as_ref().expect("running").sync_inventory(Vec::new()),
                Ev::Stop => {
                    store.take().expect("running").shutdown().expect("clean stop");
                    state.fill(State::Unknown);
                }
            }
        }
        println!(
            "ledger: {N} endpoints, {transitions} transitions over November 2026 built in {:?} ({})",
            took.elapsed(),
            dir.display()
        );
        Fixture {
            dir,
            config,
            plan,
            transitions,
        }
    })
}

fn report(f: &Fixture, args: &[&str]) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let out = Command::new(bin())
        .args(["report", "sla", "--config"])
        .arg(&f.config)
        .args(args)
        .output()
        .expect("run diemcau report sla");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout, took)
}

#[test]
fn csv_by_province_and_carrier_matches_arithmetic() {
    let f = fixture();
    let db = rusqlite::Connection::open_with_flags(
        f.dir.join("ledger").join("diemcau.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("ledger");
    let stored: i64 = db
        .query_row("SELECT count(*) FROM transitions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored as u64, f.transitions, "every transition is in the ledger");

    let (csv, took) = report(
        f,
        &["--period", "2026-11", "--by", "province,carrier", "--format", "csv"],
    );
    println!("report sla --format csv for {N} endpoints × 1 month: {took:?} (wall clock of the CLI)");

    let mut expected: BTreeMap<(String, String), Expect> = BTreeMap::new();
    let mut national = Expect::default();
    let mut per_endpoint = Vec::new();
    for i in 0..N {
        let e = expect_endpoint(&f.plan, i);
        expected
            .entry((province(i).to_string(), carrier(i).to_string()))
            .or_default()
            .add(&e);
        national.add(&e);
        per_endpoint.push(e);
    }
    // Spot checks of the design itself.
    assert_eq!(per_endpoint[0].unknown, 8 * H); // VNPT: 3 h + 5 h
    assert_eq!(per_endpoint[12].unknown, 7 * H); // Viettel: the 22nd's window is maintenance
    assert_eq!(per_endpoint[12].maintenance, 5 * H);
    assert_eq!((per_endpoint[468].downtime, per_endpoint[468].outages), (0, 0)); // C only, VNPT

    // UTF-8 with a BOM, so that Excel on a Vietnamese Windows desktop reads the diacritics.
    let csv = csv
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .expect("the CSV starts with a UTF-8 BOM");
    assert!(!csv.starts_with(b"\xEF\xBB\xBF"), "exactly one BOM");
    let mut rdr = csv::Reader::from_reader(csv);
    let header: Vec<String> = rdr.headers().expect("header").iter().map(String::from).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let mut rows = 0;
    let mut breaches = Vec::new();
    for row in rdr.records() {
        let row = row.expect("row");
        let get = |name: &str| row.get(col(name)).expect("field").to_string();
        let num = |name: &str| {
            get(name)
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{name}: {:?}", get(name)))
        };
        let key = (get("province"), get("carrier"));
        let e = expected
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected group {key:?}"))
            .clone();
        let what = format!("{key:?}");
        assert_eq!(get("group"), format!("{} / {}", key.0, key.1), "{what}");
        assert_eq!(get("district"), "", "{what}");
        assert_eq!(num("endpoints") as usize, e.endpoints, "{what}");
        assert_eq!(num("endpoints_without_data"), 0, "{what}");
        assert_eq!(num("inventory_s"), e.inventory, "{what} inventory");
        assert_eq!(num("maintenance_s"), e.maintenance, "{what} maintenance");
        assert_eq!(num("unknown_s"), e.unknown, "{what} unknown");
        assert_eq!(num("eligible_s"), e.eligible, "{what} eligible");
        assert_eq!(num("downtime_s"), e.downtime, "{what} downtime");
        assert_eq!(num("up_s"), e.eligible - e.downtime, "{what} up");
        assert_eq!(num("outages"), e.outages, "{what} outages");
        let avail = (e.eligible - e.downtime) as f64 * 100.0 / e.eligible as f64;
        let shown: f64 = get("availability_pct").parse().expect("availability");
        assert!(
            (shown - avail).abs() < 0.000_051,
            "{what}: availability {shown} vs {avail}"
        );
        assert_eq!(get("availability_pct"), format!("{avail:.4}"), "{what}");
        let t = target(&key.1);
        assert_eq!(get("target_pct").parse::<f64>().expect("target"), t, "{what}");
        let breach = avail < t;
        assert_eq!(get("breach"), if breach { "yes" } else { "no" }, "{what}");
        if breach {
            breaches.push(what.clone());
        }
        if e.outages > 0 {
            let mttr = e.downtime as f64 / e.outages as f64;
            let mtbf = (e.eligible - e.downtime) as f64 / e.outages as f64;
            assert!((num("mttr_s") as f64 - mttr).abs() <= 0.5 + 1e-9, "{what} mttr");
            assert!((num("mtbf_s") as f64 - mtbf).abs() <= 0.5 + 1e-9, "{what} mtbf");
        } else {
            assert_eq!((get("mttr_s"), get("mtbf_s")), (String::new(), String::new()), "{what}");
        }
        rows += 1;
    }
    assert_eq!(rows, expected.len(), "one row per province × carrier");
    assert_eq!(rows, 36);
    assert_eq!(
        breaches,
        vec!["(\"Tỉnh Cà Mau\", \"Viettel\")".to_string()],
        "only Cà Mau / Viettel breaches"
    );
    println!(
        "{rows} rows checked; national: eligible {} s, downtime {} s in {} outages, maintenance {} s, unknown {} s",
        national.eligible, national.downtime, national.outages, national.maintenance, national.unknown
    );

    // JSON: parses, and its national total is the same arithmetic.
    let (json, took) = report(
        f,
        &["--period", "2026-11", "--by", "province,carrier", "--format", "json"],
    );
    println!("report sla --format json: {took:?}");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("report JSON parses");
    let t = &v["total"];
    for (k, want) in [
        ("inventory_s", national.inventory),
        ("maintenance_s", national.maintenance),
        ("unknown_s", national.unknown),
        ("eligible_s", national.eligible),
        ("downtime_s", national.downtime),
        ("outages", national.outages),
    ] {
        assert_eq!(t[k].as_i64(), Some(want), "JSON total.{k}");
    }
    assert_eq!(t["endpoints"].as_u64(), Some(N as u64));
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(36));
    assert_eq!(v["period"]["start"].as_i64(), Some(f.plan.period.0));
    assert_eq!(v["period"]["end"].as_i64(), Some(f.plan.period.1));
}

#[test]
fn html_report_renders_in_headless_chromium() {
    if !require_tool("chromium") {
        return;
    }
    let f = fixture();
    let html = f.dir.join("report.html");
    let (_, took) = report(
        f,
        &[
            "--period",
            "2026-11",
            "--by",
            "province,carrier",
            "--format",
            "html",
            "--out",
            html.to_str().expect("utf-8 path"),
        ],
    );
    println!("report sla --format html: {took:?}");
    let text = std::fs::read_to_string(&html).expect("report.html");
    assert!(
        text.contains("Tỉnh Đắk Lắk"),
        "the HTML names provinces with diacritics"
    );

    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_cli");
    std::fs::create_dir_all(&out_dir).expect("output dir");
    let png = out_dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", html.display());
    let chromium = |extra: &[String]| -> std::process::Output {
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--window-size=1280,2400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        let t = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if t.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("chromium did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().expect("chromium output")
    };
    let t = Instant::now();
    let out = chromium(&[format!("--screenshot={}", png.display())]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10 * 1024,
        "screenshot {} is {size} bytes ({}); chromium: {}",
        png.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read(&png).expect("png");
    assert_eq!(&head[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    println!("screenshot: {} ({size} bytes, {:?})", png.display(), t.elapsed());

    let dom = chromium(&["--dump-dom".to_string()]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for name in ["Tỉnh Đắk Lắk", "Thành phố Đà Nẵng", "Tỉnh Cà Mau"] {
        assert!(dom.contains(name), "the rendered DOM names {name}");
    }
    println!("dump-dom: {} bytes, provinces with diacritics present", dom.len());
}
