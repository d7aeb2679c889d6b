//! The shipper thread: connect, migrate, catch up, then follow the outbox; on any failure drop
//! the connection, count, log (at most once a minute) and retry with backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use crate::store::identity::FileId;

use super::read::LIVE_MS;
use super::tables::{self, Kind, TABLES, Table};
use super::{Counters, ReplicaConfig};
/// A clock further off than this is reported.
const SKEW_WARN_MS: i64 = 30_000;
/// Least time between two log lines about the same kind of trouble.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Serialises schema migrations of vantages starting together (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x0064_6965_6d63_6175;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One PostgreSQL connection with its prepared upserts.
struct Link {
    client: Client,
    upserts: HashMap<&'static str, Statement>,
}

pub(super) struct Shipper {
    cfg: ReplicaConfig,
    db: PathBuf,
    counters: Arc<Counters>,
    /// The local ledger's connection and the file it was opened on: the writer puts a copy
    /// of a deleted or replaced ledger back at its path, and the shipper must follow it there.
    local: Option<(Connection, FileId)>,
    source: String,
    host: String,
    last_log: HashMap<&'static str, Instant>,
}

impl Shipper {
    pub(super) fn new(cfg: ReplicaConfig, db: PathBuf, counters: Arc<Counters>) -> Shipper {
        Shipper {
            cfg,
            db,
            counters,
            local: None,
            source: String::new(),
            host: crate::config::vantage::host_name().unwrap_or_default(),
            last_log: HashMap::new(),
        }
    }

    pub(super) fn run(mut self, stop: &Receiver<Duration>) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the shared-ledger shipper cannot start a runtime: nothing is shipped");
                return;
            }
        };
        let mut link: Option<Link> = None;
        let mut backoff = self.cfg.retry_min;
        loop {
            let outcome = runtime.block_on(self.round(&mut link));
            let wait = match outcome {
                Ok(more) => {
                    backoff = self.cfg.retry_min;
                    if more { Duration::ZERO } else { self.cfg.interval }
                }
                Err(e) => {
                    link = None;
                    self.counters.healthy.store(false, Ordering::Relaxed);
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    self.complain(
                        "round",
                        &format!(
                            "shared ledger unreachable or failing: {}",
                            super::connect::with_causes(e)
                        ),
                    );
                    if let Ok(n) = self.backlog() {
                        self.counters.backlog.store(n, Ordering::Relaxed);
                    }
                    let b = backoff;
                    backoff = (backoff * 2).min(self.cfg.retry_max);
                    b
                }
            };
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(grace) => {
                    // A last round for what the final commit wrote, within the grace.
                    let deadline = Instant::now() + grace;
                    while Instant::now() < deadline {
                        let left = deadline.saturating_duration_since(Instant::now());
                        // The timer is made inside the runtime: made outside, it panics.
                        match runtime.block_on(async { tokio::time::timeout(left, self.round(&mut link)).await }) {
                            Ok(Ok(true)) => continue,
                            _ => break,
                        }
                    }
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let left = self.backlog().unwrap_or(0);
        tracing::info!(unshipped = left, "shared-ledger shipper stopped");
    }

    /// One round: (re)connect if needed, heartbeat, ship one batch. `Ok(true)`: more to ship.
    async fn round(&mut self, link: &mut Option<Link>) -> Result<bool, Failure> {
        self.open_local()?;
        if link.is_none() {
            let fresh = self.connect().await?;
            self.catch_up(&fresh).await?;
            *link = Some(fresh);
        }
        let Some(l) = link.as_ref() else {
            return Ok(false);
        };
        self.heartbeat(l).await?;
        let more = self.ship_outbox(l).await?;
        self.counters.healthy.store(true, Ordering::Relaxed);
        self.counters
            .last_ship_ms
            .store(crate::domain::unix_ms(std::time::SystemTime::now()), Ordering::Relaxed);
        self.counters.backlog.store(self.backlog()?, Ordering::Relaxed);
        Ok(more)
    }

    /// Opens the local ledger, or reopens it when the file at its path is no longer the one
    /// held open (deleted and restored by the writer, or replaced).
    fn open_local(&mut self) -> Result<(), Failure> {
        let now = FileId::of_path(&self.db);
        if let Some((_, id)) = &self.local
            && now.as_ref().ok() != Some(id)
        {
            tracing::warn!(
                db = %self.db.display(),
                "the local ledger file was deleted or replaced: the shipper reopens it once the writer has restored it"
            );
            self.local = None;
        }
        now.map_err(|e| format!("the local ledger {}: {e} (the writer restores it)", self.db.display()))?;
        if self.local.is_none() {
            let conn = crate::store::schema::connect(&self.db)?;
            // The file opened may itself have been swapped since the check above: identify the
            // one the connection holds through what the path names after opening.
            let id = FileId::of_path(&self.db)?;
            self.source = conn.query_row("SELECT value FROM ledger_meta WHERE key = 'source'", [], |r| r.get(0))?;
            self.local = Some((conn, id));
        }
        Ok(())
    }

    fn local(&self) -> Result<&Connection, Failure> {
        self.local
            .as_ref()
            .map(|(c, _)| c)
            .ok_or_else(|| "the local ledger is not open".into())
    }

    fn backlog(&self) -> Result<u64, Failure> {
        let n: i64 = self
            .local()?
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn connect(&mut self) -> Result<Link, Failure> {
        let mut client = self.timed(super::connect::connect(&self.cfg.ledger)).await??;
        self.timed(migrate(&mut client)).await??;
        let mut upserts = HashMap::new();
        for t in TABLES {
            upserts.insert(t.name, self.timed(client.prepare(&tables::upsert(t))).await??);
        }
        tracing::info!(
            url = %super::redacted(&self.cfg.ledger.url),
            tls = self.cfg.ledger.tls,
            source = %self.source,
            vantage = %self.cfg.vantage,
            "shared ledger connected"
        );
        Ok(Link { client, upserts })
    }

    async fn timed<F: std::future::Future>(&self, f: F) -> Result<F::Output, Failure> {
        tokio::time::timeout(self.cfg.timeout, f)
            .await
            .map_err(|_| format!("no answer within {:?}", self.cfg.timeout).into())
    }

    /// Ships what changed while no shipper ran: rows past the database's last key of each
    /// table, every run and endpoint, and the rows the database still has open.
    async fn catch_up(&mut self, link: &Link) -> Result<(), Failure> {
        let mut shipped = 0usize;
        for t in TABLES {
            let keys: Vec<String> = if t.key_kind == Kind::Int && !matches!(t.name, "runs") {
                let row = link
                    .client
                    .query_one(
                        &format!("SELECT coalesce(max({}), 0) FROM {} WHERE source = $1", t.key, t.name),
                        &[&self.source],
                    )
                    .await?;
                let last: i64 = row.get(0);
                let mut keys = self.local_keys(t, Some(last))?;
                let open = match t.name {
                    "outages" => Some("end_ms"),
                    "presence" => Some("to_ms"),
                    _ => None,
                };
                if let Some(col) = open {
                    let sql = format!("SELECT {} FROM {} WHERE source = $1 AND {col} IS NULL", t.key, t.name);
                    for r in link.client.query(&sql, &[&self.source]).await? {
                        keys.push(r.get::<_, i64>(0).to_string());
                    }
                }
                keys
            } else {
                self.local_keys(t, None)?
            };
            for chunk in keys.chunks(self.cfg.batch.max(1)) {
                let rows: Vec<(&'static Table, String)> = chunk.iter().map(|k| (t, k.clone())).collect();
                shipped += self.ship(link, &rows).await?;
            }
        }
        if shipped > 0 {
            tracing::info!(rows = shipped, "shared ledger caught up");
        }
        Ok(())
    }

    /// Keys of `t` in key order, past `after` when given.
    fn local_keys(&self, t: &Table, after: Option<i64>) -> Result<Vec<String>, Failure> {
        let conn = self.local()?;
        let sql = match after {
            Some(_) => format!("SELECT {k} FROM {n} WHERE {k} > ?1 ORDER BY {k}", k = t.key, n = t.name),
            None => format!("SELECT {k} FROM {n} ORDER BY {k}", k = t.key, n = t.name),
        };
        let mut st = conn.prepare(&sql)?;
        let keys = match after {
            Some(a) => st.query_map(params![a], key_text)?.collect::<Result<Vec<_>, _>>()?,
            None => st.query_map([], key_text)?.collect::<Result<Vec<_>, _>>()?,
        };
        Ok(keys)
    }

    /// Ships one batch of the outbox in order; `Ok(true)` when a full batch went (more may wait).
    async fn ship_outbox(&mut self, link: &Link) -> Result<bool, Failure> {
        let entries: Vec<(i64, String, String)> = {
            let mut st = self
                .local()?
                .prepare_cached("SELECT seq, tbl, key FROM outbox ORDER BY seq LIMIT ?1")?;
            st.query_map(params![self.cfg.batch as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?
        };
        if entries.is_empty() {
            return Ok(false);
        }
        let rows: Vec<(&'static Table, String)> = entries
            .iter()
            .filter_map(|(_, tbl, key)| Some((tables::table(tbl)?, key.clone())))
            .collect();
        self.ship(link, &rows).await?;
        // Only the entries shipped: a row changed meanwhile has a new entry, shipped next round.
        let local = self.local()?;
        let tx = local.unchecked_transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for (seq, _, _) in &entries {
                del.execute(params![seq])?;
            }
        }
        tx.commit()?;
        Ok(entries.len() >= self.cfg.batch)
    }

    /// Upserts the current local contents of `rows` in one transaction; returns how many.
    async fn ship(&self, link: &Link, rows: &[(&'static Table, String)]) -> Result<usize, Failure> {
        let mut values: Vec<(&'static str, Vec<Box<dyn ToSql + Sync + Send>>)> = Vec::with_capacity(rows.len());
        for (t, key) in rows {
            if let Some(v) = self.read_row(t, key)? {
                values.push((t.name, v));
            }
        }
        let work = async {
            link.client.batch_execute("BEGIN").await?;
            for (name, v) in &values {
                let Some(st) = link.upserts.get(name) else { continue };
                let mut p: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(v.len() + 1);
                p.push(&self.source);
                p.extend(v.iter().map(|b| &**b as &(dyn ToSql + Sync)));
                link.client.execute(st, &p).await?;
            }
            link.client.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(())
        };
        self.timed(work).await??;
        self.counters.shipped.fetch_add(values.len() as u64, Ordering::Relaxed);
        Ok(values.len())
    }

    /// The row of `t` with `key` as PostgreSQL parameters (key first); `None` if it is gone.
    fn read_row(&self, t: &Table, key: &str) -> Result<Option<Vec<Box<dyn ToSql + Sync + Send>>>, Failure> {
        let sql = format!("{} WHERE {} = ?1", tables::select_local(t), t.key);
        let mut st = self.local()?.prepare_cached(&sql)?;
        let key_param: rusqlite::types::Value = match t.key_kind {
            Kind::Int | Kind::OptInt => rusqlite::types::Value::Integer(key.parse()?),
            Kind::Text | Kind::OptText => rusqlite::types::Value::Text(key.to_string()),
        };
        let row = st
            .query_row(params![key_param], |r| {
                let mut out: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(t.columns.len() + 1);
                let kinds = std::iter::once(t.key_kind).chain(t.columns.iter().map(|(_, k)| *k));
                for (i, kind) in kinds.enumerate() {
                    out.push(match kind {
                        Kind::Int => Box::new(r.get::<_, i64>(i)?),
                        Kind::OptInt => Box::new(r.get::<_, Option<i64>>(i)?),
                        Kind::Text => Box::new(r.get::<_, String>(i)?),
                        Kind::OptText => Box::new(r.get::<_, Option<String>>(i)?),
                    });
                }
                Ok(out)
            })
            .optional()?;
        Ok(row)
    }

    /// Says this source is alive, measures the clock, and looks for a duplicate of it.
    async fn heartbeat(&mut self, link: &Link) -> Result<(), Failure> {
        let before = crate::domain::unix_ms(std::time::SystemTime::now());
        let now_row = self
            .timed(
                link.client
                    .query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[]),
            )
            .await??;
        let after = crate::domain::unix_ms(std::time::SystemTime::now());
        let db_ms: i64 = now_row.get(0);
        let skew = (before + after) / 2 - db_ms;
        self.counters.skew_ms.store(skew, Ordering::Relaxed);
        if skew.abs() > SKEW_WARN_MS {
            self.complain(
                "skew",
                &format!(
                    "this clock is {:.1} s off the shared ledger's: its records will not line up with the other vantages' (fix NTP)",
                    skew as f64 / 1000.0
                ),
            );
        }
        let (index, count) = (i32::try_from(self.cfg.shard.0)?, i32::try_from(self.cfg.shard.1)?);
        let work = async {
            link.client
                .execute(
                    "INSERT INTO sources (source, vantage, shard_index, shard_count, host, seen_ms, clock_skew_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source) DO UPDATE SET vantage = EXCLUDED.vantage, \
                     shard_index = EXCLUDED.shard_index, shard_count = EXCLUDED.shard_count, host = EXCLUDED.host, \
                     seen_ms = EXCLUDED.seen_ms, clock_skew_ms = EXCLUDED.clock_skew_ms",
                    &[&self.source, &self.cfg.vantage, &index, &count, &self.host, &db_ms, &skew],
                )
                .await?;
            link.client
                .query(
                    "SELECT source, host FROM sources WHERE vantage = $1 AND shard_index = $2 AND shard_count = $3 \
                     AND source <> $4 AND seen_ms > $5",
                    &[&self.cfg.vantage, &index, &count, &self.source, &(db_ms - LIVE_MS)],
                )
                .await
        };
        let twins = self.timed(work).await??;
        self.counters.conflicts.store(twins.len() as u64, Ordering::Relaxed);
        if let Some(twin) = twins.first() {
            let (other, host): (String, String) = (twin.get(0), twin.get(1));
            self.complain(
                "twin",
                &format!(
                    "another live instance (source {other} on host {host:?}) ships with the same vantage {:?} and shard {}/{}: \
                     give each instance its own vantage name or shard (the merged view counts a vantage once)",
                    self.cfg.vantage, self.cfg.shard.0, self.cfg.shard.1
                ),
            );
        }
        Ok(())
    }

    /// Logs `message` as an error, at most once a minute per `kind`.
    fn complain(&mut self, kind: &'static str, message: &str) {
        let now = Instant::now();
        if self
            .last_log
            .get(kind)
            .is_some_and(|t| now.duration_since(*t) < LOG_EVERY)
        {
            return;
        }
        self.last_log.insert(kind, now);
        tracing::error!(source = %self.source, vantage = %self.cfg.vantage, "{message}");
    }
}

fn key_text(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    match r.get_ref(0)? {
        rusqlite::types::ValueRef::Integer(i) => Ok(i.to_string()),
        v => Ok(v.as_str().unwrap_or_default().to_string()),
    }
}

/// Brings the database's schema to the latest version, once even when vantages start together.
async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS diemcau_schema (version integer NOT NULL)")
        .await?;
    let version: i64 = tx
        .query_one("SELECT coalesce(max(version), 0)::bigint FROM diemcau_schema", &[])
        .await?
        .get(0);
    for (i, sql) in tables::migrations().iter().enumerate() {
        let v = i as i64 + 1;
        if v > version {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO diemcau_schema (version) VALUES ($1::bigint::integer)",
                &[&v],
            )
            .await?;
        }
    }
    tx.commit().await
}
