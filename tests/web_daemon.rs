//! The real daemon's web side: `diemcau run --private-netns --web.config.file FILE` with TLS
//! (a CA and a 127.0.0.1 certificate made here with rcgen) and Basic auth (bcrypt hashes made
//! here), reload of the web config, and /metrics under many clients and slowloris clients.
//! All traffic stays on 127.0.0.1 and in the daemon's own namespace.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, fast_config, free_port, loopback_inventory, tail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Daemons of this file run one at a time, so the load test measures the daemon and not its
/// neighbours (2 shared cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------ certificates

struct Pki {
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a server certificate for 127.0.0.1 (IP SAN) and localhost, signed by it.
fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "diemcau web_daemon test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &issuer).expect("sign");
    Pki {
        ca_der: ca_cert.der().clone(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn client_config(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("ca");
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

// ------------------------------------------------------------------ a small blocking client

#[derive(Debug)]
struct Resp {
    status: u16,
    /// Header lines, names lower-cased: "name: value".
    headers: Vec<String>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers.iter().find_map(|h| h.strip_prefix(&prefix).map(str::trim))
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A connection to the daemon from its own loopback source address (127.0.2.x, a new one each
/// time): these tests send wrong passwords on purpose, and the per-client login backoff (tested
/// in `web::security`) would otherwise answer the next ones 429.
fn connect_from_fresh_address(port: u16) -> Result<TcpStream, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let source = std::net::Ipv4Addr::new(127, 0, 2 + (n / 250 % 200) as u8, 1 + (n % 250) as u8);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).map_err(|e| e.to_string())?;
    socket
        .bind(&std::net::SocketAddr::from((source, 0)).into())
        .map_err(|e| format!("bind {source}: {e}"))?;
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .map_err(|e| format!("connect: {e}"))?;
    Ok(socket.into())
}

/// One connection, plain or TLS, on which requests can be sent one after another.
struct Conn {
    reader: BufReader<Box<dyn Stream>>,
}

impl Conn {
    fn open(port: u16, tls: Option<&Arc<ClientConfig>>) -> Result<Conn, String> {
        let tcp = connect_from_fresh_address(port)?;
        // Hang detectors, not latency targets: a scrape among hundreds on a loaded machine is slow.
        tcp.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        tcp.set_write_timeout(Some(Duration::from_secs(120))).expect("timeout");
        let stream: Box<dyn Stream> = match tls {
            Some(config) => {
                let name = ServerName::try_from("127.0.0.1").expect("server name");
                let mut conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
                let mut tcp = tcp;
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake: {e}"))?;
                }
                Box::new(StreamOwned::new(conn, tcp))
            }
            None => Box::new(tcp),
        };
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    fn send(&mut self, method: &str, path: &str, auth: Option<(&str, &str)>, close: bool) -> Result<Resp, String> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n");
        if close {
            req.push_str("Connection: close\r\n");
        }
        if let Some((user, password)) = auth {
            req.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(format!("{user}:{password}").as_bytes())
            ));
        }
        req.push_str("\r\n");
        let w = self.reader.get_mut();
        w.write_all(req.as_bytes()).map_err(|e| format!("write: {e}"))?;
        w.flush().map_err(|e| format!("flush: {e}"))?;
        read_response(&mut self.reader, method == "HEAD")
    }
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_response(r: &mut impl BufRead, head_only: bool) -> Result<Resp, String> {
    let status_line = read_line(r)?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        headers.push(format!("{}:{}", k.to_ascii_lowercase(), v));
    }
    let mut resp = Resp {
        status,
        headers,
        body: String::new(),
    };
    if head_only {
        return Ok(resp);
    }
    let mut body = Vec::new();
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length")?;
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    } else if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(read_line(r)?.trim(), 16).map_err(|_| "bad chunk size")?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).map_err(|e| format!("chunk: {e}"))?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        // Until the peer closes (a TLS peer may close without close_notify).
        match r.read_to_end(&mut body) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(format!("body: {e}")),
        }
    }
    resp.body = String::from_utf8_lossy(&body).into_owned();
    Ok(resp)
}

fn base64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ------------------------------------------------------------------ a daemon with a web config

struct SecureDaemon {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    tls: Arc<ClientConfig>,
}

impl SecureDaemon {
    /// Writes the config, the inventory, the server certificate and key, and `web.yml` (paths
    /// in it relative to it), starts `diemcau run --private-netns --config … --web.config.file …`
    /// and waits until an HTTPS request with `auth` to /-/healthy answers 200.
    fn start(pki: &Pki, web_yaml: &str, auth: (&str, &str)) -> SecureDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = fast_config("1s", 2, 1).replace("{port}", &port.to_string());
        std::fs::write(dir.path().join("diemcau.toml"), config).expect("write");
        std::fs::write(dir.path().join("inventory.csv"), loopback_inventory(6)).expect("write");
        std::fs::write(dir.path().join("server.crt"), &pki.cert_pem).expect("write");
        std::fs::write(dir.path().join("server.key"), &pki.key_pem).expect("write");
        std::fs::write(dir.path().join("web.yml"), web_yaml).expect("write");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
        let child = Command::new(common::bin())
            .args(["run", "--private-netns", "--log.level", "info", "--config"])
            .arg(dir.path().join("diemcau.toml"))
            .arg("--web.config.file")
            .arg(dir.path().join("web.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn diemcau");
        let mut d = SecureDaemon {
            child,
            port,
            dir,
            tls: client_config(&pki.ca_der),
        };
        d.wait_until(Duration::from_secs(20), "HTTPS /-/healthy with credentials", |d| {
            d.req("GET", "/-/healthy", Some(auth)).is_ok_and(|r| r.status == 200)
        });
        d
    }

    fn web_yml(&self) -> PathBuf {
        self.dir.path().join("web.yml")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// One request on a new TLS connection.
    fn req(&self, method: &str, path: &str, auth: Option<(&str, &str)>) -> Result<Resp, String> {
        Conn::open(self.port, Some(&self.tls))?.send(method, path, auth, true)
    }

    fn wait_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut(&SecureDaemon) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "diemcau exited ({status}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; log tail:\n{}",
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SecureDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every route, with the method it answers and its normal status once the daemon is ready.
const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/", 200),
    ("GET", "/metrics", 200),
    ("GET", "/-/healthy", 200),
    ("GET", "/-/ready", 200),
    ("POST", "/-/reload", 200),
    ("GET", "/probe?target=127.1.0.1&module=icmp", 200),
    ("GET", "/status", 200),
    ("GET", "/api/v1/summary", 200),
    ("GET", "/api/v1/endpoints", 200),
    ("GET", "/api/v1/incidents", 200),
    ("GET", "/api/v1/merged", 200),
    ("GET", "/reports/sla", 200),
];

/// Refused: 401 with a Basic challenge, or, once this client has failed more than five times in
/// a row, 429 with Retry-After (the per-client login backoff).
fn assert_refused(d: &SecureDaemon, auth: Option<(&str, &str)>, what: &str) {
    for (method, path, _) in ROUTES {
        let r = d
            .req(method, path, auth)
            .unwrap_or_else(|e| panic!("{method} {path} ({what}): {e}"));
        assert_refusal(&r, &format!("{method} {path} ({what})"));
    }
}

fn assert_refusal(r: &Resp, what: &str) {
    match r.status {
        401 => assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"diemcau\""),
            "{what} needs WWW-Authenticate: {r:?}"
        ),
        429 => assert!(
            r.header("retry-after").is_some(),
            "{what}: backoff without Retry-After: {r:?}"
        ),
        _ => panic!("{what}: not refused: {r:?}"),
    }
}

fn assert_served(d: &SecureDaemon, auth: (&str, &str)) {
    for (method, path, status) in ROUTES {
        let r = d
            .req(method, path, Some(auth))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(r.status, *status, "{method} {path} with the right credentials: {r:?}");
        assert!(r.header("www-authenticate").is_none(), "{method} {path}");
    }
}

fn wait_ready(d: &mut SecureDaemon, auth: (&str, &str)) {
    d.wait_until(Duration::from_secs(20), "/-/ready 200", |d| {
        d.req("GET", "/-/ready", Some(auth)).is_ok_and(|r| r.status == 200)
    });
}

// ------------------------------------------------------------------ tests

#[test]
fn tls_and_basic_auth_guard_every_route() {
    let _serial = serial();
    let pki = pki();
    let right = ("giamsat", "mật-khẩu-đúng");
    let yaml = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  giamsat: {}\n",
        hash(right.1)
    );
    let started = Instant::now();
    let mut d = SecureDaemon::start(&pki, &yaml, right);
    println!("HTTPS+auth /-/healthy answered after {:?}", started.elapsed());
    wait_ready(&mut d, right);

    assert_refused(&d, None, "no credentials");
    assert_refused(&d, Some(("giamsat", "mật-khẩu-sai")), "wrong password");
    assert_refused(&d, Some(("khach", right.1)), "unknown user");
    assert_served(&d, right);

    let r = d.req("GET", "/-/reload", Some(right)).expect("answer");
    assert_eq!(r.status, 405, "GET /-/reload with credentials: {r:?}");
    assert_eq!(r.header("allow"), Some("POST, PUT"));
    let r = d.req("GET", "/status", Some(right)).expect("answer");
    assert!(r.body.contains("Giám sát điểm cầu"), "status page over TLS");
    let r = d.req("GET", "/metrics", Some(right)).expect("answer");
    assert!(r.body.contains("diemcau_endpoints 6"), "metrics over TLS");

    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = Conn::open(d.port, None).and_then(|mut c| c.send("GET", "/-/healthy", Some(right), true));
    println!("plain HTTP to the TLS port: {plain:?}");
    assert!(plain.is_err(), "plain HTTP to the TLS port must fail, got {plain:?}");
    // A client that does not trust the CA fails the handshake.
    let stranger = client_config(&pki_stranger_ca());
    let untrusted = Conn::open(d.port, Some(&stranger));
    assert!(
        untrusted.is_err(),
        "a client without the test CA must fail the handshake"
    );
    // The daemon keeps serving after all of that.
    assert_eq!(d.req("GET", "/-/healthy", Some(right)).map(|r| r.status), Ok(200));
}

fn pki_stranger_ca() -> CertificateDer<'static> {
    pki().ca_der
}

#[test]
fn node_exporter_web_config_works_unchanged() {
    let _serial = serial();
    let pki = pki();
    // As written for node_exporter (htpasswd's $2y$ hash, comments, http2, headers, rate_limit).
    let yaml = format!(
        "# /etc/prometheus/web-config.yml, shared with node_exporter\n\
         tls_server_config:\n\
         \x20 # Certificate and key files for server to use to authenticate to client.\n\
         \x20 cert_file: server.crt\n\
         \x20 key_file: server.key\n\
         \x20 min_version: TLS12\n\
         \n\
         http_server_config:\n\
         \x20 http2: true\n\
         \x20 headers:\n\
         \x20   Strict-Transport-Security: max-age=31536000\n\
         \x20   X-Content-Type-Options: nosniff\n\
         \n\
         basic_auth_users:\n\
         \x20 prometheus: {}\n",
        hash("scrape-pw").replacen("$2b$", "$2y$", 1)
    );
    let auth = ("prometheus", "scrape-pw");
    let mut d = SecureDaemon::start(&pki, &yaml, auth);
    wait_ready(&mut d, auth);
    assert_served(&d, auth);
    assert_refused(&d, Some(("prometheus", "Scrape-pw")), "wrong password");
    for (method, path, _) in ROUTES {
        let r = d.req(method, path, None).expect("answer");
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}: configured headers go on 401s too"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
}

#[test]
fn reload_picks_up_a_new_password_and_keeps_the_old_config_when_invalid() {
    let _serial = serial();
    let pki = pki();
    let old = ("admin", "cũ-old-pass");
    let new = ("admin", "mới-new-pass");
    let yaml = |h: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  admin: {h}\n"
        )
    };
    let mut d = SecureDaemon::start(&pki, &yaml(&hash(old.1)), old);
    wait_ready(&mut d, old);

    std::fs::write(d.web_yml(), yaml(&hash(new.1))).expect("write");
    // Until the reload the file on disk is not in force.
    assert_eq!(d.req("GET", "/-/healthy", Some(new)).map(|r| r.status), Ok(401));
    let r = d.req("POST", "/-/reload", Some(old)).expect("answer");
    assert_eq!(r.status, 200, "reload with the old credentials: {r:?}");
    println!("reload answer: {}", r.body.trim());
    for (method, path, _) in ROUTES {
        let r = d.req(method, path, Some(old)).expect("answer");
        assert_refusal(&r, &format!("{method} {path} with the old password after the reload"));
    }
    assert_served(&d, new);

    // An invalid web config: 500, the old one (the new password) stays in force.
    std::fs::write(d.web_yml(), "basic_auth_users:\n  admin: plaintext-password\n").expect("write");
    let r = d.req("POST", "/-/reload", Some(new)).expect("answer");
    println!("invalid web config reload: {} {}", r.status, r.body.trim());
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body.contains("basic_auth_users.admin: not a bcrypt hash"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("plaintext-password"),
        "the error must not echo the secret"
    );
    assert_eq!(d.req("GET", "/-/healthy", Some(new)).map(|r| r.status), Ok(200));
    assert_eq!(d.req("GET", "/-/healthy", Some(old)).map(|r| r.status), Ok(401));
    // Still TLS (the invalid file had no tls_server_config).
    assert!(
        Conn::open(d.port, None)
            .and_then(|mut c| c.send("GET", "/-/healthy", Some(new), true))
            .is_err()
    );
    let m = d.req("GET", "/metrics", Some(new)).expect("metrics");
    assert!(
        m.body.contains("diemcau_config_last_reload_successful 0"),
        "failed reload must show in the metrics"
    );
}

#[test]
fn reload_revokes_the_old_password_on_open_connections() {
    let _serial = serial();
    let pki = pki();
    let old = ("admin", "old-pass");
    let new = ("admin", "new-pass");
    let yaml = |h: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  admin: {h}\n"
        )
    };
    let d = SecureDaemon::start(&pki, &yaml(&hash(old.1)), old);
    // A scraper's kept-alive connection, authenticated with the old password.
    let mut kept = Conn::open(d.port, Some(&d.tls)).expect("connect");
    assert_eq!(
        kept.send("GET", "/-/healthy", Some(old), false).map(|r| r.status),
        Ok(200)
    );

    std::fs::write(d.web_yml(), yaml(&hash(new.1))).expect("write");
    assert_eq!(d.req("POST", "/-/reload", Some(old)).map(|r| r.status), Ok(200));
    assert_eq!(d.req("GET", "/-/healthy", Some(old)).map(|r| r.status), Ok(401));

    let on_kept = kept.send("GET", "/metrics", Some(old), false).map(|r| r.status);
    let new_on_kept = kept.send("GET", "/-/healthy", Some(new), false).map(|r| r.status);
    println!("on the connection opened before the reload: old password → {on_kept:?}, new → {new_on_kept:?}");
    // Every request is checked against the web config in force, as exporter-toolkit does: a
    // connection opened before the reload must not keep the revoked password alive.
    assert_eq!(
        on_kept,
        Ok(401),
        "the revoked password must be refused on every connection"
    );
    assert_eq!(new_on_kept, Ok(200), "the new password must work on every connection");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[test]
fn metrics_answer_under_many_clients_and_slowloris() {
    let _serial = serial();
    const ENDPOINTS: usize = 2000;
    // The suite's crowd is sized so that a busy two-core machine still serves every scrape within
    // the clients' read timeout; `scripts/bench web` runs the full 300 × 3 and reports latency.
    let clients: usize = std::env::var("WEB_LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let requests: usize = std::env::var("WEB_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    const SLOW: usize = 60;
    const SLOW_FOR: Duration = Duration::from_secs(20);
    // No client starts a request after this (bounds the test on a slow machine).
    const LOAD_LIMIT: Duration = Duration::from_secs(40);

    let mut d = Daemon::start(&fast_config("5s", 3, 2), &loopback_inventory(ENDPOINTS));
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    let port = d.port;
    let started = Instant::now();
    let (status, body) = d.get("/metrics");
    let alone = started.elapsed();
    assert_eq!(status, 200);
    println!(
        "one /metrics alone: {alone:?}, {} bytes, {} lines",
        body.len(),
        body.lines().count()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();

    // The watcher: one /metrics every 500 ms on a new connection, timed.
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let tick = Instant::now();
                let r = Conn::open(port, None).and_then(|mut c| c.send("GET", "/metrics", None, true));
                let ok = r
                    .as_ref()
                    .is_ok_and(|r| r.status == 200 && r.body.contains("diemcau_endpoints 2000"));
                samples.push((tick.duration_since(t0), tick.elapsed(), ok, r.err()));
                std::thread::sleep(Duration::from_millis(500).saturating_sub(tick.elapsed()));
            }
            samples
        })
    };

    // Slowloris: one header byte per second, reconnecting whenever the server drops them.
    let slow_dropped = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let slow_threads: Vec<_> = (0..SLOW)
        .map(|_| {
            let dropped = slow_dropped.clone();
            std::thread::spawn(move || {
                let header = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                'outer: while t0.elapsed() < SLOW_FOR {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    };
                    let opened = Instant::now();
                    s.set_nonblocking(true).expect("nonblocking");
                    for b in header.iter() {
                        if t0.elapsed() >= SLOW_FOR {
                            break 'outer;
                        }
                        // Closed by the server: a read gives 0 bytes or an error, or a write fails.
                        let mut buf = [0u8; 512];
                        let closed = match s.read(&mut buf) {
                            Ok(_) => true,
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        } || s.write_all(&[*b]).is_err();
                        if closed {
                            dropped.lock().expect("lock").push(opened.elapsed());
                            continue 'outer;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            })
        })
        .collect();

    // The crowd: `clients` threads, `requests` full scrapes each, all at once.
    std::thread::sleep(Duration::from_secs(1)); // slowloris connections in place first
    let full_len = body.len();
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let crowd: Vec<_> = (0..clients)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            std::thread::spawn(move || {
                for _ in 0..requests {
                    if t0.elapsed() > LOAD_LIMIT {
                        return;
                    }
                    match Conn::open(port, None).and_then(|mut c| c.send("GET", "/metrics", None, true)) {
                        Ok(r) if r.status == 200 && r.body.len() > full_len / 2 => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failed.lock().expect("lock").push(format!("status {}", r.status)),
                        Err(e) => failed.lock().expect("lock").push(e),
                    }
                }
            })
        })
        .collect();
    for t in crowd {
        t.join().expect("client thread");
    }
    let crowd_took = t0.elapsed();
    for t in slow_threads {
        t.join().expect("slow thread");
    }
    stop.store(true, Ordering::Relaxed);
    let samples = watcher.join().expect("watcher");

    let mut lat: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    lat.sort();
    let failures: Vec<_> = samples.iter().filter(|s| !s.2).collect();
    let dropped = slow_dropped.lock().expect("lock").clone();
    let failed = failed.lock().expect("lock").clone();
    println!(
        "crowd: {} of {} scrapes done in {crowd_took:?}, {} failed {:?}",
        done.load(Ordering::Relaxed),
        clients * requests,
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    println!(
        "slowloris: {SLOW} clients for {SLOW_FOR:?}; connections closed by the server: {}, held {:?}..{:?}",
        dropped.len(),
        dropped.iter().min(),
        dropped.iter().max()
    );
    println!(
        "watcher /metrics: {} requests, {} failed; latency min {:?} p50 {:?} p95 {:?} max {:?}",
        lat.len(),
        failures.len(),
        lat.first().copied().unwrap_or_default(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
        lat.last().copied().unwrap_or_default()
    );
    // One machine-readable line for `scripts/bench web`.
    println!(
        "RESULT web-metrics-under-load endpoints={ENDPOINTS} clients={clients} slowloris={SLOW} \
         crowd_scrapes={} crowd_s={:.1} watcher_p50_s={:.3} watcher_p95_s={:.3} watcher_max_s={:.3}",
        done.load(Ordering::Relaxed),
        crowd_took.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64(),
        percentile(&lat, 0.95).as_secs_f64(),
        lat.last().copied().unwrap_or_default().as_secs_f64()
    );
    for (at, took, ok, err) in &samples {
        println!(
            "  at {:>6.1}s took {:>7.3}s ok={ok} {}",
            at.as_secs_f64(),
            took.as_secs_f64(),
            err.as_deref().unwrap_or("")
        );
    }
    // Properties only: every scrape answered, slowloris connections closed. The latency figures
    // printed above are for `scripts/bench web`; a wall-clock bound here failed on idle 2-core
    // machines (p95 5.7–9.2 s) and says nothing about correctness.
    assert!(failures.is_empty(), "watcher requests failed: {failures:?}");
    assert!(failed.is_empty(), "crowd scrapes failed: {failed:?}");
    assert!(
        !dropped.is_empty(),
        "the header read timeout closes slowloris connections"
    );
    // Still healthy afterwards, and the crowd is gone.
    assert_eq!(d.get("/-/healthy").0, 200);
    d.stop();
}

/// The certificate a new TLS connection to `port` is served (the client trusts `configs`' CAs).
fn served_certificate(port: u16, config: &Arc<ClientConfig>) -> Result<Vec<u8>, String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    let chain = conn.peer_certificates().ok_or("no certificate")?;
    Ok(chain.first().ok_or("empty chain")?.to_vec())
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM").to_vec()
}

#[test]
fn renewed_certificate_files_are_served_without_a_reload() {
    let _serial = serial();
    let (a, b) = (pki(), pki());
    let yaml = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let no_auth = ("", "");
    let mut d = SecureDaemon::start(&a, yaml, no_auth);
    // A client that trusts both CAs, so it can tell which certificate it gets.
    let mut roots = RootCertStore::empty();
    roots.add(a.ca_der.clone()).expect("ca a");
    roots.add(b.ca_der.clone()).expect("ca b");
    let both = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let port = d.port;
    assert_eq!(served_certificate(port, &both), Ok(der_of(&a.cert_pem)));

    // A broken certificate file: the certificate in use stays, an error is logged.
    std::fs::write(d.dir.path().join("server.crt"), "not a certificate\n").expect("write");
    d.wait_until(Duration::from_secs(10), "the broken file to be noticed", |d| {
        let _ = served_certificate(port, &both);
        d.log().contains("do not load")
    });
    assert_eq!(
        served_certificate(port, &both),
        Ok(der_of(&a.cert_pem)),
        "a bad file keeps the old certificate"
    );

    // The renewal lands as cert-manager or certbot write it: new files renamed over the old.
    let dir = d.dir.path().to_owned();
    for (name, pem) in [("server.key", &b.key_pem), ("server.crt", &b.cert_pem)] {
        std::fs::write(dir.join(format!("{name}.new")), pem).expect("write");
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).expect("rename");
    }
    let started = Instant::now();
    let want = der_of(&b.cert_pem);
    d.wait_until(Duration::from_secs(10), "a new connection to get certificate B", |_| {
        served_certificate(port, &both).as_ref() == Ok(&want)
    });
    println!(
        "certificate B served {:?} after the files were replaced",
        started.elapsed()
    );
    let log = d.log();
    for line in log.lines().filter(|l| l.contains("web TLS certificate")) {
        println!("{line}");
    }
    assert!(log.contains("web TLS certificate reloaded"), "{}", tail(&log, 20));
    assert!(!log.contains("config reloaded"), "no config reload took place");
    // The daemon serves on with B (a client that trusts only B's CA gets through).
    d.tls = client_config(&b.ca_der);
    assert_eq!(d.req("GET", "/-/healthy", None).map(|r| r.status), Ok(200));
}
