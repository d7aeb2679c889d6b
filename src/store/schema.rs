//! Schema migrations, connection set-up, crash recovery and the start of a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use rusqlite_migration::{M, Migrations};

use super::identity::{Held, io};
use super::{END_MONITOR_STOPPED, StoreError};
use crate::store::Clock;

/// Versioned schema (`PRAGMA user_version`): one entry per version. Append new migrations;
/// never edit released ones.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs, inventory, transitions, outages.
    "CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        clean_stop INTEGER NOT NULL DEFAULT 0,
        recovered_ms INTEGER
    ) STRICT;
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        province TEXT NOT NULL,
        district TEXT NOT NULL,
        commune TEXT NOT NULL,
        carrier TEXT NOT NULL,
        address TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        removed_ms INTEGER
    ) STRICT;
    CREATE TABLE presence (
        id INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        from_ms INTEGER NOT NULL,
        to_ms INTEGER
    ) STRICT;
    CREATE INDEX presence_by_endpoint ON presence (endpoint, from_ms);
    CREATE UNIQUE INDEX presence_open ON presence (endpoint) WHERE to_ms IS NULL;
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        check_kind TEXT NOT NULL
    ) STRICT;
    CREATE INDEX transitions_by_endpoint ON transitions (endpoint, at_ms);
    CREATE TABLE outages (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        cause TEXT NOT NULL,
        check_kind TEXT NOT NULL,
        end_reason TEXT
    ) STRICT;
    CREATE INDEX outages_by_endpoint ON outages (endpoint, start_ms);
    CREATE INDEX outages_by_start ON outages (start_ms);
    CREATE UNIQUE INDEX outages_open ON outages (endpoint) WHERE end_ms IS NULL;",
    // 2: the months each scheduled report has written and mailed (see `report_runs`).
    "CREATE TABLE report_runs (
        schedule TEXT NOT NULL,
        month TEXT NOT NULL,
        written_ms INTEGER NOT NULL,
        files TEXT NOT NULL,
        adopted INTEGER NOT NULL DEFAULT 0,
        mail_started_ms INTEGER,
        mailed_ms INTEGER,
        mail_error TEXT,
        PRIMARY KEY (schedule, month)
    ) STRICT;",
    // 3: spans inside a run when the monitor saw nothing (a stalled engine: process stopped,
    // machine suspended): unknown time, subtracted from the run's monitored span.
    "CREATE TABLE pauses (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        cause TEXT NOT NULL
    ) STRICT;
    CREATE INDEX pauses_by_start ON pauses (from_ms);",
    // 4: breaks too short to confirm (a silent round whose confirmation answered late): not
    // downtime, but counted in the reports.
    "CREATE TABLE interruptions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX interruptions_by_endpoint ON interruptions (endpoint, start_ms);",
    // 5: the vantage each run probed from ([vantage] name); runs before it were unnamed.
    "ALTER TABLE runs ADD COLUMN vantage TEXT NOT NULL DEFAULT '';",
    // 6: a pause of one address family ('ipv4', 'ipv6': its uplink was cut); '' = every endpoint.
    "ALTER TABLE pauses ADD COLUMN family TEXT NOT NULL DEFAULT '';",
    // 7: where each outage's fault lay (a path trace: 'endpoint', 'path', 'monitor'; 'unknown'
    // = not placed) and the router that failed; each endpoint's baseline path, kept across
    // restarts ('10.0.0.1 * 10.1.0.1': one hop per TTL, '*' = no answer) with the address it
    // leads to (a changed address makes it void).
    "ALTER TABLE outages ADD COLUMN domain TEXT NOT NULL DEFAULT 'unknown';
    ALTER TABLE outages ADD COLUMN failing_hop TEXT NOT NULL DEFAULT '';
    CREATE TABLE paths (
        endpoint TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        hops TEXT NOT NULL,
        learned_ms INTEGER NOT NULL
    ) STRICT;",
    // 8: the shared ledger (`[store] url`): the rows changed since they were last shipped to
    // PostgreSQL, one entry per row (a later change moves it to the end: the triggers delete
    // and insert, whatever conflict policy the statement that fired them has), and this ledger's
    // identity there (`source`, random, made once).
    "CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        UNIQUE (tbl, key) ON CONFLICT REPLACE
    ) STRICT;
    CREATE TABLE ledger_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    INSERT INTO ledger_meta (key, value) VALUES ('source', lower(hex(randomblob(16))));",
];

/// The tables shipped to a shared ledger, each with its key column.
pub(crate) const SHIPPED: &[(&str, &str)] = &[
    ("runs", "run_id"),
    ("endpoints", "id"),
    ("presence", "id"),
    ("transitions", "id"),
    ("outages", "id"),
    ("pauses", "id"),
    ("interruptions", "id"),
];

/// Makes every change of a shipped table leave its key in the outbox, in the same transaction.
/// Temporary triggers: they live on the writer's connection only, so a ledger without a shared
/// copy never fills its outbox. Called on every (re)connection of the writer.
pub(crate) fn outbox_triggers(conn: &Connection) -> Result<(), StoreError> {
    let mut sql = String::new();
    for (table, key) in SHIPPED {
        for event in ["INSERT", "UPDATE"] {
            sql.push_str(&format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS outbox_{table}_{ev} AFTER {event} ON main.{table} \
                 BEGIN DELETE FROM main.outbox WHERE tbl = '{table}' AND key = CAST(NEW.{key} AS TEXT); \
                 INSERT INTO main.outbox (tbl, key) VALUES ('{table}', CAST(NEW.{key} AS TEXT)); END;\n",
                ev = event.to_ascii_lowercase()
            ));
        }
    }
    conn.execute_batch(&sql)?;
    Ok(())
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A run found without a clean stop, closed at its last heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub run_id: i64,
    pub last_seen_ms: i64,
    pub outages_closed: usize,
}

pub(crate) struct Opened {
    pub conn: Connection,
    /// The database file, flocked (declared after `conn`: it must outlive the connection).
    pub db: Held,
    /// `<path>.lock`, flocked.
    pub lock: Held,
    pub run_id: i64,
    pub started_ms: i64,
    pub recovered: Vec<Recovered>,
}

pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// A read-write connection with the ledger's pragmas (WAL, synchronous=FULL). Never creates the
/// file (the writer creates it when locking it): a reconnection to a deleted path fails instead
/// of leaving an empty database there.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Small batches of small rows: 256 KiB of page cache is plenty (SQLite's default is 2 MiB).
    conn.pragma_update(None, "cache_size", -256)?;
    conn.pragma_update(None, "foreign_keys", false)?;
    Ok(conn)
}

/// Locks, opens, migrates, recovers crashed runs and starts a new run.
pub(crate) fn open_writer(path: &Path, vantage: &str, outbox: bool, clock: &dyn Clock) -> Result<Opened, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // The lock file first, then the database itself: a second writer is refused even when the
    // lock file was deleted.
    let lock = Held::lock(&lock_path(path))?;
    let db = Held::lock(path)?;
    let mut conn = connect(path)?;
    migrations().to_latest(&mut conn)?;
    if outbox {
        outbox_triggers(&conn)?;
    }
    let now = clock.now_ms();
    let tx = conn.transaction()?;
    let mut recovered = Vec::new();
    {
        let mut crashed =
            tx.prepare("SELECT run_id, last_seen_ms FROM runs WHERE clean_stop = 0 AND recovered_ms IS NULL")?;
        let rows = crashed.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (run_id, last_seen_ms) = row?;
            let outages_closed = tx.execute(
                "UPDATE outages SET end_ms = max(start_ms, ?2), end_reason = ?3 \
                 WHERE end_ms IS NULL AND run_id = ?1",
                params![run_id, last_seen_ms, END_MONITOR_STOPPED],
            )?;
            tx.execute(
                "UPDATE runs SET recovered_ms = ?2 WHERE run_id = ?1",
                params![run_id, now],
            )?;
            recovered.push(Recovered {
                run_id,
                last_seen_ms,
                outages_closed,
            });
        }
    }
    // Anything still open belongs to no known run (hand-edited rows): close it at its start.
    tx.execute(
        "UPDATE outages SET end_ms = start_ms, end_reason = ?1 WHERE end_ms IS NULL",
        params![END_MONITOR_STOPPED],
    )?;
    tx.execute(
        "INSERT INTO runs (started_ms, last_seen_ms, clean_stop, vantage) VALUES (?1, ?1, 0, ?2)",
        params![now, vantage],
    )?;
    let run_id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(Opened {
        conn,
        db,
        lock,
        run_id,
        started_ms: now,
        recovered,
    })
}
