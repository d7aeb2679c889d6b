//! TCP connect probe against real sockets: an open port, a closed port (refused), and —
//! inside a private user+network namespace where nftables drops the SYN — a timeout, plus an
//! unreachable network. The namespace part re-executes this test binary under `unshare -rn`
//! (PROBES_TCP_IN_NS marks the inner run), so nothing touches the host's network.

mod common;

use common::sh;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use diemcau::probe::Check;
use diemcau::probe::outcome::{Detail, FailureReason};
use diemcau::probe::tcp;
use diemcau::probe::tcp::TcpCheck;

const INNER: &str = "PROBES_TCP_IN_NS";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn check(port: u16, timeout_ms: u64) -> TcpCheck {
    TcpCheck {
        port,
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test]
async fn open_port_succeeds_with_connect_time() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let o = tcp::probe(LOCALHOST, &check(port, 2000)).await;
    assert!(o.success, "{o:?}");
    assert_eq!((o.failure, o.detail), (None, Detail::default()));
    assert_eq!(Check::Tcp(check(port, 1)).kind(), "tcp");
}

#[tokio::test]
async fn closed_port_is_refused_at_once() {
    // A port we hold bound but never listen on: the kernel answers RST, and no other process
    // can take the port meanwhile (a bind-test-then-close port could be taken by a concurrent
    // test before the probe connects). Bound ports are also never picked as a source port, so
    // TCP's simultaneous open cannot connect the probe to itself.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    held.bind(&std::net::SocketAddr::new(LOCALHOST, 0).into())
        .expect("bind");
    let port = held
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("bound port");
    let o = tcp::probe(LOCALHOST, &check(port, 2000)).await;
    assert_eq!(o.failure, Some(FailureReason::Refused), "{o:?}");
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("refused"));
}

/// Runs the namespace half of this file's tests in a child under `unshare -rn`; returns
/// false (skip) when namespaces or nft are unavailable outside CI.
fn run_in_namespace(test: &str) -> bool {
    common::rerun_in_namespace("-rn", test, INNER, &["nft", "ip"], Duration::from_secs(30))
}

#[tokio::test]
async fn dropped_syn_times_out_and_no_route_is_unreachable() {
    if std::env::var_os(INNER).is_none() {
        run_in_namespace("dropped_syn_times_out_and_no_route_is_unreachable");
        return;
    }
    sh("ip link set lo up", "");
    sh(
        "nft -f -",
        "table inet t {\n  chain out {\n    type filter hook output priority 0;\n    tcp dport 9 drop\n  }\n}\n",
    );
    // Something listens on 9, so only the drop rule can explain a timeout.
    let _l = tokio::net::TcpListener::bind("127.0.0.1:9").await.expect("bind :9");
    let t = Instant::now();
    let o = tcp::probe(LOCALHOST, &check(9, 800)).await;
    assert_eq!(o.failure, Some(FailureReason::Timeout), "{o:?}");
    assert!(t.elapsed() >= Duration::from_millis(790) && t.elapsed() < Duration::from_secs(30));
    assert!(o.duration >= Duration::from_millis(790));

    // Only loopback exists in the namespace: any other network has no route.
    let far = SocketAddr::from(([192, 0, 2, 1], 80));
    let o = tcp::probe(far.ip(), &check(far.port(), 800)).await;
    assert_eq!(o.failure, Some(FailureReason::Unreachable), "{o:?}");
}
