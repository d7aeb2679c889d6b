//! Crash safety of the ledger at daemon level: `diemcau run --private-netns` probes 200 loopback
//! endpoints while nftables drops (toggled at random-ish moments) keep outages opening and
//! closing; the daemon is SIGKILLed 20+ times and restarted on the same config and ledger. Then:
//!
//! * (a) every transition the daemon logged more than 1 s before a kill is in `transitions`
//!   (same run, endpoint, states, time), and nothing is there that was not logged;
//! * (b) runs never overlap; crashed runs have `clean_stop = 0`, end at their last heartbeat
//!   (≤ the kill, at most heartbeat + one writer tick before it), and their open outages were
//!   closed there with `monitor_stopped`;
//! * (c) `diemcau report sla --by province --format json` over the test: each dropped endpoint
//!   (alone in its province) has the downtime of our ground truth restricted to monitored time,
//!   within the detection lags per outage segment (see [`tolerance`]); stable endpoints have no
//!   downtime; unknown time is the gaps between runs.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{bin, free_port, http, nft_in as nft, require_tool, tail};
use diemcau::config::inventory_gen::PROVINCES_2021;

const N: usize = 200;
const VICTIMS: usize = 20;
const KILLS: usize = 20;
const INTERVAL_MS: i64 = 1_000;
const ROUND_SPAN_MS: i64 = 2 * 100 + 300; // (packets − 1) × spacing + timeout
const DOWN_AFTER: i64 = 2;
const UP_AFTER: i64 = 1;
const HEARTBEAT_MS: i64 = 1_000;
/// Engine tick, scheduling and nft latency allowance.
const SLACK_MS: i64 = 250;
/// An outage is dated midway between the last answered and the first lost request: up to
/// half the gap between two rounds' requests before the drop really began.
const HALF_GAP_MS: i64 = (INTERVAL_MS - 2 * 100) / 2;
/// Transitions older than this before a kill must have been committed. Batches close within
/// 200 ms; on a two-core machine busy with the rest of the suite the writer thread can wait its
/// turn for over a second (seen: "logged 1 transitions older than 1 s, ledger has 0"), so the
/// bound leaves room for scheduling and still catches a lost commit.
const COMMITTED_AGE_MS: i64 = 3_000;

/// Provinces of the dropped endpoints: one each, so a `--by province` row is one endpoint.
const VICTIM_PROVINCES: &[&str] = PROVINCES_2021.split_at(1).1.split_at(VICTIMS).0;
const STABLE_PROVINCES: [&str; 3] = ["Thành phố Hà Nội", "Thành phố Hồ Chí Minh", "Thành phố Đà Nẵng"];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Victim `k` is endpoint `k × 10`, so victims are spread over the probing timeline.
fn victim_index(k: usize) -> usize {
    k * (N / VICTIMS)
}

fn address(i: usize) -> String {
    format!("127.1.{}.{}", (i + 1) / 256, (i + 1) % 256)
}

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..N {
        let province = if i % (N / VICTIMS) == 0 {
            VICTIM_PROVINCES[i / (N / VICTIMS)]
        } else {
            STABLE_PROVINCES[i % 3]
        };
        let carrier = if i % 2 == 0 { "VNPT" } else { "Viettel" };
        s.push_str(&format!(
            "E{i:05},{province},Huyện Thử Nghiệm,Xã Điểm Cầu {i},{carrier},{}\n",
            address(i)
        ));
    }
    s
}

fn config(port: u16) -> String {
    format!(
        "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [probe]\ninterval = \"{INTERVAL_MS}ms\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"300ms\"\n\
         [state]\ndown_after = {DOWN_AFTER}\nup_after = {UP_AFTER}\n[store]\nheartbeat = \"{HEARTBEAT_MS}ms\"\n"
    )
}

/// One daemon process (one ledger run).
struct Run {
    child: Child,
    log: PathBuf,
    spawned_ms: i64,
    healthy_ms: i64,
    /// When the SIGKILL was sent (`None` for the final, cleanly stopped run).
    killed_ms: Option<i64>,
    stopped_ms: Option<i64>,
}

fn start(dir: &Path, port: u16, n: usize) -> Run {
    let log = dir.join(format!("run-{n:02}.log"));
    let spawned_ms = now_ms();
    let child = Command::new(bin())
        .args(["run", "--private-netns", "--config"])
        .arg(dir.join("diemcau.toml"))
        // Every transition in the log: first states (from unknown) are logged at DEBUG.
        .args(["--log.level", "info,diemcau::monitor=debug", "--log.format", "json"])
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn diemcau");
    let mut run = Run {
        child,
        log,
        spawned_ms,
        healthy_ms: 0,
        killed_ms: None,
        stopped_ms: None,
    };
    let t = Instant::now();
    while http(port, "GET", "/-/healthy", &[]).0 != 200 {
        if let Ok(Some(st)) = run.child.try_wait() {
            panic!("run {n} exited ({st}):\n{}", read(&run.log));
        }
        assert!(t.elapsed() < Duration::from_secs(20), "run {n} never became healthy");
        std::thread::sleep(Duration::from_millis(10));
    }
    run.healthy_ms = now_ms();
    run
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The drop table, holding the victims dropped now (a fresh namespace has none).
fn table(dropped: &BTreeSet<usize>) -> String {
    let elements: Vec<String> = dropped.iter().map(|&k| address(victim_index(k))).collect();
    let elements = if elements.is_empty() {
        String::new()
    } else {
        format!("  elements = {{ {} }}\n", elements.join(", "))
    };
    format!(
        "table inet lab {{\n set dropped {{\n  type ipv4_addr\n{elements} }}\n chain out {{\n  \
         type filter hook output priority 0; policy accept;\n  ip daddr @dropped drop\n }}\n}}\n"
    )
}

/// Ground truth: per victim, the wall-clock spans during which its drop rule was in force in a
/// live daemon's namespace.
#[derive(Default)]
struct Truth {
    spans: Vec<Vec<(i64, Option<i64>)>>,
}

impl Truth {
    fn open(&mut self, k: usize, at: i64) {
        assert!(self.spans[k].last().is_none_or(|s| s.1.is_some()));
        self.spans[k].push((at, None));
    }
    fn close(&mut self, k: usize, at: i64) {
        let last = self.spans[k].last_mut().expect("an open span");
        assert!(last.1.is_none());
        last.1 = Some(at);
    }
}

#[derive(Debug, Clone)]
struct Logged {
    /// When it was logged.
    ts_ms: i64,
    /// When the change is dated (its first silent or answering round), as stored.
    at_ms: i64,
    endpoint: String,
    from: String,
    to: String,
}

/// The run id and the "endpoint state changed" events of one JSON log.
fn parse_log(path: &Path) -> (Option<i64>, Vec<Logged>) {
    let mut run_id = None;
    let mut out = Vec::new();
    for line in read(path).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        match f["message"].as_str() {
            Some("ledger open") => {
                run_id = f["run"].as_i64().or(f["run_id"].as_i64()).or(run_id);
            }
            Some("endpoint state changed") => {
                let ts: jiff::Timestamp = v["timestamp"]
                    .as_str()
                    .expect("timestamp")
                    .parse()
                    .expect("RFC 3339 timestamp");
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                out.push(Logged {
                    ts_ms: ts.as_millisecond(),
                    at_ms: f["at_ms"].as_i64().expect("at_ms"),
                    endpoint: s("endpoint"),
                    from: s("from"),
                    to: s("to"),
                });
            }
            _ => {}
        }
    }
    (run_id, out)
}

/// Allowed gap between reported and true downtime, per outage segment (a maximal span of true
/// downtime inside one run), in ms: reported downtime starts late by at most the detection lag
/// `down_after × interval + round_span` (the first fully silent round starts within one interval,
/// and `down_after` of them must complete) and ends late by at most the recovery lag
/// `up_after × interval + round_span`; never early. Both get `SLACK_MS` and 1 s for the report's
/// rounding of milliseconds down to seconds.
fn tolerance() -> (i64, i64) {
    (
        DOWN_AFTER * INTERVAL_MS + ROUND_SPAN_MS + SLACK_MS + 1_000,
        UP_AFTER * INTERVAL_MS + ROUND_SPAN_MS + SLACK_MS + 1_000,
    )
}

/// A `transitions` row: endpoint, from, to, at_ms.
type Stored = (String, String, String, i64);

#[derive(Debug)]
struct DbRun {
    run_id: i64,
    started_ms: i64,
    last_seen_ms: i64,
    clean_stop: i64,
    recovered_ms: Option<i64>,
}

#[test]
fn sigkill_twenty_times_keeps_committed_history_and_sla_figures() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let test_start = Instant::now();
    let seed: u64 = std::env::var("LEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64);
    println!("seed {seed} (LEDGER_CRASH_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    std::fs::write(dir.path().join("diemcau.toml"), config(port)).expect("config");
    std::fs::write(dir.path().join("inventory.csv"), inventory()).expect("inventory");
    let from_s = now_ms() / 1000;

    let mut truth = Truth {
        spans: vec![Vec::new(); VICTIMS],
    };
    let mut dropped: BTreeSet<usize> = BTreeSet::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut flips = 0usize;

    let begin = |runs: &mut Vec<Run>, truth: &mut Truth, dropped: &BTreeSet<usize>| {
        let run = start(dir.path(), port, runs.len());
        // Stamped before the command: its effect can begin any time while it runs.
        let at = now_ms();
        nft(run.child.id(), &table(dropped));
        for &k in dropped {
            truth.open(k, at);
        }
        runs.push(run);
    };
    begin(&mut runs, &mut truth, &dropped);

    let flip = |k: usize, run: &Run, truth: &mut Truth, dropped: &mut BTreeSet<usize>| {
        let (verb, adding) = if dropped.contains(&k) {
            ("delete", false)
        } else {
            ("add", true)
        };
        // Stamped before the command: a lift takes effect while nft runs (a few ms), and the
        // daemon may see the next reply before nft has even exited.
        let at = now_ms();
        nft(
            run.child.id(),
            &format!("{verb} element inet lab dropped {{ {} }}\n", address(victim_index(k))),
        );
        if adding {
            dropped.insert(k);
            truth.open(k, at);
        } else {
            dropped.remove(&k);
            truth.close(k, at);
        }
    };

    // Kill phase: a kill 1.3–3 s after each start, flips every 0.3–0.9 s.
    let mut next_flip = now_ms() + rng.random_range(300..900);
    let mut next_kill = runs[0].healthy_ms + rng.random_range(1_300..3_000);
    let mut kills = 0;
    while kills < KILLS {
        let now = now_ms();
        if now >= next_flip {
            let k = rng.random_range(0..VICTIMS);
            flip(k, runs.last().expect("run"), &mut truth, &mut dropped);
            flips += 1;
            next_flip = now_ms() + rng.random_range(300..900);
        }
        if now >= next_kill {
            let run = runs.last_mut().expect("run");
            let at = now_ms();
            run.child.kill().expect("SIGKILL");
            run.killed_ms = Some(at);
            let _ = run.child.wait();
            for &k in &dropped {
                truth.close(k, at);
            }
            kills += 1;
            begin(&mut runs, &mut truth, &dropped);
            next_kill = runs.last().expect("run").healthy_ms + rng.random_range(1_300..3_000);
        }
        let wake = next_flip.min(next_kill) - now_ms();
        if wake > 0 {
            std::thread::sleep(Duration::from_millis(wake.min(50) as u64));
        }
    }
    // Final run: 15 s without kills, so outages also close by recovery: 4 s for the victims
    // dropped now to go down, each of them lifted 0.1–0.3 s apart, then random flips; then a
    // clean stop.
    let final_end = now_ms() + 15_000;
    std::thread::sleep(Duration::from_secs(4));
    let lift: Vec<usize> = dropped.iter().copied().collect();
    for k in lift {
        flip(k, runs.last().expect("run"), &mut truth, &mut dropped);
        flips += 1;
        std::thread::sleep(Duration::from_millis(rng.random_range(100..300)));
    }
    while now_ms() < final_end {
        let k = rng.random_range(0..VICTIMS);
        flip(k, runs.last().expect("run"), &mut truth, &mut dropped);
        flips += 1;
        std::thread::sleep(Duration::from_millis(rng.random_range(500..1_500)));
    }
    {
        let run = runs.last_mut().expect("run");
        let at = now_ms();
        let st = common::terminate(&mut run.child, Duration::from_secs(10));
        assert!(st.success(), "clean stop failed: {st}\n{}", tail(&read(&run.log), 20));
        run.stopped_ms = Some(at);
        for &k in &dropped {
            truth.close(k, at);
        }
    }
    let stop_ms = runs.last().expect("run").stopped_ms.expect("stopped");
    let to_s = stop_ms / 1000 + 2;
    println!(
        "{} runs, {kills} SIGKILLs, {flips} drop flips, daemon phase took {:?}",
        runs.len(),
        test_start.elapsed()
    );

    // ---- (b) runs and outages in the ledger ----
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join("data").join("diemcau.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger");
    let db_runs: Vec<DbRun> = db
        .prepare("SELECT run_id, started_ms, last_seen_ms, clean_stop, recovered_ms FROM runs ORDER BY run_id")
        .expect("prepare")
        .query_map([], |r| {
            Ok(DbRun {
                run_id: r.get(0)?,
                started_ms: r.get(1)?,
                last_seen_ms: r.get(2)?,
                clean_stop: r.get(3)?,
                recovered_ms: r.get(4)?,
            })
        })
        .expect("runs")
        .collect::<Result<_, _>>()
        .expect("runs");
    assert_eq!(db_runs.len(), runs.len(), "one ledger run per daemon start");
    let mut worst_beat = 0;
    for (i, (r, p)) in db_runs.iter().zip(&runs).enumerate() {
        assert!(
            p.spawned_ms <= r.started_ms && r.started_ms <= p.healthy_ms,
            "run {i} started inside its process: {r:?} spawned {} healthy {}",
            p.spawned_ms,
            p.healthy_ms
        );
        assert!(r.last_seen_ms >= r.started_ms, "{r:?}");
        if let Some(next) = db_runs.get(i + 1) {
            assert!(r.last_seen_ms <= next.started_ms, "runs overlap: {r:?} / {next:?}");
        }
        match p.killed_ms {
            Some(k) => {
                assert_eq!(r.clean_stop, 0, "crashed run {i}: {r:?}");
                assert_eq!(r.recovered_ms, Some(db_runs[i + 1].started_ms), "{r:?}");
                assert!(r.last_seen_ms <= k, "run {i} seen after its kill: {r:?} killed {k}");
                let beat = k - r.last_seen_ms;
                worst_beat = worst_beat.max(beat);
                assert!(
                    beat <= HEARTBEAT_MS + 200 + 800,
                    "run {i}: last heartbeat {beat} ms before the kill (heartbeat {HEARTBEAT_MS} ms)"
                );
            }
            None => {
                assert_eq!(r.clean_stop, 1, "the final run stopped cleanly: {r:?}");
                let s = p.stopped_ms.expect("stopped");
                assert!(r.last_seen_ms >= s && r.last_seen_ms <= s + 10_000, "{r:?} stop {s}");
            }
        }
    }
    let run_end: HashMap<i64, i64> = db_runs.iter().map(|r| (r.run_id, r.last_seen_ms)).collect();
    let run_start: HashMap<i64, i64> = db_runs.iter().map(|r| (r.run_id, r.started_ms)).collect();
    type OutageRow = (i64, String, i64, Option<i64>, Option<String>);
    let outages: Vec<OutageRow> = db
        .prepare("SELECT run_id, endpoint, start_ms, end_ms, end_reason FROM outages ORDER BY endpoint, start_ms")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .expect("outages")
        .collect::<Result<_, _>>()
        .expect("outages");
    let (mut stopped_outages, mut recovered_outages) = (0, 0);
    for (run_id, ep, start, end, reason) in &outages {
        let end = end.unwrap_or_else(|| panic!("outage of {ep} at {start} still open"));
        assert!(
            start >= &run_start[run_id] && end <= run_end[run_id],
            "{ep} {start}..{end} outside run {run_id}"
        );
        match reason.as_deref() {
            Some("monitor_stopped") => {
                stopped_outages += 1;
                assert_eq!(
                    end,
                    run_end[run_id].max(*start),
                    "{ep}: closed at its run's last heartbeat"
                );
            }
            Some("recovered") => recovered_outages += 1,
            other => panic!("{ep}: unexpected end reason {other:?}"),
        }
    }
    for w in outages.windows(2) {
        if w[0].1 == w[1].1 {
            assert!(w[0].3.expect("closed") <= w[1].2, "overlapping outages {w:?}");
        }
    }
    assert!(stopped_outages >= 5, "outages open at kills: {stopped_outages}");
    assert!(
        recovered_outages >= 3,
        "outages closed by recovery: {recovered_outages}"
    );
    // Each outage against the ground truth: it starts while its endpoint is dropped (never
    // early; the last round may still be waiting for its timeout when the drop is lifted) and at
    // most `down_after` rounds after the drop began (confirmation makes it one, usually); a
    // recovery is dated at most `up_after` rounds after a drop was lifted, and at most one
    // round's span before it. Endpoints never dropped have no outage at all.
    let victim_of: HashMap<String, usize> = (0..VICTIMS).map(|k| (format!("E{:05}", victim_index(k)), k)).collect();
    let (max_detect, max_recover) = (
        DOWN_AFTER * INTERVAL_MS + ROUND_SPAN_MS + SLACK_MS,
        UP_AFTER * INTERVAL_MS + ROUND_SPAN_MS + SLACK_MS,
    );
    let (mut worst_detect, mut worst_recover) = (0, 0);
    for (_, ep, start, end, reason) in &outages {
        let k = *victim_of
            .get(ep)
            .unwrap_or_else(|| panic!("{ep} was never dropped but has an outage at {start}"));
        let spans: Vec<(i64, i64)> = truth.spans[k].iter().map(|&(s, e)| (s, e.expect("closed"))).collect();
        let (s, _) = spans
            .iter()
            .rev()
            .find(|(s, e)| *s <= *start + SLACK_MS + HALF_GAP_MS && *start <= e + ROUND_SPAN_MS + SLACK_MS)
            .unwrap_or_else(|| panic!("{ep} declared down at {start} while not dropped: {spans:?}"));
        worst_detect = worst_detect.max(start - s);
        // Dated midway between the last answered and the first lost request: at most half a
        // gap before the drop began, and no later than detection allows.
        assert!(
            start - s <= max_detect,
            "{ep}: down {} ms after the drop began (at most {max_detect})",
            start - s
        );
        if reason.as_deref() == Some("recovered") {
            let end = end.expect("closed");
            // Dated midway between the last lost and the first answered request, which may have
            // left a round's span before the lift (its first requests lost, a later one answered).
            let lifted = spans
                .iter()
                .map(|&(_, e)| e)
                .filter(|&e| e <= end + ROUND_SPAN_MS + SLACK_MS)
                .max()
                .unwrap_or_else(|| panic!("{ep}: recovered at {end} before any drop was lifted"));
            worst_recover = worst_recover.max(end - lifted);
            assert!(
                (-(ROUND_SPAN_MS + SLACK_MS)..=max_recover).contains(&(end - lifted)),
                "{ep}: up {} ms after the drop was lifted (at most {max_recover}); outage {start}..{end}, drops {spans:?}",
                end - lifted
            );
        }
    }
    println!(
        "{} outages vs ground truth: detected ≤ {worst_detect} ms after the drop (bound {max_detect}), \
         recovered ≤ {worst_recover} ms after it was lifted (bound {max_recover})",
        outages.len()
    );

    // ---- (a) logged transitions vs the transitions table ----
    let mut stmt = db
        .prepare("SELECT endpoint, from_state, to_state, at_ms FROM transitions WHERE run_id = ?1 ORDER BY at_ms, id")
        .expect("prepare");
    let (mut must, mut checked, mut recent_lost, mut recent_kept) = (0usize, 0usize, 0usize, 0usize);
    for (i, (r, p)) in db_runs.iter().zip(&runs).enumerate() {
        let (logged_run, logged) = parse_log(&p.log);
        assert_eq!(logged_run, Some(r.run_id), "run {i}: log names its ledger run");
        let stored: Vec<Stored> = stmt
            .query_map([r.run_id], |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)))
            .expect("transitions")
            .collect::<Result<_, _>>()
            .expect("transitions");
        let cutoff = p.killed_ms.map_or(i64::MAX, |k| k - COMMITTED_AGE_MS);
        let mut by_ep: HashMap<&str, (Vec<&Logged>, Vec<&Stored>)> = HashMap::new();
        for l in &logged {
            by_ep.entry(&l.endpoint).or_default().0.push(l);
        }
        for s in &stored {
            by_ep.entry(&s.0).or_default().1.push(s);
        }
        for (ep, (l, s)) in &by_ep {
            let old = l.iter().filter(|x| x.ts_ms < cutoff).count();
            must += old;
            assert!(
                s.len() >= old,
                "run {i} ({} at kill {:?}): {ep} logged {old} transitions older than {COMMITTED_AGE_MS} ms, ledger has {}",
                r.run_id,
                p.killed_ms,
                s.len()
            );
            assert!(
                s.len() <= l.len(),
                "run {i}: {ep} has unlogged transitions in the ledger: {s:?}"
            );
            if p.killed_ms.is_none() {
                assert_eq!(s.len(), l.len(), "clean stop: every transition of {ep} committed");
            }
            for (x, y) in l.iter().zip(s.iter()) {
                assert_eq!((&x.from, &x.to), (&y.1, &y.2), "run {i} {ep}: sequence");
                assert!(
                    x.at_ms == y.3,
                    "run {i} {ep}: logged as at {} stored at {}",
                    x.at_ms,
                    y.3
                );
                checked += 1;
            }
            let recent = l.len() - old;
            recent_kept += s.len() - old;
            recent_lost += recent - (s.len() - old);
        }
    }
    println!(
        "transitions: {checked} matched log ↔ ledger ({must} required, older than {COMMITTED_AGE_MS} ms before \
         a kill); logged in the last second before a kill: {recent_kept} committed, {recent_lost} lost; \
         outages: {stopped_outages} closed by monitor_stopped, {recovered_outages} recovered; latest heartbeat \
         at most {worst_beat} ms before a kill"
    );
    assert!(must >= 200, "too few transitions to prove anything: {must}");

    // ---- (c) the SLA report vs ground truth ----
    while now_ms() / 1000 <= to_s {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ts = |s: i64| jiff::Timestamp::from_second(s).expect("timestamp").to_string();
    let period = format!("{}..{}", ts(from_s), ts(to_s));
    let t = Instant::now();
    let out = Command::new(bin())
        .args(["report", "sla", "--config"])
        .arg(dir.path().join("diemcau.toml"))
        .args(["--period", &period, "--by", "province", "--format", "json"])
        .output()
        .expect("run report");
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    println!("report sla --period {period} took {:?}", t.elapsed());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let groups: HashMap<String, &serde_json::Value> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["labels"]["province"].as_str().expect("province").to_string(), g))
        .collect();
    assert_eq!(groups.len(), VICTIMS + STABLE_PROVINCES.len());
    let (p0, p1) = (from_s * 1000, to_s * 1000);
    let monitored: Vec<(i64, i64)> = db_runs
        .iter()
        .map(|r| (r.started_ms.max(p0), r.last_seen_ms.min(p1)))
        .filter(|(a, b)| b > a)
        .collect();
    let monitored_ms: i64 = monitored.iter().map(|(a, b)| b - a).sum();
    let (lag_down, lag_up) = tolerance();
    let (mut sum_truth, mut sum_reported, mut worst_err_per_seg) = (0i64, 0i64, 0f64);
    for k in 0..VICTIMS {
        let g = groups[VICTIM_PROVINCES[k]];
        let reported = g["downtime_s"].as_i64().expect("downtime_s");
        let mut truth_ms = 0;
        let mut segments = 0;
        for &(s, e) in &truth.spans[k] {
            let e = e.expect("closed span");
            for &(a, b) in &monitored {
                let (x, y) = (s.max(a), e.min(b));
                if y > x {
                    truth_ms += y - x;
                    segments += 1;
                }
            }
        }
        let err_ms = reported * 1000 - truth_ms;
        println!(
            "  {:<18} truth {:>6.1} s in {segments:>2} segments, reported {reported:>4} s ({} outages), error {:+.1} s",
            VICTIM_PROVINCES[k],
            truth_ms as f64 / 1000.0,
            g["outages"],
            err_ms as f64 / 1000.0
        );
        assert!(
            err_ms >= -segments * lag_down && err_ms <= segments * lag_up,
            "{}: reported {reported} s, truth {truth_ms} ms over {segments} segments; allowed −{} .. +{} ms",
            VICTIM_PROVINCES[k],
            segments * lag_down,
            segments * lag_up
        );
        if segments > 0 {
            worst_err_per_seg = worst_err_per_seg.max((err_ms as f64 / segments as f64).abs() / 1000.0);
        }
        sum_truth += truth_ms;
        sum_reported += reported;
    }
    // Unknown time: the gaps between runs and the tail after the clean stop (every endpoint
    // exists from the first run's inventory sync).
    let exists_from = db_runs[0].started_ms.max(p0);
    let ledger_unknown_ms = (p1 - exists_from) - monitored_ms;
    let my_gaps_ms: i64 = runs
        .windows(2)
        .map(|w| w[1].spawned_ms - w[0].killed_ms.expect("killed"))
        .sum::<i64>()
        + (p1 - stop_ms);
    for (name, g) in &groups {
        let n = g["endpoints"].as_i64().expect("endpoints");
        let unknown = g["unknown_s"].as_i64().expect("unknown_s");
        let per = unknown as f64 / n as f64;
        assert!(
            (per * 1000.0 - ledger_unknown_ms as f64).abs() <= (runs.len() as f64 + 1.0) * 1000.0,
            "{name}: unknown {per} s per endpoint, gaps between ledger runs {ledger_unknown_ms} ms"
        );
        assert!(
            per * 1000.0 >= (my_gaps_ms - runs.len() as i64 * 1000) as f64
                && per * 1000.0 <= (my_gaps_ms + KILLS as i64 * (HEARTBEAT_MS + 1_000) + 2_000) as f64,
            "{name}: unknown {per} s per endpoint, wall-clock gaps {my_gaps_ms} ms"
        );
        if STABLE_PROVINCES.contains(&name.as_str()) {
            assert_eq!(g["downtime_s"].as_i64(), Some(0), "{name} was never dropped");
        }
    }
    println!(
        "SLA: dropped endpoints truth {:.1} s vs reported {sum_reported} s; tolerance per segment −{lag_down}/+{lag_up} ms, \
         worst mean error per segment {worst_err_per_seg:.2} s; unknown per endpoint {:.1} s (ledger gaps) vs \
         {:.1} s (wall-clock kill→restart gaps + tail); whole test {:?}",
        sum_truth as f64 / 1000.0,
        ledger_unknown_ms as f64 / 1000.0,
        my_gaps_ms as f64 / 1000.0,
        test_start.elapsed()
    );
}
