//! `diemcau probe` from the terminal with blackbox-style targets: `host:port`, `[v6]:port`,
//! http(s) URLs and sip: URIs, against servers this test starts on loopback (a TCP listener, a
//! tiny HTTP responder, a UDP socket answering SIP OPTIONS), explicit flags winning over what
//! the target implies, and a closed UDP port reported as refused instead of timing out.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn probe(args: &[&str]) -> Run {
    let Output { status, stdout, stderr } = Command::new(common::bin())
        .arg("probe")
        .args(args)
        .output()
        .expect("run diemcau probe");
    let run = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    println!(
        "diemcau probe {}: exit {:?}\n{}{}",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

/// An HTTP responder on 127.0.0.1: answers `count` requests with 200 and sends each request
/// line down the channel.
fn http_server(count: usize) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut s, _)) = listener.accept() else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).into_owned();
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
            let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
        }
    });
    (port, rx)
}

/// A UDP socket on 127.0.0.1 that answers every OPTIONS with 200 OK and sends each request
/// line down the channel.
fn sip_server() -> (u16, mpsc::Receiver<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let header = |name: &str| {
                req.split("\r\n")
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            let resp = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=peer\r\nCall-ID: {}\r\nCSeq: {}\r\n\
                 Content-Length: 0\r\n\r\n",
                header("Via"),
                header("From"),
                header("To"),
                header("Call-ID"),
                header("CSeq")
            );
            let _ = socket.send_to(resp.as_bytes(), from);
            let _ = tx.send(req.lines().next().unwrap_or_default().to_owned());
        }
    });
    (port, rx)
}

fn received(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server got a request")
}

#[test]
fn host_port_targets_reach_tcp_and_sip() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tcp_port = tcp.local_addr().expect("addr").port();
    let r = probe(&[&format!("127.0.0.1:{tcp_port}"), "--kind", "tcp"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("127.0.0.1 tcp: success"), "{}", r.stdout);

    // [v6]:port, where the host has IPv6 loopback.
    if let Ok(v6) = TcpListener::bind("[::1]:0") {
        let port = v6.local_addr().expect("addr").port();
        let r = probe(&[&format!("[::1]:{port}"), "--kind", "tcp"]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert!(r.stdout.starts_with("::1 tcp: success"), "{}", r.stdout);
    }

    let (sip_port, requests) = sip_server();
    let r = probe(&[&format!("127.0.0.1:{sip_port}"), "--kind", "sip"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("SIP 200 OK"), "{}", r.stdout);
    assert!(received(&requests).starts_with("OPTIONS sip:ping@127.0.0.1:"));

    // A sip: URI: the kind, user and port come from it.
    let r = probe(&[&format!("sip:giamsat@127.0.0.1:{sip_port}")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("127.0.0.1 sip: success"), "{}", r.stdout);
    assert_eq!(
        received(&requests),
        format!("OPTIONS sip:giamsat@127.0.0.1:{sip_port} SIP/2.0")
    );
}

#[test]
fn urls_set_scheme_port_and_path_and_flags_win() {
    let (port, requests) = http_server(3);
    let r = probe(&[&format!("http://127.0.0.1:{port}/health?full=1#top"), "--kind", "http"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("127.0.0.1 http: success"), "{}", r.stdout);
    assert_eq!(received(&requests), "GET /health?full=1 HTTP/1.1");

    // No --kind: an http URL means an HTTP check.
    let r = probe(&[&format!("http://127.0.0.1:{port}")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(received(&requests), "GET / HTTP/1.1");

    // Explicit flags win over the URL's port and path, and say so.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = probe(&[
        &format!("http://127.0.0.1:{closed}/from-url"),
        "--port",
        &port.to_string(),
        "--path",
        "/from-flag",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(received(&requests), "GET /from-flag HTTP/1.1");
    assert!(
        r.stderr
            .contains(&format!("note: port = {port} (from the flags) wins over {closed}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("note: path = \"/from-flag\""), "{}", r.stderr);

    // An https URL to a plain HTTP port: the scheme came from the URL (TLS is tried and fails
    // on the plain answer).
    let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
    let plain_port = plain.local_addr().expect("addr").port();
    thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            let _ = s.read(&mut [0u8; 1024]);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let r = probe(&[&format!("https://127.0.0.1:{plain_port}/"), "--insecure"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.contains("failure (tls"), "{}", r.stdout);
}

#[test]
fn targets_that_do_not_fit_the_kind_are_refused_clearly() {
    for (args, says) in [
        (
            &["sip:127.0.0.1", "--kind", "http"][..],
            "is a sip target but --kind is \"http\"",
        ),
        (
            &["https://127.0.0.1/x", "--kind", "sip"][..],
            "is a http target but --kind is \"sip\"",
        ),
        (&["127.0.0.1:5060"][..], "ICMP echo has not"),
        (&["ftp://127.0.0.1/"][..], "scheme \"ftp\" is not supported"),
        (
            &["127.0.0.1:99999", "--kind", "tcp"][..],
            "is not a number from 1 to 65535",
        ),
        (&["[::1]5060", "--kind", "tcp"][..], "write [IPv6]:port"),
    ] {
        let r = probe(args);
        assert_eq!(r.code, Some(2), "{args:?}");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn closed_udp_port_is_refused_not_timed_out() {
    // Port-unreachable comes back at once on loopback; with a 30 s timeout a "timeout" would
    // mean the ICMP error was missed. A port picked by binding and dropping may be taken again
    // meanwhile: then the probe gets an answer or a non-SIP reply, and another port is tried.
    for attempt in 0..5 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let r = probe(&[
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--kind",
            "sip",
            "--timeout",
            "30s",
        ]);
        if r.code == Some(0) {
            println!("attempt {attempt}: port {port} answered; trying another");
            continue;
        }
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(r.stdout.contains("sip: failure (refused)"), "{}", r.stdout);
        println!("closed UDP port: {}", r.stdout.trim());
        return;
    }
    panic!("every picked port answered");
}
