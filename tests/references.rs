//! `[monitor] references` against real kernel routers (`tests/common/topology.rs`: monitor →
//! core → province → area → 10 communes over two carriers). The daemon runs in the monitor's
//! namespace with the core router as its reference.
//! - The province–area link is cut: every commune falls silent, across both carriers, which
//!   without references reads as the monitor's own cut. The reference still answers, so it is
//!   a real outage: all ten are Down, the monitor is never blind.
//! - The monitor–core link is cut: the reference falls silent too. The monitor is blind, no
//!   commune is ever exported Down, and the ledger records unknown time, no outage.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Metrics;
use common::topology::Topology;
use diemcau::store::StoreReader;

const MARKER: &str = "REFERENCES_IN_NS";
const N: usize = 10;

fn inside(test: &str) -> bool {
    common::inside_netns(test, MARKER, &["ip", "nsenter", "sleep"], Duration::from_secs(240))
}

struct Running<'a> {
    topo: &'a Topology,
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Running<'_> {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn metrics(&self) -> Metrics {
        let port = self.port;
        let (status, body) = self
            .topo
            .in_netns("monitor", || common::http(port, "GET", "/metrics", &[]));
        assert_eq!(status, 200, "GET /metrics");
        Metrics(body)
    }

    /// Polls `cond` every 200 ms (and `each` on every poll); panics with the log after `limit`.
    fn wait(
        &self,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&Metrics) -> bool,
        mut each: impl FnMut(&Metrics),
    ) {
        let start = Instant::now();
        loop {
            let m = self.metrics();
            each(&m);
            if cond(&m) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; log:\n{}",
                common::tail(&self.log(), 30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn down(m: &Metrics) -> usize {
    m.by_endpoint("diemcau_endpoint_up")
        .values()
        .filter(|v| **v == 0.0)
        .count()
}

fn up(m: &Metrics) -> usize {
    m.by_endpoint("diemcau_endpoint_up")
        .values()
        .filter(|v| **v == 1.0)
        .count()
}

#[test]
fn a_silent_reference_means_the_monitor_is_blind_and_an_answering_one_means_a_real_outage() {
    if !inside("a_silent_reference_means_the_monitor_is_blind_and_an_answering_one_means_a_real_outage") {
        return;
    }
    let topo = Topology::build(N);
    let core = topo.routers()[0].addr(false);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inventory = String::from("id,province,district,commune,carrier,address\n");
    for (i, c) in topo.communes().iter().enumerate() {
        let carrier = if i % 2 == 0 { "VNPT" } else { "Viettel" };
        inventory += &format!("R{i},Tỉnh Lào Cai,,Xã {i},{carrier},{}\n", c.addr(false));
    }
    std::fs::write(dir.path().join("inventory.csv"), inventory).unwrap();
    std::fs::write(
        dir.path().join("diemcau.toml"),
        format!(
            "[web]\nlisten_address = \"127.0.0.1:0\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
             [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
             [store]\nheartbeat = \"1s\"\n[monitor]\nreferences = [\"{core}\"]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let child = topo
        .command("monitor", common::bin())
        .args(["run", "--log.level", "info", "--config"])
        .arg(dir.path().join("diemcau.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn diemcau");
    let mut d = Running {
        topo: &topo,
        child,
        dir,
        port: 0,
    };
    let start = Instant::now();
    while d.port == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no port in the log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
        d.port = common::listening_port(&d.log()).unwrap_or(0);
    }
    d.wait(Duration::from_secs(30), "every commune up", |m| up(m) == N, |_| {});

    // A router cuts every commune off; the reference answers: a real outage, not blindness.
    topo.cut("province", "area");
    let mut blind_seen = false;
    d.wait(
        Duration::from_secs(30),
        "every commune down",
        |m| down(m) == N,
        |m| blind_seen |= m.value("diemcau_monitor_blind", &["family=\"ipv4\""]) == Some(1.0),
    );
    assert!(!blind_seen, "the monitor was never blind while its reference answered");
    topo.restore("province", "area");
    d.wait(
        Duration::from_secs(30),
        "every commune up again",
        |m| up(m) == N,
        |_| {},
    );

    // The monitor's own link: the reference is silent too.
    topo.cut("monitor", "core");
    let mut ever_down = 0;
    d.wait(
        Duration::from_secs(30),
        "the monitor blind",
        |m| m.value("diemcau_monitor_blind", &["family=\"ipv4\""]) == Some(1.0),
        |m| ever_down = ever_down.max(down(m)),
    );
    let cut_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < cut_until {
        ever_down = ever_down.max(down(&d.metrics()));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.metrics().value("diemcau_monitor_isolated", &[]), Some(1.0));
    topo.restore("monitor", "core");
    d.wait(
        Duration::from_secs(30),
        "seeing again and every commune up",
        |m| up(m) == N && m.value("diemcau_monitor_blind", &["family=\"ipv4\""]) == Some(0.0),
        |m| ever_down = ever_down.max(down(m)),
    );
    assert_eq!(ever_down, 0, "no commune was exported Down while the monitor was blind");

    let status = common::terminate(&mut d.child, Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", d.log());
    let log = d.log();
    assert!(log.contains("the monitor is blind"), "{}", common::tail(&log, 20));
    let reader = StoreReader::open(&d.dir.path().join("data").join("diemcau.db")).expect("ledger");
    let outages = reader.outages(None, 0, i64::MAX).expect("outages");
    assert_eq!(
        outages.len(),
        N,
        "one outage per commune, from the router cut only: {outages:?}"
    );
    let pauses = reader.pauses().expect("pauses");
    assert_eq!(
        pauses
            .iter()
            .filter(|p| p.cause == "monitor_isolated" && p.family == "ipv4")
            .count(),
        1,
        "{pauses:?}"
    );
}
