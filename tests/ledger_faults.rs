//! Storage faults at daemon level: `diemcau run --private-netns` keeps its ledger on a small
//! tmpfs that first fills up, then (space freed underneath) turns read-only through a read-only
//! bind mount stacked over the ledger's directory, then comes back — while nftables drops make
//! endpoints go down and up. Probing and /metrics go on (rounds advance, `endpoint_up` changes),
//! `diemcau_store_healthy` is 0 and `diemcau_store_write_errors_total` grows during the fault;
//! afterwards `healthy` is 1 again and every transition the daemon logged — those made during the
//! fault included — is in the `transitions` table with its original time. Endpoints of both
//! address families fail: IPv4 ones on 127.1.0.0/16, IPv6 ones on 2001:2::/64 made local to the
//! loopback device inside the daemon's namespace.
//!
//! The whole test runs in a private user + mount namespace (this test binary re-executed under
//! `unshare -rm`; `LEDGER_FAULTS_IN_NS` marks the inner run), so the host's mounts are never
//! touched. Inside it the test is root of its user namespace, so the daemon's `--private-netns`
//! unshares only a network namespace (nested in that user namespace).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Metrics, bin, free_port, http, loopback_inventory, tail};

const INNER: &str = "LEDGER_FAULTS_IN_NS";
const TEST: &str = "daemon_keeps_probing_through_full_and_read_only_ledger_storage";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Re-executes this test under `unshare -rm`. False when it cannot (skipped; fails in CI).
fn run_in_namespace() -> bool {
    common::rerun_in_namespace(
        "-rm",
        TEST,
        INNER,
        &["mount", "umount", "nft", "nsenter", "ip"],
        Duration::from_secs(85),
    )
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().expect("spawn sh");
    assert!(st.success(), "`{cmd}` failed: {st}");
}

fn fill(path: &Path) -> u64 {
    let mut f = File::create(path).expect("create filler");
    let chunk = vec![0x5Au8; 16 * 1024];
    let mut n = 0;
    while f.write_all(&chunk).is_ok() {
        n += chunk.len() as u64;
    }
    let _ = f.sync_all();
    n
}

struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    fn metrics(&self) -> Metrics {
        let (status, body) = http(self.port, "GET", "/metrics", &[]);
        assert_eq!(status, 200, "GET /metrics");
        Metrics(body)
    }

    /// Polls /metrics every 100 ms until `cond` holds: how long it took, and that scrape.
    fn wait(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&Metrics) -> bool) -> (Duration, Metrics) {
        let t = Instant::now();
        loop {
            // Before the web port is up a scrape fails: keep polling.
            let (status, body) = http(self.port, "GET", "/metrics", &[]);
            let m = Metrics(body);
            if status == 200 && cond(&m) {
                return (t.elapsed(), m);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("diemcau exited ({st}) waiting for {what}:\n{}", read(&self.log));
            }
            assert!(
                t.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; log tail:\n{}",
                tail(&read(&self.log), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn nft(&self, script: &str) {
        common::nft_in(self.child.id(), script);
    }

    /// Drops (or stops dropping) every packet to these endpoints of family `v6`.
    fn drop(&self, v6: bool, ids: &[usize], dropped: bool) {
        let (verb, set) = (if dropped { "add" } else { "delete" }, SETS[usize::from(v6)]);
        self.nft(&format!("{verb} element inet lab {set} {{ {} }}\n", addresses(v6, ids)));
    }
}

/// IPv4 endpoints (`E00000`…, 127.1.0.1…) and IPv6 ones (`V00`…, 2001:2::1…).
const N: usize = 50;
const N6: usize = 10;
/// The nftables sets of dropped addresses, IPv4 and IPv6.
const SETS: [&str; 2] = ["dropped", "dropped6"];

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn scalar(m: &Metrics, name: &str) -> f64 {
    m.value(name, &[]).unwrap_or_else(|| panic!("{name} missing"))
}

fn id(v6: bool, i: usize) -> String {
    if v6 { format!("V{i:02}") } else { format!("E{i:05}") }
}

fn address(v6: bool, i: usize) -> String {
    if v6 {
        format!("2001:2::{}", i + 1)
    } else {
        format!("127.1.0.{}", i + 1)
    }
}

fn inventory() -> String {
    let mut s = loopback_inventory(N);
    for i in 0..N6 {
        s.push_str(&format!(
            "{},Thành phố Hà Nội,Quận Ba Đình,Phường V {i},Viettel,{}\n",
            id(true, i),
            address(true, i)
        ));
    }
    s
}

fn up(m: &Metrics, v6: bool, ids: &[usize]) -> Vec<f64> {
    let all = m.by_endpoint("diemcau_endpoint_up");
    ids.iter()
        .map(|i| all.get(&id(v6, *i)).copied().unwrap_or(f64::NAN))
        .collect()
}

fn addresses(v6: bool, ids: &[usize]) -> String {
    ids.iter().map(|i| address(v6, *i)).collect::<Vec<_>>().join(", ")
}

#[derive(Debug)]
struct Logged {
    /// When it was logged.
    ts_ms: i64,
    /// When the change is dated (its first silent or answering round), as stored.
    at_ms: i64,
    endpoint: String,
    from: String,
    to: String,
}

fn logged_transitions(log: &Path) -> Vec<Logged> {
    read(log)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"].as_str() == Some("endpoint state changed"))
        .map(|v| {
            let f = &v["fields"];
            let ts: jiff::Timestamp = v["timestamp"].as_str().expect("timestamp").parse().expect("RFC 3339");
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            Logged {
                ts_ms: ts.as_millisecond(),
                at_ms: f["at_ms"].as_i64().expect("at_ms"),
                endpoint: s("endpoint"),
                from: s("from"),
                to: s("to"),
            }
        })
        .collect()
}

#[test]
fn daemon_keeps_probing_through_full_and_read_only_ledger_storage() {
    if std::env::var_os(INNER).is_none() {
        run_in_namespace();
        return;
    }
    let took = Instant::now();
    let base = tempfile::tempdir().expect("tempdir");
    let fs = base.path().join("tmpfs");
    let db_dir = fs.join("ledger");
    std::fs::create_dir_all(&fs).expect("mkdir");
    let (fs_s, db_s) = (fs.display().to_string(), db_dir.display().to_string());
    sh(&format!("mount -t tmpfs -o size=2m tmpfs {fs_s}"));
    std::fs::create_dir_all(&db_dir).expect("mkdir ledger");
    let db_path = db_dir.join("diemcau.db");

    let port = free_port();
    let config = format!(
        "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"300ms\"\n\
         [state]\ndown_after = 2\nup_after = 1\n[store]\npath = \"{}\"\nheartbeat = \"1s\"\n",
        db_path.display()
    );
    std::fs::write(base.path().join("diemcau.toml"), config).expect("config");
    std::fs::write(base.path().join("inventory.csv"), loopback_inventory(N)).expect("inventory");
    let log = base.path().join("daemon.log");
    let child = Command::new(bin())
        .args(["run", "--private-netns", "--config"])
        .arg(base.path().join("diemcau.toml"))
        // Every transition in the log: first states (from unknown) are logged at DEBUG.
        .args(["--log.level", "info,diemcau::monitor=debug", "--log.format", "json"])
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("log"))
        .spawn()
        .expect("spawn diemcau");
    let mut d = Daemon { child, port, log };
    d.wait(Duration::from_secs(20), "/-/ready", |_| {
        http(port, "GET", "/-/ready", &[]).0 == 200
    });
    // The IPv6 endpoints join by a reload once their prefix answers, so they answer from
    // their first round.
    common::ipv6_loopback_prefix(d.child.id(), "2001:2::/64");
    std::fs::write(base.path().join("inventory.csv"), inventory()).expect("inventory");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
    d.wait(Duration::from_secs(20), "every endpoint of both families up", |m| {
        m.sum("diemcau_endpoint_up", &[]) == (N + N6) as f64
    });
    d.nft(
        "table inet lab {\n set dropped {\n  type ipv4_addr\n }\n set dropped6 {\n  type ipv6_addr\n }\n \
         chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr @dropped drop\n  \
         ip6 daddr @dropped6 drop\n }\n}\n",
    );
    let m = d.metrics();
    assert_eq!(scalar(&m, "diemcau_store_healthy"), 1.0);
    assert_eq!(scalar(&m, "diemcau_store_write_errors_total"), 0.0);

    // 1. Disk full, and seven endpoints dropped during it (five IPv4, two IPv6); three of them
    //    (two IPv4, one IPv6) come back.
    let (a, a6) = ([3usize, 13, 23, 33, 43], [2usize, 5]);
    let fault_start = now_ms();
    let filled = fill(&fs.join("filler"));
    let rounds0 = scalar(&d.metrics(), "diemcau_rounds_total");
    d.drop(false, &a, true);
    d.drop(true, &a6, true);
    let (t, _) = d.wait(Duration::from_secs(10), "unhealthy on a full disk", |m| {
        scalar(m, "diemcau_store_healthy") == 0.0 && scalar(m, "diemcau_store_write_errors_total") >= 1.0
    });
    println!("disk full ({filled} bytes of filler): store unhealthy after {t:?}");
    d.wait(
        Duration::from_secs(10),
        "dropped endpoints down while the disk is full",
        |m| up(m, false, &a).iter().chain(&up(m, true, &a6)).all(|&u| u == 0.0),
    );
    d.drop(false, &a[..2], false);
    d.drop(true, &a6[..1], false);
    d.wait(
        Duration::from_secs(10),
        "three endpoints up again while the disk is full",
        |m| up(m, false, &a) == [1.0, 1.0, 0.0, 0.0, 0.0] && up(m, true, &a6) == [1.0, 0.0],
    );
    // Probing goes on while the disk is full: three more rounds of every endpoint. (Confirmed
    // outages come and go within seconds now, so this is waited for, not assumed.)
    let (_, m) = d.wait(Duration::from_secs(20), "150 more rounds while the disk is full", |m| {
        scalar(m, "diemcau_rounds_total") >= rounds0 + 150.0
    });
    let rounds1 = scalar(&m, "diemcau_rounds_total");
    assert_eq!(scalar(&m, "diemcau_store_healthy"), 0.0);
    // Seven confirmed outages and three recoveries: ten state changes wait in memory.
    assert!(
        scalar(&m, "diemcau_store_records_pending") >= 10.0,
        "transitions held in memory"
    );
    let errors_full = scalar(&m, "diemcau_store_write_errors_total");
    println!(
        "full phase: rounds {rounds0} → {rounds1}, write errors {errors_full}, pending {}",
        scalar(&m, "diemcau_store_records_pending")
    );

    // 2. Read-only: a read-only bind mount stacked over the ledger's directory (the writer
    //    reopens its connection at each retry, so it goes through it), the space freed
    //    underneath, three more endpoints dropped (two IPv4, one IPv6).
    let ro_start = now_ms();
    sh(&format!(
        "mount --bind {db_s} {db_s} && mount -o remount,bind,ro {db_s}"
    ));
    std::fs::remove_file(fs.join("filler")).expect("free the space");
    assert!(
        File::create(db_dir.join("probe-write")).is_err(),
        "the ledger directory is read-only"
    );
    let (b, b6) = ([7usize, 17], [8usize]);
    d.drop(false, &b, true);
    d.drop(true, &b6, true);
    let (_, m) = d.wait(
        Duration::from_secs(25),
        "a failed retry through the read-only mount",
        |m| {
            scalar(m, "diemcau_store_write_errors_total") > errors_full
                && up(m, false, &b) == [0.0, 0.0]
                && up(m, true, &b6) == [0.0]
        },
    );
    let rounds2 = scalar(&m, "diemcau_rounds_total");
    assert!(rounds2 > rounds1, "probing goes on while read-only");
    assert_eq!(
        scalar(&m, "diemcau_store_healthy"),
        0.0,
        "still unhealthy while read-only"
    );
    assert_eq!(scalar(&m, "diemcau_store_records_dropped_total"), 0.0);
    let errors_ro = scalar(&m, "diemcau_store_write_errors_total");
    println!(
        "read-only phase: rounds {rounds1} → {rounds2}, write errors {errors_full} → {errors_ro}, pending {}",
        scalar(&m, "diemcau_store_records_pending")
    );

    // 3. Writable again.
    sh(&format!("umount {db_s}"));
    let fault_end = now_ms();
    let (t, _) = d.wait(Duration::from_secs(40), "healthy with an empty backlog", |m| {
        scalar(m, "diemcau_store_healthy") == 1.0 && scalar(m, "diemcau_store_records_pending") == 0.0
    });
    println!(
        "storage faulty for {:.1} s (full {:.1} s, then read-only {:.1} s); healthy again {t:?} after the \
         read-only mount went (retry backoff)",
        (fault_end - fault_start) as f64 / 1000.0,
        (ro_start - fault_start) as f64 / 1000.0,
        (fault_end - ro_start) as f64 / 1000.0
    );
    d.nft("flush set inet lab dropped\nflush set inet lab dropped6\n");
    d.wait(Duration::from_secs(10), "every endpoint up", |m| {
        m.sum("diemcau_endpoint_up", &[]) == (N + N6) as f64
    });
    let (_, m) = d.wait(Duration::from_secs(5), "committed", |m| {
        scalar(m, "diemcau_store_records_pending") == 0.0
    });
    assert_eq!(scalar(&m, "diemcau_store_records_dropped_total"), 0.0);
    assert_eq!(scalar(&m, "diemcau_store_healthy"), 1.0);

    // Clean stop, then every logged transition must be in the ledger.
    let st = common::terminate(&mut d.child, Duration::from_secs(10));
    assert!(st.success(), "clean stop: {st}\n{}", tail(&read(&d.log), 20));
    let logged = logged_transitions(&d.log);
    let db = rusqlite::Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the ledger");
    let stored: Vec<(String, String, String, i64)> = db
        .prepare("SELECT endpoint, from_state, to_state, at_ms FROM transitions ORDER BY at_ms, id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut by_ep: HashMap<&str, Vec<&(String, String, String, i64)>> = HashMap::new();
    for s in &stored {
        by_ep.entry(&s.0).or_default().push(s);
    }
    let mut during = 0;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in &logged {
        let k = seen.entry(&l.endpoint).or_default();
        let s = by_ep
            .get(l.endpoint.as_str())
            .and_then(|v| v.get(*k))
            .unwrap_or_else(|| panic!("logged transition missing from the ledger: {l:?}"));
        assert_eq!((&s.1, &s.2), (&l.from, &l.to), "{l:?} vs {s:?}");
        assert_eq!(s.3, l.at_ms, "{l:?} stored at {}", s.3);
        *k += 1;
        if l.ts_ms >= fault_start && l.ts_ms <= fault_end {
            during += 1;
        }
    }
    assert_eq!(
        stored.len(),
        logged.len(),
        "the ledger holds exactly the logged transitions"
    );
    // a: 5 down, 2 up; a6: 2 down, 1 up; b: 2 down; b6: 1 down — at least 13 made during the
    // fault, and those of the IPv6 endpoints among them.
    assert!(during >= 13, "transitions during the fault: {during}");
    for (i, to) in [(2, "down"), (2, "up"), (5, "down"), (8, "down")] {
        assert!(
            logged
                .iter()
                .any(|l| l.endpoint == id(true, i) && l.to == to && l.ts_ms >= fault_start && l.ts_ms <= fault_end),
            "{} went {to} during the fault, logged and in the ledger",
            id(true, i)
        );
    }
    let runs: Vec<(i64, i64)> = db
        .prepare("SELECT clean_stop, last_seen_ms FROM runs")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, 1, "clean stop recorded after the fault");
    let open: i64 = db
        .query_row("SELECT count(*) FROM outages WHERE end_ms IS NULL", [], |r| r.get(0))
        .expect("count");
    assert_eq!(open, 0);
    println!(
        "{} transitions logged, all in the ledger with their times ({during} made during the fault); test {:?}",
        logged.len(),
        took.elapsed()
    );
    drop(db);
    let _ = Command::new("umount").arg(&fs).status();
}
