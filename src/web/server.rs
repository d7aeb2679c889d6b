//! The HTTP side: /metrics, /-/healthy, /-/ready, /-/reload and a landing page, on hyper.
//!
//! Guards against slow or many clients: a connection cap (excess connections wait for a free
//! slot rather than starving the ones being served), a header read timeout, and a request
//! timeout, so a scrape always gets through.

use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use askama::Template;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::monitor::Monitor;
use crate::web::exposition::{Cursor, render_chunk, render_regions};
use crate::web::security::{Access, WWW_AUTHENTICATE, WebSecurity};

pub type HttpBody = BoxBody<Bytes, Infallible>;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A request to reload the configuration, answered with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

#[derive(Clone)]
pub struct AppState {
    pub monitor: Arc<Monitor>,
    /// `[vantage] name`, shown on the status page and in `/api/v1/summary`.
    pub vantage: Arc<str>,
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Settings for /probe; swapped on reload.
    pub modules: Arc<ArcSwap<crate::web::blackbox::ProbeModules>>,
    /// TLS and basic auth (`--web.config.file`); swapped on reload.
    pub web: Arc<ArcSwap<WebSecurity>>,
    /// SLA reports from the ledger; swapped on reload.
    pub reports: Arc<ArcSwap<crate::web::reports::ReportContext>>,
    /// `[web] enable_lifecycle`: whether `/-/reload` may be used over HTTP.
    pub lifecycle: Arc<std::sync::atomic::AtomicBool>,
    /// `/api/v1/endpoints` bodies shared by concurrent readers.
    pub api_bodies: Arc<crate::web::shared_body::SharedBodies>,
    /// The live merged view across vantages, refreshed in the background.
    pub merged: Arc<ArcSwap<crate::web::merged::MergedView>>,
}

/// Serves every listener until `shutdown` resolves, then lets requests in progress finish. The
/// connection cap is shared by all listeners.
pub async fn serve(listeners: Vec<TcpListener>, app: AppState, shutdown: impl std::future::Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    // The listener polled first rotates, so a busy one cannot starve the others.
    let mut first = 0;
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        first = (first + 1) % listeners.len().max(1);
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = accept_any(&listeners, first) => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let security = app.web.load_full();
        let watcher = graceful.watcher();
        // The TLS handshake runs in the connection's own task, under a timeout.
        tokio::spawn(async move {
            match security.tls_acceptor() {
                Some(acceptor) => match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), peer.ip(), app, watcher).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
                None => serve_connection(TokioIo::new(stream), peer.ip(), app, watcher).await,
            }
            drop(permit);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => tracing::warn!("connections still open at shutdown were closed"),
    }
}

/// The next connection on any of `listeners`, polling from index `first`; never resolves when
/// there is no listener.
async fn accept_any(listeners: &[TcpListener], first: usize) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for i in 0..listeners.len() {
            if let Poll::Ready(r) = listeners[(first + i) % listeners.len()].poll_accept(cx) {
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    })
    .await
}

async fn serve_connection<I>(io: I, peer: IpAddr, app: AppState, watcher: hyper_util::server::graceful::Watcher)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        // Auth is checked against the web config in force now, not at accept time: a password
        // revoked by a reload stops working on kept-alive connections too.
        let security = app.web.load_full();
        let app = app.clone();
        async move {
            // Every route is protected when basic auth is configured, as in exporter-toolkit.
            let access = security.access(req.headers().get(header::AUTHORIZATION), peer).await;
            let mut response = match access {
                Access::Granted => match tokio::time::timeout(REQUEST_TIMEOUT, route(app, req)).await {
                    Ok(r) => r,
                    Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
                },
                Access::Denied => {
                    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE));
                    r
                }
                Access::Busy => {
                    let mut r = text(StatusCode::TOO_MANY_REQUESTS, "too many logins being checked; retry\n");
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    r
                }
                Access::Backoff(seconds) => {
                    let mut r = text(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many failed logins from this address; retry later\n",
                    );
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                    r
                }
            };
            for (name, value) in security.response_headers() {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            Ok::<_, Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn route(app: AppState, req: Request<Incoming>) -> Response<HttpBody> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET | &Method::HEAD, "/") => html(&LANDING_PAGE),
        (&Method::GET | &Method::HEAD, "/metrics") => metrics(&app, &req),
        (&Method::GET | &Method::HEAD, "/-/healthy") => text(StatusCode::OK, "Healthy\n"),
        (&Method::GET | &Method::HEAD, "/-/ready") => {
            if app.monitor.is_ready() {
                text(StatusCode::OK, "Ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not ready: first round of probes not finished\n",
                )
            }
        }
        (&Method::POST | &Method::PUT, "/-/reload") => reload(&app).await,
        (&Method::GET | &Method::HEAD, "/probe") => blackbox_probe(&app, req.uri().query().unwrap_or("")).await,
        (&Method::GET | &Method::HEAD, "/status") => {
            let filter = match crate::web::status::Filter::parse(req.uri().query().unwrap_or("")) {
                Ok(f) => f,
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
            };
            let merged = app.merged.load();
            let page = crate::web::status::page(
                &app.monitor.lock(),
                app.monitor.is_ready(),
                &filter,
                &app.vantage,
                &merged,
            );
            match page {
                Ok(body) => html_owned(body),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("rendering the status page failed: {e}\n"),
                ),
            }
        }
        (&Method::GET | &Method::HEAD, "/reports/sla") => sla_report(&app, req.uri().query().unwrap_or("")).await,
        (&Method::GET | &Method::HEAD, "/api/v1/summary") => {
            let summary = crate::web::status::summary(&app.monitor.lock(), app.monitor.is_ready(), &app.vantage);
            json(&summary)
        }
        (&Method::GET | &Method::HEAD, "/api/v1/merged") => json(&**app.merged.load()),
        (&Method::GET | &Method::HEAD, "/api/v1/incidents") => json(&crate::web::paths::incidents(&app.monitor.lock())),
        (&Method::GET | &Method::HEAD, "/api/v1/endpoints") => {
            let filter = match crate::web::status::Filter::parse(req.uri().query().unwrap_or("")) {
                Ok(f) => f,
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
            };
            endpoints_api(&app, &req, &filter).await
        }
        (
            _,
            "/" | "/metrics" | "/-/healthy" | "/-/ready" | "/-/reload" | "/probe" | "/status" | "/api/v1/summary"
            | "/api/v1/endpoints" | "/api/v1/incidents" | "/api/v1/merged" | "/reports/sla",
        ) => {
            let allow = if path == "/-/reload" { "POST, PUT" } else { "GET, HEAD" };
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn reload(app: &AppState) -> Response<HttpBody> {
    if !app.lifecycle.load(std::sync::atomic::Ordering::Relaxed) {
        return text(
            StatusCode::FORBIDDEN,
            "the lifecycle API is off: set [web] enable_lifecycle = true to reload over HTTP, or send SIGHUP\n",
        );
    }
    let (tx, rx) = oneshot::channel();
    if app.reload.send(tx).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match rx.await {
        Ok(Ok(summary)) => text(StatusCode::OK, &format!("config reloaded: {summary}\n")),
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("config not reloaded, the old one stays in force:\n{e}"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

async fn sla_report(app: &AppState, query: &str) -> Response<HttpBody> {
    let ctx = app.reports.load_full();
    let request = match crate::web::reports::ReportRequest::from_query(query, &ctx.time_zone) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
    };
    let download = request.format.is_download();
    // SQLite reads block: off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        let store = ctx.store.as_ref().ok_or("no ledger")?;
        // Commit what is queued so the report includes the last transitions.
        let _ = store.flush();
        let reader = store.reader().map_err(|e| e.to_string())?;
        crate::web::reports::render(&reader, &ctx, &request)
    })
    .await;
    match result {
        Ok(Ok(rendered)) => {
            let mut r = Response::new(Full::new(Bytes::from(rendered.body)).boxed());
            let headers = r.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.content_type));
            // The name is ASCII (`sla-2026-11-province-carrier.xlsx`), so it needs no quoting rules.
            let disposition = format!("attachment; filename=\"{}\"", rendered.file_name);
            if download && let Ok(v) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Ok(Err(e)) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

async fn blackbox_probe(app: &AppState, query: &str) -> Response<HttpBody> {
    let (target, module) = match crate::web::blackbox::parse_query(query) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
    };
    let modules = app.modules.load_full();
    match crate::web::blackbox::probe(&modules, &target, &module).await {
        Ok(body) => {
            let mut r = text(StatusCode::OK, &body);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        Err((status, e)) => text(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &format!("{e}\n"),
        ),
    }
}

pub fn text(status: StatusCode, body: &str) -> Response<HttpBody> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html_owned(body: String) -> Response<HttpBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// `/api/v1/endpoints`: one rendering (and one gzip of it) shared by every request for the same
/// query within [`crate::web::shared_body::FRESH_FOR`].
async fn endpoints_api(
    app: &AppState,
    req: &Request<Incoming>,
    filter: &crate::web::status::Filter,
) -> Response<HttpBody> {
    let gzip = accepts_gzip(req);
    let query = req.uri().query().unwrap_or("");
    let body = app
        .api_bodies
        .get(query, gzip, || {
            let state = app.monitor.lock();
            serde_json::to_vec(&crate::web::status::endpoints(&state, filter, usize::MAX))
        })
        .await;
    match body {
        Ok(body) => {
            let mut r = Response::new(Full::new(body).boxed());
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            if gzip {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response<HttpBody> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn html(body: &'static str) -> Response<HttpBody> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// `/`, `templates/landing.html`.
#[derive(Template)]
#[template(path = "landing.html")]
struct Landing;

/// The landing page has no variable part: rendered once.
static LANDING_PAGE: LazyLock<String> = LazyLock::new(|| {
    Landing.render().unwrap_or_else(|e| {
        format!(
            "landing page: {e}
"
        )
    })
});

fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn metrics(app: &AppState, req: &Request<Incoming>) -> Response<HttpBody> {
    let gzip = accepts_gzip(req);
    let body = MetricsBody {
        monitor: app.monitor.clone(),
        head: Some({
            let mut head = app.monitor.metrics.render_registry();
            let state = app.monitor.lock();
            render_regions(&state, &mut head);
            crate::web::paths::render(&state, &mut head);
            head
        }),
        cursor: Cursor::default(),
        gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
        finished: false,
    };
    let mut r = Response::new(body.boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    if gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Bytes of per-endpoint series rendered per chunk (and per hold of the monitor lock).
const CHUNK: usize = 64 * 1024;

/// Streams /metrics: the registry's families first, then the per-endpoint families chunk by
/// chunk, optionally through one gzip stream.
struct MetricsBody {
    monitor: Arc<Monitor>,
    head: Option<Vec<u8>>,
    cursor: Cursor,
    gzip: Option<GzEncoder<Vec<u8>>>,
    finished: bool,
}

impl MetricsBody {
    fn next_plain(&mut self) -> Option<Vec<u8>> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.cursor.done() {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + 512);
        render_chunk(&self.monitor.lock(), &mut self.cursor, &mut out, CHUNK);
        Some(out)
    }
}

impl Body for MetricsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            let plain = this.next_plain();
            let Some(encoder) = this.gzip.as_mut() else {
                this.finished = plain.is_none();
                return Poll::Ready(plain.map(|p| Ok(Frame::data(Bytes::from(p)))));
            };
            match plain {
                Some(p) => {
                    // Writing into a Vec cannot fail.
                    let _ = encoder.write_all(&p);
                    let produced = std::mem::take(encoder.get_mut());
                    if !produced.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(produced)))));
                    }
                }
                None => {
                    this.finished = true;
                    let tail = this.gzip.take().and_then(|e| e.finish().ok()).unwrap_or_default();
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(tail)))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_page_renders_on_the_shared_skeleton() {
        let page: &str = &LANDING_PAGE;
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"vi\">"), "{page:.200}");
        assert!(page.contains("<meta charset=\"utf-8\">") && page.contains("<title>diemcau</title>"));
        assert!(page.contains("<li><a href=\"status\">/status</a> — tình trạng điểm cầu"));
        assert!(page.contains("?period=YYYY-MM&amp;by=province,carrier&amp;format=html|csv|json"));
    }
}
