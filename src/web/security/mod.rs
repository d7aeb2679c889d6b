//! TLS and HTTP Basic authentication from a Prometheus exporter-toolkit web configuration file
//! (`--web.config.file`), so that the file written for node_exporter or blackbox_exporter works
//! here unchanged.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: diemcau.crt          # relative paths start at this file's directory
//!   key_file: diemcau.key
//!   min_version: TLS12              # TLS12 (default) or TLS13
//!   # client_auth_type: RequireAndVerifyClientCert
//!   # client_ca_file: scrapers-ca.crt
//!   # client_allowed_sans: [prometheus.example.vn]
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:                 # htpasswd -nBC 10 "" | tr -d ':\n'
//!   prometheus: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG
//! ```
//!
//! Differences from the toolkit, all on the safe side: rustls speaks TLS 1.2 and 1.3 only, with
//! AEAD suites only; `RequestClientCert` and `RequireAnyClientCert` (client certificates that
//! nobody verifies) are refused; passwords longer than 72 bytes are refused instead of being
//! cut to 72 bytes by bcrypt; `rate_limit` is accepted but not applied; the file is read by
//! [`WebSecurity::load`] (at start and on each reload), not on every request; the certificate
//! and key files are also watched for renewals (`cert_watch`).

mod backoff;
mod basic_auth;
mod cert_watch;
mod client_cert;
mod file;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::Semaphore;

pub use basic_auth::{Access, MAX_WAITING_CHECKS, decode_basic};
use file::{DurationValue, parse_yaml, validate_headers, validate_users};
use tls::build_tls;

/// The realm sent with 401 answers.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"diemcau\"";

/// bcrypt only reads the first 72 bytes of a password; longer ones are refused.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// A web configuration file that cannot be used. The message names the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {}: cannot read it: {source}; check the path given to --web.config.file", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("web config {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("web config {}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The security in force
// ---------------------------------------------------------------------------------------------

/// TLS, Basic authentication and extra response headers, from one web configuration file.
pub struct WebSecurity {
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// (user, bcrypt hash), in file order.
    users: Vec<(String, String)>,
    /// A well-formed hash at the highest configured cost, checked for unknown users so that
    /// they take as long as known ones.
    decoy_hash: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    summary: String,
    cache_key: [u8; 32],
    cache: Mutex<HashSet<[u8; 32]>>,
    /// bcrypt runs one at a time, as in the toolkit: a flood of wrong passwords takes one core.
    bcrypt_slot: Arc<Semaphore>,
    /// Requests waiting for (or running) a bcrypt check.
    waiting_checks: std::sync::atomic::AtomicUsize,
    /// Last failure report and failures since (rate-limited log).
    failures: Mutex<(Option<std::time::Instant>, u64)>,
    /// Clients that failed too often, kept across reloads.
    backoff: Arc<backoff::LoginBackoff>,
}

impl fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurity")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl WebSecurity {
    /// No web configuration file: plain HTTP, no authentication, no extra headers.
    pub fn none() -> WebSecurity {
        WebSecurity::build(None, Vec::new(), Vec::new(), "plain HTTP, no authentication".to_owned())
    }

    /// Parses and validates the exporter-toolkit web config file: errors name the file, the key
    /// and the fix. Reads the certificate files but runs no bcrypt, so it is cheap to call on
    /// each reload.
    pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
        let text =
            crate::config::file::read_regular_text(path, crate::config::file::MAX_CONFIG_BYTES).map_err(|source| {
                WebConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
            })?;
        WebSecurity::from_text(&text, path)
    }

    /// [`WebSecurity::load`] of a text already read, as if read from `path`: errors name
    /// `path`, and certificate files are read relative to its directory.
    pub fn from_text(text: &str, path: &Path) -> Result<WebSecurity, WebConfigError> {
        let file = parse_yaml(text).map_err(|f| match f.key {
            Some(key) => WebConfigError::Invalid {
                path: path.to_owned(),
                key,
                message: f.message,
            },
            None => WebConfigError::Syntax {
                path: path.to_owned(),
                message: f.message,
            },
        })?;
        let invalid = |key: &str, message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        let dir = path.parent().unwrap_or(Path::new(""));

        let users = validate_users(file.basic_auth_users.unwrap_or_default()).map_err(|(k, m)| invalid(&k, m))?;
        let http = file.http_server_config.unwrap_or_default();
        if http.http2 == Some(true) {
            tracing::debug!("web config: http_server_config.http2 is ignored: diemcau serves HTTP/1.1");
        }
        let headers = validate_headers(http.headers.unwrap_or_default()).map_err(|(k, m)| invalid(&k, m))?;
        if let Some(rate) = &file.rate_limit {
            let off = match &rate.interval {
                None | Some(DurationValue::Nanos(0)) => true,
                Some(DurationValue::Text(t)) => !t.bytes().any(|b| (b'1'..=b'9').contains(&b)),
                Some(DurationValue::Nanos(_)) => false,
            };
            if !off {
                tracing::warn!(
                    file = %path.display(),
                    burst = rate.burst,
                    "web config: rate_limit is not applied by diemcau (its own connection cap and timeouts are)"
                );
            }
        }
        let (tls, tls_summary) = match file.tls_server_config {
            Some(t) => build_tls(t, dir).map_err(|(k, m)| invalid(&k, m))?,
            None => (None, "plain HTTP".to_owned()),
        };
        let auth_summary = match users.len() {
            0 => "no authentication".to_owned(),
            1 => "Basic authentication for 1 user".to_owned(),
            n => format!("Basic authentication for {n} users"),
        };
        Ok(WebSecurity::build(
            tls,
            users,
            headers,
            format!("{tls_summary}, {auth_summary}"),
        ))
    }

    fn build(
        tls: Option<tokio_rustls::TlsAcceptor>,
        users: Vec<(String, String)>,
        headers: Vec<(HeaderName, HeaderValue)>,
        summary: String,
    ) -> WebSecurity {
        let cost = users
            .iter()
            .filter_map(|(_, h)| h.get(4..6).and_then(|c| c.parse::<u32>().ok()))
            .max()
            .unwrap_or(10);
        if cost > 12 {
            // Each step doubles the time: cost 10 is ~55 ms here, 14 almost a second, 31 days.
            tracing::warn!(
                cost,
                "a basic_auth_users hash has a high bcrypt cost: every uncached login takes about {:.1} s; use 10–12",
                0.055 * f64::from(1u32 << (cost.min(31) - 10))
            );
        }
        WebSecurity {
            tls,
            users,
            decoy_hash: format!("$2b${cost:02}$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"),
            headers,
            summary,
            cache_key: rand::random(),
            cache: Mutex::new(HashSet::new()),
            bcrypt_slot: Arc::new(Semaphore::new(1)),
            waiting_checks: std::sync::atomic::AtomicUsize::new(0),
            failures: Mutex::new((None, 0)),
            backoff: Arc::default(),
        }
    }

    /// The TLS acceptor for new connections, or `None` for plain HTTP. Cheap to clone.
    pub fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls.clone()
    }

    /// Whether requests need Basic credentials (`basic_auth_users` is not empty).
    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }

    /// One line for logs and the reload answer, e.g. "TLS (TLS12–TLS13), Basic authentication
    /// for 2 users". Names no user.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Whether a request with this `Authorization` header may go on. Always true when no user
    /// is configured. Every user name is compared (no early exit); an unknown user costs a
    /// bcrypt check like a known one; bcrypt runs in `spawn_blocking`, one at a time; correct
    /// Extra response headers from http_server_config.headers (e.g. Strict-Transport-Security),
    /// for every answer including 401.
    pub fn response_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}
