//! The merged view of the shared ledger: each source's histories built as the local ledger's
//! are, grouped by vantage, then merged ([`crate::domain::merge`]).

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::store::SharedLedger;
use crate::domain::merge::{Merged, Quorum, merge};
use crate::domain::sla::{EndpointHistory, Interval};
use crate::store::StoreError;
use crate::store::history::{HistoryRows, PresenceRow, build};
use crate::store::query::{InterruptionRow, OutageRow, RunRow};

/// Longest wait for the whole read.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Every vantage's histories over `period`, merged with `quorum`. Blocking (a runtime of its
/// own): call it from a blocking thread.
pub fn merged_histories(
    ledger: &SharedLedger,
    period: Interval, now_ms: i64, quorum: Quorum) -> Result<Merged, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Shared(format!("cannot start a runtime to read it: {e}")))?;
    let read = async {
        let client = super::connect::connect(ledger).await?;
        let sources = client
            .query("SELECT source, vantage FROM sources ORDER BY vantage, source", &[])
            .await?;
        let mut per_vantage: Vec<(String, Vec<EndpointHistory>)> = Vec::new();
        for s in sources {
            let (source, vantage): (String, String) = (s.get(0), s.get(1));
            let rows = rows_of(&client, &source, period).await?;
            per_vantage.push((vantage, build(rows, period, now_ms, |r| r.last_seen_ms)));
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(per_vantage)
    };
    let per_vantage = runtime
        .block_on(async { tokio::time::timeout(READ_TIMEOUT, read).await })
        .map_err(|_| StoreError::Shared(format!("no answer within {READ_TIMEOUT:?}")))?
        .map_err(|e| StoreError::Shared(super::connect::with_causes(e)))?;
    Ok(merge(&per_vantage, quorum))
}

/// One source's rows over `period`, as the local reader fetches them.
async fn rows_of(client: &Client, source: &str, period: Interval) -> Result<HistoryRows, tokio_postgres::Error> {
    let (p0, p1) = (period.start.saturating_mul(1000), period.end.saturating_mul(1000));
    let runs = client
        .query(
            "SELECT run_id, started_ms, last_seen_ms, clean_stop, recovered_ms, vantage FROM runs \
             WHERE source = $1 ORDER BY run_id",
            &[&source],
        )
        .await?
        .iter()
        .map(|r| RunRow {
            run_id: r.get(0),
            started_ms: r.get(1),
            last_seen_ms: r.get(2),
            clean_stop: r.get::<_, i64>(3) != 0,
            recovered_ms: r.get(4),
            vantage: r.get(5),
        })
        .collect();
    let pauses = client
        .query(
            "SELECT from_ms, to_ms, family FROM pauses WHERE source = $1 AND from_ms < $3 AND to_ms > $2",
            &[&source, &p0, &p1],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let presence = client
        .query(
            "SELECT p.endpoint, p.from_ms, p.to_ms, e.province, e.district, e.commune, e.carrier, e.address \
             FROM presence p JOIN endpoints e ON e.source = p.source AND e.id = p.endpoint \
             WHERE p.source = $1 AND p.from_ms < $3 AND (p.to_ms IS NULL OR p.to_ms > $2)",
            &[&source, &p0, &p1],
        )
        .await?
        .iter()
        .map(|r| PresenceRow {
            endpoint: r.get(0),
            from_ms: r.get(1),
            to_ms: r.get(2),
            province: r.get(3),
            district: r.get(4),
            commune: r.get(5),
            carrier: r.get(6),
            address: r.get(7),
        })
        .collect();
    let interruptions = client
        .query(
            "SELECT run_id, endpoint, start_ms, end_ms FROM interruptions \
             WHERE source = $1 AND start_ms < $3 AND end_ms >= $2 ORDER BY endpoint, start_ms, id",
            &[&source, &p0, &p1],
        )
        .await?
        .iter()
        .map(|r| InterruptionRow {
            run_id: r.get(0),
            endpoint: r.get(1),
            start_ms: r.get(2),
            end_ms: r.get(3),
        })
        .collect();
    let outages = client
        .query(
            "SELECT run_id, endpoint, start_ms, end_ms, cause, check_kind, end_reason, domain, failing_hop FROM outages \
             WHERE source = $1 AND start_ms < $3 AND (end_ms IS NULL OR end_ms > $2) ORDER BY endpoint, start_ms, id",
            &[&source, &p0, &p1],
        )
        .await?
        .iter()
        .map(|r| OutageRow {
            run_id: r.get(0),
            endpoint: r.get(1),
            start_ms: r.get(2),
            end_ms: r.get(3),
            cause: r.get(4),
            check: r.get(5),
            end_reason: r.get(6),
            domain: r.get(7),
            failing_hop: r.get(8),
        })
        .collect();
    Ok(HistoryRows {
        runs,
        pauses,
        presence,
        interruptions,
        outages,
    })
}
