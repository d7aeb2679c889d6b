//! The ledger never lies about itself: files deleted or replaced under a running store are
//! noticed at the next commit or heartbeat, counted, and restored from the open database with
//! every committed record; the database itself is locked, so a second writer is refused even
//! when the lock file is gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemcau::domain::EndpointId;
use diemcau::domain::health::State;
use diemcau::store::{Clock, ManualClock, Store, StoreConfig, StoreError, StoreReader, StoreStats, Transition};

/// Hang detector only: every wait below ends in milliseconds when things work.
const HANG: Duration = Duration::from_secs(60);
const HEARTBEAT: Duration = Duration::from_secs(10);

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        heartbeat: HEARTBEAT,
        batch_interval: Duration::from_millis(20),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        ..StoreConfig::new(dir.join("diemcau.db"))
    }
}

/// A new ledger in a temporary directory, on a manual clock; the directory lives as long as the
/// returned guard.
fn fresh_store() -> (tempfile::TempDir, Arc<ManualClock>, Store, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(config(dir.path()), clock.clone()).expect("open");
    let path = store.path().to_path_buf();
    (dir, clock, store, path)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Records `n` transitions alternating down / up over 10 endpoints, one second apart.
fn record(store: &Store, clock: &ManualClock, sent: &mut u64, n: u64) {
    for _ in 0..n {
        let k = *sent;
        clock.advance(1_000);
        let (from, to) = if (k / 10).is_multiple_of(2) {
            (State::Up, State::Down)
        } else {
            (State::Down, State::Up)
        };
        store.record_transition(Transition {
            endpoint: EndpointId(Arc::from(format!("ep-{}", k % 10))),
            from,
            to,
            at_ms: clock.now_ms(),
            reason: format!("transition {k}"),
            check: "icmp".into(),
        });
        *sent += 1;
    }
}

/// Moves the clock past a heartbeat and polls until `cond` holds (or the hang detector fires).
fn beat_until(store: &Store, clock: &ManualClock, what: &str, cond: impl Fn(&StoreStats) -> bool) -> StoreStats {
    let t = Instant::now();
    loop {
        clock.advance(HEARTBEAT.as_millis() as i64);
        std::thread::sleep(Duration::from_millis(30));
        let s = store.stats();
        if cond(&s) {
            return s;
        }
        assert!(t.elapsed() < HANG, "hang: waiting for {what}: {s:?}");
    }
}

fn metrics_text(store: &Store) -> String {
    let registry = prometheus::Registry::new();
    registry.register(Box::new(store.collector())).expect("register");
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode")
}

/// `promtool check metrics` finds nothing to say about the store's families.
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (see scripts/test)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Checks the ledger after a clean shutdown: intact, every transition, one cleanly stopped run,
/// no outage left open.
fn assert_consistent_after_shutdown(path: &Path, sent: u64) {
    assert_eq!(integrity(path), "ok");
    let r = StoreReader::open(path).expect("reader");
    assert_eq!(
        r.transition_count().expect("count"),
        sent,
        "every committed transition kept"
    );
    let runs = r.runs().expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].clean_stop, "{runs:?}");
    assert!(r.open_outages().expect("outages").is_empty());
}

#[test]
fn deleted_database_is_restored_with_its_history() {
    let (_dir, clock, store, path) = fresh_store();
    let mut sent = 0;
    record(&store, &clock, &mut sent, 100);
    store.flush().expect("flush");
    assert!(metrics_text(&store).contains("diemcau_store_file_replaced_total 0"));

    for ext in ["", "-wal", "-shm"] {
        let p = with_suffix(&path, ext);
        if p.exists() {
            std::fs::remove_file(&p).expect("delete ledger file");
        }
    }
    assert!(!path.exists());
    // Recording goes on while the file is gone.
    record(&store, &clock, &mut sent, 50);
    let s = beat_until(&store, &clock, "the restored database", |s| {
        s.files_replaced_total == 1 && s.healthy && s.records_pending == 0
    });
    assert_eq!(s.records_dropped_total, 0, "{s:?}");
    assert!(path.exists(), "the database is back at its path");
    record(&store, &clock, &mut sent, 50);
    store.flush().expect("flush after the restore");
    let r = StoreReader::open(&path).expect("reader");
    assert_eq!(
        r.transition_count().expect("count"),
        sent,
        "every transition is in the file"
    );
    assert_eq!(r.runs().expect("runs").len(), 1, "the same run goes on");
    drop(r);

    let c0 = store.stats().commits_total;
    let s = beat_until(&store, &clock, "more heartbeats", |s| s.commits_total > c0 + 2);
    assert_eq!(s.files_replaced_total, 1, "counted once: {s:?}");
    assert!(s.healthy);
    let text = metrics_text(&store);
    assert!(text.contains("diemcau_store_file_replaced_total 1"), "{text}");
    assert!(text.contains("diemcau_store_healthy 1"), "{text}");
    promtool_check(&text);
    store.shutdown().expect("clean shutdown");
    assert_consistent_after_shutdown(&path, sent);
}

#[test]
fn second_writer_is_refused_even_without_the_lock_file() {
    let (dir, clock, store, path) = fresh_store();
    let lock = with_suffix(&path, ".lock");
    let mut sent = 0;
    record(&store, &clock, &mut sent, 15); // leaves endpoints 5..=9 down: open outages
    store.flush().expect("flush");
    let open_before = StoreReader::open(&path)
        .expect("reader")
        .open_outages()
        .expect("outages");
    assert_eq!(open_before.len(), 5);

    std::fs::remove_file(&lock).expect("delete the lock file");
    match Store::open(config(dir.path()), clock.clone()) {
        Err(StoreError::Locked { .. }) => {}
        other => panic!("a second writer must be refused, got {other:?}"),
    }
    let r = StoreReader::open(&path).expect("reader");
    assert_eq!(r.runs().expect("runs").len(), 1, "no second run started");
    assert_eq!(
        r.open_outages().expect("outages"),
        open_before,
        "the live run's outages untouched"
    );
    drop(r);

    // The first store recreates and locks the lock file again at its next heartbeat.
    let s = beat_until(&store, &clock, "the lock file again", |s| {
        s.files_replaced_total == 1 && s.healthy
    });
    assert!(lock.exists());
    assert!(matches!(
        Store::open(config(dir.path()), clock.clone()),
        Err(StoreError::Locked { .. })
    ));
    assert_eq!(s.records_dropped_total, 0);
    store.shutdown().expect("clean shutdown");
    assert_consistent_after_shutdown(&path, sent);
    // Once the first is gone, the ledger opens again.
    Store::open(config(dir.path()), clock.clone())
        .expect("reopen after the first writer stopped")
        .shutdown()
        .expect("shutdown");
}

#[test]
fn replaced_database_is_moved_aside_and_history_restored() {
    let (dir, clock, store, path) = fresh_store();
    let mut sent = 0;
    record(&store, &clock, &mut sent, 100);
    store.flush().expect("flush");

    // Another file takes the path (an atomic rename over it, as a careless restore would do).
    let foreign = b"not a ledger: somebody else's file".to_vec();
    let tmp = dir.path().join("foreign.tmp");
    std::fs::write(&tmp, &foreign).expect("write foreign");
    std::fs::rename(&tmp, &path).expect("replace the database");
    record(&store, &clock, &mut sent, 30);
    let s = beat_until(&store, &clock, "the restored database", |s| {
        s.files_replaced_total == 1 && s.healthy && s.records_pending == 0
    });
    assert_eq!(s.records_dropped_total, 0, "{s:?}");

    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            name.starts_with("diemcau.db.replaced-") && !name.ends_with(".wal") && !name.ends_with(".shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "one file moved aside: {aside:?}");
    assert_eq!(std::fs::read(&aside[0]).expect("read aside"), foreign, "kept unchanged");

    record(&store, &clock, &mut sent, 20);
    store.flush().expect("flush after the restore");
    assert_eq!(
        StoreReader::open(&path)
            .expect("reader")
            .transition_count()
            .expect("count"),
        sent
    );
    store.shutdown().expect("clean shutdown");
    assert_consistent_after_shutdown(&path, sent);
}

#[test]
fn restore_that_cannot_happen_yet_keeps_healthy_0_and_every_record() {
    let (_dir, clock, store, path) = fresh_store();
    let mut sent = 0;
    record(&store, &clock, &mut sent, 40);
    store.flush().expect("flush");

    // A directory where the copy must be written: every restore attempt fails until it goes.
    let blocker = with_suffix(&path, ".restoring");
    std::fs::create_dir(&blocker).expect("mkdir blocker");
    std::fs::write(blocker.join("x"), b"x").expect("fill blocker");
    std::fs::remove_file(&path).expect("delete the database");
    record(&store, &clock, &mut sent, 40);
    let s = beat_until(&store, &clock, "failed restore attempts", |s| {
        s.files_replaced_total == 1 && !s.healthy && s.write_errors_total >= 2
    });
    assert!(s.records_pending > 0, "records wait in memory: {s:?}");
    assert!(!path.exists());
    assert!(store.flush().is_err(), "a flush reports the failure");
    record(&store, &clock, &mut sent, 20);

    std::fs::remove_dir_all(&blocker).expect("remove blocker");
    let s = beat_until(&store, &clock, "the restored database", |s| {
        s.healthy && s.records_pending == 0
    });
    assert_eq!(s.files_replaced_total, 1, "one incident, counted once: {s:?}");
    assert_eq!(s.records_dropped_total, 0);
    store.flush().expect("flush after the restore");
    store.shutdown().expect("clean shutdown");
    assert_consistent_after_shutdown(&path, sent);
}

#[test]
fn deleted_directory_is_recreated_with_the_history() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("ledger");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::open(config(&dir), clock.clone()).expect("open");
    let path = store.path().to_path_buf();
    let mut sent = 0;
    record(&store, &clock, &mut sent, 30);
    store.flush().expect("flush");

    std::fs::remove_dir_all(&dir).expect("rm -rf the ledger directory");
    record(&store, &clock, &mut sent, 30);
    let s = beat_until(&store, &clock, "the restored ledger", |s| {
        s.files_replaced_total >= 1 && s.healthy && s.records_pending == 0
    });
    // The database and its lock file: one incident each.
    assert_eq!(s.files_replaced_total, 2, "{s:?}");
    assert!(path.exists() && with_suffix(&path, ".lock").exists());
    store.shutdown().expect("clean shutdown");
    assert_consistent_after_shutdown(&path, sent);
}
