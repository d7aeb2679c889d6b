//! `tls_server_config`: certificates and key, TLS versions, cipher suites and curves, turned
//! into a rustls server configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::CipherSuite;
use rustls::crypto::CryptoProvider;
use rustls::server::ServerConfig;

use super::cert_watch::{ReloadingCert, Source, certified, parse, stamp};
use super::client_cert::{ClientAuth, client_auth};
use super::file::TlsFile;

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
pub(super) type KeyError = (String, String);

pub(super) fn tls_err(key: &str, message: impl Into<String>) -> KeyError {
    (format!("tls_server_config.{key}"), message.into())
}

/// A path from the file, relative to the file's directory (as in the toolkit).
fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_owned() } else { dir.join(p) }
}

pub(super) fn non_empty(s: &Option<String>) -> Option<&str> {
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
            crate::config::file::read_regular(&p, crate::config::file::MAX_PEM_BYTES)
                .map(Some)
                .map_err(|e| {
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

pub(super) fn build_tls(t: TlsFile, dir: &Path) -> Result<(Option<tokio_rustls::TlsAcceptor>, String), KeyError> {
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
    // Files are watched for renewals (cert_watch): their stamp is taken before they are read.
    let cert_path = non_empty(&t.cert_file).map(|f| resolve(dir, f));
    let key_path = non_empty(&t.key_file).map(|f| resolve(dir, f));
    let stamp = stamp(cert_path.as_deref(), key_path.as_deref());
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
    let (certs, key) = parse(&cert_pem, &key_pem, cert_key, key_key)?;

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

    let ClientAuth {
        verifier,
        summary: client_summary,
    } = client_auth(&t, ca_pem, &provider)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let loaded = certified(certs, key, &provider, key_key)?;
    let source = |path: Option<PathBuf>, pem: Vec<u8>| path.map_or(Source::Inline(pem), Source::File);
    let resolver = ReloadingCert::new(
        source(cert_path, cert_pem),
        source(key_path, key_pem),
        provider.clone(),
        loaded,
        stamp,
    );
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
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
