//! The server certificate follows its files: renewed certificates (certbot, cert-manager, a
//! provincial CA's yearly renewal) are served without a reload. On a new TLS connection, at most
//! once a second, the modification time, size and inode of `cert_file` and `key_file` are
//! compared with those last read; when they differ the pair is read again. A pair that does not
//! load (half-written, key not matching) keeps the certificate in use and logs an error once
//! per change of the files.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::tls::{KeyError, tls_err};

/// How often at most the files are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where the certificate or the key comes from.
pub(super) enum Source {
    File(PathBuf),
    /// Inline PEM in the web config: never changes until a reload.
    Inline(Vec<u8>),
}

impl Source {
    fn path(&self) -> Option<&Path> {
        match self {
            Source::File(p) => Some(p),
            Source::Inline(_) => None,
        }
    }
}

/// What identifies a file's version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    modified: Option<SystemTime>,
    size: u64,
    inode: u64,
    device: u64,
}

/// Stamps of the certificate and key files (`None`: inline, or cannot be looked at).
pub(super) type Stamp = [Option<FileStamp>; 2];

/// The stamp of the files; taken before they are read, so a change while they are read is
/// seen at the next check.
pub(super) fn stamp(cert: Option<&Path>, key: Option<&Path>) -> Stamp {
    [file_stamp(cert), file_stamp(key)]
}

fn file_stamp(path: Option<&Path>) -> Option<FileStamp> {
    let m = std::fs::metadata(path?).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        size: m.len(),
        inode: m.ino(),
        device: m.dev(),
    })
}

/// Parses a PEM chain and key; errors name the web config key the PEM came from.
pub(super) fn parse(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_key: &str,
    key_key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), KeyError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
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
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        tls_err(
            key_key,
            format!("no usable private key ({e}); give a PEM PKCS#8, RSA or EC private key"),
        )
    })?;
    Ok((certs, key))
}

/// A parsed chain and key as rustls serves them; the key must belong to the certificate.
pub(super) fn certified(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    key_key: &str,
) -> Result<CertifiedKey, KeyError> {
    CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        tls_err(
            key_key,
            format!("{e}; give the private key that belongs to the certificate in cert_file (or cert)"),
        )
    })
}

/// The certificate resolver of the web server's TLS configuration.
pub(super) struct ReloadingCert {
    cert: Source,
    key: Source,
    provider: Arc<CryptoProvider>,
    state: Mutex<Watched>,
}

struct Watched {
    current: Arc<CertifiedKey>,
    /// The files as last read (successfully or not).
    stamp: Stamp,
    checked: Instant,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert.path())
            .field("key_file", &self.key.path())
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    pub(super) fn new(
        cert: Source,
        key: Source,
        provider: Arc<CryptoProvider>,
        loaded: CertifiedKey,
        stamp: Stamp,
    ) -> ReloadingCert {
        ReloadingCert {
            cert,
            key,
            provider,
            state: Mutex::new(Watched {
                current: Arc::new(loaded),
                stamp,
                checked: Instant::now(),
            }),
        }
    }

    /// Reads the pair again if the files changed since they were last read.
    fn refresh(&self, w: &mut Watched) {
        let stamp = stamp(self.cert.path(), self.key.path());
        if stamp == w.stamp {
            return;
        }
        w.stamp = stamp;
        let read = |s: &Source, name: &str| match s {
            Source::File(p) => std::fs::read(p).map_err(|e| tls_err(name, format!("cannot read {}: {e}", p.display()))),
            Source::Inline(pem) => Ok(pem.clone()),
        };
        let loaded = read(&self.cert, "cert_file")
            .and_then(|c| Ok((c, read(&self.key, "key_file")?)))
            .and_then(|(c, k)| parse(&c, &k, "cert_file", "key_file"))
            .and_then(|(certs, key)| certified(certs, key, &self.provider, "key_file"));
        let cert_file = self.cert.path().map(|p| p.display().to_string()).unwrap_or_default();
        match loaded {
            Ok(new) => {
                w.current = Arc::new(new);
                tracing::info!(cert_file, "web TLS certificate reloaded: its files changed");
            }
            Err((key, message)) => tracing::error!(
                cert_file,
                %key,
                error = %message,
                "web TLS certificate files changed but do not load: the certificate in use stays"
            ),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let watched = self.cert.path().is_some() || self.key.path().is_some();
        if watched && w.checked.elapsed() >= CHECK_EVERY {
            w.checked = Instant::now();
            self.refresh(&mut w);
        }
        Some(w.current.clone())
    }
}
