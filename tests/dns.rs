//! Inventory host names, resolved by the real daemon against a DNS server of the test's own.
//!
//! Each test re-executes itself under `unshare -rn` (a private network namespace with only
//! loopback; DNS_TEST_IN_NS marks the inner run), starts an authoritative server
//! (hickory-server, with a handler that can answer, say NXDOMAIN, stay silent or hold answers
//! back) on 127.0.0.1 there, and runs `diemcau run` in the same namespace with `[dns] servers`
//! pointing at it. Nothing ever reaches the machine's resolver. Endpoint addresses are 127.0.0.x:
//! the kernel answers their echo requests itself.

mod common;

use common::sh;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Daemon;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::{RData, Record, RecordType, rdata::A};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

const INNER: &str = "DNS_TEST_IN_NS";

/// How the test server answers one name.
#[derive(Clone, Debug)]
enum Rule {
    /// An A record with this TTL (seconds); AAAA questions get an empty answer.
    A(Ipv4Addr, u32),
    NxDomain,
    /// Never answers.
    Silent,
    /// An A record (TTL 300 s), held back until every gated name has been asked and the test
    /// opened the gate: answered at all only if the resolver asked for all of them at once.
    Gated(Ipv4Addr),
}

#[derive(Default)]
struct Zone {
    rules: Mutex<HashMap<String, Rule>>,
    gated_asked: Mutex<HashSet<String>>,
    gated_total: usize,
    gate_open: AtomicBool,
}

impl Zone {
    fn set(&self, name: &str, rule: Rule) {
        self.rules.lock().unwrap().insert(format!("{name}."), rule);
    }
    fn gated_asked(&self) -> usize {
        self.gated_asked.lock().unwrap().len()
    }
}

struct Handler(Arc<Zone>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let failed = || -> ResponseInfo {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            Header {
                metadata,
                counts: HeaderCounts::default(),
            }
            .into()
        };
        let Ok(info) = request.request_info() else {
            return failed();
        };
        let name = info.query.name().to_string().to_ascii_lowercase();
        let qtype = info.query.query_type();
        let rule = self.0.rules.lock().unwrap().get(&name).cloned();
        let address = match rule {
            None | Some(Rule::NxDomain) => None,
            Some(Rule::Silent) => std::future::pending().await,
            Some(Rule::A(ip, ttl)) => Some((ip, ttl)),
            Some(Rule::Gated(ip)) => {
                self.0.gated_asked.lock().unwrap().insert(name.clone());
                while !(self.0.gate_open.load(Ordering::SeqCst) && self.0.gated_asked() >= self.0.gated_total) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some((ip, 300))
            }
        };
        let builder = MessageResponseBuilder::new(&request.queries, None);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let sent = match address {
            None => {
                response
                    .send_response(builder.error_msg(&request.metadata, ResponseCode::NXDomain))
                    .await
            }
            Some((ip, ttl)) => {
                let records: Vec<Record> = (qtype == RecordType::A)
                    .then(|| Record::from_rdata(info.query.original().name().clone(), ttl, RData::A(A(ip))))
                    .into_iter()
                    .collect();
                response
                    .send_response(builder.build(metadata, records.iter(), [], [], []))
                    .await
            }
        };
        sent.unwrap_or_else(|_| failed())
    }
}

/// Starts the server on its own thread and runtime; returns its UDP address.
fn start_server(zone: Arc<Zone>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind the DNS port");
            tx.send(socket.local_addr().expect("address"))
                .expect("report the address");
            let mut server = hickory_server::Server::new(Handler(zone));
            server.register_socket(socket);
            let _ = server.block_until_done().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("DNS server started")
}

/// Runs the daemon in this (the test's) namespace, so that it reaches the test's DNS server:
/// `--private-netns` would put it in a namespace of its own.
fn start_daemon(config: &str, inventory: &str) -> Daemon {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    std::fs::write(
        dir.path().join("diemcau.toml"),
        config.replace("{port}", &port.to_string()),
    )
    .unwrap();
    std::fs::write(dir.path().join("inventory.csv"), inventory).unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let child = Command::new(common::bin())
        .args(["run", "--log.level", "info", "--config"])
        .arg(dir.path().join("diemcau.toml"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn diemcau");
    let mut d = Daemon {
        child,
        port,
        dir,
        args: Vec::new(),
    };
    d.wait_until(Duration::from_secs(30), "the web port to answer", |d| {
        d.get("/-/healthy").0 == 200
    });
    d
}

fn config(dns_port: u16, timeout: &str) -> String {
    common::fast_config("1s", 2, 1)
        + &format!(
            "[dns]\nservers = [\"127.0.0.1:{dns_port}\"]\ntimeout = \"{timeout}\"\nmin_ttl = \"1s\"\nmax_ttl = \"1h\"\n"
        )
}

const HEADER: &str = "id,province,district,commune,carrier,address\n";

fn row(id: &str, address: &str) -> String {
    format!("{id},Tỉnh Cà Mau,,Xã {id},VNPT,{address}\n")
}

/// `/api/v1/endpoints` by id.
fn endpoints(d: &Daemon) -> HashMap<String, serde_json::Value> {
    let (status, body) = d.get("/api/v1/endpoints?limit=1000");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let rows = v
        .as_array()
        .or_else(|| v["endpoints"].as_array())
        .cloned()
        .unwrap_or_default();
    rows.into_iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r))
        .collect()
}

fn field(d: &Daemon, id: &str, key: &str) -> String {
    endpoints(d)
        .get(id)
        .map(|r| match &r[key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

fn in_namespace(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        sh("ip link set lo up", "");
        return true;
    }
    common::rerun_in_namespace("-rn", test, INNER, &["ip", "nft"], Duration::from_secs(240));
    false
}

#[test]
fn bad_names_leave_literals_probed_and_a_changed_answer_moves_the_probe() {
    if !in_namespace("bad_names_leave_literals_probed_and_a_changed_answer_moves_the_probe") {
        return;
    }
    let zone = Arc::new(Zone::default());
    zone.set("nx.diemcau.test", Rule::NxDomain);
    zone.set("silent.diemcau.test", Rule::Silent);
    zone.set("move.diemcau.test", Rule::A(Ipv4Addr::new(127, 0, 0, 10), 1));
    let server = start_server(zone.clone());
    // 127.0.0.10 never answers: MOVE can only come up once it is probed at 127.0.0.11.
    sh(
        "nft -f -",
        "table inet t {\n chain out {\n  type filter hook output priority 0;\n  ip daddr 127.0.0.10 drop\n }\n}\n",
    );
    let inventory = [
        HEADER.to_string(),
        row("LIT1", "127.0.0.2"),
        row("LIT2", "127.0.0.3"),
        row("NX", "nx.diemcau.test"),
        row("SILENT", "silent.diemcau.test"),
        row("MOVE", "move.diemcau.test"),
        row("HOST", "localhost"),
    ]
    .concat();
    let config = config(server.port(), "1s");
    let mut d = start_daemon(&config, &inventory);
    let state = |d: &Daemon, id: &str| {
        d.metrics()
            .value("diemcau_endpoint_state", &[&format!("endpoint=\"{id}\"")])
    };

    d.wait_until(Duration::from_secs(60), "literals up, bad names failed", |d| {
        ["LIT1", "LIT2", "HOST"].iter().all(|id| state(d, id) == Some(1.0))
            && field(d, "NX", "reason").contains("NXDOMAIN")
            && field(d, "SILENT", "reason").contains("no answer")
    });
    let api = endpoints(&d);
    for id in ["NX", "SILENT"] {
        let r = &api[id];
        assert_eq!(r["state"], "unknown", "{r}");
        assert!(r["address"].is_null(), "never given a placeholder address: {r}");
        assert!(r["reason"].as_str().unwrap_or_default().starts_with("dns: "), "{r}");
        assert_eq!(r["host"], format!("{}.diemcau.test", id.to_lowercase()), "{r}");
    }
    assert_eq!(
        api["HOST"]["address"], "127.0.0.1",
        "/etc/hosts and localhost still resolve"
    );
    let m = d.metrics();
    for id in ["NX", "SILENT"] {
        let l = format!("endpoint=\"{id}\"");
        assert_eq!(
            m.value("diemcau_endpoint_packets_sent_total", &[&l]),
            Some(0.0),
            "{id} is never probed"
        );
        assert_eq!(m.value("diemcau_endpoint_resolved", &[&l]), Some(0.0), "{id}");
        assert_eq!(
            m.value("diemcau_endpoint_up", &[&l]),
            None,
            "{id} has no up series while unknown"
        );
    }
    assert_eq!(m.value("diemcau_endpoint_resolved", &["endpoint=\"LIT1\""]), None);
    assert!(m.value("diemcau_dns_resolution_failures_total", &["reason=\"nxdomain\""]) >= Some(1.0));
    assert!(m.value("diemcau_dns_resolution_failures_total", &["reason=\"timeout\""]) >= Some(1.0));
    assert_eq!(m.value("diemcau_dns_names", &["status=\"failed\""]), Some(2.0));
    let (status, page) = d.get("/status");
    assert_eq!(status, 200);
    assert!(
        page.contains("nx.diemcau.test (no address)") && page.contains("dns: NXDOMAIN"),
        "status page"
    );

    // MOVE was probed at its first address (dropped: down), then at the new one (up).
    d.wait_until(Duration::from_secs(30), "MOVE down at 127.0.0.10", |d| {
        state(d, "MOVE") == Some(3.0) && field(d, "MOVE", "address") == "127.0.0.10"
    });
    zone.set("move.diemcau.test", Rule::A(Ipv4Addr::new(127, 0, 0, 11), 1));
    d.wait_until(Duration::from_secs(30), "MOVE up at 127.0.0.11", |d| {
        state(d, "MOVE") == Some(1.0) && field(d, "MOVE", "address") == "127.0.0.11"
    });
    assert!(d.metrics().value("diemcau_dns_address_changes_total", &[]) >= Some(1.0));

    // The server stops answering: the last good address is kept (and counted as stale).
    zone.set("move.diemcau.test", Rule::Silent);
    d.wait_until(Duration::from_secs(30), "MOVE served stale", |d| {
        field(d, "MOVE", "reason").contains("probing the last good address")
    });
    assert_eq!(field(&d, "MOVE", "address"), "127.0.0.11");
    let m = d.metrics();
    assert_eq!(m.value("diemcau_dns_names", &["status=\"stale\""]), Some(1.0));
    let sent = m.value("diemcau_endpoint_packets_sent_total", &["endpoint=\"MOVE\""]);
    d.wait_until(Duration::from_secs(10), "MOVE still probed", |d| {
        d.metrics()
            .value("diemcau_endpoint_packets_sent_total", &["endpoint=\"MOVE\""])
            > sent
    });
    assert_eq!(state(&d, "MOVE"), Some(1.0));

    // An authoritative NXDOMAIN ends the address: MOVE is no longer probed, back to Unknown.
    zone.set("move.diemcau.test", Rule::NxDomain);
    d.wait_until(Duration::from_secs(30), "MOVE without an address", |d| {
        state(d, "MOVE") == Some(0.0) && field(d, "MOVE", "address") == "null"
    });

    // The scrape stays valid Prometheus text.
    if common::require_tool("promtool") {
        let file = d.dir.path().join("scrape.txt");
        std::fs::write(&file, &d.metrics().0).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < {}", file.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // `diemcau check` warns about the bad names (MOVE is NXDOMAIN by now), each at its line,
    // and exits 0.
    let out = Command::new(common::bin())
        .args(["check", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("3 warnings:"), "{text}");
    assert!(
        text.contains("inventory.csv:4: address: host name \"nx.diemcau.test\" does not resolve (NXDOMAIN"),
        "{text}"
    );
    assert!(
        text.contains(
            "inventory.csv:5: address: host name \"silent.diemcau.test\" does not resolve (no answer within 1s)"
        ),
        "{text}"
    );
    assert!(
        text.contains("inventory.csv:6: address: host name \"move.diemcau.test\""),
        "{text}"
    );
    assert!(!text.contains("localhost"), "{text}");

    let log = d.stop();
    let summary = log
        .lines()
        .find(|l| l.contains("host names resolved"))
        .unwrap_or_default();
    assert!(summary.contains("names=4") && summary.contains("failed=2"), "{summary}");
    assert!(
        log.contains("host name resolves to a new address"),
        "the change is logged"
    );
    let moved_down = log
        .lines()
        .any(|l| l.contains("endpoint state changed") && l.contains("endpoint=MOVE") && l.contains("check=dns"));
    assert!(moved_down, "the loss of MOVE's address is a transition of check dns");
}

#[test]
fn twenty_slow_names_resolve_at_once_while_literals_are_probed() {
    if !in_namespace("twenty_slow_names_resolve_at_once_while_literals_are_probed") {
        return;
    }
    const N: usize = 20;
    let zone = Arc::new(Zone {
        gated_total: N,
        ..Zone::default()
    });
    let mut inventory = HEADER.to_string() + &row("LIT", "127.0.0.2");
    for i in 0..N {
        let name = format!("slow-{i:02}.diemcau.test");
        zone.set(&name, Rule::Gated(Ipv4Addr::new(127, 0, 1, i as u8 + 1)));
        inventory += &row(&format!("SLOW{i:02}"), &name);
    }
    let server = start_server(zone.clone());
    let started = Instant::now();
    let mut d = start_daemon(&config(server.port(), "60s"), &inventory);

    // Every name is asked before any is answered, and meanwhile the literal is probed.
    d.wait_until(Duration::from_secs(60), "LIT up while every name waits", |d| {
        d.metrics().value("diemcau_endpoint_state", &["endpoint=\"LIT\""]) == Some(1.0) && zone.gated_asked() == N
    });
    let api = endpoints(&d);
    for i in 0..N {
        let r = &api[&format!("SLOW{i:02}")];
        assert_eq!(r["reason"], "dns: resolving", "{r}");
        assert!(r["address"].is_null(), "{r}");
    }
    let gate = Instant::now();
    zone.gate_open.store(true, Ordering::SeqCst);
    d.wait_until(Duration::from_secs(60), "every slow name resolved and probed", |d| {
        let m = d.metrics();
        (0..N).all(|i| m.value("diemcau_endpoint_state", &[&format!("endpoint=\"SLOW{i:02}\"")]) == Some(1.0))
    });
    eprintln!(
        "{N} names: all asked and LIT up {:?} after start; all resolved and up {:?} after the gate opened",
        gate - started,
        gate.elapsed()
    );
    let api = endpoints(&d);
    for i in 0..N {
        let r = &api[&format!("SLOW{i:02}")];
        assert_eq!(r["address"], format!("127.0.1.{}", i + 1), "{r}");
        assert!(r.get("reason").is_none_or(|v| v.is_null()), "{r}");
    }
    let m = d.metrics();
    assert_eq!(m.value("diemcau_dns_names", &["status=\"resolved\""]), Some(N as f64));
    assert_eq!(
        m.value("diemcau_dns_resolutions_total", &[]),
        Some(N as f64),
        "one lookup each"
    );
    assert_eq!(m.value("diemcau_ready", &[]), Some(1.0));
    let log = d.stop();
    let summary = log
        .lines()
        .find(|l| l.contains("host names resolved"))
        .unwrap_or_default();
    for f in ["names=20", "resolved=20", "failed=0", "max_in_flight=20"] {
        assert!(summary.contains(f), "{f} in {summary}");
    }
}
