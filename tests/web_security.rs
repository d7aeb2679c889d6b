//! `WebSecurity` over real TLS on 127.0.0.1: a tiny hyper server that uses it the way
//! src/server.rs does (accept → optional TLS handshake → `authorize` → 401 or 200, extra headers
//! on every answer), and a rustls client (ring) that trusts a CA made here with rcgen.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use diemcau::web::security::{WWW_AUTHENTICATE, WebSecurity};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::net::{TcpListener, TcpStream};

// ------------------------------------------------------------------ the server, as server.rs

async fn serve(listener: TcpListener, security: Arc<WebSecurity>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let security = security.clone();
        // The handshake runs in the connection's own task, under a timeout, never in the loop.
        tokio::spawn(async move {
            match security.tls_acceptor() {
                Some(acceptor) => {
                    if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        serve_connection(TokioIo::new(tls), security).await;
                    }
                }
                None => serve_connection(TokioIo::new(tcp), security).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, security: Arc<WebSecurity>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let security = security.clone();
        async move { Ok::<_, Infallible>(guarded(&security, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn guarded(security: &WebSecurity, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = if security.authorize(req.headers().get(header::AUTHORIZATION)).await {
        Response::new(Full::new(Bytes::from_static(b"ok\n")))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"Unauthorized\n")));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE));
        r
    };
    for (name, value) in security.response_headers() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn start(security: WebSecurity) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, Arc::new(security)));
    addr
}

// ------------------------------------------------------------------ certificates

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: (String, String),
    /// A client certificate with SAN scraper.diemcau.test, and one with intruder.test.
    scraper: (String, String),
    intruder: (String, String),
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "diemcau test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: &[&str], usage: ExtendedKeyUsagePurpose| {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server: leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
        scraper: leaf(&["scraper.diemcau.test"], ExtendedKeyUsagePurpose::ClientAuth),
        intruder: leaf(&["intruder.test"], ExtendedKeyUsagePurpose::ClientAuth),
    }
}

/// Writes the server's files next to web.yml, which gets `yaml` (paths in it are relative).
fn web_config(dir: &Path, pki: &Pki, yaml: &str) -> PathBuf {
    std::fs::write(dir.join("server.crt"), &pki.server.0).expect("write");
    std::fs::write(dir.join("server.key"), &pki.server.1).expect("write");
    std::fs::write(dir.join("clients-ca.crt"), &pki.ca_pem).expect("write");
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).expect("write");
    path
}

// ------------------------------------------------------------------ the client

struct Client {
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

impl Client {
    fn tls(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        versions: &[&'static SupportedProtocolVersion],
        client_cert: Option<&(String, String)>,
    ) -> Client {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).expect("ca");
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let config = match client_cert {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("pem");
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
                builder.with_client_auth_cert(chain, key).expect("client cert")
            }
            None => builder.with_no_client_auth(),
        };
        Client {
            addr,
            tls: Some(Arc::new(config)),
        }
    }

    fn plain(addr: SocketAddr) -> Client {
        Client { addr, tls: None }
    }

    async fn connect(&self) -> Result<Sender, String> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| e.to_string())?;
        let (sender, conn) = match &self.tls {
            Some(config) => {
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                let (s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| e.to_string())?;
                (s, tokio::spawn(async move { c.await.map_err(|e| e.to_string()) }))
            }
            None => {
                let (s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| e.to_string())?;
                (s, tokio::spawn(async move { c.await.map_err(|e| e.to_string()) }))
            }
        };
        drop(conn);
        Ok(sender)
    }

    async fn get(sender: &mut Sender, credentials: Option<(&str, &str)>) -> Result<(StatusCode, HeaderMap), String> {
        let mut req = Request::get("/metrics").header(header::HOST, "localhost");
        if let Some((user, password)) = credentials {
            req = req.header(
                header::AUTHORIZATION,
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            );
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        Ok((resp.status(), resp.headers().clone()))
    }

    /// One request on a new connection.
    async fn once(&self, credentials: Option<(&str, &str)>) -> Result<(StatusCode, HeaderMap), String> {
        let mut sender = self.connect().await?;
        Client::get(&mut sender, credentials).await
    }
}

fn base64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn tls_and_basic_auth_with_cached_bcrypt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let hash = bcrypt::hash("đúng-mật-khẩu", 10)
        .expect("hash")
        .replacen("$2b$", "$2y$", 1);
    let path = web_config(
        dir.path(),
        &pki,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n\
             basic_auth_users:\n  prometheus: {hash}\n"
        ),
    );
    let security = WebSecurity::load(&path).expect("valid web config");
    assert!(security.auth_required());
    let addr = start(security).await;

    // Both versions shake hands by default.
    let tls12 = Client::tls(addr, &pki.ca_der, TLS12, None);
    assert!(tls12.connect().await.is_ok(), "TLS 1.2 handshake");
    let client = Client::tls(addr, &pki.ca_der, TLS13, None);

    let (status, headers) = client.once(None).await.expect("answer");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
        Some(&b"Basic realm=\"diemcau\""[..])
    );
    assert_eq!(
        headers.get("strict-transport-security").map(|v| v.as_bytes()),
        Some(&b"max-age=31536000"[..]),
        "extra headers go on 401 answers too"
    );
    let wrong = client.once(Some(("prometheus", "sai-mật-khẩu"))).await.expect("answer");
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    let unknown = client.once(Some(("intruder", "đúng-mật-khẩu"))).await.expect("answer");
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);

    let mut sender = client.connect().await.expect("connect");
    let started = Instant::now();
    let (status, headers) = Client::get(&mut sender, Some(("prometheus", "đúng-mật-khẩu")))
        .await
        .expect("answer");
    let first = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("strict-transport-security").is_some());
    let started = Instant::now();
    let (status, _) = Client::get(&mut sender, Some(("prometheus", "đúng-mật-khẩu")))
        .await
        .expect("answer");
    let second = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    println!("first right request (bcrypt cost 10): {first:?}; second (cached): {second:?}");
    assert!(
        first > second,
        "first {first:?} should pay for bcrypt, second {second:?} not"
    );

    // The cache holds the exact pair: a wrong password still fails after a success.
    let wrong = Client::get(&mut sender, Some(("prometheus", "đúng-mật-khẩu!")))
        .await
        .expect("answer");
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn min_version_tls13_refuses_tls12() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let path = web_config(
        dir.path(),
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let addr = start(WebSecurity::load(&path).expect("valid")).await;
    let refused = Client::tls(addr, &pki.ca_der, TLS12, None).connect().await;
    assert!(refused.is_err(), "TLS 1.2 must be refused");
    println!("TLS 1.2 client: {}", refused.err().unwrap_or_default());
    let (status, _) = Client::tls(addr, &pki.ca_der, TLS13, None)
        .once(None)
        .await
        .expect("TLS 1.3 works");
    assert_eq!(status, StatusCode::OK, "no basic_auth_users: no authentication");
}

#[tokio::test]
async fn client_certificates_are_verified_with_allowed_sans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let path = web_config(
        dir.path(),
        &pki,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         \x20 client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients-ca.crt\n\
         \x20 client_allowed_sans: [scraper.diemcau.test]\n",
    );
    let addr = start(WebSecurity::load(&path).expect("valid")).await;
    let stranger = rcgen::generate_simple_self_signed(vec!["scraper.diemcau.test".to_owned()]).expect("cert");
    let stranger = (stranger.cert.pem(), stranger.signing_key.serialize_pem());
    for versions in [TLS12, TLS13] {
        let ok = Client::tls(addr, &pki.ca_der, versions, Some(&pki.scraper))
            .once(None)
            .await;
        assert_eq!(ok.map(|r| r.0), Ok(StatusCode::OK));
        for (what, cert) in [
            ("no", None),
            ("wrong-SAN", Some(&pki.intruder)),
            ("unknown-CA", Some(&stranger)),
        ] {
            let refused = Client::tls(addr, &pki.ca_der, versions, cert).once(None).await;
            assert!(
                refused.is_err(),
                "{what} client certificate must be refused, got {refused:?}"
            );
        }
    }
}

#[tokio::test]
async fn plain_http_with_and_without_auth() {
    let addr = start(WebSecurity::none()).await;
    assert_eq!(Client::plain(addr).once(None).await.map(|r| r.0), Ok(StatusCode::OK));

    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let path = dir.path().join("web.yml");
    std::fs::write(&path, format!("basic_auth_users:\n  scraper: {hash}\n")).expect("write");
    let security = WebSecurity::load(&path).expect("valid");
    assert!(security.tls_acceptor().is_none());
    let addr = start(security).await;
    let client = Client::plain(addr);
    assert_eq!(client.once(None).await.map(|r| r.0), Ok(StatusCode::UNAUTHORIZED));
    assert_eq!(
        client.once(Some(("scraper", "pw"))).await.map(|r| r.0),
        Ok(StatusCode::OK)
    );
    assert_eq!(
        client.once(Some(("scraper", "PW"))).await.map(|r| r.0),
        Ok(StatusCode::UNAUTHORIZED)
    );
}
