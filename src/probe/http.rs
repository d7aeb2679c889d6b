//! HTTP(S) GET probe on hyper's low-level client: one fresh connection per request, like
//! blackbox_exporter, so that what is measured is what a new client would see (connect, TLS
//! handshake, response) and no pooled state hides a dead endpoint.
//!
//! Bounded in every direction because endpoints are untrusted devices: one timeout covers the
//! whole probe (redirects and body included); at most `max_redirects` redirects, only to the
//! same scheme, host and port; at most `body_limit` body bytes read, frame by frame, and
//! dropped as they arrive; hyper's read buffer is capped too.
//!
//! TLS (rustls, certificate expiry recorded on every handshake) is in [`super::tls`].

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::kind::{DEFAULT_TIMEOUT, Gauges, Kind, ProbeContext};
use super::outcome::{Detail, FailureReason, Outcome};
use super::params::Params;
use super::tls::{CaFile, CertSeen, tls_connector, tls_failure};

/// hyper's read buffer cap (its minimum is 8 KiB): response heads larger than this are a
/// protocol error, and body frames are never larger, whatever `body_limit` says.
const MAX_READ_BUF: usize = 64 * 1024;

/// `User-Agent` sent by every probe, so device logs show who is asking.
pub(crate) const USER_AGENT_VALUE: &str = concat!("diemcau/", env!("CARGO_PKG_VERSION"));

/// HTTP(S) GET check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub scheme_https: bool,
    /// Defaults to 80 or 443 by scheme.
    pub port: Option<u16>,
    /// Request path (origin form, e.g. `/health`); an empty path means `/`.
    pub path: String,
    /// Host header and TLS SNI; the target address when absent.
    pub host: Option<String>,
    /// Status ranges that count as success; empty means 200..=299.
    pub expected_status: Vec<RangeInclusive<u16>>,
    /// Budget for the whole probe, redirects and body included.
    pub timeout: Duration,
    /// Accept any certificate (self-signed devices); explicit per check, never global.
    pub insecure_skip_verify: bool,
    /// CAs trusted besides the bundled roots (government or carrier CAs).
    pub ca_file: Option<CaFile>,
    /// Redirects followed at most, only to the same scheme, host and port.
    pub max_redirects: u8,
    /// Body bytes read at most; the rest is never read or buffered.
    pub body_limit: usize,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            scheme_https: false,
            port: None,
            path: "/".into(),
            host: None,
            expected_status: vec![200..=299],
            timeout: DEFAULT_TIMEOUT,
            insecure_skip_verify: false,
            ca_file: None,
            max_redirects: 3,
            body_limit: 64 * 1024,
        }
    }
}

impl HttpCheck {
    /// The TCP port to connect to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(if self.scheme_https { 443 } else { 80 })
    }

    /// Whether `status` counts as success.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expected_status.is_empty() {
            return (200..=299).contains(&status);
        }
        self.expected_status.iter().any(|r| r.contains(&status))
    }
}

/// Runs one HTTP(S) check against `target`. Success means a final (non-followed) response
/// whose status is in `check.expected_status`.
pub async fn probe(target: IpAddr, check: &HttpCheck) -> Outcome {
    let start = Instant::now();
    let seen = Arc::new(CertSeen::default());
    let mut progress = Progress::default();
    let result = tokio::time::timeout(check.timeout, run(target, check, &seen, &mut progress)).await;
    let duration = start.elapsed();
    let detail = Detail {
        status: (progress.status > 0).then_some(progress.status),
        tls_cert_not_after: seen.get(),
        redirects: Some(progress.redirects),
        ..Detail::default()
    };
    match result {
        Ok(Ok(status)) if check.status_ok(status) => Outcome::ok(duration, detail),
        Ok(Ok(status)) => Outcome::fail(duration, FailureReason::BadStatus(status), detail),
        Ok(Err(reason)) => Outcome::fail(duration, reason, detail),
        Err(_) => Outcome::fail(duration, FailureReason::Timeout, detail),
    }
}

/// What the probe learned so far; kept outside the timed future so a timeout still reports it.
#[derive(Default)]
struct Progress {
    status: u16,
    redirects: u8,
}

async fn run(
    target: IpAddr,
    check: &HttpCheck,
    seen: &Arc<CertSeen>,
    progress: &mut Progress,
) -> Result<u16, FailureReason> {
    let port = check.effective_port();
    let host = check.host.clone().unwrap_or_else(|| target.to_string());
    let host_header = host_header(&host, port, check.scheme_https);
    let tls = if check.scheme_https {
        let connector = tls_connector(check.insecure_skip_verify, check.ca_file.as_ref(), seen.clone())?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| FailureReason::Tls(format!("invalid server name {host:?}: {e}")))?;
        Some((connector, name))
    } else {
        None
    };
    let mut path = if check.path.is_empty() {
        "/".to_owned()
    } else {
        check.path.clone()
    };
    loop {
        let addr = SocketAddr::new(target, port);
        let (status, location) = exchange(addr, tls.as_ref(), &host_header, &path, check.body_limit).await?;
        progress.status = status;
        if !matches!(status, 301 | 302 | 303 | 307 | 308) || progress.redirects >= check.max_redirects {
            return Ok(status);
        }
        // A redirect we do not follow (elsewhere, or unparsable) makes the 3xx final: it is
        // then judged against the expected statuses like any other response.
        let Some(next) = location
            .as_deref()
            .and_then(|l| redirect_path(l, check.scheme_https, &host, port, &path))
        else {
            return Ok(status);
        };
        progress.redirects += 1;
        path = next;
    }
}

/// The Host header: host, bracketed when an IPv6 literal, with the port when not the default.
fn host_header(host: &str, port: u16, https: bool) -> String {
    let h = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == if https { 443 } else { 80 } {
        h
    } else {
        format!("{h}:{port}")
    }
}

/// Resolves a `Location` to a request path on the same scheme, host and port, or `None` when
/// it points elsewhere (following it would probe another endpoint) or cannot be parsed.
fn redirect_path(location: &str, https: bool, host: &str, port: u16, current: &str) -> Option<String> {
    let loc = location.trim();
    let scheme = if https { "https" } else { "http" };
    let absolute;
    let loc = if let Some(rest) = loc.strip_prefix("//") {
        absolute = format!("{scheme}://{rest}");
        absolute.as_str()
    } else {
        loc
    };
    let candidate = if loc.starts_with('/') {
        loc.to_owned()
    } else if let Ok(uri) = loc.parse::<hyper::Uri>()
        && let Some(s) = uri.scheme_str()
    {
        let same_host = uri.host().is_some_and(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']'))
        });
        let uri_port = uri
            .port_u16()
            .unwrap_or(if s.eq_ignore_ascii_case("https") { 443 } else { 80 });
        if !s.eq_ignore_ascii_case(scheme) || !same_host || uri_port != port {
            return None;
        }
        uri.path_and_query().map_or("/", |p| p.as_str()).to_owned()
    } else {
        // Relative reference: resolve against the current path's directory.
        let base = current.split('?').next().unwrap_or("/");
        let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
        format!("{dir}{loc}")
    };
    // Only a valid origin-form target is acceptable (no spaces, no fragments sent).
    let candidate = candidate.split('#').next().unwrap_or("/").to_owned();
    let parsed = candidate.parse::<hyper::Uri>().ok()?;
    (parsed.scheme().is_none() && parsed.path().starts_with('/')).then_some(candidate)
}

/// One request on one new connection; returns the status and the `Location` header.
async fn exchange(
    addr: SocketAddr,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
    host_header: &str,
    path: &str,
    body_limit: usize,
) -> Result<(u16, Option<String>), FailureReason> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| FailureReason::from_io(&e))?;
    // Small request, latency matters: do not let Nagle delay it.
    let _ = tcp.set_nodelay(true);
    match tls {
        Some((connector, name)) => {
            let stream = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| tls_failure(&e))?;
            request(TokioIo::new(stream), host_header, path, body_limit).await
        }
        None => request(TokioIo::new(tcp), host_header, path, body_limit).await,
    }
}

/// Aborts the spawned connection driver when the probe ends (normally or by timeout), so a
/// slow or hostile server cannot keep a task and a socket alive after the probe.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn request<I>(
    io: I,
    host_header: &str,
    path: &str,
    body_limit: usize,
) -> Result<(u16, Option<String>), FailureReason>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_READ_BUF)
        .handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| hyper_failure(&e))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = Request::get(path)
        .header(HOST, host_header)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FailureReason::Protocol(format!("cannot build request: {e}")))?;
    let resp = sender.send_request(req).await.map_err(|e| hyper_failure(&e))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read (and drop) the body frame by frame up to the cap: the transfer time is part of
    // what a user would wait for, but a huge or endless body must not cost memory or time.
    let mut body = resp.into_body();
    let mut read = 0usize;
    while read < body_limit {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len());
                }
            }
            Some(Err(e)) => return Err(hyper_failure(&e)),
        }
    }
    Ok((status, location))
}

/// Maps a hyper error: socket errors keep their class, TLS errors stay TLS, anything else is
/// the peer not speaking HTTP properly.
fn hyper_failure(e: &hyper::Error) -> FailureReason {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return FailureReason::Tls(tls.to_string());
            }
            return FailureReason::from_io(io);
        }
        source = s.source();
    }
    FailureReason::Protocol(e.to_string())
}

impl Kind for HttpCheck {
    const NAME: &'static str = "http";

    fn from_params(p: &mut Params<'_>) -> Option<Self> {
        let d = HttpCheck::default();
        let mut expected = Vec::new();
        for item in p.list("expected_status").unwrap_or_default() {
            match parse_status_range(&item) {
                Some(range) => expected.push(range),
                None => p.problem(
                    "expected_status",
                    format!("{item:?} is not a status or range"),
                    "write e.g. [200, \"300-399\"]",
                ),
            }
        }
        Some(HttpCheck {
            scheme_https: p.choice("scheme", &["http", "https"], "a scheme") == Some(1),
            port: p.port(),
            path: p.string("path").unwrap_or(d.path),
            host: p.string("host"),
            expected_status: if expected.is_empty() {
                d.expected_status
            } else {
                expected
            },
            timeout: p.duration("timeout", DEFAULT_TIMEOUT),
            insecure_skip_verify: p.bool("insecure_skip_verify").unwrap_or(false),
            ca_file: CaFile::from_params(p),
            max_redirects: p.number("max_redirects", 0..=10).map_or(d.max_redirects, |n| n as u8),
            body_limit: p
                .number("body_limit", 0..=16 << 20)
                .map_or(d.body_limit, |n| n as usize),
        })
    }

    async fn attempt(&self, target: IpAddr, _ctx: &ProbeContext) -> Outcome {
        probe(target, self).await
    }

    fn set_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    fn blackbox_metrics(&self, detail: &Detail, out: &mut Gauges<'_>) {
        let status = detail.status.unwrap_or(0);
        out.gauge(
            "probe_http_status_code",
            "Response HTTP status code.",
            f64::from(status),
        );
        let redirects = detail.redirects.unwrap_or(0);
        out.gauge("probe_http_redirects", "The number of redirects.", f64::from(redirects));
        if let Some(t) = detail.tls_cert_not_after {
            out.gauge(
                "probe_ssl_earliest_cert_expiry",
                "Returns last SSL chain expiry in unixtime.",
                crate::domain::unix_seconds(t),
            );
        }
    }
}

/// `200` or `200-299`, within 100..=599.
fn parse_status_range(s: &str) -> Option<RangeInclusive<u16>> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    ((100..=599).contains(&a) && a <= b && b <= 599).then_some(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_same_origin() {
        let r = |l: &str| redirect_path(l, false, "10.0.0.1", 8080, "/a/b?x=1");
        assert_eq!(r("/ok").as_deref(), Some("/ok"));
        assert_eq!(r("c").as_deref(), Some("/a/c"));
        assert_eq!(r("http://10.0.0.1:8080/z?q").as_deref(), Some("/z?q"));
        assert_eq!(r("//10.0.0.1:8080/z").as_deref(), Some("/z"));
        assert_eq!(r("/x#frag").as_deref(), Some("/x"));
        assert_eq!(r("http://10.0.0.2:8080/z"), None);
        assert_eq!(r("http://10.0.0.1/z"), None);
        assert_eq!(r("https://10.0.0.1:8080/z"), None);
        assert_eq!(r("/bad path"), None);
        assert_eq!(
            redirect_path("http://[::1]:80/v6", false, "::1", 80, "/").as_deref(),
            Some("/v6")
        );
    }

    #[test]
    fn host_header_brackets_ipv6_and_adds_odd_ports() {
        assert_eq!(host_header("::1", 80, false), "[::1]");
        assert_eq!(host_header("a.vn", 8443, true), "a.vn:8443");
        assert_eq!(host_header("a.vn", 443, true), "a.vn");
    }
}
