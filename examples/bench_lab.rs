//! Load benchmark: 100,000 emulated endpoints (90k IPv4 in 198.18.0.0/15, 10k IPv6 in
//! 2001:2::/48), 3 echo requests per endpoint per 10 s (30,000 pps each way) from raw
//! sockets, for DURATION seconds (default 20). Prints the emulator's own delay error
//! (late p50/p99) and CPU time.
//!
//! Run: `cargo run --release --example bench_lab [-- SECONDS]` (re-executes itself under
//! `unshare -rn`, so it never touches the host network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diemcau_lab::{EmulatedEndpoint, Lab, LabOptions, Scenario};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const N_V4: u32 = 90_000;
const N_V6: u32 = 10_000;
const PPS: u64 = 30_000;

/// Process-wide CPU time (user + system) in ms.
fn process_cpu_ms() -> f64 {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    if std::env::var_os("LAB_IN_NS").is_none() {
        let exe = std::env::current_exe().expect("current_exe");
        let st = Command::new("unshare")
            .arg("-rn")
            .arg(exe)
            .arg(secs.to_string())
            .env("LAB_IN_NS", "1")
            .status()
            .expect("unshare");
        std::process::exit(st.code().unwrap_or(1));
    }
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    assert!(
        Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip")
            .success()
    );

    let mut endpoints = Vec::with_capacity((N_V4 + N_V6) as usize);
    let base4 = u32::from(Ipv4Addr::new(198, 18, 0, 1));
    for i in 0..N_V4 {
        endpoints.push(EmulatedEndpoint {
            id: format!("V4-{i:05}"),
            province: format!("P{:02}", i % 63),
            district: format!("D{}", i % 700),
            commune: format!("C{i}"),
            carrier: ["VNPT", "Viettel", "FPT"][(i % 3) as usize].into(),
            addr: IpAddr::V4(Ipv4Addr::from(base4 + i)),
        });
    }
    let base6 = u128::from(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1));
    for i in 0..N_V6 {
        endpoints.push(EmulatedEndpoint {
            id: format!("V6-{i:05}"),
            province: format!("P{:02}", i % 63),
            district: format!("D{}", i % 700),
            commune: format!("C6-{i}"),
            carrier: "VNPT".into(),
            addr: IpAddr::V6(Ipv6Addr::from(base6 + u128::from(i))),
        });
    }
    let scenario = Scenario::from_toml_str(
        r#"
[defaults]
delay = { kind = "normal", mean_ms = 20.0, stddev_ms = 5.0 }
loss = 0.01
[[rule]]
select = { province = "P07" }
outages = [ { flap = { period_s = 8, down_s = 2 } } ]
[[rule]]
select = { carrier = "FPT", province = "P11" }
delay = { kind = "uniform", min_ms = 5.0, max_ms = 80.0 }
loss = 0.1
"#,
        "bench.toml",
    )
    .expect("scenario");
    let truth = std::env::temp_dir().join("bench_lab_truth.jsonl");
    let t_start = Instant::now();
    let lab = Lab::start(
        endpoints,
        scenario,
        LabOptions {
            truth_path: Some(truth.clone()),
            ..LabOptions::default()
        },
    )
    .expect("lab start");
    println!("lab start took {:?}", t_start.elapsed());

    let s4 = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw4");
    let s6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).expect("raw6");
    for s in [&s4, &s6] {
        let _ = s.set_recv_buffer_size(8 << 20);
        s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    }
    let done = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    for (sock, v6) in [
        (s4.try_clone().expect("clone"), false),
        (s6.try_clone().expect("clone"), true),
    ] {
        let (done, received) = (Arc::clone(&done), Arc::clone(&received));
        receivers.push(std::thread::spawn(move || {
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
            while !done.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    // SAFETY: recv initialised the first n bytes.
                    let data: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                    let icmp = if v6 {
                        data
                    } else {
                        &data[usize::from(data[0] & 0xf) * 4..]
                    };
                    if icmp.first() == Some(&if v6 { 129 } else { 0 })
                        && icmp.get(4..6) == Some(&0xbeefu16.to_be_bytes()[..])
                    {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // Pre-build destination addresses so the sender loop does no allocation.
    let dsts: Vec<SockAddr> = (0..N_V4)
        .map(|i| SockAddr::from(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(base4 + i)), 0)))
        .chain((0..N_V6).map(|i| SockAddr::from(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(base6 + u128::from(i))), 0))))
        .collect();
    let n = dsts.len() as u64;
    let cpu0 = process_cpu_ms();
    let lab_cpu0 = lab.stats().emulator_cpu_ms;
    let t0 = Instant::now();
    let total = PPS * secs;
    let mut sent = 0u64;
    let mut send_err = 0u64;
    let mut pkt = [0u8; 24];
    pkt[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
    pkt[8..].copy_from_slice(b"diemcau-lab-bnch");
    while sent < total {
        let due = (t0.elapsed().as_nanos() as u64 * PPS / 1_000_000_000).min(total);
        while sent < due {
            let idx = (sent % n) as usize;
            let v6 = idx >= N_V4 as usize;
            let seq = (sent / n) as u16;
            pkt[0] = if v6 { 128 } else { 8 };
            pkt[2..4].copy_from_slice(&[0, 0]);
            pkt[6..8].copy_from_slice(&seq.to_be_bytes());
            if !v6 {
                let c = pnet_packet::util::checksum(&pkt, 1);
                pkt[2..4].copy_from_slice(&c.to_be_bytes());
            }
            let sock = if v6 { &s6 } else { &s4 };
            if sock.send_to(&pkt, &dsts[idx]).is_err() {
                send_err += 1;
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let send_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let live = lab.stats();
    let cpu = process_cpu_ms() - cpu0;
    done.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.join();
    }
    let t_stop = Instant::now();
    let stats = lab.stop().expect("stop");
    println!("lab stop (truth flush) took {:?}", t_stop.elapsed());
    let got = received.load(Ordering::Relaxed);
    println!(
        "sent {sent} echo requests in {send_secs:.2} s ({:.0} pps), send errors {send_err}, replies received {got}",
        sent as f64 / send_secs
    );
    println!("lab: {stats:?}");
    println!(
        "RESULT late_p50_us={} late_p99_us={} late_max_us={} late>1ms={} emulator_cpu={:.0} ms over {:.1} s ({:.1}% of one core); whole process cpu={:.0} ms",
        stats.late_p50_us,
        stats.late_p99_us,
        stats.late_max_us,
        stats.late,
        live.emulator_cpu_ms - lab_cpu0,
        send_secs,
        (live.emulator_cpu_ms - lab_cpu0) / (send_secs * 10.0),
        cpu
    );
    let lines = std::fs::read_to_string(&truth).map(|t| t.lines().count()).unwrap_or(0);
    println!("truth file {} lines at {}", lines, truth.display());
}
