//! `[store]`: the local SQLite ledger and, optionally, the PostgreSQL ledger shared by every
//! vantage (`url`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::toml_file::RawConfig;
use super::{StoreSettings, Validator, position};
use crate::probe::tls::CaFile;

/// The PostgreSQL ledger shared by every vantage: `[store] url` and `ca_file`.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedLedger {
    /// The connection string, libpq's `verify-ca`/`verify-full` written as `require`.
    pub url: String,
    /// TLS or no connection (`sslmode` = `require`, `verify-ca` or `verify-full`); the server's
    /// certificate is always verified, and its name too. Otherwise the connection is plain:
    /// keep it to a Unix socket or a private network.
    pub tls: bool,
    /// The CAs that may sign the server's certificate, and only they; without it, the Mozilla
    /// roots.
    pub ca_file: Option<CaFile>,
}

impl Validator<'_> {
    pub(super) fn store(&mut self, raw: &RawConfig, base: &Path) -> StoreSettings {
        let path = match &raw.store.path {
            Some(p) if p.get_ref().trim().is_empty() || p.get_ref().ends_with('/') => {
                let (l, c) = position(self.text, p);
                self.problem_at(
                    l,
                    c,
                    "store.path",
                    &format!("{:?} names no file", p.get_ref()),
                    "give the ledger's file, e.g. \"data/diemcau.db\", or remove the key for the default",
                );
                base.join("data").join("diemcau.db")
            }
            Some(p) => base.join(p.get_ref()),
            // systemd's StateDirectory= sets STATE_DIRECTORY; otherwise beside the config.
            None => match std::env::var_os("STATE_DIRECTORY") {
                Some(dir) => PathBuf::from(dir).join("diemcau.db"),
                None => base.join("data").join("diemcau.db"),
            },
        };
        let heartbeat = self.duration(
            &raw.store.heartbeat,
            "store.heartbeat",
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(300),
        );
        let shared = self.shared_ledger(raw, base);
        StoreSettings {
            path,
            heartbeat,
            shared,
        }
    }

    /// `[store] url` (a libpq URL or key=value string) and `ca_file`, checked here rather than
    /// at the first connection.
    fn shared_ledger(&mut self, raw: &RawConfig, base: &Path) -> Option<SharedLedger> {
        let ca_file = raw
            .store
            .ca_file
            .as_ref()
            .and_then(|f| match CaFile::read(&base.join(f.get_ref())) {
                Ok(ca) => Some(ca),
                Err(message) => {
                    let (l, c) = position(self.text, f);
                    self.problem_at(
                        l,
                        c,
                        "store.ca_file",
                        &message,
                        "give a readable PEM file of the CA certificates that sign the database server's certificate",
                    );
                    None
                }
            });
        let Some(raw_url) = raw.store.url.as_ref() else {
            if let Some(f) = &raw.store.ca_file {
                let (l, c) = position(self.text, f);
                self.problem_at(
                    l,
                    c,
                    "store.ca_file",
                    "is set without store.url",
                    "set store.url too, or remove ca_file",
                );
            }
            return None;
        };
        let url = with_tls_words(raw_url.get_ref());
        let problem = match url.parse::<tokio_postgres::Config>() {
            _ if let Some(message) = unsupported_words(raw_url.get_ref()) => Some((
                message,
                "use sslmode=verify-full for TLS (the server's certificate and name verified) or sslmode=disable \
                 for a Unix socket or a private network; the CAs go in store.ca_file",
            )),
            Err(e) => Some((
                format!("is not a PostgreSQL connection string: {e}"),
                "write e.g. \"postgresql://diemcau@db.example/diemcau?sslmode=verify-full\" or \"host=/run/postgresql dbname=diemcau\"; \
                 the CA file goes in store.ca_file, not in the URL",
            )),
            Ok(c) if c.get_hosts().is_empty() => Some((
                "names no host".to_string(),
                "add the server, e.g. \"postgresql://diemcau@db.example/diemcau\" (or host=/run/postgresql for a socket)",
            )),
            Ok(_) => None,
        };
        if let Some((message, fix)) = problem {
            let (l, c) = position(self.text, raw_url);
            self.problem_at(l, c, "store.url", &message, fix);
            return None;
        }
        let tls = url
            .parse::<tokio_postgres::Config>()
            .is_ok_and(|c| c.get_ssl_mode() == tokio_postgres::config::SslMode::Require);
        if !tls && let Some(f) = &raw.store.ca_file {
            let (l, c) = position(self.text, f);
            self.problem_at(
                l,
                c,
                "store.ca_file",
                "is set but store.url does not ask for TLS",
                "add sslmode=verify-full to store.url (or remove ca_file)",
            );
        }
        Some(SharedLedger { url, tls, ca_file })
    }
}

/// What libpq accepts in a connection string but diemcau does not: another `sslmode`, or the
/// TLS file options (`sslrootcert` is `store.ca_file`; client certificates are not offered).
fn unsupported_words(url: &str) -> Option<String> {
    let words = url.split(|c: char| c == '&' || c == '?' || c.is_whitespace());
    for word in words {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "sslmode" if !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&value) => {
                return Some(format!("sslmode={value} is not offered"));
            }
            "sslrootcert" | "sslcert" | "sslkey" | "sslcrl" | "sslpassword" => {
                return Some(format!("{key} is not read from the connection string"));
            }
            _ => {}
        }
    }
    None
}

/// libpq's `verify-ca` and `verify-full` become `require`, tokio-postgres's word for "TLS or no
/// connection": diemcau verifies the server's certificate and name in every TLS mode.
fn with_tls_words(url: &str) -> String {
    url.replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
}
