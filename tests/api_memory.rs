//! 250 clients reading `/api/v1/endpoints` at once at 20,000 endpoints. Each used to build its
//! own copy of the body (measured: resident memory from 25 MB to a 355 MB peak); now they share
//! one rendering. The test asserts the property that matters (every client gets the whole,
//! identical answer, and the daemon's peak resident memory grows by far less than one body per
//! client), not a time.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use std::io::{Read, Write};

use common::{Daemon, fast_config, loopback_inventory, require_tool};

const ENDPOINTS: usize = 20_000;
const CLIENTS: usize = 250;

/// One GET, the whole response read: (status, body length). A generous read timeout: on a busy
/// two-core machine 250 clients share one debug-build server (a hang detector, not a bound).
fn get(port: u16, path: &str, gzip: bool) -> (u16, usize) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, 0);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(180)));
    let accept = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{accept}\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, 0);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, 0);
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.len() - split - 4)
}

/// `VmRSS` or `VmHWM` of `pid`, in kB.
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn many_readers_of_the_endpoint_list_share_one_body() {
    if !require_tool("unshare") {
        return;
    }
    let mut d = Daemon::start(&fast_config("10s", 3, 2), &loopback_inventory(ENDPOINTS));
    d.wait_until(Duration::from_secs(120), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let pid = d.child.id();
    let (status, one) = d.get("/api/v1/endpoints");
    assert_eq!(status, 200);
    let body_kb = one.len() as u64 / 1024;
    let before_kb = memory_kb(pid, "VmHWM:").max(memory_kb(pid, "VmRSS:"));

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let port = d.port;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let t = std::time::Instant::now();
                let (status, len) = get(port, "/api/v1/endpoints", i % 2 == 0);
                if status != 200 {
                    eprintln!("client {i}: status {status} after {:?}", t.elapsed());
                }
                (status, i % 2 == 0, len)
            })
        })
        .collect();
    let mut plain_lengths = Vec::new();
    for c in clients {
        let (status, gzip, len) = c.join().expect("client thread");
        assert_eq!(status, 200, "every client is answered");
        assert!(len > 0);
        if !gzip {
            plain_lengths.push(len);
        }
    }
    let after_kb = memory_kb(pid, "VmHWM:");
    let grown_kb = after_kb.saturating_sub(before_kb);
    println!(
        "RESULT api_memory endpoints={ENDPOINTS} clients={CLIENTS} body_kb={body_kb} \
         peak_before_kb={before_kb} peak_after_kb={after_kb} grown_kb={grown_kb}"
    );
    // Endpoints keep their state between the requests (10 s rounds, loopback): whole answers of
    // the same size. (Bodies rendered a second apart may differ in RTT digits, not in length
    // by more than a little.)
    let (min, max) = (
        plain_lengths.iter().min().copied().unwrap_or(0),
        plain_lengths.iter().max().copied().unwrap_or(0),
    );
    assert!(
        min as u64 / 1024 + 64 >= body_kb && max - min < max / 20,
        "{min}..{max} bytes"
    );
    // One body per client would be CLIENTS × body_kb (over a gigabyte here); shared, the growth
    // is a few bodies plus connection buffers.
    assert!(
        grown_kb < 20 * body_kb.max(1024),
        "peak memory grew by {grown_kb} kB for a {body_kb} kB body and {CLIENTS} clients"
    );
    d.stop();
}
