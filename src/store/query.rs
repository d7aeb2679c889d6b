//! Read side: histories for SLA reports, transitions, outages, runs.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Row, params};

use super::StoreError;
use super::history::{HistoryRows, PresenceRow, build};
use super::schema::BUSY_TIMEOUT;
use crate::domain::health::State;
use crate::domain::sla::{EndpointHistory, Interval};
use crate::domain::{EndpointId, Transition};

/// One stored state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedTransition {
    /// The daemon run that recorded it.
    pub run_id: i64,
    pub transition: Transition,
}

/// One outage; `end_ms` is `None` while open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutageRow {
    pub run_id: i64,
    pub endpoint: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub cause: String,
    pub check: String,
    pub end_reason: Option<String>,
    /// Where the fault lay: `endpoint`, `path`, `monitor`, or `unknown` (not placed).
    pub domain: String,
    /// The router that failed (`path`), empty when none was named.
    pub failing_hop: String,
}

/// One endpoint's baseline path (see the `paths` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineRow {
    pub endpoint: String,
    /// The address the path leads to.
    pub address: String,
    /// One hop per TTL, `*` where nothing answered: `10.0.0.1 * 10.1.0.1`.
    pub hops: String,
    pub learned_ms: i64,
}

/// One daemon run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub run_id: i64,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    pub clean_stop: bool,
    /// When a later run found this one crashed.
    pub recovered_ms: Option<i64>,
    /// Where it probed from (`[vantage] name`; empty for runs before the ledger recorded it).
    pub vantage: String,
}

/// A span of a run when the monitor saw nothing (see the `pauses` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseRow {
    pub run_id: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub cause: String,
    /// "ipv4" or "ipv6" when only that family was unseen; "" for every endpoint.
    pub family: String,
}

/// A break of one endpoint too short to confirm (see the `interruptions` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterruptionRow {
    pub run_id: i64,
    pub endpoint: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A read-only connection. Sees committed data only (not records still queued in memory).
pub struct StoreReader {
    conn: Connection,
    /// The run writing right now, if known: it counts as monitoring up to the `now` of a query.
    live_run: Option<i64>,
}

fn state(text: &str) -> Result<State, StoreError> {
    State::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::Invalid(format!("unknown state {text:?}")))
}

/// Unix milliseconds → unix seconds, rounding down.
impl StoreReader {
    /// Opens an existing ledger read-only, e.g. for `diemcau report` beside a running daemon.
    /// Without a live run, every run ends at its last heartbeat.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        Self::open_live(path, None)
    }

    pub(crate) fn open_live(path: &Path, live_run: Option<i64>) -> Result<StoreReader, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(StoreReader { conn, live_run })
    }

    fn run_end(&self, run_id: i64, last_seen_ms: i64, now_ms: i64) -> i64 {
        if Some(run_id) == self.live_run {
            last_seen_ms.max(now_ms)
        } else {
            last_seen_ms
        }
    }

    /// Every pause (span of a run when the monitor saw nothing), oldest first.
    pub fn pauses(&self) -> Result<Vec<PauseRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT run_id, from_ms, to_ms, cause, family FROM pauses ORDER BY from_ms, id")?;
        let rows = st.query_map([], |r| {
            Ok(PauseRow {
                run_id: r.get(0)?,
                from_ms: r.get(1)?,
                to_ms: r.get(2)?,
                cause: r.get(3)?,
                family: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every endpoint's baseline path as last recorded.
    pub fn baselines(&self) -> Result<Vec<BaselineRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT endpoint, address, hops, learned_ms FROM paths ORDER BY endpoint")?;
        let rows = st.query_map([], |r| {
            Ok(BaselineRow {
                endpoint: r.get(0)?,
                address: r.get(1)?,
                hops: r.get(2)?,
                learned_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Breaks too short to confirm that meet `[from_ms, to_ms)`, by endpoint then start.
    pub fn interruptions(&self, from_ms: i64, to_ms: i64) -> Result<Vec<InterruptionRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT run_id, endpoint, start_ms, end_ms FROM interruptions \
             WHERE start_ms < ?2 AND end_ms >= ?1 ORDER BY endpoint, start_ms, id",
        )?;
        let rows = st.query_map(params![from_ms, to_ms], |r| {
            Ok(InterruptionRow {
                run_id: r.get(0)?,
                endpoint: r.get(1)?,
                start_ms: r.get(2)?,
                end_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT run_id, started_ms, last_seen_ms, clean_stop, recovered_ms, vantage FROM runs ORDER BY run_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(RunRow {
                run_id: r.get(0)?,
                started_ms: r.get(1)?,
                last_seen_ms: r.get(2)?,
                clean_stop: r.get::<_, i64>(3)? != 0,
                recovered_ms: r.get(4)?,
                vantage: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// State changes of `endpoint` in `[from_ms, to_ms)`, in order.
    pub fn transitions(&self, endpoint: &str, from_ms: i64, to_ms: i64) -> Result<Vec<RecordedTransition>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT run_id, endpoint, from_state, to_state, at_ms, reason, check_kind FROM transitions \
             WHERE endpoint = ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms, id",
        )?;
        let mut rows = st.query(params![endpoint, from_ms, to_ms])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (from, to): (String, String) = (r.get(2)?, r.get(3)?);
            let (endpoint, check): (String, String) = (r.get(1)?, r.get(6)?);
            out.push(RecordedTransition {
                run_id: r.get(0)?,
                transition: Transition {
                    endpoint: EndpointId(endpoint.into()),
                    from: state(&from)?,
                    to: state(&to)?,
                    at_ms: r.get(4)?,
                    check: check.into(),
                    reason: r.get(5)?,
                },
            });
        }
        Ok(out)
    }

    /// How many transitions are stored (all endpoints).
    pub fn transition_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM transitions", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn outage_row(r: &Row<'_>) -> rusqlite::Result<OutageRow> {
        Ok(OutageRow {
            run_id: r.get(0)?,
            endpoint: r.get(1)?,
            start_ms: r.get(2)?,
            end_ms: r.get(3)?,
            cause: r.get(4)?,
            check: r.get(5)?,
            end_reason: r.get(6)?,
            domain: r.get(7)?,
            failing_hop: r.get(8)?,
        })
    }

    /// Outages still open, oldest first.
    pub fn open_outages(&self) -> Result<Vec<OutageRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT run_id, endpoint, start_ms, end_ms, cause, check_kind, end_reason, domain, failing_hop FROM outages \
             WHERE end_ms IS NULL ORDER BY start_ms, id",
        )?;
        let rows = st.query_map([], Self::outage_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outages of `endpoint` (every endpoint when `None`) that meet `[from_ms, to_ms)`.
    pub fn outages(&self, endpoint: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<OutageRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT run_id, endpoint, start_ms, end_ms, cause, check_kind, end_reason, domain, failing_hop FROM outages \
             WHERE (?1 IS NULL OR endpoint = ?1) AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2) \
             ORDER BY endpoint, start_ms, id",
        )?;
        let rows = st.query_map(params![endpoint, from_ms, to_ms], Self::outage_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What the ledger knows over `period` (unix seconds), for [`crate::domain::sla::compute`]: one
    /// history per endpoint present in the inventory at some time in the period, sorted by id.
    /// `exists` = its stays in the inventory; `monitored` = the runs (`[started, last_seen]`,
    /// the live run up to `now_ms`) less their pauses; `down` = its outages (an open one ends at `now_ms`, or at
    /// its run's last heartbeat when that run is not live). `maintenance` is left empty: the
    /// caller adds the planned windows. Milliseconds are rounded down to seconds.
    pub fn histories(&self, period: Interval, now_ms: i64) -> Result<Vec<EndpointHistory>, StoreError> {
        let (p0, p1) = (period.start.saturating_mul(1000), period.end.saturating_mul(1000));
        let mut pauses = Vec::new();
        {
            let mut st = self
                .conn
                .prepare_cached("SELECT from_ms, to_ms, family FROM pauses WHERE from_ms < ?2 AND to_ms > ?1")?;
            let mut rows = st.query(params![p0, p1])?;
            while let Some(r) = rows.next()? {
                pauses.push((r.get(0)?, r.get(1)?, r.get(2)?));
            }
        }
        let mut presence = Vec::new();
        {
            let mut st = self.conn.prepare(
                "SELECT p.endpoint, p.from_ms, p.to_ms, e.province, e.district, e.commune, e.carrier, e.address \
                 FROM presence p JOIN endpoints e ON e.id = p.endpoint \
                 WHERE p.from_ms < ?2 AND (p.to_ms IS NULL OR p.to_ms > ?1)",
            )?;
            let mut rows = st.query(params![p0, p1])?;
            while let Some(r) = rows.next()? {
                presence.push(PresenceRow {
                    endpoint: r.get(0)?,
                    from_ms: r.get(1)?,
                    to_ms: r.get(2)?,
                    province: r.get(3)?,
                    district: r.get(4)?,
                    commune: r.get(5)?,
                    carrier: r.get(6)?,
                    address: r.get(7)?,
                });
            }
        }
        let rows = HistoryRows {
            runs: self.runs()?,
            pauses,
            presence,
            interruptions: self.interruptions(p0, p1)?,
            outages: self.outages(None, p0, p1)?,
        };
        Ok(build(rows, period, now_ms, |r| {
            self.run_end(r.run_id, r.last_seen_ms, now_ms)
        }))
    }
}
