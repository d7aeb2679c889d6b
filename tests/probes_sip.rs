//! SIP OPTIONS probe against real peers on loopback: `sipp` as a UAS (200, 503, silent,
//! stopped) over UDP and TCP, a hand-driven UDP peer for retransmission timing, garbage,
//! truncation and demultiplexing, and property tests of the response parser.
//! Tests needing `sipp` skip when it is missing, except with CI=true where they fail.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diemcau::probe::outcome::{Detail, FailureReason, Outcome};
use diemcau::probe::sip::SipClient;
use diemcau::probe::sip::message::{
    Framing, Ids, MAX_HEADERS, MAX_MESSAGE, OptionsRequest, ParseError, matches, parse_response,
};
use diemcau::probe::sip::{SipCheck, SipTransport};
use diemcau::probe::tls::CaFile;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required in CI (Debian package sip-tester)"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

fn free_port() -> u16 {
    // A port free for both UDP and TCP at the time of asking.
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = t.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A sipp UAS that handles one call and always exits (`-m 1`, `-timeout`); killed on drop.
struct Sipp {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Sipp {
    fn start(scenario: &str, port: u16, transport: &str) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("sipp")
            .args(["-sf", &fixture(scenario), "-i", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-t", transport, "-m", "1", "-timeout", "20s", "-nostdin"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sipp");
        Sipp { child, _dir: dir }
    }

    /// Waits (bounded) for sipp to finish its one call.
    fn wait_exit(mut self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sipp did not exit after its call");
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(transport: SipTransport, port: u16, timeout_ms: u64) -> SipCheck {
    SipCheck {
        transport,
        port,
        timeout: Duration::from_millis(timeout_ms),
        ..SipCheck::default()
    }
}

/// Probes until the peer listens (sipp takes a moment to bind its port; before that the kernel
/// refuses, over TCP with a reset and over UDP with an ICMP port unreachable).
async fn probe_when_up(client: &SipClient, c: &SipCheck) -> Outcome {
    let t = Instant::now();
    loop {
        let o = client.probe(LOCALHOST, c).await;
        if o.failure != Some(FailureReason::Refused) || t.elapsed() > Duration::from_secs(5) {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_sip(o: &Outcome, status: u16, reason: &str) {
    assert!(o.success, "{o:?}");
    assert_eq!(
        o.detail,
        Detail {
            status: Some(status),
            reason: Some(reason.into()),
            ..Detail::default()
        }
    );
}

#[tokio::test]
async fn sipp_udp_200_then_503_then_stopped() {
    if !require_tool("sipp") {
        return;
    }
    let client = SipClient::new().await.expect("client");
    let port = free_port();
    let c = check(SipTransport::Udp, port, 5000);

    // Until sipp has bound its port the kernel refuses (port unreachable): probe until it is up.
    let sipp = Sipp::start("options_200.xml", port, "u1");
    let o = probe_when_up(&client, &c).await;
    assert_sip(&o, 200, "OK");
    sipp.wait_exit();

    let sipp = Sipp::start("options_503.xml", port, "u1");
    let o = probe_when_up(&client, &c).await;
    assert_sip(&o, 503, "Service Unavailable");
    sipp.wait_exit();

    // Nobody listens: the ICMP port-unreachable makes it a refusal, long before the timeout.
    let c = check(SipTransport::Udp, port, 1200);
    let o = client.probe(LOCALHOST, &c).await;
    assert_eq!(o.failure, Some(FailureReason::Refused), "{o:?}");
    assert!(o.duration < c.timeout, "{o:?}");
    assert_eq!(client.malformed_total(), 0);
}

#[tokio::test]
async fn sipp_tcp_200_503_silent_and_stopped() {
    if !require_tool("sipp") {
        return;
    }
    let client = SipClient::new().await.expect("client");
    let port = free_port();
    let c = check(SipTransport::Tcp, port, 3000);

    let sipp = Sipp::start("options_200.xml", port, "t1");
    assert_sip(&probe_when_up(&client, &c).await, 200, "OK");
    sipp.wait_exit();

    let sipp = Sipp::start("options_503.xml", port, "t1");
    assert_sip(&probe_when_up(&client, &c).await, 503, "Service Unavailable");
    sipp.wait_exit();

    // Connection accepted, OPTIONS read, never answered: a hung SIP stack times out.
    let _sipp = Sipp::start("options_silent.xml", port, "t1");
    let c = check(SipTransport::Tcp, port, 1000);
    let o = probe_when_up(&client, &c).await;
    assert_eq!(o.failure, Some(FailureReason::Timeout), "{o:?}");
    drop(_sipp);

    // Stopped: TCP tells us at once.
    let o = client.probe(LOCALHOST, &c).await;
    // Refused, not Timeout: the kernel's RST ended the probe before its timeout.
    assert_eq!(o.failure, Some(FailureReason::Refused), "{o:?}");
    assert_eq!(client.malformed_total(), 0);
}

/// A closed UDP port answers with ICMP port-unreachable at once: the probe reports `refused`
/// long before its timeout, and only the transaction to that port fails.
#[tokio::test]
async fn closed_udp_port_is_refused_before_the_timeout() {
    let client = SipClient::new().await.expect("client");
    // An open port that never answers, probed at the same time: it must time out normally.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let bystander = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .probe(LOCALHOST, &check(SipTransport::Udp, silent_port, 1500))
                .await
        }
    });
    let timeout = Duration::from_secs(30);
    let mut refused = None;
    for attempt in 0..5 {
        // Bound and dropped: closed unless someone takes it again meanwhile (then retry).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let o = client
            .probe(LOCALHOST, &check(SipTransport::Udp, port, timeout.as_millis() as u64))
            .await;
        if o.success {
            println!("attempt {attempt}: port {port} answered; trying another");
            continue;
        }
        refused = Some((port, o));
        break;
    }
    let (port, o) = refused.expect("a closed port");
    println!("closed UDP port: {:?} after {:?}", o.failure, o.duration);
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("refused"), "{o:?}");
    assert!(o.duration < timeout, "{o:?}");
    // With a timeout below T1 only one datagram leaves: each attempt is refused on the error
    // about that datagram, or times out if it was missed (no slower refusal to hide behind).
    for _ in 0..10 {
        let o = client.probe(LOCALHOST, &check(SipTransport::Udp, port, 450)).await;
        assert_eq!(o.failure, Some(FailureReason::Refused), "{o:?}");
    }
    let b = bystander.await.expect("bystander");
    assert_eq!(b.failure, Some(FailureReason::Timeout), "{b:?}");
    drop(silent);
}

/// The headers of a received request that a response must echo.
struct Echo {
    via: String,
    from: String,
    to: String,
    call_id: String,
    cseq: String,
}

fn echo_of(req: &str) -> Echo {
    let get = |name: &str| {
        req.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("request lacks {name}: {req}"))
            .to_owned()
    };
    Echo {
        via: get("Via"),
        from: get("From"),
        to: get("To"),
        call_id: get("Call-ID"),
        cseq: get("CSeq"),
    }
}

fn response(e: &Echo, status: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=peer\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Content-Length: 0\r\n\r\n",
        e.via, e.from, e.to, e.call_id, e.cseq
    )
}

#[tokio::test]
async fn request_is_well_formed_and_retransmitted_per_timer_e() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let port = peer.local_addr().expect("addr").port();
    let client = SipClient::new().await.expect("client");
    let c = SipCheck {
        user: "ping".into(),
        ..check(SipTransport::Udp, port, 3800)
    };
    let probe = tokio::spawn({
        let client = client.clone();
        async move { client.probe(LOCALHOST, &c).await }
    });
    let mut buf = vec![0u8; 65536];
    let mut arrivals = Vec::new();
    let mut first: Option<String> = None;
    let t0 = Instant::now();
    let until = tokio::time::Instant::now() + Duration::from_millis(4300);
    while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, peer.recv_from(&mut buf)).await {
        arrivals.push(t0.elapsed());
        let text = String::from_utf8(buf[..n].to_vec()).expect("utf-8 request");
        match &first {
            None => {
                let lines: Vec<&str> = text.split("\r\n").collect();
                assert_eq!(lines[0], format!("OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0"));
                let via = format!("Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK", from.port());
                assert!(lines[1].starts_with(&via) && lines[1].ends_with(";rport"), "{text}");
                for h in [
                    "Max-Forwards: 70",
                    "From: <sip:diemcau@127.0.0.1>;tag=",
                    "To: <sip:ping@127.0.0.1>",
                    "Call-ID: ",
                    "CSeq: 1 OPTIONS",
                    &format!("Contact: <sip:diemcau@127.0.0.1:{}>", from.port()),
                    "Accept: application/sdp",
                    "User-Agent: diemcau/",
                    "Content-Length: 0",
                ] {
                    assert!(lines.iter().any(|l| l.starts_with(h)), "no {h:?} in {text}");
                }
                assert!(text.ends_with("\r\n\r\n"));
                first = Some(text);
            }
            // Retransmissions are the same transaction, byte for byte.
            Some(f) => assert_eq!(f, &text),
        }
    }
    let o = probe.await.expect("join");
    assert_eq!(o.failure, Some(FailureReason::Timeout));
    // Sent at 0, 0.5, 1.5, 3.5 s: intervals T1, 2·T1, 4·T1 (capped at T2 = 4 s later).
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for (i, want) in [500u64, 1000, 2000].iter().enumerate() {
        let gap = arrivals[i + 1] - arrivals[i];
        let want = Duration::from_millis(*want);
        assert!(
            gap + Duration::from_millis(100) > want && gap < want + Duration::from_millis(400),
            "gap {i} = {gap:?}, want {want:?}"
        );
    }
}

#[tokio::test]
async fn garbage_truncation_strays_and_provisionals_are_survived_and_counted() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let port = peer.local_addr().expect("addr").port();
    let client = SipClient::new().await.expect("client");
    let c = check(SipTransport::Udp, port, 5000);
    let probe = tokio::spawn({
        let client = client.clone();
        async move { client.probe(LOCALHOST, &c).await }
    });
    let mut buf = vec![0u8; 65536];
    let (n, from) = peer.recv_from(&mut buf).await.expect("request");
    let echo = echo_of(std::str::from_utf8(&buf[..n]).expect("utf-8"));
    let ok = response(&echo, "200 OK");
    let send = |b: Vec<u8>| {
        let peer = &peer;
        async move { peer.send_to(&b, from).await.expect("send") }
    };
    send(b"\x00\xff garbage \r\n\r\n".to_vec()).await;
    send(ok.as_bytes()[..ok.len() / 2].to_vec()).await;
    // Near the largest datagram possible: read whole, not buffered into anything.
    send(vec![b'A'; 65_000]).await;
    // Well-formed but for another transaction: counted as unmatched.
    send(ok.replace("z9hG4bK", "z9hG4bKother").into_bytes()).await;
    send(ok.replace(&echo.call_id, "someone-else").into_bytes()).await;
    // Provisional: ignored, the probe keeps waiting for the final response.
    send(response(&echo, "100 Trying").into_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!probe.is_finished(), "a 1xx must not end the probe");
    send(response(&echo, "486 Busy Here").into_bytes()).await;
    let o = probe.await.expect("join");
    assert_sip(&o, 486, "Busy Here");
    assert_eq!(client.malformed_total(), 3);
    assert_eq!(client.unmatched_total(), 2);
    // The client still works after all that.
    let c = check(SipTransport::Udp, port, 2000);
    let again = tokio::spawn({
        let client = client.clone();
        async move { client.probe(LOCALHOST, &c).await }
    });
    let (n, from) = peer.recv_from(&mut buf).await.expect("request");
    let echo = echo_of(std::str::from_utf8(&buf[..n]).expect("utf-8"));
    peer.send_to(response(&echo, "200 OK").as_bytes(), from)
        .await
        .expect("send");
    assert_sip(&again.await.expect("join"), 200, "OK");
}

/// Many concurrent probes share one socket; answers arrive in reverse order and each reaches
/// its own probe (demux by Via branch).
#[tokio::test]
async fn concurrent_probes_share_one_socket_and_are_demultiplexed() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(peer) = UdpSocket::bind(bind).await else {
            eprintln!("SKIPPED {bind}: not available");
            continue;
        };
        let addr = peer.local_addr().expect("addr");
        let client = SipClient::new().await.expect("client");
        let mut probes = Vec::new();
        for _ in 0..40 {
            let client = client.clone();
            let c = check(SipTransport::Udp, addr.port(), 5000);
            probes.push(tokio::spawn(async move { client.probe(addr.ip(), &c).await }));
        }
        let mut buf = vec![0u8; 65536];
        let mut echoes = Vec::new();
        let mut sources = std::collections::HashSet::new();
        while echoes.len() < 40 {
            let (n, from) = peer.recv_from(&mut buf).await.expect("request");
            sources.insert(from);
            let e = echo_of(std::str::from_utf8(&buf[..n]).expect("utf-8"));
            if !echoes.iter().any(|x: &(Echo, SocketAddr)| x.0.call_id == e.call_id) {
                echoes.push((e, from));
            }
        }
        assert_eq!(sources.len(), 1, "one shared socket per family");
        for (i, (e, from)) in echoes.iter().enumerate().rev() {
            let status = format!("{} Code{i}", 200 + i);
            peer.send_to(response(e, &status).as_bytes(), from).await.expect("send");
        }
        let mut seen = std::collections::HashSet::new();
        for p in probes {
            let o = p.await.expect("join");
            let (Some(status), Some(reason)) = (&o.detail.status, &o.detail.reason) else {
                panic!("{o:?}");
            };
            assert_eq!(reason, &format!("Code{}", status - 200));
            assert!(seen.insert(*status));
        }
        assert_eq!(seen.len(), 40);
    }
}

// ---------- parser properties ----------

const VALID: &str = "SIP/2.0 200 OK\r\n\
    Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000;received=127.0.0.1\r\n\
    From: <sip:diemcau@127.0.0.1>;tag=1234\r\n\
    To: <sip:ping@127.0.0.1>;tag=99\r\n\
    Call-ID: c0ffee@diemcau\r\n\
    CSeq: 1 OPTIONS\r\n\
    Allow: INVITE, ACK, OPTIONS, BYE\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 4\r\n\r\nv=0\n";

fn ids() -> Ids {
    Ids {
        branch: "z9hG4bKabc".into(),
        from_tag: "1234".into(),
        call_id: "c0ffee@diemcau".into(),
    }
}

#[test]
fn valid_response_parses_in_both_framings() {
    for framing in [Framing::Datagram, Framing::Stream] {
        let (r, used) = parse_response(VALID.as_bytes(), framing).expect("valid");
        assert_eq!(used, VALID.len());
        assert!(matches(&r, &ids()));
        assert_eq!((r.status, r.reason.as_str(), r.content_length), (200, "OK", 4));
    }
}

#[test]
fn every_truncation_is_rejected_without_panic() {
    let b = VALID.as_bytes();
    for cut in 0..b.len() {
        // On a stream a prefix is always "wait for more", never a false parse or an error.
        assert_eq!(
            parse_response(&b[..cut], Framing::Stream),
            Err(ParseError::Incomplete),
            "cut at {cut}"
        );
        assert!(parse_response(&b[..cut], Framing::Datagram).is_err(), "cut at {cut}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for i in 0..20_000 {
        let len = rng.random_range(0..if i % 100 == 0 { 70_000 } else { 600 });
        let mut v = vec![0u8; len];
        rng.fill(&mut v[..]);
        // Some inputs start like SIP so the parser gets past the status line.
        if i % 2 == 0 {
            let prefix = &VALID.as_bytes()[..rng.random_range(0..VALID.len())];
            v.splice(0..0, prefix.iter().copied());
        }
        let _ = parse_response(&v, Framing::Datagram);
        let _ = parse_response(&v, Framing::Stream);
    }
}

#[test]
fn mutated_valid_responses_never_panic_and_stay_sane() {
    let mut rng = StdRng::seed_from_u64(42);
    let alphabet = b"\r\n :;,=/0123456789\t\x00\xffSIPvftilz";
    for _ in 0..50_000 {
        let mut v = VALID.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..v.len());
            match rng.random_range(0..3) {
                0 => v[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    v.remove(at);
                }
                _ => v.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
            }
            if v.is_empty() {
                break;
            }
        }
        for framing in [Framing::Datagram, Framing::Stream] {
            if let Ok((r, used)) = parse_response(&v, framing) {
                assert!(used <= v.len());
                assert!((100..=699).contains(&r.status));
                assert!(!r.call_id.is_empty());
            }
        }
    }
}

/// Randomly formatted but valid responses (header case, compact forms, order, extra headers,
/// folding, bodies) all parse to the same transaction.
#[test]
fn valid_variants_parse() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2_000 {
        let pick = |rng: &mut StdRng, long: &str, short: &str| {
            let n = if rng.random_bool(0.5) { long } else { short };
            n.chars()
                .map(|c| {
                    if rng.random_bool(0.5) {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect::<String>()
        };
        let body: String = "x".repeat(rng.random_range(0..50));
        let mut headers = vec![
            format!(
                "{}: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc, SIP/2.0/UDP 10.0.0.2",
                pick(&mut rng, "Via", "v")
            ),
            format!("{}:<sip:a@b>;tag=1", pick(&mut rng, "From", "f")),
            format!("{} : <sip:c@d>\r\n\t;tag=2", pick(&mut rng, "To", "t")),
            format!("{}:   c0ffee@diemcau", pick(&mut rng, "Call-ID", "i")),
            format!("{}: 1 OPTIONS", pick(&mut rng, "CSeq", "CSeq")),
            format!("{}: {}", pick(&mut rng, "Content-Length", "l"), body.len()),
            "X-Extra: yes".into(),
            "Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKlower".into(),
        ];
        // The top Via must stay first among Vias; shuffle the rest.
        let first = headers.remove(0);
        for i in (1..headers.len()).rev() {
            let j = rng.random_range(0..=i);
            headers.swap(i, j);
        }
        headers.insert(rng.random_range(0..headers.len()), first);
        let vias: Vec<usize> = (0..headers.len())
            .filter(|&i| headers[i].contains("SIP/2.0/UDP"))
            .collect();
        if headers[vias[0]].contains("lower") {
            headers.swap(vias[0], vias[1]);
        }
        let msg = format!("SIP/2.0 180 Ringing a bit\r\n{}\r\n\r\n{body}", headers.join("\r\n"));
        for framing in [Framing::Datagram, Framing::Stream] {
            let (r, used) = parse_response(msg.as_bytes(), framing).unwrap_or_else(|e| panic!("{e}: {msg}"));
            assert_eq!(used, msg.len());
            assert!(matches(&r, &ids()), "{msg}");
            assert!(r.is_provisional());
            assert_eq!(r.reason, "Ringing a bit");
        }
    }
}

#[test]
fn strictness_and_limits() {
    let bad = |s: &str| parse_response(s.as_bytes(), Framing::Datagram).is_err();
    assert!(bad(&VALID.replace("\r\n", "\n")));
    assert!(bad(&VALID.replace("SIP/2.0 200", "SIP/2.0 2000")));
    assert!(bad(&VALID.replace("SIP/2.0 200", "HTTP/1.1 200")));
    assert!(bad(&VALID.replace("SIP/2.0 200", "SIP/2.0 099")));
    assert!(bad(&VALID.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS")));
    assert!(bad(&VALID.replace("Call-ID: c0ffee@diemcau\r\n", "")));
    assert!(bad(&VALID.replace("Call-ID", "Call-ID: a\r\ni")));
    assert!(bad(&VALID.replace("Content-Length: 4", "Content-Length: 40")));
    assert!(bad(&VALID.replace("Content-Length: 4", "Content-Length: -4")));
    assert!(bad(&VALID.replace("Allow:", "Allow")));
    assert!(bad(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n"
    ));
    // A stream needs Content-Length to frame the message.
    let no_cl = VALID.replace("Content-Length: 4\r\n", "").replace("v=0\n", "");
    assert!(parse_response(no_cl.as_bytes(), Framing::Datagram).is_ok());
    assert!(parse_response(no_cl.as_bytes(), Framing::Stream).is_err());
    // Header count and size limits.
    let many: String = (0..MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
    let msg = VALID.replacen("Allow:", &format!("{many}Allow:"), 1);
    assert_eq!(
        parse_response(msg.as_bytes(), Framing::Datagram),
        Err(ParseError::TooLarge)
    );
    let huge = VALID.replacen("Allow: ", &format!("Allow: {}", "A".repeat(MAX_MESSAGE)), 1);
    assert_eq!(
        parse_response(huge.as_bytes(), Framing::Stream),
        Err(ParseError::TooLarge)
    );
    // Two messages on one stream are framed apart.
    let two = format!("{VALID}{VALID}");
    let (_, used) = parse_response(two.as_bytes(), Framing::Stream).expect("first");
    assert_eq!(used, VALID.len());
    assert!(parse_response(&two.as_bytes()[used..], Framing::Stream).is_ok());
    // UDP: bytes past Content-Length are ignored.
    assert!(parse_response(format!("{VALID}junk").as_bytes(), Framing::Datagram).is_ok());
}

#[test]
fn built_request_is_parseable_sip() {
    let ids = ids();
    let req = OptionsRequest {
        transport: SipTransport::Tcp,
        user: "ping",
        target: "10.1.2.3:5060".parse().expect("addr"),
        local: "10.9.9.9:40000".parse().expect("addr"),
        ids: &ids,
    }
    .to_bytes();
    let text = String::from_utf8(req).expect("utf-8");
    // Turn the request into a response by swapping the start line: the headers must then
    // satisfy the strict parser and match the transaction.
    let resp = text.replacen("OPTIONS sip:ping@10.1.2.3:5060 SIP/2.0", "SIP/2.0 200 OK", 1);
    let (r, _) = parse_response(resp.as_bytes(), Framing::Stream).expect("parse");
    assert!(matches(&r, &ids));
    assert!(text.contains("Via: SIP/2.0/TCP 10.9.9.9:40000;branch=z9hG4bKabc;rport\r\n"));
}

#[tokio::test]
async fn client_is_shareable() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let c: Arc<SipClient> = SipClient::new().await.expect("client");
    assert_send_sync(&c);
}

/// Plays a SIP server on a byte stream: keep-alive CRLFs, a provisional response split across
/// writes, a stray response for another call, then the final answer.
async fn stream_peer<S>(mut s: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "prober closed early");
        req.extend_from_slice(&buf[..n]);
    }
    let echo = echo_of(std::str::from_utf8(&req).expect("utf-8"));
    let trying = response(&echo, "100 Trying");
    let (a, b) = trying.split_at(trying.len() / 3);
    s.write_all(b"\r\n\r\n").await.expect("write");
    s.write_all(a.as_bytes()).await.expect("write");
    s.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b.as_bytes()).await.expect("write");
    let stray = response(&echo, "200 OK").replace(&echo.call_id, "other-call");
    let fin = response(&echo, "200 OK");
    s.write_all(format!("{stray}{fin}").as_bytes()).await.expect("write");
    s.flush().await.expect("flush");
    // Hold the connection until the prober closes it.
    let _ = s.read(&mut buf).await;
}

#[tokio::test]
async fn tcp_and_tls_streams_are_framed_and_tls_is_verified() {
    let client = SipClient::new().await.expect("client");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        stream_peer(tcp).await;
    });
    let o = client.probe(LOCALHOST, &check(SipTransport::Tcp, port, 3000)).await;
    assert_sip(&o, 200, "OK");
    assert_eq!((client.unmatched_total(), client.malformed_total()), (1, 0));
    server.await.expect("server");

    // TLS with a self-signed certificate: accepted only with insecure_skip_verify.
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.der().to_vec())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let (tcp, _) = listener.accept().await.expect("accept");
            if let Ok(tls) = acceptor.accept(tcp).await {
                stream_peer(tls).await;
            }
        }
    });
    let tls = |insecure| SipCheck {
        insecure_skip_verify: insecure,
        ..check(SipTransport::Tls, port, 3000)
    };
    let o = client.probe(LOCALHOST, &tls(false)).await;
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("tls"), "{o:?}");
    let o = client.probe(LOCALHOST, &tls(true)).await;
    assert_sip(&o, 200, "OK");
    // Or verified, with the device's certificate in a ca_file.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("device.pem");
    std::fs::write(&ca, cert.pem()).expect("write");
    let pinned = SipCheck {
        ca_file: Some(CaFile::read(&ca).expect("ca_file")),
        ..tls(false)
    };
    let o = client.probe(LOCALHOST, &pinned).await;
    assert_sip(&o, 200, "OK");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server done")
        .expect("server");
}

/// A stream peer that sends garbage ends the probe as a protocol failure, counted.
#[tokio::test]
async fn malformed_stream_is_a_protocol_failure() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let client = SipClient::new().await.expect("client");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = tcp.read(&mut buf).await;
    });
    let o = client.probe(LOCALHOST, &check(SipTransport::Tcp, port, 3000)).await;
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("protocol"), "{o:?}");
    assert_eq!(client.malformed_total(), 1);
}
