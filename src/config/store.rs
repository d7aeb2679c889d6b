//! `[store]`: the local SQLite ledger and, optionally, the PostgreSQL ledger shared by every
//! vantage (`url`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::toml_file::RawConfig;
use super::{StoreSettings, Validator, position};

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
        let url = self.store_url(&raw.store.url);
        StoreSettings { path, heartbeat, url }
    }

    /// `[store] url`: a libpq URL or key=value string; TLS is not offered yet, so a mode that
    /// demands it is refused here rather than at the first connection.
    fn store_url(&mut self, raw: &Option<Spanned<String>>) -> Option<String> {
        let url = raw.as_ref()?;
        let problem = match url.get_ref().parse::<tokio_postgres::Config>() {
            Err(e) => Some((
                format!("is not a PostgreSQL connection string: {e}"),
                "write e.g. \"postgresql://diemcau@db.example/diemcau\" or \"host=/run/postgresql dbname=diemcau\"",
            )),
            Ok(c) if c.get_hosts().is_empty() => Some((
                "names no host".to_string(),
                "add the server, e.g. \"postgresql://diemcau@db.example/diemcau\" (or host=/run/postgresql for a socket)",
            )),
            Ok(c) if c.get_ssl_mode() == tokio_postgres::config::SslMode::Require => Some((
                "asks for TLS (sslmode=require), which diemcau does not offer yet".to_string(),
                "reach the database over a Unix socket, a private network or a TLS tunnel, with sslmode=disable or prefer",
            )),
            Ok(_) => None,
        };
        match problem {
            None => Some(url.get_ref().clone()),
            Some((message, fix)) => {
                let (l, c) = position(self.text, url);
                self.problem_at(l, c, "store.url", &message, fix);
                None
            }
        }
    }
}
