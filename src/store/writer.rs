//! The writer thread: drains the channel into a pending queue, commits it in batches, retries
//! with backoff when storage fails, and writes the run's heartbeat.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::identity::{self, Held, PathState};
use super::schema::{self, Opened};
use super::{
    Clock, Counters, END_MONITOR_STOPPED, END_RECOVERED, END_REMOVED, Interruption, InventoryRecord, Msg, Pause,
    Snapshot, StoreConfig, StoreError, Transition,
};
use crate::domain::health::State;

/// Most records in one transaction while catching up on a backlog.
const MAX_TX_RECORDS: usize = 10_000;
/// Least time between two log lines about the same kind of trouble.
const LOG_EVERY: Duration = Duration::from_secs(60);

enum Pending {
    Transition(Transition),
    Fault(super::FaultNote),
    Baseline(super::BaselineNote),
    Pause(Pause),
    Interruption(Interruption),
    Inventory { at_ms: i64, endpoints: Snapshot },
}

impl Pending {
    fn weight(&self) -> usize {
        match self {
            Pending::Transition(_)
            | Pending::Fault(_)
            | Pending::Baseline(_)
            | Pending::Pause(_)
            | Pending::Interruption(_) => 1,
            Pending::Inventory { endpoints, .. } => endpoints.len().max(1),
        }
    }
}

type Reply = SyncSender<Result<(), StoreError>>;

struct Failure {
    since: Instant,
    attempts: u64,
    backoff: Duration,
    retry_at: Instant,
    last_error: String,
    last_log: Instant,
    suppressed: u64,
}

pub(crate) struct Writer {
    cfg: StoreConfig,
    conn: Option<Connection>,
    /// The database file the connection has open (declared after `conn`: outlives it).
    db: Held,
    lock: Held,
    /// A deleted or replaced database (lock file) is being restored: counted once, and the
    /// connection on the old file is kept until the copy is in place.
    db_incident: bool,
    lock_incident: bool,
    run_id: i64,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    pending: VecDeque<Pending>,
    pending_weight: usize,
    oldest_pending: Option<Instant>,
    last_beat_ms: i64,
    failure: Option<Failure>,
    flush_waiters: Vec<Reply>,
    shutdown: Option<Reply>,
    last_refusal_log: Option<Instant>,
}

impl Writer {
    pub(crate) fn new(
        cfg: StoreConfig,
        opened: Opened,
        rx: Receiver<Msg>,
        counters: Arc<Counters>,
        clock: Arc<dyn Clock>,
    ) -> Writer {
        Writer {
            cfg,
            conn: Some(opened.conn),
            db: opened.db,
            lock: opened.lock,
            db_incident: false,
            lock_incident: false,
            run_id: opened.run_id,
            rx,
            counters,
            clock,
            pending: VecDeque::new(),
            pending_weight: 0,
            oldest_pending: None,
            last_beat_ms: opened.started_ms,
            failure: None,
            flush_waiters: Vec::new(),
            shutdown: None,
            last_refusal_log: None,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            match self.rx.recv_timeout(self.next_wake()) {
                Ok(msg) => {
                    self.accept(msg);
                    self.drain_channel();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle dropped without shutdown: keep what we can, no clean stop.
                    if !self.commit_all() {
                        tracing::error!(
                            lost = self.pending_weight,
                            "ledger closed while storage fails: uncommitted records are lost"
                        );
                    }
                    return;
                }
            }
            if let Some(reply) = self.shutdown.take() {
                let result = self.stop_cleanly();
                self.answer_flushes();
                let _ = reply.send(result);
                return;
            }
            let forced = !self.flush_waiters.is_empty();
            if forced || self.due() {
                self.commit_all();
            }
            self.answer_flushes();
        }
    }

    fn drain_channel(&mut self) {
        // Bounded so a flood cannot starve commits; the rest waits for the next turn.
        for _ in 0..MAX_TX_RECORDS {
            match self.rx.try_recv() {
                Ok(msg) => self.accept(msg),
                Err(_) => break,
            }
        }
    }

    fn accept(&mut self, msg: Msg) {
        let item = match msg {
            Msg::Transition(t) => Pending::Transition(t),
            Msg::Fault(f) => Pending::Fault(f),
            Msg::Baseline(b) => Pending::Baseline(b),
            Msg::Pause(p) => Pending::Pause(p),
            Msg::Interruption(i) => Pending::Interruption(i),
            Msg::Inventory { at_ms, endpoints } => Pending::Inventory { at_ms, endpoints },
            Msg::Flush(reply) => return self.flush_waiters.push(reply),
            Msg::Shutdown(reply) => {
                self.shutdown = Some(reply);
                return;
            }
        };
        let w = item.weight();
        if self.pending_weight + w > self.cfg.max_pending {
            let c = &self.counters;
            c.pending.fetch_sub(w as u64, Ordering::Relaxed);
            c.dropped.fetch_add(w as u64, Ordering::Relaxed);
            if self.last_refusal_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                self.last_refusal_log = Some(Instant::now());
                tracing::error!(
                    max_pending = self.cfg.max_pending,
                    dropped_total = c.dropped.load(Ordering::Relaxed),
                    "ledger pending queue full while storage fails: new records are dropped \
                     (logged at most once a minute)"
                );
            }
            return;
        }
        self.pending_weight += w;
        self.oldest_pending.get_or_insert_with(Instant::now);
        self.pending.push_back(item);
    }

    fn heartbeat_due(&self) -> bool {
        let hb = i64::try_from(self.cfg.heartbeat.as_millis()).unwrap_or(i64::MAX);
        self.clock.now_ms().saturating_sub(self.last_beat_ms) >= hb
    }

    fn due(&self) -> bool {
        if let Some(f) = &self.failure {
            return Instant::now() >= f.retry_at;
        }
        self.pending_weight >= self.cfg.batch_records
            || self
                .oldest_pending
                .is_some_and(|t| t.elapsed() >= self.cfg.batch_interval)
            || self.heartbeat_due()
    }

    fn next_wake(&self) -> Duration {
        let tick = self.cfg.batch_interval.max(Duration::from_millis(1));
        if let Some(f) = &self.failure {
            return f.retry_at.saturating_duration_since(Instant::now());
        }
        match self.oldest_pending {
            Some(t) => tick.saturating_sub(t.elapsed()),
            // The heartbeat follows the injected clock, which may jump: look every tick.
            None => tick,
        }
    }

    fn answer_flushes(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        for reply in self.flush_waiters.drain(..) {
            let result = match &self.failure {
                None if self.pending.is_empty() => Ok(()),
                f => Err(StoreError::Unhealthy {
                    pending: self.pending_weight,
                    last_error: f.as_ref().map_or_else(String::new, |f| f.last_error.clone()),
                }),
            };
            let _ = reply.send(result);
        }
    }

    /// Commits the whole queue in transactions of at most [`MAX_TX_RECORDS`] (a heartbeat-only
    /// transaction when it is empty). False when storage failed.
    fn commit_all(&mut self) -> bool {
        if let Err(e) = self.verify_files() {
            self.failed(e);
            return false;
        }
        loop {
            let mut n = 0;
            let mut weight = 0;
            for p in &self.pending {
                if n > 0 && weight + p.weight() > MAX_TX_RECORDS {
                    break;
                }
                n += 1;
                weight += p.weight();
            }
            match self.commit_chunk(n) {
                Ok(now) => self.committed(n, weight, now),
                Err(e) => {
                    self.failed(e);
                    return false;
                }
            }
            if self.pending.is_empty() {
                return true;
            }
            self.drain_channel();
        }
    }

    fn commit_chunk(&mut self, n: usize) -> Result<i64, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect_held()?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Stopped);
        };
        let now = self.clock.now_ms();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in self.pending.iter().take(n) {
            match p {
                Pending::Transition(t) => apply_transition(&tx, self.run_id, t)?,
                Pending::Fault(f) => apply_fault(&tx, f)?,
                Pending::Baseline(b) => apply_baseline(&tx, b)?,
                Pending::Pause(p) => apply_pause(&tx, self.run_id, p)?,
                Pending::Interruption(i) => apply_interruption(&tx, self.run_id, i)?,
                Pending::Inventory { at_ms, endpoints } => apply_inventory(&tx, *at_ms, endpoints)?,
            }
        }
        beat(&tx, self.run_id, now)?;
        tx.commit()?;
        Ok(now)
    }

    fn committed(&mut self, n: usize, weight: usize, now: i64) {
        self.pending.drain(..n);
        self.pending_weight -= weight;
        if self.pending.is_empty() {
            self.oldest_pending = None;
        }
        self.last_beat_ms = self.last_beat_ms.max(now);
        let c = &self.counters;
        c.pending.fetch_sub(weight as u64, Ordering::Relaxed);
        c.committed.fetch_add(weight as u64, Ordering::Relaxed);
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.last_commit_ms.store(now, Ordering::Relaxed);
        c.healthy.store(true, Ordering::Relaxed);
        if let Some(f) = self.failure.take() {
            tracing::info!(
                failed_attempts = f.attempts,
                outage = ?f.since.elapsed(),
                "ledger storage works again; committing the backlog"
            );
        }
    }

    fn failed(&mut self, e: StoreError) {
        // Reopen at the next attempt: a remounted or repaired file is picked up, and no
        // descriptor keeps a read-only remount from happening. Not while restoring a deleted or
        // replaced database: that connection is the way to its last committed state.
        if !self.db_incident {
            self.conn = None;
        }
        let c = &self.counters;
        c.write_errors.fetch_add(1, Ordering::Relaxed);
        c.healthy.store(false, Ordering::Relaxed);
        let now = Instant::now();
        let error = e.to_string();
        match &mut self.failure {
            None => {
                tracing::error!(
                    error = %error, pending = self.pending_weight, retry_in = ?self.cfg.retry_min,
                    "ledger commit failed; probing goes on, records are kept in memory and retried"
                );
                self.failure = Some(Failure {
                    since: now,
                    attempts: 1,
                    backoff: self.cfg.retry_min,
                    retry_at: now + self.cfg.retry_min,
                    last_error: error,
                    last_log: now,
                    suppressed: 0,
                });
            }
            Some(f) => {
                f.attempts += 1;
                f.backoff = (f.backoff * 2).min(self.cfg.retry_max).max(self.cfg.retry_min);
                f.retry_at = now + f.backoff;
                if now.duration_since(f.last_log) >= LOG_EVERY {
                    tracing::error!(
                        error = %error, attempts = f.attempts, failing_for = ?f.since.elapsed(),
                        pending = self.pending_weight, suppressed = f.suppressed,
                        "ledger commits still fail"
                    );
                    f.last_log = now;
                    f.suppressed = 0;
                } else {
                    f.suppressed += 1;
                }
                f.last_error = error;
            }
        }
    }

    /// Checks that the database and lock paths still name the files held open (see
    /// [`identity`]); restores them when not. Nothing committed is lost: the copy comes from the
    /// connection (or descriptor) on the old file.
    fn verify_files(&mut self) -> Result<(), StoreError> {
        let state = self.db.check().map_err(identity::io(self.db.path()))?;
        if state != PathState::Same {
            if !self.db_incident {
                self.db_incident = true;
                self.incident(self.db.path().to_path_buf(), state);
            }
            self.restore_db()?;
        }
        let state = self.lock.check().map_err(identity::io(self.lock.path()))?;
        if state != PathState::Same {
            if !self.lock_incident {
                self.lock_incident = true;
                self.incident(self.lock.path().to_path_buf(), state);
            }
            // Assigned only once locked: the old lock is kept until then.
            self.lock = Held::lock(&schema::lock_path(&self.cfg.path))?;
            self.lock_incident = false;
            tracing::warn!(path = %self.lock.path().display(), "ledger lock file recreated and locked again");
        }
        Ok(())
    }

    fn incident(&self, path: std::path::PathBuf, state: PathState) {
        let c = &self.counters;
        c.files_replaced.fetch_add(1, Ordering::Relaxed);
        c.healthy.store(false, Ordering::Relaxed);
        let what = match state {
            PathState::Missing => "was deleted",
            _ => "was replaced by another file",
        };
        tracing::error!(
            path = %path.display(),
            replaced_total = c.files_replaced.load(Ordering::Relaxed),
            "ledger file {what} while the ledger has it open: restoring it"
        );
    }

    /// A connection on the database file held open: refused (and closed) if the path was
    /// changed meanwhile, so a copy is never taken from, nor a commit made into, another file.
    fn connect_held(&self) -> Result<Connection, StoreError> {
        let conn = schema::connect(&self.cfg.path)?;
        if self.cfg.outbox {
            schema::outbox_triggers(&conn)?;
        }
        match self.db.check().map_err(identity::io(self.db.path()))? {
            PathState::Same => Ok(conn),
            _ => Err(StoreError::Invalid(format!(
                "{}: the database path changed while opening it",
                self.cfg.path.display()
            ))),
        }
    }

    /// Copies the committed database to its path, then reopens the writer on the copy.
    fn restore_db(&mut self) -> Result<(), StoreError> {
        let tmp = identity::copy_out(self.conn.as_ref(), &self.db)?;
        let unix_s = self.clock.now_ms().div_euclid(1000);
        if let Some(aside) = identity::install(&self.db, &tmp, unix_s)? {
            tracing::error!(
                path = %self.cfg.path.display(), moved_to = %aside.display(),
                "ledger: another file sat at the database path; it was moved aside"
            );
        }
        // Close the old connection before its descriptor, and before a new connection makes
        // `-wal`/`-shm` files it could remove by name on closing.
        self.conn = None;
        self.db = Held::lock(&self.cfg.path)?;
        self.db_incident = false;
        self.conn = Some(self.connect_held()?);
        tracing::warn!(path = %self.cfg.path.display(), "ledger database restored at its path; writing goes on");
        Ok(())
    }

    /// Commits the queue, closes open outages and marks the run cleanly stopped.
    fn stop_cleanly(&mut self) -> Result<(), StoreError> {
        let committed = self.commit_all();
        let lost = self.pending_weight;
        if !committed {
            let last_error = self.failure.as_ref().map_or_else(String::new, |f| f.last_error.clone());
            tracing::error!(lost, error = %last_error, "ledger shutdown: storage fails, uncommitted records are lost");
            return Err(StoreError::Unhealthy {
                pending: lost,
                last_error,
            });
        }
        let result = (|| -> Result<(), StoreError> {
            let Some(conn) = self.conn.as_mut() else {
                return Err(StoreError::Stopped);
            };
            let now = self.clock.now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            beat(&tx, self.run_id, now)?;
            tx.execute(
                "UPDATE outages SET end_ms = max(start_ms, ?1), end_reason = ?2 WHERE end_ms IS NULL",
                params![now, END_MONITOR_STOPPED],
            )?;
            tx.execute("UPDATE runs SET clean_stop = 1 WHERE run_id = ?1", params![self.run_id])?;
            tx.commit()?;
            self.counters.last_commit_ms.store(now, Ordering::Relaxed);
            Ok(())
        })();
        match &result {
            Ok(()) => tracing::info!(run_id = self.run_id, "ledger closed cleanly"),
            Err(e) => tracing::error!(error = %e, "ledger shutdown: cannot mark the clean stop"),
        }
        result
    }
}

fn beat(tx: &Transaction<'_>, run_id: i64, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE runs SET last_seen_ms = max(last_seen_ms, ?2) WHERE run_id = ?1")?
        .execute(params![run_id, now])?;
    Ok(())
}

fn apply_pause(tx: &Transaction<'_>, run_id: i64, p: &Pause) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO pauses (run_id, from_ms, to_ms, cause, family) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![run_id, p.from_ms, p.to_ms, p.cause, p.family])?;
    Ok(())
}

fn apply_interruption(tx: &Transaction<'_>, run_id: i64, i: &Interruption) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO interruptions (run_id, endpoint, start_ms, end_ms) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![run_id, i.endpoint.as_str(), i.start_ms, i.end_ms])?;
    Ok(())
}

fn apply_transition(tx: &Transaction<'_>, run_id: i64, t: &Transition) -> rusqlite::Result<()> {
    let endpoint = t.endpoint.as_str();
    tx.prepare_cached(
        "INSERT INTO transitions (run_id, endpoint, from_state, to_state, at_ms, reason, check_kind) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        run_id,
        endpoint,
        t.from.as_str(),
        t.to.as_str(),
        t.at_ms,
        t.reason,
        &*t.check
    ])?;
    if t.to == State::Down {
        // At most one open outage per endpoint (unique partial index): a repeated "down" is
        // part of the outage already open.
        tx.prepare_cached(
            "INSERT OR IGNORE INTO outages (run_id, endpoint, start_ms, cause, check_kind) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![run_id, endpoint, t.at_ms, t.reason, &*t.check])?;
    } else {
        let end_reason = match t.to {
            State::Up | State::Degraded => END_RECOVERED,
            other => other.as_str(),
        };
        tx.prepare_cached(
            "UPDATE outages SET end_ms = max(start_ms, ?2), end_reason = ?3 \
             WHERE endpoint = ?1 AND end_ms IS NULL",
        )?
        .execute(params![endpoint, t.at_ms, end_reason])?;
    }
    Ok(())
}

fn apply_fault(tx: &Transaction<'_>, f: &super::FaultNote) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE outages SET domain = ?2, failing_hop = ?3 WHERE endpoint = ?1 AND end_ms IS NULL")?
        .execute(params![f.endpoint.as_str(), f.domain, f.failing_hop])?;
    Ok(())
}

fn apply_baseline(tx: &Transaction<'_>, b: &super::BaselineNote) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO paths (endpoint, address, hops, learned_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (endpoint) DO UPDATE SET address = excluded.address, hops = excluded.hops, \
         learned_ms = excluded.learned_ms",
    )?
    .execute(params![b.endpoint.as_str(), b.address, b.hops, b.learned_ms])?;
    Ok(())
}

fn apply_inventory(tx: &Transaction<'_>, at_ms: i64, endpoints: &Snapshot) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS inventory_seen (id TEXT PRIMARY KEY); DELETE FROM temp.inventory_seen;",
    )?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO endpoints (id, province, district, commune, carrier, address, first_seen_ms, removed_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL) \
         ON CONFLICT (id) DO UPDATE SET province = excluded.province, district = excluded.district, \
         commune = excluded.commune, carrier = excluded.carrier, address = excluded.address, removed_ms = NULL",
    )?;
    let mut present =
        tx.prepare_cached("INSERT OR IGNORE INTO presence (endpoint, from_ms, to_ms) VALUES (?1, ?2, NULL)")?;
    let mut seen = tx.prepare_cached("INSERT OR IGNORE INTO temp.inventory_seen (id) VALUES (?1)")?;
    endpoints.try_for_each(|e: &InventoryRecord| {
        upsert.execute(params![
            e.id,
            e.labels.province,
            e.labels.district_or_empty(),
            e.labels.commune,
            e.labels.carrier,
            e.address,
            at_ms
        ])?;
        present.execute(params![e.id, at_ms])?;
        seen.execute(params![e.id])?;
        Ok::<(), rusqlite::Error>(())
    })?;
    let gone = "NOT IN (SELECT id FROM temp.inventory_seen)";
    tx.execute(
        &format!("UPDATE presence SET to_ms = max(from_ms, ?1) WHERE to_ms IS NULL AND endpoint {gone}"),
        params![at_ms],
    )?;
    tx.execute(
        &format!(
            "UPDATE outages SET end_ms = max(start_ms, ?1), end_reason = ?2 WHERE end_ms IS NULL AND endpoint {gone}"
        ),
        params![at_ms, END_REMOVED],
    )?;
    tx.execute(
        &format!("UPDATE endpoints SET removed_ms = ?1 WHERE removed_ms IS NULL AND id {gone}"),
        params![at_ms],
    )?;
    Ok(())
}
