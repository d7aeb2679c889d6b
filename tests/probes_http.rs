//! HTTP(S) probe against a local hyper server (plain and TLS with rcgen certificates made
//! here): expected statuses, Host header, timeout, redirects (followed, looped, off-host),
//! a huge body that must not be read whole, certificate expiry, and TLS verification.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use diemcau::probe::http;
use diemcau::probe::http::HttpCheck;
use diemcau::probe::outcome::{Detail, FailureReason, Outcome};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const HUGE: u64 = 1 << 30;

/// An endless-looking body that counts what the server managed to hand to the socket.
struct HugeBody {
    left: u64,
    sent: Arc<AtomicU64>,
}

static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

impl Body for HugeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = (CHUNK.len() as u64).min(self.left);
        self.left -= n;
        self.sent.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n as usize])))))
    }
}

type Resp = Response<BoxBody<Bytes, Infallible>>;

fn reply(status: u16, location: Option<&str>) -> Resp {
    let mut b = Response::builder().status(status);
    if let Some(l) = location {
        b = b.header("location", l);
    }
    b.body(Full::new(Bytes::from_static(b"hello")).boxed())
        .expect("response")
}

async fn route(req: Request<Incoming>, port: u16, sent: Arc<AtomicU64>) -> Result<Resp, Infallible> {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok(match req.uri().path() {
        "/ok" => reply(200, None),
        "/err" => reply(500, None),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            reply(200, None)
        }
        "/redir" => reply(302, Some("/ok")),
        "/redir-abs" => reply(301, Some(&format!("http://127.0.0.1:{port}/ok"))),
        "/loop" => reply(302, Some("/loop")),
        "/away" => reply(302, Some("http://192.0.2.1/ok")),
        "/host" if host == format!("probe.example:{port}") => reply(200, None),
        "/host" => reply(400, None),
        "/huge" => Response::new(HugeBody { left: HUGE, sent }.boxed()),
        _ => reply(404, None),
    })
}

/// A test server; `sent` counts body bytes of /huge handed to hyper.
struct Server {
    port: u16,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let tls = tls.clone();
            let sent = counter.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| route(req, port, sent.clone()));
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    Server { port, sent, task }
}

/// A self-signed certificate for localhost/127.0.0.1 expiring at `not_after`.
fn tls_acceptor(not_after: SystemTime) -> TlsAcceptor {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
    params.not_before = (SystemTime::now() - Duration::from_secs(86_400)).into();
    params.not_after = not_after.into();
    let cert = params.self_signed(&key).expect("self-signed");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

fn check(port: u16, path: &str) -> HttpCheck {
    HttpCheck {
        port: Some(port),
        path: path.into(),
        timeout: Duration::from_secs(3),
        ..HttpCheck::default()
    }
}

fn status_of(o: &Outcome) -> (u16, u8) {
    let Some(redirects) = o.detail.redirects else {
        panic!("not an HTTP detail: {:?}", o.detail);
    };
    (o.detail.status.unwrap_or(0), redirects)
}

#[tokio::test]
async fn statuses_are_judged_against_expected_ranges() {
    let s = serve(None).await;
    let o = http::probe(LOCALHOST, &check(s.port, "/ok")).await;
    assert!(o.success, "{o:?}");
    assert_eq!(status_of(&o), (200, 0));

    let o = http::probe(LOCALHOST, &check(s.port, "/err")).await;
    assert_eq!(o.failure, Some(FailureReason::BadStatus(500)), "{o:?}");
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("bad_status"));

    // 500 can be what an operator expects (e.g. a login page behind a broken backend).
    let c = HttpCheck {
        expected_status: vec![200..=299, 500..=500],
        ..check(s.port, "/err")
    };
    assert!(http::probe(LOCALHOST, &c).await.success);

    // Host header (and port) sent as configured.
    let c = HttpCheck {
        host: Some("probe.example".into()),
        ..check(s.port, "/host")
    };
    assert!(http::probe(LOCALHOST, &c).await.success);
}

#[tokio::test]
async fn slow_server_times_out_over_the_whole_probe() {
    let s = serve(None).await;
    let c = HttpCheck {
        timeout: Duration::from_millis(700),
        ..check(s.port, "/slow")
    };
    let t = Instant::now();
    let o = http::probe(LOCALHOST, &c).await;
    assert_eq!(o.failure, Some(FailureReason::Timeout), "{o:?}");
    assert!(t.elapsed() >= Duration::from_millis(690) && t.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn redirects_are_followed_within_limits_and_on_host_only() {
    let s = serve(None).await;
    let o = http::probe(LOCALHOST, &check(s.port, "/redir")).await;
    assert!(o.success, "{o:?}");
    assert_eq!(status_of(&o), (200, 1));

    let o = http::probe(LOCALHOST, &check(s.port, "/redir-abs")).await;
    assert!(o.success, "{o:?}");
    assert_eq!(status_of(&o), (200, 1));

    // One redirect allowed: a loop is cut after it, the unfollowed 3xx is the final answer.
    let c = HttpCheck {
        max_redirects: 1,
        ..check(s.port, "/loop")
    };
    let o = http::probe(LOCALHOST, &c).await;
    assert_eq!(o.failure, Some(FailureReason::BadStatus(302)), "{o:?}");
    assert_eq!(status_of(&o), (302, 1));
    let o = http::probe(LOCALHOST, &check(s.port, "/loop")).await;
    assert_eq!(status_of(&o), (302, 3));

    // Off-host redirects are never followed (that would probe someone else).
    let o = http::probe(LOCALHOST, &check(s.port, "/away")).await;
    assert_eq!(o.failure, Some(FailureReason::BadStatus(302)), "{o:?}");
    assert_eq!(status_of(&o), (302, 0));
    let c = HttpCheck {
        expected_status: vec![300..=399],
        ..check(s.port, "/away")
    };
    assert!(http::probe(LOCALHOST, &c).await.success);
}

#[tokio::test]
async fn huge_body_is_read_only_up_to_the_cap() {
    let s = serve(None).await;
    let c = HttpCheck {
        body_limit: 64 * 1024,
        timeout: Duration::from_secs(5),
        ..check(s.port, "/huge")
    };
    let t = Instant::now();
    let o = http::probe(LOCALHOST, &c).await;
    // Success within the 5 s timeout: the probe stopped reading at the body limit.
    assert!(o.success, "{o:?}");
    println!("64 KiB of a huge body read in {:?}", t.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server could only push what fits in the loopback socket buffers, never the GiB.
    let sent = s.sent.load(Ordering::Relaxed);
    eprintln!("server pushed {sent} of {HUGE} bytes before the probe hung up");
    assert!(sent < 48 << 20, "server pushed {sent} bytes");
}

#[tokio::test]
async fn tls_reports_certificate_expiry_and_verifies_unless_told_not_to() {
    // Whole seconds: X.509 validity has one-second resolution.
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 2 * 86_400;
    let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let s = serve(Some(tls_acceptor(not_after))).await;
    let https = |insecure: bool, host: Option<&str>| HttpCheck {
        scheme_https: true,
        insecure_skip_verify: insecure,
        host: host.map(str::to_owned),
        ..check(s.port, "/ok")
    };

    for host in [None, Some("localhost")] {
        let o = http::probe(LOCALHOST, &https(true, host)).await;
        assert!(o.success, "{o:?}");
        let Detail {
            status,
            tls_cert_not_after,
            redirects,
            ..
        } = o.detail;
        assert_eq!((status, redirects), (Some(200), Some(0)));
        assert_eq!(tls_cert_not_after, Some(not_after), "host {host:?}");
    }

    // Verified against the public roots: a self-signed certificate fails as TLS, and its
    // expiry is still reported.
    let o = http::probe(LOCALHOST, &https(false, Some("localhost"))).await;
    assert!(
        matches!(&o.failure, Some(FailureReason::Tls(m)) if m.contains("UnknownIssuer")
            || m.to_lowercase().contains("issuer")),
        "{o:?}"
    );
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("tls"));
    let Detail {
        status,
        tls_cert_not_after,
        ..
    } = o.detail;
    assert_eq!((status, tls_cert_not_after), (None, Some(not_after)));

    // Plain HTTP to a TLS port: a protocol failure, not a hang.
    let o = http::probe(LOCALHOST, &check(s.port, "/ok")).await;
    assert!(!o.success, "{o:?}");
    // TLS to a plain HTTP port: a TLS failure.
    let plain = serve(None).await;
    let c = HttpCheck {
        scheme_https: true,
        insecure_skip_verify: true,
        ..check(plain.port, "/ok")
    };
    let o = http::probe(LOCALHOST, &c).await;
    assert_eq!(o.failure.as_ref().map(|f| f.label()), Some("tls"), "{o:?}");
}

#[tokio::test]
async fn closed_port_is_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let o = http::probe(LOCALHOST, &check(port, "/")).await;
    assert_eq!(o.failure, Some(FailureReason::Refused), "{o:?}");
    let _ = SocketAddr::new(LOCALHOST, port);
}

/// A CA (standing in for a government or carrier CA) and a TLS acceptor whose certificate for
/// `dc.gov.test` it signed; returns the CA's PEM.
fn ca_signed_acceptor() -> (String, TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Cục Chứng thực số test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["dc.gov.test".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    (ca_cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

#[tokio::test]
async fn ca_file_adds_a_ca_to_the_trusted_roots_and_is_checked_at_load() {
    use diemcau::domain::diag::LoadError;
    use diemcau::probe::Check;
    use diemcau::probe::params::{Params, RawParams};

    let dir = tempfile::tempdir().expect("tempdir");
    let (ca_pem, acceptor) = ca_signed_acceptor();
    std::fs::write(dir.path().join("gov-ca.pem"), &ca_pem).expect("write");
    std::fs::write(dir.path().join("not-pem.txt"), "hello").expect("write");
    let s = serve(Some(acceptor)).await;
    let config = dir.path().join("diemcau.toml");
    // A [check.web] table as in a config file beside the CA file (relative paths start there).
    let load = |extra: &str| -> Result<HttpCheck, String> {
        let text = format!(
            "kind = \"http\"\nscheme = \"https\"\nport = {}\npath = \"/ok\"\nhost = \"dc.gov.test\"\n{extra}\n",
            s.port
        );
        let raw: RawParams = toml::from_str(&text).expect("toml");
        let mut errors = LoadError::default();
        let check = Check::from_params("http", Params::new(&raw, "check.web", &config, &text, &mut errors));
        match check {
            Ok(Some(Check::Http(c))) if errors.is_empty() => Ok(c),
            _ => Err(errors.to_string()),
        }
    };

    let o = http::probe(LOCALHOST, &load("").expect("valid")).await;
    println!("without ca_file: {:?}", o.failure);
    assert!(
        matches!(&o.failure, Some(FailureReason::Tls(m)) if m.contains("UnknownIssuer")),
        "{o:?}"
    );
    let o = http::probe(LOCALHOST, &load("ca_file = \"gov-ca.pem\"").expect("valid")).await;
    assert!(o.success, "{o:?}");
    assert_eq!(o.detail.status, Some(200));
    // An absolute path works as well.
    let abs = dir.path().join("gov-ca.pem");
    let o = http::probe(
        LOCALHOST,
        &load(&format!("ca_file = {:?}", abs.display().to_string())).expect("valid"),
    )
    .await;
    assert!(o.success, "{o:?}");

    let e = load("ca_file = \"missing.pem\"").expect_err("a missing file is a config problem");
    println!("{e}");
    assert!(e.contains("diemcau.toml:6:11: check.web.ca_file:"), "{e}");
    assert!(e.contains("missing.pem cannot be read"), "{e}");
    let e = load("ca_file = \"not-pem.txt\"").expect_err("not PEM");
    assert!(
        e.contains("check.web.ca_file") && e.contains("holds no CERTIFICATE block"),
        "{e}"
    );
}
