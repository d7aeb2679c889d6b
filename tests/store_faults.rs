//! Storage faults: the ledger on a small tmpfs that fills up, then turns read-only, then comes
//! back. Records keep being accepted, `write_errors` grows, `healthy` is 0, the pending queue
//! stays within its bound (the overflow is counted), and afterwards every accepted transition is
//! committed. Runs inside a private user + mount namespace (this test binary re-executed under
//! `unshare -rm`, STORE_FAULTS_IN_NS marks the inner run), so the host's mounts are untouched.

mod common;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemcau::domain::EndpointId;
use diemcau::domain::Labels;
use diemcau::domain::health::State;
use diemcau::store::{Clock, InventoryRecord, ManualClock, Store, StoreConfig, StoreStats, Transition};

const INNER: &str = "STORE_FAULTS_IN_NS";
const MAX_PENDING: usize = 5_000;

fn run_in_namespace(test: &str) -> bool {
    common::rerun_in_namespace("-rm", test, INNER, &["mount", "umount"], Duration::from_secs(120))
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().expect("spawn sh");
    assert!(st.success(), "`{cmd}` failed: {st}");
}

/// Polls `cond` on the store's stats every 20 ms for at most `limit`.
fn wait_for(store: &Store, limit: Duration, what: &str, cond: impl Fn(&StoreStats) -> bool) -> StoreStats {
    let t = Instant::now();
    loop {
        let s = store.stats();
        if cond(&s) {
            return s;
        }
        assert!(t.elapsed() < limit, "timed out waiting for {what}: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `n` transitions, one millisecond apart; `sent` keeps every `at_ms` (unique).
fn send(store: &Store, clock: &ManualClock, ids: &[EndpointId], sent: &mut Vec<i64>, n: usize) {
    for _ in 0..n {
        let k = sent.len();
        let at_ms = 1_000_000 + k as i64;
        clock.set(at_ms);
        let (from, to) = if k.is_multiple_of(2) {
            (State::Up, State::Down)
        } else {
            (State::Down, State::Up)
        };
        store.record_transition(Transition {
            endpoint: ids[(k / 2) % ids.len()].clone(),
            from,
            to,
            at_ms,
            reason: format!(
                "transition {k} with a reason long enough to need space {}",
                "x".repeat(100)
            ),
            check: "icmp".into(),
        });
        sent.push(at_ms);
    }
}

fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0xA5u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn full_then_read_only_disk_keeps_records_and_recovers() {
    if std::env::var_os(INNER).is_none() {
        run_in_namespace("full_then_read_only_disk_keeps_records_and_recovers");
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let d = base.path().join("ledger");
    let backdoor = base.path().join("backdoor");
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::create_dir_all(&backdoor).expect("mkdir");
    let (ds, bs) = (d.display().to_string(), backdoor.display().to_string());
    sh(&format!("mount -t tmpfs -o size=2m tmpfs {ds}"));
    sh(&format!("mount --bind {ds} {bs}")); // a writable way in while {ds} is read-only

    let clock = Arc::new(ManualClock::new(1_000_000));
    let cfg = StoreConfig {
        batch_interval: Duration::from_millis(20),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(300),
        max_pending: MAX_PENDING,
        ..StoreConfig::new(d.join("diemcau.db"))
    };
    let store = Store::open(cfg, clock.clone()).expect("open");
    let ids: Vec<EndpointId> = (0..100).map(|i| EndpointId(Arc::from(format!("ep-{i:03}")))).collect();
    store.sync_inventory(
        (0..100)
            .map(|i| InventoryRecord {
                id: format!("ep-{i:03}").into(),
                labels: Labels {
                    province: "Tỉnh Lào Cai".into(),
                    district: Some("Huyện Sa Pa".into()),
                    commune: format!("Xã {i}").into(),
                    carrier: "Viettel".into(),
                },
                address: format!("10.1.0.{i}"),
            })
            .collect(),
    );
    let mut sent: Vec<i64> = Vec::new(); // at_ms of every transition, unique
    send(&store, &clock, &ids, &mut sent, 200);
    store.flush().expect("healthy flush");
    assert!(store.stats().healthy);

    // 1. Disk full.
    fill(&backdoor.join("filler"));
    let t = Instant::now();
    while store.stats().write_errors_total == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "commits never failed on a full disk"
        );
        send(&store, &clock, &ids, &mut sent, 100);
        std::thread::sleep(Duration::from_millis(30));
    }
    let s = wait_for(&store, Duration::from_secs(5), "unhealthy", |s| !s.healthy);
    println!("disk full after {} transitions: {s:?}", sent.len());
    assert!(store.flush().is_err(), "flush must report the failure");

    // 2. Read-only: a read-only bind mount on top (the writer reopens its connection at each
    //    retry, so it now goes through it), then free the space underneath.
    sh(&format!("mount --bind {ds} {ds} && mount -o remount,bind,ro {ds}"));
    let e0 = store.stats().write_errors_total;
    wait_for(&store, Duration::from_secs(10), "retries through the ro mount", |s| {
        s.write_errors_total >= e0 + 2
    });
    std::fs::remove_file(backdoor.join("filler")).expect("free space");
    let e1 = store.stats().write_errors_total;
    send(&store, &clock, &ids, &mut sent, 300);
    let s = wait_for(&store, Duration::from_secs(10), "more failures while read-only", |s| {
        s.write_errors_total >= e1 + 2
    });
    assert!(!s.healthy, "{s:?}");
    assert_eq!(s.records_dropped_total, 0);
    let err = store.flush().expect_err("read-only");
    println!("read-only: {err}");

    // 3. The pending queue is bounded: beyond MAX_PENDING new records are refused and counted.
    let pending = usize::try_from(s.records_pending).expect("pending");
    assert!(pending < MAX_PENDING, "{s:?}");
    let accepted_total = sent.len() + (MAX_PENDING - pending);
    send(&store, &clock, &ids, &mut sent, MAX_PENDING - pending + 500);
    let s = wait_for(&store, Duration::from_secs(10), "the bound", |s| {
        s.records_dropped_total == 500
    });
    assert_eq!(s.records_pending, MAX_PENDING as u64, "{s:?}");
    println!("read-only, queue at its bound: {s:?}");

    // 4. Writable again: the backlog is committed, nothing accepted is missing.
    if Command::new("umount").arg(&d).status().map_or(true, |s| !s.success()) {
        sh(&format!("umount -l {ds}"));
    }
    let t = Instant::now();
    let s = wait_for(&store, Duration::from_secs(20), "recovery", |s| {
        s.healthy && s.records_pending == 0
    });
    println!("recovered in {:?}: {s:?}", t.elapsed());
    store.flush().expect("healthy again");
    let r = store.reader().expect("reader");
    assert_eq!(r.transition_count().expect("count"), accepted_total as u64);
    let mut stored: Vec<i64> = Vec::new();
    for id in &ids {
        stored.extend(
            r.transitions(id.as_str(), 0, i64::MAX)
                .expect("transitions")
                .iter()
                .map(|t| t.transition.at_ms),
        );
    }
    stored.sort_unstable();
    assert_eq!(
        stored,
        sent[..accepted_total],
        "every accepted transition, the newest 500 refused"
    );
    assert_eq!(s.records_dropped_total, 500);
    let runs = r.runs().expect("runs");
    assert_eq!(runs[0].last_seen_ms, clock.now_ms());
    drop(r);
    store.shutdown().expect("shutdown");
}
