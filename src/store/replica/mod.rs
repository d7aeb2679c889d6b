//! The shared ledger (`[store] url`): every vantage keeps its own SQLite ledger, which is also
//! its spool, and a shipper thread copies each committed row to one PostgreSQL database that
//! all vantages share, in the order the rows changed.
//!
//! Why a copy and not a second writer: the local ledger already has every guarantee the tests
//! prove (nothing committed is lost, storage faults never stall probing, crash recovery,
//! deleted files). The writer's temporary triggers put the key of every changed row in the
//! local `outbox` in the same transaction as the change; the shipper reads the outbox in order,
//! upserts the rows' current contents into PostgreSQL (keyed by this ledger's `source` id, so
//! replaying a row twice is harmless) and removes what PostgreSQL committed. While PostgreSQL
//! is unreachable the outbox grows (one entry per changed row, not per change) and the shipper
//! retries with backoff; when it is back, the backlog is replayed in order. On every connection
//! a catch-up also ships whatever changed while no shipper ran (a ledger that ran without `url`).
//!
//! The shipper also heartbeats `sources` with its vantage and shard, reports any other live
//! source with the same vantage and shard (two instances that would count twice), and measures
//! its clock against the database's.

mod collector;
mod connect;
pub mod read;
mod ship;
pub(crate) mod tables;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use collector::ReplicaCollector;

use crate::config::store::SharedLedger;

/// How the shipper reaches and uses the shared ledger.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The database: a libpq connection string or URL and its TLS settings.
    pub ledger: SharedLedger,
    pub vantage: String,
    /// This instance's shard: index and count.
    pub shard: (u32, u32),
    /// Pause between two shipping rounds while the outbox is empty.
    pub interval: Duration,
    /// Rows per PostgreSQL transaction.
    pub batch: usize,
    /// Longest wait for any one database operation.
    pub timeout: Duration,
    /// Retry backoff after a failure: doubles from `retry_min` up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl ReplicaConfig {
    pub fn new(ledger: SharedLedger, vantage: impl Into<String>) -> ReplicaConfig {
        ReplicaConfig {
            ledger,
            vantage: vantage.into(),
            shard: (0, 1),
            interval: Duration::from_secs(1),
            batch: 1000,
            timeout: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// What the shipper reports (read by [`ReplicaCollector`] at scrape time).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub healthy: AtomicBool,
    /// Rows waiting in the outbox.
    pub backlog: AtomicU64,
    pub shipped: AtomicU64,
    pub errors: AtomicU64,
    pub last_ship_ms: AtomicI64,
    /// Other live sources with this vantage and shard.
    pub conflicts: AtomicU64,
    /// This clock minus the database's.
    pub skew_ms: AtomicI64,
}

/// The running shipper.
pub struct Replica {
    stop: mpsc::Sender<Duration>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Replica {
    /// Starts shipping the ledger at `db` (already opened by [`super::Store::open`] with the
    /// outbox on). Never fails for an unreachable database: that is retried.
    pub fn start(cfg: ReplicaConfig, db: PathBuf) -> std::io::Result<Replica> {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = mpsc::channel();
        let shipper = ship::Shipper::new(cfg, db, counters.clone());
        let thread = std::thread::Builder::new()
            .name("diemcau-replica".into())
            .spawn(move || shipper.run(&stopped))?;
        Ok(Replica {
            stop,
            thread: Some(thread),
            counters,
        })
    }

    pub fn collector(&self) -> ReplicaCollector {
        ReplicaCollector::new(self.counters.clone())
    }

    /// Rows not yet shipped.
    pub fn backlog(&self) -> u64 {
        self.counters.backlog.load(Ordering::Relaxed)
    }

    /// Ships what is left (for at most `grace`) and stops; what is still unshipped stays in
    /// the outbox for the next run.
    pub fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(grace);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.stop.send(Duration::ZERO);
    }
}

/// The URL as it can be logged: without a password.
pub fn redacted(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(t) => t.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            format!(
                "postgresql://{}@{}/{}",
                c.get_user().unwrap_or(""),
                hosts.join(","),
                c.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "(unparsable url)".to_string(),
    }
}
