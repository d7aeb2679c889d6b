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
//! [`WebSecurity::load`] (at start and on each reload), not on every request.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{CipherSuite, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;
use tokio::sync::Semaphore;

/// The realm sent with 401 answers.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"diemcau\"";

/// bcrypt only reads the first 72 bytes of a password; longer ones are refused.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Successful (user, password) pairs remembered; the set is emptied when full.
const CACHE_CAPACITY: usize = 1024;

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
// The file, as written
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
}

impl fmt::Debug for TlsFile {
    // `key` may hold a private key inline: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFile")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("key", &self.key.as_ref().map(|_| "<secret>"))
            .field("client_auth_type", &self.client_auth_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<DurationValue>,
    burst: Option<i64>,
}

/// A Go duration: "30s", "1m", or nanoseconds as a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Nanos(i64),
    Text(String),
}

/// Cipher suite names the toolkit accepts (Go's `tls.CipherSuites()`), with the rustls suite
/// where rustls implements it.
const GO_CIPHER_SUITES: &[(&str, Option<CipherSuite>)] = &[
    ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", None),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        Some(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    // TLS 1.3 suites: accepted by Go, and like Go not configurable (all three stay on).
    ("TLS_AES_128_GCM_SHA256", None),
    ("TLS_AES_256_GCM_SHA384", None),
    ("TLS_CHACHA20_POLY1305_SHA256", None),
];

const HEADER_RULES: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

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
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = parse_yaml(&text).map_err(|f| match f.key {
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
        WebSecurity {
            tls,
            users,
            decoy_hash: format!("$2b${cost:02}$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"),
            headers,
            summary,
            cache_key: rand::random(),
            cache: Mutex::new(HashSet::new()),
            bcrypt_slot: Arc::new(Semaphore::new(1)),
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
    /// pairs are remembered (as a keyed SHA-256, in memory) so the next request is fast.
    pub async fn authorize(&self, authorization: Option<&HeaderValue>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(|v| decode_basic(v.as_bytes())) else {
            return false;
        };
        if password.len() > MAX_PASSWORD_BYTES {
            tracing::debug!("Basic credentials refused: password longer than 72 bytes");
            return false;
        }
        let mut found: Option<&str> = None;
        for (name, hash) in &self.users {
            let same = ct_eq(name.as_bytes(), &user);
            if same && found.is_none() {
                found = Some(hash);
            }
        }
        let key = self.pair_key(&user, &password);
        if found.is_some() && self.cache.lock().is_ok_and(|c| c.contains(&key)) {
            return true;
        }
        let hash = found.unwrap_or(&self.decoy_hash).to_owned();
        let Ok(permit) = self.bcrypt_slot.clone().acquire_owned().await else {
            return false;
        };
        let verified = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(&password, &hash).unwrap_or(false);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        if verified && found.is_some() {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(key);
            }
            true
        } else {
            false
        }
    }

    /// Extra response headers from http_server_config.headers (e.g. Strict-Transport-Security),
    /// for every answer including 401.
    pub fn response_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// SHA-256(per-process random key ‖ len(user) ‖ user ‖ password).
    fn pair_key(&self, user: &[u8], password: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let rustls::SupportedCipherSuite::Tls13(suite) = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        else {
            return out; // never: the constant is a TLS 1.3 suite; an all-zero key never matches
        };
        let mut ctx = suite.common.hash_provider.start();
        ctx.update(&self.cache_key);
        ctx.update(&(user.len() as u64).to_le_bytes());
        ctx.update(user);
        ctx.update(password);
        let digest = ctx.finish();
        let bytes = digest.as_ref();
        if bytes.len() == 32 {
            out.copy_from_slice(bytes);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// The file's sections and their keys, for unknown-key messages.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "tls_server_config",
            "http_server_config",
            "rate_limit",
            "basic_auth_users",
        ],
    ),
    (
        "tls_server_config",
        &[
            "cert",
            "key",
            "client_ca",
            "cert_file",
            "key_file",
            "client_auth_type",
            "client_ca_file",
            "client_allowed_sans",
            "min_version",
            "max_version",
            "cipher_suites",
            "curve_preferences",
            "prefer_server_cipher_suites",
        ],
    ),
    ("http_server_config", &["http2", "headers"]),
    ("rate_limit", &["interval", "burst"]),
];

/// A file that is not valid YAML for this schema: the offending key when serde names one.
struct ParseFailure {
    key: Option<String>,
    message: String,
}

fn parse_yaml(text: &str) -> Result<FileConfig, ParseFailure> {
    let mut options = serde_saphyr::Options::default();
    // The snippet would echo file lines (maybe an inline private key) into logs.
    options.with_snippet = false;
    match serde_saphyr::from_str_with_options::<Option<FileConfig>>(text, options) {
        Ok(c) => Ok(c.unwrap_or_default()),
        Err(e) => {
            let message = e.to_string();
            Err(explain_unknown_key(&message).unwrap_or_else(|| ParseFailure {
                key: None,
                message: match message.strip_prefix("duplicate mapping key: ") {
                    Some(rest) => {
                        let (key, place) = rest.split_once(", set DuplicateKeyPolicy").unwrap_or((rest, ""));
                        let place = place.find(" at line ").map(|i| &place[i + 1..]).unwrap_or("");
                        format!("duplicate key `{key}` {place}; keep only one")
                    }
                    None => format!("{message}; fix the YAML there (exporter-toolkit web configuration format)"),
                },
            }))
        }
    }
}

/// Turns serde's "unknown field `x`, expected one of … at line L, column C" into the section,
/// the key, a suggestion and the keys allowed there.
fn explain_unknown_key(message: &str) -> Option<ParseFailure> {
    const MARK: &str = "unknown field `";
    let rest = &message[message.find(MARK)? + MARK.len()..];
    let unknown = &rest[..rest.find('`')?];
    let expected = &rest[rest.find("expected")?..];
    let (expected, location) = match expected.find(" at line ") {
        Some(at) => (&expected[..at], Some(expected[at + 4..].trim())),
        None => (expected, None),
    };
    let (section, keys) = SECTIONS.iter().rev().find(|(_, keys)| {
        expected
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| keys.first() == Some(&w))
    })?;
    let hint = keys
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map_or("remove it or".to_owned(), |(_, k)| {
            format!("did you mean `{k}`? Otherwise")
        });
    let place = location.map(|l| format!(" ({l})")).unwrap_or_default();
    let key = if section.is_empty() {
        unknown.to_owned()
    } else {
        format!("{section}.{unknown}")
    };
    let where_ = if section.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {section}")
    };
    Some(ParseFailure {
        key: Some(key),
        message: format!(
            "unknown key{place}; {hint} use one of the exporter-toolkit keys allowed {where_}: {}",
            keys.join(", ")
        ),
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn validate_users(users: BTreeMap<String, String>) -> Result<Vec<(String, String)>, (String, String)> {
    let mut out = Vec::with_capacity(users.len());
    for (user, hash) in users {
        let key = format!("basic_auth_users.{user}");
        if user.is_empty() {
            return Err((
                "basic_auth_users".into(),
                "a user name is empty; give every user a name".into(),
            ));
        }
        if user.contains(':') {
            return Err((
                key,
                "a user name cannot contain ':' (HTTP Basic splits there); rename the user".into(),
            ));
        }
        check_bcrypt_hash(&hash).map_err(|m| {
            (
                key,
                format!("{m}; put a bcrypt hash there, e.g. the output of htpasswd -nBC 10 \"\" | tr -d ':\\n'"),
            )
        })?;
        out.push((user, hash));
    }
    Ok(out)
}

/// `$2a$`/`$2b$`/`$2y$`, a two-digit cost 4–31, 22 salt and 31 hash characters. Describes the
/// problem without repeating the hash.
fn check_bcrypt_hash(hash: &str) -> Result<(), String> {
    let b = hash.as_bytes();
    if !(b.len() == 60 && b[0] == b'$' && b[3] == b'$' && b[6] == b'$') {
        return Err(format!(
            "not a bcrypt hash (expected 60 characters like $2y$10$…, found {} characters)",
            hash.chars().count()
        ));
    }
    if !matches!(&hash[1..3], "2a" | "2b" | "2y") {
        return Err("unsupported bcrypt version (expected $2a$, $2b$ or $2y$)".into());
    }
    match hash[4..6].parse::<u32>() {
        Ok(c) if (4..=31).contains(&c) => {}
        _ => return Err("bcrypt cost must be two digits between 04 and 31".into()),
    }
    if !hash[7..]
        .bytes()
        .all(|c| c == b'.' || c == b'/' || c.is_ascii_alphanumeric())
    {
        return Err("the salt and hash part holds characters outside bcrypt's alphabet".into());
    }
    if hash.parse::<bcrypt::HashParts>().is_err() {
        return Err("the salt or hash part is not valid bcrypt base64".into());
    }
    Ok(())
}

fn validate_headers(headers: BTreeMap<String, String>) -> Result<Vec<(HeaderName, HeaderValue)>, (String, String)> {
    let allowed: Vec<&str> = HEADER_RULES.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for (name, value) in headers {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, values)) = HEADER_RULES.iter().find(|(n, _)| *n == name) else {
            return Err((
                key,
                format!("this header cannot be configured; use one of {}", allowed.join(", ")),
            ));
        };
        if !values.is_empty() && !values.contains(&value.as_str()) {
            return Err((
                key,
                format!("invalid value {value:?}; use one of {}", values.join(", ")),
            ));
        }
        if value.is_empty() {
            continue; // "unset if blank"
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            (
                key.clone(),
                "not a valid header name; use one of the listed headers".to_owned(),
            )
        })?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            (
                key,
                "the value holds characters not allowed in an HTTP header; remove them".to_owned(),
            )
        })?;
        out.push((name, value));
    }
    Ok(out)
}

type KeyError = (String, String);

fn tls_err(key: &str, message: impl Into<String>) -> KeyError {
    (format!("tls_server_config.{key}"), message.into())
}

/// A path from the file, relative to the file's directory (as in the toolkit).
fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_owned() } else { dir.join(p) }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn read_pem(dir: &Path, key: &str, file: Option<&str>, inline: Option<&str>) -> Result<Option<Vec<u8>>, KeyError> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(tls_err(
            key,
            format!("both {key}_file and {key} are set; keep only one"),
        )),
        (Some(f), None) => {
            let p = resolve(dir, f);
            std::fs::read(&p).map(Some).map_err(|e| {
                tls_err(
                    &format!("{key}_file"),
                    format!(
                        "cannot read {}: {e}; fix the path (relative paths start at the web config file's directory)",
                        p.display()
                    ),
                )
            })
        }
        (None, Some(pem)) => Ok(Some(pem.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn tls_version(key: &str, v: Option<&str>, default: u8) -> Result<u8, KeyError> {
    match v {
        None | Some("") => Ok(default),
        Some("TLS10") => Ok(10),
        Some("TLS11") => Ok(11),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(tls_err(
            key,
            format!("unknown TLS version {other:?}; use TLS12 or TLS13"),
        )),
    }
}

fn build_tls(t: TlsFile, dir: &Path) -> Result<(Option<tokio_rustls::TlsAcceptor>, String), KeyError> {
    let enabled = [
        &t.cert_file,
        &t.cert,
        &t.key_file,
        &t.key,
        &t.client_ca_file,
        &t.client_ca,
        &t.client_auth_type,
    ]
    .iter()
    .any(|s| non_empty(s).is_some());
    if !enabled {
        tracing::warn!("web config: tls_server_config names no certificate: serving plain HTTP, as exporters do");
        return Ok((None, "plain HTTP".to_owned()));
    }
    let cert_pem = read_pem(dir, "cert", non_empty(&t.cert_file), non_empty(&t.cert))?
        .ok_or_else(|| tls_err("cert_file", "missing; set cert_file (or cert, inline PEM)"))?;
    let key_pem = read_pem(dir, "key", non_empty(&t.key_file), non_empty(&t.key))?
        .ok_or_else(|| tls_err("key_file", "missing; set key_file (or key, inline PEM)"))?;
    let ca_pem = read_pem(dir, "client_ca", non_empty(&t.client_ca_file), non_empty(&t.client_ca))?;

    // Name the key the PEM came from: the file or the inline value.
    let cert_key = if non_empty(&t.cert_file).is_some() {
        "cert_file"
    } else {
        "cert"
    };
    let key_key = if non_empty(&t.key_file).is_some() {
        "key_file"
    } else {
        "key"
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            tls_err(
                cert_key,
                format!("not a PEM certificate chain ({e}); give the server certificate in PEM"),
            )
        })?;
    if certs.is_empty() {
        return Err(tls_err(
            cert_key,
            "holds no CERTIFICATE block; give the server certificate in PEM",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_err(
            key_key,
            format!("no usable private key ({e}); give a PEM PKCS#8, RSA or EC private key"),
        )
    })?;

    // Versions.
    let min = tls_version("min_version", t.min_version.as_deref(), 12)?;
    let max = tls_version("max_version", t.max_version.as_deref(), 13)?;
    if max < 12 {
        return Err(tls_err(
            "max_version",
            "rustls speaks TLS 1.2 and 1.3 only; set max_version: TLS13 or remove it",
        ));
    }
    if min < 12 {
        tracing::warn!("web config: tls_server_config.min_version below TLS12 is raised to TLS12 (rustls)");
    }
    let min = min.max(12);
    if min > max {
        return Err(tls_err(
            "min_version",
            "is above max_version; lower min_version or raise max_version",
        ));
    }

    // Cipher suites (TLS 1.2 only, as in Go) and curves.
    let mut provider: CryptoProvider = rustls::crypto::ring::default_provider();
    let mut tls12 = min <= 12;
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let mut wanted = Vec::new();
        for name in names {
            let Some((_, suite)) = GO_CIPHER_SUITES.iter().find(|(n, _)| n == name) else {
                return Err(tls_err(
                    "cipher_suites",
                    format!("unknown cipher suite {name:?}; use names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
                ));
            };
            match suite {
                Some(s) => wanted.push(*s),
                None => tracing::info!(suite = %name, "web config: cipher suite not offered by rustls, skipped"),
            }
        }
        provider
            .cipher_suites
            .retain(|s| s.tls13().is_some() || wanted.contains(&s.suite()));
        if tls12 && wanted.is_empty() {
            if max < 13 {
                return Err(tls_err(
                    "cipher_suites",
                    "none of these TLS 1.2 suites is offered by rustls (it has only ECDHE with AES-GCM or \
                     ChaCha20-Poly1305); add one of those or allow max_version: TLS13",
                ));
            }
            tracing::warn!("web config: no TLS 1.2 suite of cipher_suites is offered by rustls: TLS 1.2 is off");
            tls12 = false;
        }
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut groups = Vec::new();
        for name in names {
            let group = match name.as_str() {
                "X25519" => Some(rustls::crypto::ring::kx_group::X25519),
                "CurveP256" => Some(rustls::crypto::ring::kx_group::SECP256R1),
                "CurveP384" => Some(rustls::crypto::ring::kx_group::SECP384R1),
                "CurveP521" | "X25519MLKEM768" => None,
                other => {
                    return Err(tls_err(
                        "curve_preferences",
                        format!("unknown curve {other:?}; use X25519, CurveP256, CurveP384 or CurveP521"),
                    ));
                }
            };
            match group {
                Some(g) => groups.push(g),
                None => tracing::info!(curve = %name, "web config: curve not offered by rustls (ring), skipped"),
            }
        }
        if groups.is_empty() {
            return Err(tls_err(
                "curve_preferences",
                "rustls offers none of these curves; add X25519, CurveP256 or CurveP384",
            ));
        }
        provider.kx_groups = groups;
    }
    let provider = Arc::new(provider);

    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| *v >= min && *v <= max && (*v == 13 || tls12))
            .map(|(_, p)| p)
            .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| tls_err("cipher_suites", format!("{e}; allow more suites or versions")))?;

    // Client certificates.
    let auth_type = non_empty(&t.client_auth_type).unwrap_or("NoClientCert");
    let sans: Vec<String> = t.client_allowed_sans.clone().unwrap_or_default();
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match auth_type {
        "NoClientCert" => {
            if ca_pem.is_some() {
                return Err(tls_err(
                    "client_auth_type",
                    "client_ca_file is set but client_auth_type is NoClientCert; set RequireAndVerifyClientCert",
                ));
            }
            None
        }
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let Some(ca_pem) = ca_pem else {
                return Err(tls_err(
                    "client_ca_file",
                    format!("{auth_type} needs the CA that signs client certificates; set client_ca_file"),
                ));
            };
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca_pem) {
                let c =
                    c.map_err(|e| tls_err("client_ca_file", format!("not PEM ({e}); give CA certificates in PEM")))?;
                roots.add(c).map_err(|e| {
                    tls_err(
                        "client_ca_file",
                        format!("unusable CA certificate ({e}); give CA certificates in PEM"),
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(tls_err(
                    "client_ca_file",
                    "holds no CERTIFICATE block; give CA certificates in PEM",
                ));
            }
            let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if auth_type == "VerifyClientCertIfGiven" {
                b = b.allow_unauthenticated();
            }
            let v = b
                .build()
                .map_err(|e| tls_err("client_ca_file", format!("{e}; give CA certificates in PEM")))?;
            Some(v)
        }
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            return Err(tls_err(
                "client_auth_type",
                format!(
                    "{auth_type} accepts client certificates nobody verifies and is refused; use RequireAndVerifyClientCert with client_ca_file"
                ),
            ));
        }
        other => {
            return Err(tls_err(
                "client_auth_type",
                format!(
                    "unknown value {other:?}; use NoClientCert, RequireAndVerifyClientCert or VerifyClientCertIfGiven"
                ),
            ));
        }
    };
    let verifier = match (verifier, t.client_allowed_sans.is_some()) {
        (v, false) => v,
        (Some(inner), true) if auth_type == "RequireAndVerifyClientCert" => Some(Arc::new(SanVerifier {
            inner,
            allowed: sans.clone(),
        })
            as Arc<dyn ClientCertVerifier>),
        _ => {
            return Err(tls_err(
                "client_allowed_sans",
                "needs client_auth_type: RequireAndVerifyClientCert (a client must present a certificate)",
            ));
        }
    };
    let client_summary = match (auth_type, sans.is_empty()) {
        ("NoClientCert", _) => "",
        ("VerifyClientCertIfGiven", _) => ", client certificates verified if given",
        (_, true) => ", client certificates required",
        (_, false) => ", client certificates required with an allowed SAN",
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        tls_err(
            key_key,
            format!("{e}; give the private key that belongs to the certificate in cert_file (or cert)"),
        )
    })?;
    // Toolkit default true: the server's order (rustls's own, AEAD only) wins.
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let summary = if min == max || !tls12 {
        format!("TLS (TLS{max}{client_summary})")
    } else {
        format!("TLS (TLS{min}–TLS{max}{client_summary})")
    };
    Ok((Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))), summary))
}

/// Checks, after the CA chain, that the client certificate carries one of the allowed SANs
/// (DNS, e-mail, IP or URI), as the toolkit's `client_allowed_sans`.
#[derive(Debug)]
struct SanVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for SanVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if cert_sans(end_entity).iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn cert_sans(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => Some((*s).to_owned()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv4Addr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// HTTP Basic
// ---------------------------------------------------------------------------------------------

/// `Basic <base64(user:password)>` → (user, password). The scheme is case-insensitive; the user
/// must not be empty; the password may be (and may be any bytes).
pub fn decode_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = decode_base64(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    if colon == 0 {
        return None;
    }
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// RFC 4648 base64, standard alphabet, padding required.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(input).ok()
}

/// Equality that reads every byte of both inputs.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn b64(s: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn err(text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "web.yml", text);
        match WebSecurity::load(&p) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string().replace(&p.display().to_string(), "FILE"),
        }
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64(b"Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode_base64(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode_base64(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decode_base64(b"Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode_base64(b"+/+/").as_deref(), Some(&[0xfb, 0xff, 0xbf][..]));
        for bad in [&b"Zm9"[..], b"Zg=", b"Z===", b"Zg==Zg==", b"Zm9v!A==", b"Zm-_", b"Zg=a"] {
            assert_eq!(decode_base64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        for s in [&b"a"[..], b"ab", b"abc", b"user:p\xc3\xa1ss", &[0, 255, 128, 7]] {
            assert_eq!(decode_base64(b64(s).as_bytes()).as_deref(), Some(s));
        }
    }

    #[test]
    fn basic_header_decoding() {
        let good = format!("Basic {}", b64(b"admin:s3cr:et"));
        assert_eq!(
            decode_basic(good.as_bytes()),
            Some((b"admin".to_vec(), b"s3cr:et".to_vec()))
        );
        let lower = format!("basic  {} ", b64(b"admin:"));
        assert_eq!(decode_basic(lower.as_bytes()), Some((b"admin".to_vec(), Vec::new())));
        assert_eq!(decode_basic(b"Basic not*base64"), None);
        assert_eq!(decode_basic(format!("Basic {}", b64(b"nocolon")).as_bytes()), None);
        assert_eq!(decode_basic(format!("Basic {}", b64(b":password")).as_bytes()), None);
        assert_eq!(decode_basic(format!("Bearer {}", b64(b"a:b")).as_bytes()), None);
        assert_eq!(decode_basic(b"Basic"), None);
        assert_eq!(decode_basic(b""), None);
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"\0"));
    }

    #[test]
    fn node_exporter_style_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let text = format!(
            "# node_exporter web-config.yml\n\
             tls_server_config:\n\
             http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    \
             Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-XSS-Protection: \"\"\n\
             rate_limit:\n  interval: 0s\n  burst: 10\n\
             basic_auth_users:\n  prometheus: {hash}\n  alice: '{}'\n",
            hash.replacen("$2b$", "$2y$", 1)
        );
        let p = write(dir.path(), "web-config.yml", &text);
        let sec = WebSecurity::load(&p).expect("loads");
        assert!(sec.tls_acceptor().is_none());
        assert!(sec.auth_required());
        assert_eq!(sec.summary(), "plain HTTP, Basic authentication for 2 users");
        let headers: Vec<(String, String)> = sec
            .response_headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                (
                    "strict-transport-security".to_owned(),
                    "max-age=31536000; includeSubDomains".to_owned()
                ),
                ("x-frame-options".to_owned(), "deny".to_owned())
            ]
        );
    }

    #[test]
    fn empty_file_means_no_security() {
        let dir = tempfile::tempdir().expect("tempdir");
        for text in ["", "# nothing yet\n", "{}\n"] {
            let sec = WebSecurity::load(&write(dir.path(), "w.yml", text)).expect("loads");
            assert!(!sec.auth_required() && sec.tls_acceptor().is_none());
        }
        assert!(!WebSecurity::none().auth_required());
    }

    #[tokio::test]
    async fn authorize_checks_hash_and_caches() {
        let dir = tempfile::tempdir().expect("tempdir");
        // $2y$ as htpasswd writes it: the same algorithm as $2b$.
        let hash = bcrypt::hash("right", 4).expect("hash").replacen("$2b$", "$2y$", 1);
        let p = write(dir.path(), "w.yml", &format!("basic_auth_users:\n  scraper: {hash}\n"));
        let sec = WebSecurity::load(&p).expect("loads");
        let header =
            |u: &str, pw: &str| HeaderValue::from_str(&format!("Basic {}", b64(format!("{u}:{pw}").as_bytes())));
        let ok = header("scraper", "right").expect("value");
        assert!(!sec.authorize(None).await);
        assert!(!sec.authorize(Some(&header("scraper", "wrong").expect("v"))).await);
        assert!(!sec.authorize(Some(&header("other", "right").expect("v"))).await);
        assert!(!sec.authorize(Some(&HeaderValue::from_static("Basic !!!!"))).await);
        assert!(sec.authorize(Some(&ok)).await);
        assert_eq!(sec.cache.lock().map(|c| c.len()).unwrap_or(0), 1);
        assert!(sec.authorize(Some(&ok)).await);
        let long = "x".repeat(73);
        assert!(!sec.authorize(Some(&header("scraper", &long).expect("v"))).await);
        assert!(WebSecurity::none().authorize(None).await);
    }

    #[test]
    fn decoy_hash_is_well_formed() {
        let sec = WebSecurity::build(
            None,
            vec![("u".into(), bcrypt::hash("p", 5).expect("hash"))],
            vec![],
            String::new(),
        );
        assert!(sec.decoy_hash.starts_with("$2b$05$"));
        assert_eq!(bcrypt::verify("fakepassword", &sec.decoy_hash).ok(), Some(false));
    }

    #[test]
    fn misspelt_key_is_rejected_with_a_hint() {
        assert_eq!(
            err("tls_server_config:\n  cert_fle: server.crt\n  key_file: server.key\n"),
            "web config FILE: tls_server_config.cert_fle: unknown key (line 2, column 3); did you mean `cert_file`? \
             Otherwise use one of the exporter-toolkit keys allowed in tls_server_config: cert, key, client_ca, \
             cert_file, key_file, client_auth_type, client_ca_file, client_allowed_sans, min_version, max_version, \
             cipher_suites, curve_preferences, prefer_server_cipher_suites"
        );
        assert_eq!(
            err("basic_auth_user:\n  a: b\n"),
            "web config FILE: basic_auth_user: unknown key (line 1, column 1); did you mean `basic_auth_users`? \
             Otherwise use one of the exporter-toolkit keys allowed at the top level: tls_server_config, \
             http_server_config, rate_limit, basic_auth_users"
        );
        assert!(err("http_server_config:\n  http3: true\n").contains("http_server_config.http3: unknown key (line 2"));
        assert!(err("rate_limit:\n  bursts: 3\n").contains("rate_limit.bursts: unknown key"));
        assert!(err("tls_server_config:\n  zzz: 1\n").contains("remove it or use one of"));
        assert_eq!(
            err("basic_auth_users:\n  a: x\n  a: y\n"),
            "web config FILE: duplicate key `a` at line 3, column 3; keep only one"
        );
        let syntax = err("tls_server_config: [\n");
        assert!(syntax.starts_with("web config FILE: "), "{syntax}");
    }

    #[test]
    fn bad_hashes_are_rejected() {
        assert_eq!(
            err("basic_auth_users:\n  alice: secret\n"),
            "web config FILE: basic_auth_users.alice: not a bcrypt hash (expected 60 characters like $2y$10$…, \
             found 6 characters); put a bcrypt hash there, e.g. the output of htpasswd -nBC 10 \"\" | tr -d ':\\n'"
        );
        let good = bcrypt::hash("pw", 4).expect("hash");
        let e = err(&format!(
            "basic_auth_users:\n  bob: '{}'\n",
            good.replacen("$2b$", "$2c$", 1)
        ));
        assert!(e.contains("basic_auth_users.bob: unsupported bcrypt version"), "{e}");
        let e = err(&format!(
            "basic_auth_users:\n  bob: '{}'\n",
            good.replacen("$04$", "$99$", 1)
        ));
        assert!(e.contains("cost must be two digits between 04 and 31"), "{e}");
        let e = err(&format!("basic_auth_users:\n  bob: '{}!'\n", &good[..59]));
        assert!(e.contains("outside bcrypt's alphabet"), "{e}");
        assert!(!e.contains(&good[7..59]), "the hash is not repeated: {e}");
        assert!(err("basic_auth_users:\n  'a:b': x\n").contains("cannot contain ':'"));
    }

    #[test]
    fn bad_headers_and_values_are_rejected() {
        assert!(
            err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").contains(
                "http_server_config.headers.X-Frame-Options: invalid value \"allow\"; use one of deny, sameorigin"
            )
        );
        assert!(
            err("http_server_config:\n  headers:\n    Server: diemcau\n")
                .contains("http_server_config.headers.Server: this header cannot be configured")
        );
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n").contains("cannot read")
        );
        assert!(err("tls_server_config:\n  cert_file: a\n").contains("tls_server_config.cert_file: cannot read"));
    }

    #[test]
    fn relative_paths_start_at_the_file_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("conf");
        std::fs::create_dir(&sub).expect("mkdir");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        write(&sub, "server.crt", &ck.cert.pem());
        write(&sub, "server.key", &ck.signing_key.serialize_pem());
        let p = write(
            &sub,
            "web.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        );
        let sec = WebSecurity::load(&p).expect("relative paths resolve next to web.yml");
        assert!(sec.tls_acceptor().is_some());
        assert_eq!(sec.summary(), "TLS (TLS12–TLS13), no authentication");
        // The same file elsewhere no longer finds them, and says where it looked.
        let moved = write(
            dir.path(),
            "web.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        );
        let e = WebSecurity::load(&moved).expect_err("missing").to_string();
        assert!(e.contains(&dir.path().join("server.crt").display().to_string()), "{e}");
        assert!(e.contains("tls_server_config.cert_file"), "{e}");
        // Inline PEM works too.
        let inline = format!(
            "tls_server_config:\n  cert: |\n{}  key: |\n{}  min_version: TLS13\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  curve_preferences: [CurveP521, X25519]\n  prefer_server_cipher_suites: false\n",
            indent(&ck.cert.pem()),
            indent(&ck.signing_key.serialize_pem())
        );
        let sec = WebSecurity::load(&write(dir.path(), "inline.yml", &inline)).expect("inline");
        assert_eq!(sec.summary(), "TLS (TLS13), no authentication");
    }

    fn indent(s: &str) -> String {
        s.lines().map(|l| format!("    {l}\n")).collect()
    }

    #[test]
    fn tls_options_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        write(dir.path(), "s.crt", &ck.cert.pem());
        write(dir.path(), "s.key", &ck.signing_key.serialize_pem());
        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).expect("cert");
        write(dir.path(), "other.key", &other.signing_key.serialize_pem());
        let base = "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n";
        let load = |extra: &str| {
            let p = write(dir.path(), "w.yml", &format!("{base}{extra}"));
            WebSecurity::load(&p)
                .map(|s| s.summary().to_owned())
                .map_err(|e| e.to_string())
        };
        let e = |extra: &str| load(extra).expect_err("should fail");
        assert!(e("  min_version: TLS14\n").contains("tls_server_config.min_version: unknown TLS version \"TLS14\""));
        assert!(e("  max_version: TLS11\n").contains("rustls speaks TLS 1.2 and 1.3 only"));
        assert!(e("  min_version: TLS13\n  max_version: TLS12\n").contains("above max_version"));
        assert!(e("  client_auth_type: RequireAnyClientCert\n").contains("is refused; use RequireAndVerifyClientCert"));
        assert!(e("  client_auth_type: Sometimes\n").contains("unknown value \"Sometimes\""));
        assert!(e("  client_auth_type: RequireAndVerifyClientCert\n").contains("set client_ca_file"));
        assert!(e("  client_ca_file: s.crt\n").contains("NoClientCert"));
        assert!(e("  client_allowed_sans: [a]\n").contains("needs client_auth_type: RequireAndVerifyClientCert"));
        assert!(e("  cipher_suites: [TLS_FAKE]\n").contains("unknown cipher suite \"TLS_FAKE\""));
        assert!(e("  curve_preferences: [CurveP521]\n").contains("add X25519"));
        assert!(e("  curve_preferences: [P-256]\n").contains("unknown curve"));
        assert!(
            e("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n  max_version: TLS12\n").contains("offered by rustls")
        );
        assert!(e("  cert: inline\n").contains("both cert_file and cert are set"));
        let mismatch = write(
            dir.path(),
            "w.yml",
            "tls_server_config:\n  cert_file: s.crt\n  key_file: other.key\n",
        );
        let m = WebSecurity::load(&mismatch).expect_err("mismatch").to_string();
        assert!(
            m.contains("tls_server_config.key_file") && m.contains("belongs to the certificate"),
            "{m}"
        );

        assert_eq!(
            load("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n").as_deref(),
            Ok("TLS (TLS13), no authentication")
        );
        assert_eq!(
            load("  min_version: TLS10\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n").as_deref(),
            Ok("TLS (TLS12–TLS13), no authentication")
        );
        assert_eq!(
            load("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: s.crt\n").as_deref(),
            Ok("TLS (TLS12–TLS13, client certificates verified if given), no authentication")
        );
        assert_eq!(
            load("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: s.crt\n  client_allowed_sans: [a.b]\n")
                .as_deref(),
            Ok("TLS (TLS12–TLS13, client certificates required with an allowed SAN), no authentication")
        );
        // Only a version and no certificate: plain HTTP, as in the toolkit.
        let p = write(dir.path(), "w.yml", "tls_server_config:\n  min_version: TLS13\n");
        assert!(WebSecurity::load(&p).expect("loads").tls_acceptor().is_none());
    }

    #[test]
    fn unreadable_file_names_the_flag() {
        let e = WebSecurity::load(Path::new("/nonexistent/web.yml"))
            .expect_err("missing")
            .to_string();
        assert!(e.starts_with("web config /nonexistent/web.yml: cannot read it:"), "{e}");
        assert!(e.ends_with("check the path given to --web.config.file"), "{e}");
    }
}
