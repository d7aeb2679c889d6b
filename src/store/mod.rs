//! The durable outage ledger: SQLite in WAL mode, written by one dedicated OS thread.
//!
//! # Data flow
//!
//! Producers (the monitor on a state change, the reloader on an inventory change) call
//! [`Store::record_transition`] / [`Store::sync_inventory`]: a `try_send` on a bounded channel,
//! never a wait. The writer thread (`diemcau-store`) drains the channel into its own pending queue
//! and commits it in batches — one transaction per batch, when `batch_records` are pending or
//! `batch_interval` has passed since the oldest pending record — and, when idle, at least every
//! `heartbeat` of the injected [`Clock`]. Reports read through [`StoreReader`] on separate
//! read-only connections (WAL lets them read while the writer writes).
//!
//! # Tables (see [`MIGRATIONS`])
//!
//! * `runs(run_id, started_ms, last_seen_ms, clean_stop, recovered_ms, vantage)` — one row per daemon
//!   run; `vantage` is `[vantage] name` (empty for runs before migration 5).
//!   Every commit (heartbeat or batch) sets `last_seen_ms` to the clock's "now", so a run is known
//!   to have been monitoring over `[started_ms, last_seen_ms]`; outside every run is UNKNOWN time.
//! * `transitions` — every state change: endpoint, from, to, time (unix ms), reason, check kind.
//! * `outages(endpoint, start_ms, end_ms, cause, end_reason, …)` — derived in the same
//!   transaction as the transition: a change *to* `down` opens one (at most one open per
//!   endpoint), any change to another state closes it (`end_reason` `recovered` for up/degraded,
//!   else the new state's name). Removing an endpoint from the inventory closes its outage with
//!   `removed`; stopping the daemon closes open outages with `monitor_stopped`.
//! * `endpoints(id, province, district, commune, carrier, address, first_seen_ms, removed_ms)` —
//!   the inventory, upserted by [`Store::sync_inventory`] (a full snapshot: ids missing from it
//!   get `removed_ms`). Label changes update the row in place: reports show an endpoint under its
//!   *current* labels for the whole period (simple; regrouping history by past labels is not
//!   supported). `presence(endpoint, from_ms, to_ms)` keeps each stay in the inventory, so an
//!   endpoint removed and added back does not count as existing in between.
//! * `pauses(run_id, from_ms, to_ms, cause)` — spans inside a run when the monitor saw nothing
//!   (its engine stood still: process stopped, machine suspended). They are UNKNOWN time like
//!   the gaps between runs: [`StoreReader::histories`] subtracts them from the monitored spans.
//! * `interruptions(run_id, endpoint, start_ms, end_ms)` — breaks too short to confirm: a silent
//!   round whose confirmation round lost its first half, then got replies. Not downtime; the
//!   reports count them per endpoint.
//! * `report_runs(schedule, month, …)` — the months the scheduled reports have written and
//!   mailed ([`report_runs::ReportRuns`], opened with [`Store::report_runs`]).
//!
//! # Restart semantics
//!
//! [`Store::open`] holds an exclusive `flock` on `<path>.lock` (one writer per ledger). A run
//! found without `clean_stop` (crash, SIGKILL, power loss) is taken to have ended at its last
//! committed heartbeat: its `last_seen_ms` stays as it is, `recovered_ms` records when this was
//! noticed, and every outage it left open is closed at that `last_seen_ms` with end reason
//! `monitor_stopped`. The gap until the new run starts is UNKNOWN time (neither up nor down): it is
//! outside every run, so [`crate::sla`] excludes it. We do not extend the outage across the gap
//! because nobody watched the endpoint then; if it is still down, the new run's first round
//! records `unknown → down` and opens a new outage. A clean stop ([`Store::shutdown`]) does the
//! same at the moment of the stop, so an outage never spans time the daemon did not see.
//! Records still in memory at a crash (not yet committed, at most `batch_interval` old when
//! storage is healthy) are lost; committed ones are not (see durability).
//!
//! # Durability: WAL + `synchronous=FULL`
//!
//! With `NORMAL`, WAL commits survive a process crash but the last ones can vanish on power loss
//! or a kernel panic. Carriers are billed from this ledger, and batching keeps commits to at most
//! ~5 per second, so an fsync per commit costs nothing that matters: we use `FULL`.
//!
//! # Storage faults
//!
//! When a commit fails (disk full, read-only file system, I/O error), the batch stays in the
//! pending queue, the connection is closed (and reopened at the next attempt, so a remounted
//! file is picked up), the failure is counted and logged (at most once a minute, with
//! the count of suppressed messages) and retried with exponential backoff (`retry_min` →
//! `retry_max`). Meanwhile the writer keeps draining the channel, so producers never notice.
//! Heartbeats are never queued: a commit always writes the current time, so the heartbeats
//! missed during a fault are superseded (not lost: the daemon was running and probing). The
//! queue holds at most `max_pending` records (an inventory snapshot counts one per endpoint);
//! beyond that new records are refused and counted in `records_dropped_total` — the only way
//! records are lost while the process lives. Records refused because the channel itself is full
//! (the writer stuck inside one SQLite call) are counted the same way.
//!
//! # Identity of the files
//!
//! The writer also `flock`s the database file itself, so a second writer is refused even when
//! `<path>.lock` was deleted. Before every commit (every heartbeat included) it compares the
//! (device, inode) of both paths with the files it holds open. A deleted or replaced database is
//! logged, counted (`file_replaced_total`) and makes `healthy` 0 until the open connection has
//! written a complete copy to the path (`VACUUM INTO`; a foreign file found there is moved aside
//! to `<path>.replaced-<unix>`) and the writer has reopened on it: nothing committed is lost. A
//! deleted lock file is recreated and locked again.

mod clock;
mod collector;
mod history;
mod identity;
mod query;
pub mod replica;
pub mod report_runs;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::domain::Transition;
use crate::domain::{Endpoint, EndpointId, Labels};

pub use query::{BaselineRow, InterruptionRow, OutageRow, PauseRow, RecordedTransition, RunRow, StoreReader};
pub use schema::MIGRATIONS;

/// End reason of an outage closed because the daemon stopped (cleanly or not).
pub const END_MONITOR_STOPPED: &str = "monitor_stopped";
/// End reason of an outage closed because the endpoint left the inventory.
pub const END_REMOVED: &str = "removed";
/// End reason of an outage closed by a change to up or degraded.
pub const END_RECOVERED: &str = "recovered";

pub use clock::{Clock, ManualClock, SystemClock};
pub use collector::StoreCollector;

pub use crate::domain::unix_ms;

#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// The SQLite file; `<path>-wal`, `<path>-shm` and `<path>.lock` live beside it.
    pub path: PathBuf,
    /// `[vantage] name`, written with the run.
    pub vantage: String,
    /// Keep an outbox of changed rows for a shared copy of the ledger (`[store] url`).
    pub outbox: bool,
    /// Longest time between two commits while idle (the `runs.last_seen_ms` resolution).
    pub heartbeat: Duration,
    /// Records that may wait in the producer → writer channel (added to `max_pending` for the
    /// backlog bound).
    pub queue_capacity: usize,
    /// Most records held in memory while storage fails.
    pub max_pending: usize,
    /// Commit when this many records are pending …
    pub batch_records: usize,
    /// … or when the oldest pending record is this old.
    pub batch_interval: Duration,
    /// Retry backoff after a failed commit: starts at `retry_min`, doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl StoreConfig {
    /// Defaults: heartbeat 10 s, channel backlog 65,536 (allocated as it fills), 1,000,000 pending, batches of 500 / 200 ms,
    /// retries 1 s → 30 s.
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            vantage: "local".to_string(),
            outbox: false,
            heartbeat: Duration::from_secs(10),
            queue_capacity: 65_536,
            max_pending: 1_000_000,
            batch_records: 500,
            batch_interval: Duration::from_millis(200),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// One endpoint of an inventory snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryRecord {
    // Shared with the inventory (no copy per endpoint: a 100,000-endpoint sync would otherwise
    // briefly hold half a million strings).
    pub id: Arc<str>,
    pub labels: Labels,
    pub address: String,
}

impl From<&Endpoint> for InventoryRecord {
    fn from(e: &Endpoint) -> InventoryRecord {
        InventoryRecord {
            id: e.id.0.clone(),
            labels: e.labels.clone(),
            address: e.address_text(),
        }
    }
}

/// An inventory snapshot on its way to the writer.
pub(crate) enum Snapshot {
    Records(Vec<InventoryRecord>),
    /// The daemon's own endpoints, shared: turned into rows one at a time by the writer, so a
    /// sync never holds a second copy of a national inventory.
    Endpoints(Vec<Arc<Endpoint>>),
}

impl Snapshot {
    pub(crate) fn len(&self) -> usize {
        match self {
            Snapshot::Records(v) => v.len(),
            Snapshot::Endpoints(v) => v.len(),
        }
    }

    /// Calls `row` with every endpoint of the snapshot, in order.
    pub(crate) fn try_for_each<E>(&self, mut row: impl FnMut(&InventoryRecord) -> Result<(), E>) -> Result<(), E> {
        match self {
            Snapshot::Records(v) => v.iter().try_for_each(row),
            Snapshot::Endpoints(v) => v.iter().try_for_each(|e| row(&InventoryRecord::from(&**e))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger schema migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is locked by another diemcau process (one writer per ledger)")]
    Locked { path: PathBuf },
    #[error("{path}: SQLite refused WAL mode (journal_mode is {mode:?}); use a local file system")]
    NoWal { path: PathBuf, mode: String },
    #[error("ledger row is invalid: {0}")]
    Invalid(String),
    /// Reading the shared PostgreSQL ledger failed (with every cause, e.g. the TLS verdict).
    #[error("shared ledger: {0}")]
    Shared(String),
    #[error("storage is failing, {pending} records not committed: {last_error}")]
    Unhealthy { pending: usize, last_error: String },
    #[error("the ledger writer thread has stopped")]
    Stopped,
}

/// A snapshot of the store's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreStats {
    pub run_id: i64,
    pub write_errors_total: u64,
    /// Accepted and not yet committed (channel + pending queue).
    pub records_pending: u64,
    pub records_dropped_total: u64,
    pub records_committed_total: u64,
    pub commits_total: u64,
    /// Unix seconds (wall clock of the injected [`Clock`]) of the last successful commit.
    pub last_commit_unix_seconds: f64,
    pub healthy: bool,
    /// Database or lock files found deleted or replaced at their path (and restored).
    pub files_replaced_total: u64,
}

/// Counters shared by producers, the writer and metric scrapes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub write_errors: AtomicU64,
    pub pending: AtomicU64,
    pub dropped: AtomicU64,
    pub committed: AtomicU64,
    pub commits: AtomicU64,
    pub last_commit_ms: AtomicI64,
    pub healthy: AtomicBool,
    pub files_replaced: AtomicU64,
}

pub(crate) enum Msg {
    Transition(Transition),
    Fault(FaultNote),
    Baseline(BaselineNote),
    Pause(Pause),
    Interruption(Interruption),
    Inventory { at_ms: i64, endpoints: Snapshot },
    Flush(mpsc::SyncSender<Result<(), StoreError>>),
    Shutdown(mpsc::SyncSender<Result<(), StoreError>>),
}

/// Where an endpoint's current outage lies, found by a trace (it updates the open outage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultNote {
    pub endpoint: EndpointId,
    pub domain: &'static str,
    /// The failing router's address, empty when none was named.
    pub failing_hop: String,
}

/// An endpoint's baseline path (see the `paths` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineNote {
    pub endpoint: EndpointId,
    pub address: String,
    pub hops: String,
    pub learned_ms: i64,
}

/// A break of one endpoint too short to confirm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interruption {
    pub endpoint: EndpointId,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A span of a run in which the monitor saw nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    pub from_ms: i64,
    pub to_ms: i64,
    pub cause: &'static str,
    /// The address family that was unseen ("ipv4", "ipv6"), or "" for every endpoint.
    pub family: &'static str,
}

struct Inner {
    /// `None` only while dropping. After a shutdown the receiver is gone and sends fail.
    tx: Option<Sender<Msg>>,
    /// Records offered but not yet committed, at most (channel + the writer's queue).
    backlog_limit: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    path: PathBuf,
    run_id: i64,
    created: Instant,
    /// Seconds since `created` of the last "record refused" log line (rate limit).
    last_refusal_log: AtomicI64,
}

impl Drop for Inner {
    /// The last handle went away without [`Store::shutdown`]: the writer commits what it holds
    /// and stops *without* marking a clean stop (the next open treats the run as crashed).
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Handle on the ledger: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("run_id", &self.inner.run_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the ledger, closes runs
    /// left without a clean stop (see the module docs), starts a new run and the writer thread.
    /// Needs a writable database: a failure here is returned, not retried.
    pub fn open(cfg: StoreConfig, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let opened = schema::open_writer(&cfg.path, &cfg.vantage, cfg.outbox, clock.as_ref())?;
        for r in &opened.recovered {
            tracing::warn!(
                run_id = r.run_id,
                last_seen_ms = r.last_seen_ms,
                outages_closed = r.outages_closed,
                "previous diemcau run ended without a clean stop: it ends at its last heartbeat, \
                 the time since is unknown"
            );
        }
        let counters = Arc::new(Counters::default());
        counters.healthy.store(true, Ordering::Relaxed);
        counters.last_commit_ms.store(opened.started_ms, Ordering::Relaxed);
        // Unbounded channel (it allocates as it fills, unlike a bounded std channel, which
        // preallocates every slot); the bound is the backlog count checked in `offer`.
        let (tx, rx) = mpsc::channel();
        let backlog_limit = (cfg.queue_capacity + cfg.max_pending) as u64;
        let run_id = opened.run_id;
        let path = cfg.path.clone();
        let w = writer::Writer::new(cfg, opened, rx, counters.clone(), clock.clone());
        let thread = std::thread::Builder::new()
            .name("diemcau-store".into())
            .spawn(move || w.run())
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), run_id, "ledger open");
        Ok(Store {
            inner: Arc::new(Inner {
                tx: Some(tx),
                backlog_limit,
                thread: Mutex::new(Some(thread)),
                counters,
                clock,
                path,
                run_id,
                created: Instant::now(),
                last_refusal_log: AtomicI64::new(i64::MIN),
            }),
        })
    }

    /// This run's id in `runs`.
    pub fn run_id(&self) -> i64 {
        self.inner.run_id
    }

    /// The injected clock's now, for stamping records.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A connection to the ledger of scheduled reports.
    pub fn report_runs(&self) -> Result<report_runs::ReportRuns, StoreError> {
        report_runs::ReportRuns::open(&self.inner.path)
    }

    /// Queues a state change. Never blocks; a refused record is counted in
    /// `records_dropped_total`.
    pub fn record_transition(&self, t: Transition) {
        self.offer(Msg::Transition(t), 1);
    }

    /// Queues where the open outage of an endpoint lies (after its Down transition). Never
    /// blocks, like [`Store::record_transition`].
    pub fn record_fault(&self, note: FaultNote) {
        self.offer(Msg::Fault(note), 1);
    }

    /// Queues an endpoint's new baseline path. Never blocks.
    pub fn record_baseline(&self, note: BaselineNote) {
        self.offer(Msg::Baseline(note), 1);
    }

    /// Queues a full inventory snapshot, stamped with the clock's now: new ids are added, known
    /// ones updated in place, missing ones marked removed. Call at start and after each reload.
    /// Never blocks.
    /// Records `[from_ms, to_ms)` of the current run as unknown time: the monitor saw nothing
    /// then (`cause`, e.g. `engine_stall`) for the endpoints of `family` ("ipv4", "ipv6"; ""
    /// for all). Never blocks, like [`Store::record_transition`].
    pub fn record_pause(&self, from_ms: i64, to_ms: i64, cause: &'static str, family: &'static str) {
        if to_ms > from_ms {
            self.offer(
                Msg::Pause(Pause {
                    from_ms,
                    to_ms,
                    cause,
                    family,
                }),
                1,
            );
        }
    }

    /// Records a break of `endpoint` too short to confirm (see the `interruptions` table).
    pub fn record_interruption(&self, endpoint: EndpointId, start_ms: i64, end_ms: i64) {
        self.offer(
            Msg::Interruption(Interruption {
                endpoint,
                start_ms,
                end_ms: end_ms.max(start_ms),
            }),
            1,
        );
    }

    pub fn sync_inventory(&self, endpoints: Vec<InventoryRecord>) {
        self.sync(Snapshot::Records(endpoints));
    }

    /// [`Store::sync_inventory`] for the daemon's shared endpoints, without copying them.
    pub fn sync_endpoints(&self, endpoints: Vec<Arc<Endpoint>>) {
        self.sync(Snapshot::Endpoints(endpoints));
    }

    fn sync(&self, endpoints: Snapshot) {
        let n = endpoints.len().max(1) as u64;
        let at_ms = self.now_ms();
        self.offer(Msg::Inventory { at_ms, endpoints }, n);
    }

    fn offer(&self, msg: Msg, weight: u64) {
        let c = &self.inner.counters;
        // Count first so the writer never sees a record before its pending count.
        let before = c.pending.fetch_add(weight, Ordering::Relaxed);
        let sent = match self.inner.tx.as_ref() {
            _ if before + weight > self.inner.backlog_limit => Err("the ledger backlog is full"),
            Some(tx) => tx.send(msg).map_err(|_| "the ledger writer has stopped"),
            None => Err("the ledger is shut down"),
        };
        if let Err(why) = sent {
            c.pending.fetch_sub(weight, Ordering::Relaxed);
            c.dropped.fetch_add(weight, Ordering::Relaxed);
            let now = self.inner.created.elapsed().as_secs() as i64;
            let last = self.inner.last_refusal_log.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= 60
                && self
                    .inner
                    .last_refusal_log
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::error!(
                    dropped_total = c.dropped.load(Ordering::Relaxed),
                    "ledger record dropped: {why} (logged at most once a minute)"
                );
            }
        }
    }

    /// Blocks until everything queued before this call is committed (with a heartbeat), trying
    /// at once even during a backoff. Not for the probing path: for tests, tools and reports
    /// that must see the latest records.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.control(Msg::Flush)
    }

    fn control(&self, make: fn(mpsc::SyncSender<Result<(), StoreError>>) -> Msg) -> Result<(), StoreError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let tx = self.inner.tx.as_ref().ok_or(StoreError::Stopped)?;
        tx.send(make(reply_tx)).map_err(|_| StoreError::Stopped)?;
        reply_rx.recv().map_err(|_| StoreError::Stopped)?
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        StoreStats {
            run_id: self.inner.run_id,
            write_errors_total: c.write_errors.load(Ordering::Relaxed),
            records_pending: c.pending.load(Ordering::Relaxed),
            records_dropped_total: c.dropped.load(Ordering::Relaxed),
            records_committed_total: c.committed.load(Ordering::Relaxed),
            commits_total: c.commits.load(Ordering::Relaxed),
            last_commit_unix_seconds: c.last_commit_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            healthy: c.healthy.load(Ordering::Relaxed),
            files_replaced_total: c.files_replaced.load(Ordering::Relaxed),
        }
    }

    /// A new read-only connection that knows this run is live (it extends to the `now` given to
    /// its queries). `StoreReader` is `Send`, not `Sync`: one per thread or request.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open_live(&self.inner.path, Some(self.inner.run_id))
    }

    /// Prometheus collector reading the counters at scrape time; register it once.
    pub fn collector(&self) -> StoreCollector {
        StoreCollector::new(self.inner.counters.clone())
    }

    /// Commits what is pending, closes open outages (`monitor_stopped`) and marks the run
    /// cleanly stopped, then joins the writer thread. Other clones' later records are dropped.
    /// On a storage failure the uncommitted records are lost and the error says how many; the
    /// run then counts as crashed at its last heartbeat.
    pub fn shutdown(self) -> Result<(), StoreError> {
        let result = self.control(Msg::Shutdown);
        if let Some(t) = lock(&self.inner.thread).take() {
            let _ = t.join();
        }
        result
    }
}
