//! The TLS client side of the HTTPS and SIP-over-TLS probes: rustls with the ring provider,
//! and a verifier ([`RecordingVerifier`]) that notes the leaf certificate's not-after before
//! verifying, so certificate expiry is reported even for self-signed devices
//! (`insecure_skip_verify`) and for failed verifications. Certificates are verified against
//! the bundled Mozilla roots (webpki-roots), plus a check's own `ca_file` ([`CaFile`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::outcome::FailureReason;
use super::params::Params;

/// Any failure during the TLS handshake is a TLS failure (the TCP connection was up).
pub(crate) fn tls_failure(e: &std::io::Error) -> FailureReason {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => FailureReason::Tls(tls.to_string()),
        None => FailureReason::Tls(format!("handshake: {e}")),
    }
}

/// The leaf certificate's not-after, written by the verifier during the handshake.
#[derive(Debug, Default)]
pub(crate) struct CertSeen(Mutex<Option<SystemTime>>);

impl CertSeen {
    pub(crate) fn get(&self) -> Option<SystemTime> {
        self.0.lock().map(|g| *g).unwrap_or(None)
    }

    fn set(&self, t: Option<SystemTime>) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
}

/// A certificate's not-after, or `None` when the DER does not parse.
pub(crate) fn cert_not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let ts = cert.validity().not_after.timestamp();
    if ts >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(ts.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(ts.unsigned_abs()))
    }
}

/// The one crypto provider of every TLS client and server of the daemon (ring).
pub(crate) fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The WebPKI verifier over the bundled Mozilla roots, built once.
fn webpki_verifier() -> Result<Arc<WebPkiServerVerifier>, FailureReason> {
    static VERIFIER: OnceLock<Result<Arc<WebPkiServerVerifier>, String>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider().clone())
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(FailureReason::Tls)
}

/// A check's `ca_file`: a PEM bundle of CA certificates (government or carrier CAs) trusted in
/// addition to the bundled roots. Read once when the config is loaded (and at each reload).
#[derive(Clone, Debug)]
pub struct CaFile {
    pub path: PathBuf,
    certs: Arc<[CertificateDer<'static>]>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl PartialEq for CaFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.certs == other.certs
    }
}

impl Eq for CaFile {}

/// A CA bundle is a few hundred kilobytes at most; a FIFO or a device at the path must not hang
/// `check` or a reload, nor `/dev/zero` fill the memory.
const MAX_CA_FILE: u64 = 4 << 20;

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut pem = Vec::new();
    std::fs::File::open(path)?.take(MAX_CA_FILE + 1).read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(std::io::Error::other(format!("larger than {} MiB", MAX_CA_FILE >> 20)));
    }
    Ok(pem)
}

impl CaFile {
    /// Reads and parses the bundle; `Err` says what is wrong with it.
    pub fn read(path: &Path) -> Result<CaFile, String> {
        let shown = path.display();
        let pem = read_bounded(path).map_err(|e| format!("{shown} cannot be read: {e}"))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{shown} is not a PEM certificate bundle ({e})"))?;
        if certs.is_empty() {
            return Err(format!("{shown} holds no CERTIFICATE block"));
        }
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let (_, unusable) = roots.add_parsable_certificates(certs.iter().cloned());
        if unusable > 0 {
            return Err(format!(
                "{unusable} of the {} certificates in {shown} cannot be parsed as CA certificates",
                certs.len()
            ));
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider().clone())
            .build()
            .map_err(|e| format!("{shown}: {e}"))?;
        Ok(CaFile {
            path: path.to_owned(),
            certs: certs.into(),
            verifier,
        })
    }

    /// The bundle's certificates (for a client that trusts only them).
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// Reads the `ca_file` key of a check (a path relative to the config file); a missing,
    /// unreadable or unusable file is reported at the key.
    pub(crate) fn from_params(p: &mut Params<'_>) -> Option<CaFile> {
        let text = p.string("ca_file")?;
        let path = p.relative_path(&text);
        match CaFile::read(&path) {
            Ok(ca) => Some(ca),
            Err(message) => {
                p.problem(
                    "ca_file",
                    message,
                    "give a readable PEM file of CA certificates (a relative path starts at the config file's directory)",
                );
                None
            }
        }
    }
}

/// Records the leaf's not-after, then verifies with WebPKI, or (insecure) accepts any
/// certificate while still checking that the server holds the certificate's key.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Arc<CertSeen>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen.set(cert_not_after(end_entity));
        match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS connector for one probe whose verifier writes the leaf's not-after into `seen`.
/// `ca_file` adds its CAs to the bundled roots; `insecure_skip_verify` accepts any certificate.
pub(crate) fn tls_connector(
    insecure_skip_verify: bool,
    ca_file: Option<&CaFile>,
    seen: Arc<CertSeen>,
) -> Result<TlsConnector, FailureReason> {
    let inner = match (insecure_skip_verify, ca_file) {
        (true, _) => None,
        (false, Some(ca)) => Some(ca.verifier.clone()),
        (false, None) => Some(webpki_verifier()?),
    };
    let verifier = RecordingVerifier {
        inner,
        algorithms: provider().signature_verification_algorithms,
        seen,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider().clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FailureReason::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_device_as_ca_file_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("ca.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let Err(e) = CaFile::read(&fifo) else {
            panic!("a FIFO is refused")
        };
        assert!(e.contains("not a regular file"), "{e}");
        let Err(e) = CaFile::read(Path::new("/dev/zero")) else {
            panic!("a device is refused")
        };
        assert!(e.contains("not a regular file"), "{e}");
    }
}
