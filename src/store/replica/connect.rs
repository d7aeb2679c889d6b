//! Connections to the shared ledger, plain or over TLS (rustls with the daemon's one crypto
//! provider). Over TLS the server's certificate is always verified, against `[store] ca_file`
//! alone when it is set (libpq's `sslrootcert`), else against the Mozilla roots, and so is its
//! name: libpq's `verify-full`, whichever TLS mode the URL names.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{Client, Connection, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::store::SharedLedger;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Connects and spawns the connection's task on the current runtime.
pub(crate) async fn connect(ledger: &SharedLedger) -> Result<Client, Failure> {
    let config: tokio_postgres::Config = ledger.url.parse()?;
    if ledger.tls {
        let (client, connection) = config.connect(MakeRustlsConnect::new(client_config(ledger)?)).await?;
        tokio::spawn(drive(connection));
        Ok(client)
    } else {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(drive(connection));
        Ok(client)
    }
}

/// The error and its causes, one after the other: tokio-postgres says only "error performing
/// TLS handshake", the reason (e.g. `UnknownIssuer`) is in its source.
pub(crate) fn with_causes(e: Failure) -> String {
    format!("{:#}", anyhow::Error::from_boxed(e))
}

async fn drive<S, T>(connection: Connection<S, T>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin + TlsStream,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "shared-ledger connection ended");
    }
}

/// The TLS client, trusting the CA file as read when the configuration was loaded.
fn client_config(ledger: &SharedLedger) -> Result<rustls::ClientConfig, Failure> {
    let roots = match &ledger.ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(ca.certs().iter().cloned());
            roots
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::clone(crate::probe::tls::provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
