//! The TLS client side of the HTTPS and SIP-over-TLS probes: rustls with the ring provider,
//! and a verifier ([`RecordingVerifier`]) that notes the leaf certificate's not-after before
//! verifying, so certificate expiry is reported even for self-signed devices
//! (`insecure_skip_verify`) and for failed verifications.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::outcome::FailureReason;

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

fn provider() -> &'static Arc<CryptoProvider> {
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
pub(crate) fn tls_connector(insecure_skip_verify: bool, seen: Arc<CertSeen>) -> Result<TlsConnector, FailureReason> {
    let inner = if insecure_skip_verify {
        None
    } else {
        Some(webpki_verifier()?)
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
