//! The outage ledger: outages derived from transitions, histories clipped to a period, crash
//! recovery (dropped handle, and a child process that SIGKILLs itself), throughput.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemcau::domain::EndpointId;
use diemcau::domain::Labels;
use diemcau::domain::health::State;
use diemcau::domain::sla::{self, Interval, Targets};
use diemcau::store::{
    END_MONITOR_STOPPED, END_RECOVERED, END_REMOVED, InventoryRecord, ManualClock, Store, StoreConfig, StoreError,
    StoreReader, Transition,
};

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        batch_interval: Duration::from_millis(20),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        ..StoreConfig::new(dir.join("data").join("diemcau.db"))
    }
}

fn inv(id: &str) -> InventoryRecord {
    InventoryRecord {
        id: id.into(),
        labels: Labels {
            province: "Tỉnh Hà Giang".into(),
            district: Some("Huyện Mèo Vạc".into()),
            commune: "Xã Pải Lủng".into(),
            carrier: "VNPT".into(),
        },
        address: "10.0.0.1".into(),
    }
}

fn tr(id: &str, from: State, to: State, at_ms: i64) -> Transition {
    Transition {
        endpoint: EndpointId(Arc::from(id)),
        from,
        to,
        at_ms,
        reason: format!("{} -> {}", from.as_str(), to.as_str()),
        check: "icmp".into(),
    }
}

fn open(dir: &Path, clock: &Arc<ManualClock>) -> Store {
    Store::open(config(dir), clock.clone()).expect("open the ledger")
}

#[test]
fn store_handle_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Store>();
    fn send<T: Send>() {}
    send::<StoreReader>();
}

#[test]
fn transitions_derive_outages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = open(dir.path(), &clock);
    assert!(matches!(
        Store::open(config(dir.path()), clock.clone()),
        Err(StoreError::Locked { .. })
    ));
    store.sync_inventory(vec![inv("a"), inv("b")]);
    use State::*;
    for t in [
        tr("a", Unknown, Up, 1_000_000),
        tr("a", Up, Down, 1_010_000),
        tr("a", Down, Down, 1_020_000), // repeated: part of the open outage
        tr("a", Down, Up, 1_070_000),
        tr("a", Up, Degraded, 1_080_000),
        tr("a", Degraded, Down, 1_090_000),
        tr("b", Unknown, Down, 1_000_500),
        tr("b", Down, Unknown, 1_002_000),
    ] {
        store.record_transition(t);
    }
    clock.set(1_095_000);
    store.flush().expect("flush");
    let r = store.reader().expect("reader");
    let a = r.outages(Some("a"), 0, i64::MAX).expect("outages");
    let spans: Vec<_> = a
        .iter()
        .map(|o| (o.start_ms, o.end_ms, o.end_reason.as_deref()))
        .collect();
    assert_eq!(
        spans,
        [
            (1_010_000, Some(1_070_000), Some(END_RECOVERED)),
            (1_090_000, None, None)
        ]
    );
    assert_eq!(a[0].cause, "up -> down");
    assert_eq!(a[0].check, "icmp");
    let b = r.outages(Some("b"), 0, i64::MAX).expect("outages");
    assert_eq!(
        (b[0].end_ms, b[0].end_reason.as_deref()),
        (Some(1_002_000), Some("unknown"))
    );
    let open = r.open_outages().expect("open outages");
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].endpoint.as_str(), open[0].start_ms), ("a", 1_090_000));
    let ts = r.transitions("a", 1_010_000, 1_080_000).expect("transitions");
    assert_eq!(ts.len(), 3, "half-open range: {ts:?}");
    assert_eq!(
        (ts[0].transition.from, ts[0].transition.to, ts[0].run_id),
        (Up, Down, store.run_id())
    );

    // The live run counts as monitored up to "now"; the open outage ends at "now".
    let period = Interval::new(1_000, 1_200);
    let h = r.histories(period, 1_100_000).expect("histories");
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].monitored, [Interval::new(1_000, 1_100)]);
    assert_eq!(h[0].exists, [Interval::new(1_000, 1_100)]);
    assert_eq!(h[0].down, [Interval::new(1_010, 1_070), Interval::new(1_090, 1_100)]);
    assert!(h[0].maintenance.is_empty());

    // Leaving the inventory closes the outage ("removed") and ends the endpoint's existence.
    clock.set(1_100_000);
    store.sync_inventory(vec![inv("b")]);
    store.flush().expect("flush");
    let h = r.histories(period, 1_150_000).expect("histories");
    assert_eq!(h[0].exists, [Interval::new(1_000, 1_100)]);
    assert_eq!(h[1].exists, [Interval::new(1_000, 1_150)]);
    let a = r.outages(Some("a"), 0, i64::MAX).expect("outages");
    assert_eq!(
        (a[1].end_ms, a[1].end_reason.as_deref()),
        (Some(1_100_000), Some(END_REMOVED))
    );

    // Back in the inventory: a second stay, the gap does not count.
    clock.set(1_130_000);
    store.sync_inventory(vec![inv("a"), inv("b")]);
    store.flush().expect("flush");
    let h = r.histories(period, 1_150_000).expect("histories");
    assert_eq!(h[0].exists, [Interval::new(1_000, 1_100), Interval::new(1_130, 1_150)]);

    let stats = store.stats();
    assert_eq!((stats.records_pending, stats.records_dropped_total), (0, 0));
    assert!(stats.healthy);
    assert_eq!(stats.last_commit_unix_seconds, 1_130.0);
    let run_id = store.run_id();
    clock.set(1_140_000);
    store.shutdown().expect("clean shutdown");
    let runs = r.runs().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].run_id, runs[0].started_ms, runs[0].last_seen_ms),
        (run_id, 1_000_000, 1_140_000)
    );
    assert!(runs[0].clean_stop);
    assert!(r.open_outages().expect("open").is_empty());
}

#[test]
fn histories_clip_outages_crossing_the_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(5_000_000));
    let store = open(dir.path(), &clock);
    store.sync_inventory(vec![inv("x"), inv("y"), inv("z")]);
    use State::*;
    for id in ["x", "y", "z"] {
        store.record_transition(tr(id, Unknown, Up, 5_000_000));
    }
    let events = [
        tr("x", Up, Down, 9_000_000),
        tr("x", Down, Up, 11_000_000),
        tr("z", Up, Down, 12_000_000),
        tr("z", Down, Up, 12_500_000),
        tr("y", Up, Down, 19_000_000),
    ];
    for t in events {
        clock.set(t.at_ms);
        store.record_transition(t);
    }
    clock.set(25_000_000);
    store.flush().expect("flush");
    let period = Interval::new(10_000, 20_000);
    let h = store
        .reader()
        .expect("reader")
        .histories(period, 25_000_000)
        .expect("histories");
    let down: Vec<_> = h.iter().map(|h| h.down.clone()).collect();
    assert_eq!(
        down,
        [
            vec![Interval::new(10_000, 11_000)],
            vec![Interval::new(19_000, 20_000)],
            vec![Interval::new(12_000, 12_500)]
        ]
    );
    let report = sla::compute(period, &h, &[], &Targets::default(), 10);
    let f = &report.total.figures;
    assert_eq!((f.inventory_s, f.eligible_s, f.unknown_s), (30_000, 30_000, 0));
    assert_eq!((f.downtime_s, f.outages), (2_500, 3));
    store.shutdown().expect("shutdown");
}

#[test]
fn dropped_handle_counts_as_a_crash_at_the_last_heartbeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = open(dir.path(), &clock);
    store.sync_inventory(vec![inv("a")]);
    store.record_transition(tr("a", State::Unknown, State::Down, 1_000_000));
    clock.set(1_030_000);
    store.flush().expect("flush");
    let first_run = store.run_id();
    drop(store); // no shutdown: the run stays unclean

    clock.set(1_100_000);
    let store = open(dir.path(), &clock);
    let r = store.reader().expect("reader");
    let runs = r.runs().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].run_id, first_run);
    assert_eq!((runs[0].last_seen_ms, runs[0].clean_stop), (1_030_000, false));
    assert_eq!(runs[0].recovered_ms, Some(1_100_000));
    assert_eq!((runs[1].started_ms, runs[1].clean_stop), (1_100_000, false));
    let o = r.outages(Some("a"), 0, i64::MAX).expect("outages");
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].end_ms, o[0].end_reason.as_deref()),
        (Some(1_030_000), Some(END_MONITOR_STOPPED))
    );
    assert_eq!(r.transition_count().expect("count"), 1);

    let period = Interval::new(900, 1_200);
    let h = r.histories(period, 1_200_000).expect("histories");
    assert_eq!(
        h[0].monitored,
        [Interval::new(1_000, 1_030), Interval::new(1_100, 1_200)]
    );
    let f = sla::compute(period, &h, &[], &Targets::default(), 1).total.figures;
    assert_eq!(
        (f.inventory_s, f.unknown_s, f.eligible_s, f.downtime_s),
        (200, 70, 130, 30)
    );
    store.shutdown().expect("shutdown");
}

const CHILD: &str = "STORE_LEDGER_KILL9_DIR";

/// A real crash: a child process (this test binary, re-executed) commits, then SIGKILLs itself.
#[test]
fn sigkill_crash_closes_the_run_at_its_last_heartbeat() {
    if let Some(dir) = std::env::var_os(CHILD) {
        let clock = Arc::new(ManualClock::new(2_000_000));
        let store = open(Path::new(&dir), &clock);
        store.sync_inventory(vec![inv("a"), inv("b")]);
        store.record_transition(tr("a", State::Unknown, State::Down, 2_000_000));
        store.record_transition(tr("b", State::Unknown, State::Up, 2_000_000));
        store.flush().expect("flush");
        clock.set(2_045_000);
        store.flush().expect("heartbeat");
        println!("committed; run {}", store.run_id());
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_secs(30));
        unreachable!("SIGKILL did not stop the child");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "sigkill_crash_closes_the_run_at_its_last_heartbeat",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .spawn()
        .expect("spawn the child");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the child did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the child should die of SIGKILL: {status}");

    let clock = Arc::new(ManualClock::new(2_100_000));
    let store = open(dir.path(), &clock); // the lock died with the child
    let r = store.reader().expect("reader");
    let runs = r.runs().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].started_ms, runs[0].last_seen_ms, runs[0].clean_stop),
        (2_000_000, 2_045_000, false)
    );
    assert_eq!(runs[0].recovered_ms, Some(2_100_000));
    assert_eq!(r.transition_count().expect("count"), 2, "committed transitions survive");
    let o = r.outages(None, 0, i64::MAX).expect("outages");
    assert_eq!(o.len(), 1);
    assert_eq!(
        (
            o[0].endpoint.as_str(),
            o[0].start_ms,
            o[0].end_ms,
            o[0].end_reason.as_deref()
        ),
        ("a", 2_000_000, Some(2_045_000), Some(END_MONITOR_STOPPED))
    );
    assert!(r.open_outages().expect("open").is_empty());
    store.shutdown().expect("shutdown");
}

#[test]
fn throughput_and_producer_latency() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cfg = StoreConfig {
        queue_capacity: N,
        ..config(dir.path())
    };
    let store = Store::open(cfg, clock.clone()).expect("open");
    let ids: Vec<EndpointId> = (0..3_000)
        .map(|i| EndpointId(Arc::from(format!("ep-{i:04}"))))
        .collect();
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..N {
        let (from, to) = if i.is_multiple_of(2) {
            (State::Up, State::Down)
        } else {
            (State::Down, State::Up)
        };
        let t = Instant::now();
        store.record_transition(Transition {
            endpoint: ids[(i / 2) % ids.len()].clone(),
            from,
            to,
            at_ms: 1_000_000 + i as i64,
            reason: "3 silent rounds".into(),
            check: "icmp".into(),
        });
        worst = worst.max(t.elapsed());
    }
    let offered = t0.elapsed();
    store.flush().expect("flush");
    let total = t0.elapsed();
    let stats = store.stats();
    assert_eq!((stats.records_dropped_total, stats.records_pending), (0, 0));
    assert_eq!(stats.records_committed_total, N as u64);
    let r = store.reader().expect("reader");
    assert_eq!(r.transition_count().expect("count"), N as u64);
    println!(
        "throughput: {N} transitions committed in {total:?} ({:.0}/s) in {} commits; offering took \
         {offered:?}, slowest record_transition {worst:?}",
        N as f64 / total.as_secs_f64(),
        stats.commits_total
    );
    // Never blocking is the property (a blocked call waits for the disk, seconds); the figure
    // above is for reading, not for a bound a busy machine would break.
    assert!(
        worst < Duration::from_secs(2),
        "record_transition blocked for {worst:?}"
    );
    store.shutdown().expect("shutdown");
}
