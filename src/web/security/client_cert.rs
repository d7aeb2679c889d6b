//! Client certificates: `client_auth_type`, `client_ca_file` and `client_allowed_sans`, and the
//! verifier that checks the allowed SANs after the CA chain.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::file::TlsFile;
use super::tls::{KeyError, non_empty, tls_err};

/// What client_auth_type, client_ca_file (or client_ca) and client_allowed_sans ask for.
pub(super) struct ClientAuth {
    /// The verifier of client certificates; `None` when none are asked for.
    pub(super) verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// What the summary adds about client certificates, e.g. ", client certificates required".
    pub(super) summary: &'static str,
}

pub(super) fn client_auth(
    t: &TlsFile,
    ca_pem: Option<Vec<u8>>,
    provider: &Arc<CryptoProvider>,
) -> Result<ClientAuth, KeyError> {
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
    let summary = match (auth_type, sans.is_empty()) {
        ("NoClientCert", _) => "",
        ("VerifyClientCertIfGiven", _) => ", client certificates verified if given",
        (_, true) => ", client certificates required",
        (_, false) => ", client certificates required with an allowed SAN",
    };
    Ok(ClientAuth { verifier, summary })
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
