//! The merged view of the shared ledger: each source's histories built as the local ledger's
//! are, grouped by vantage, then merged ([`crate::domain::merge`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use crate::config::store::SharedLedger;
use crate::domain::Labels;
use crate::domain::merge::{DownAt, FaultAt, LiveVote, Merged, MergedAt, Now, Quorum, judge_now, merge};
use crate::domain::sla::{EndpointHistory, Interval};
use crate::store::StoreError;
use crate::store::history::{HistoryRows, PresenceRow, build};
use crate::store::query::{InterruptionRow, OutageRow, RunRow};

/// Longest wait for the whole read.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A source that heartbeat within this long is live (the shipper heartbeats every second).
pub const LIVE_MS: i64 = 60_000;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One instance (a vantage's shard) as the shared ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceRow {
    pub source: String,
    pub vantage: String,
    pub shard_index: i32,
    pub shard_count: i32,
    pub host: String,
    /// Its last heartbeat, in the database's clock.
    pub seen_ms: i64,
    /// Its clock minus the database's.
    pub clock_skew_ms: i64,
    /// Its ledger's last heartbeat (`runs.last_seen_ms`): what it has shipped reaches that far.
    pub shipped_to_ms: Option<i64>,
    /// Heard from within [`LIVE_MS`].
    pub live: bool,
}

/// The live merged view: every instance, and the merged verdict at the latest moment every
/// live instance has shipped.
#[derive(Clone, Debug, Serialize)]
pub struct LiveView {
    pub sources: Vec<SourceRow>,
    pub now: MergedAt,
}

/// Runs `read` on a runtime of its own, under [`READ_TIMEOUT`]. Blocking.
fn blocking<T>(ledger: &SharedLedger, read: impl AsyncFnOnce(Client) -> Result<T, Failure>) -> Result<T, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Shared(format!("cannot start a runtime to read it: {e}")))?;
    runtime
        .block_on(async {
            tokio::time::timeout(READ_TIMEOUT, async {
                let client = super::connect::connect(ledger).await?;
                read(client).await
            })
            .await
        })
        .map_err(|_| StoreError::Shared(format!("no answer within {READ_TIMEOUT:?}")))?
        .map_err(|e| StoreError::Shared(super::connect::with_causes(e)))
}

/// Every vantage's histories over `period`, merged with `quorum`. Blocking (a runtime of its
/// own): call it from a blocking thread.
pub fn merged_histories(
    ledger: &SharedLedger,
    period: Interval,
    now_ms: i64,
    quorum: Quorum,
) -> Result<Merged, StoreError> {
    blocking(ledger, async |client| merged(&client, period, now_ms, quorum).await)
}

/// The live merged view: the open outages and open presence of every live instance, judged
/// with `quorum`. Reads only what is open now (partial indexes), so its cost follows the
/// outages, not the size of the estate. Blocking.
pub fn live_view(ledger: &SharedLedger, quorum: Quorum) -> Result<LiveView, StoreError> {
    blocking(ledger, async |client| {
        let sources = sources(&client).await?;
        let vantage_of: HashMap<&str, &str> = sources
            .iter()
            .filter(|s| s.live)
            .map(|s| (s.source.as_str(), s.vantage.as_str()))
            .collect();
        // endpoint → (vantage, Down since (s)) of every live instance watching it.
        let mut votes: BTreeMap<String, Vec<(&str, Option<i64>)>> = BTreeMap::new();
        for r in client
            .query(
                "SELECT source, endpoint, min(start_ms) FROM outages WHERE end_ms IS NULL GROUP BY 1, 2",
                &[],
            )
            .await?
        {
            let (source, endpoint, start_ms): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            if let Some(v) = vantage_of.get(source.as_str()) {
                votes
                    .entry(endpoint)
                    .or_default()
                    .push((v, Some(start_ms.div_euclid(1000))));
            }
        }
        let owned_ids: Vec<String> = votes.keys().cloned().collect();
        let ids: Vec<&str> = owned_ids.iter().map(String::as_str).collect();
        for r in client
            .query(
                "SELECT DISTINCT source, endpoint FROM presence WHERE to_ms IS NULL AND endpoint = ANY($1)",
                &[&ids],
            )
            .await?
        {
            let (source, endpoint): (String, String) = (r.get(0), r.get(1));
            if let (Some(v), Some(list)) = (vantage_of.get(source.as_str()), votes.get_mut(&endpoint)) {
                list.push((v, None));
            }
        }
        let labels = labels_of(&client, &ids).await?;
        let mut now = MergedAt {
            // What every live instance has shipped: their last heartbeats, in the database's clock.
            at: sources
                .iter()
                .filter(|s| s.live)
                .map(|s| s.seen_ms.div_euclid(1000))
                .min()
                .unwrap_or(0),
            ..MergedAt::default()
        };
        for (id, list) in &votes {
            let ballots: Vec<LiveVote> = list
                .iter()
                .map(|(vantage, down_since)| LiveVote {
                    vantage,
                    down_since: *down_since,
                })
                .collect();
            let labels = labels.get(id).cloned().unwrap_or_default();
            match judge_now(&ballots, quorum) {
                Now::Up => {}
                Now::Down { since } => now.down.push(DownAt {
                    id: id.clone(),
                    labels,
                    since,
                }),
                Now::VantageFaults(faults) => {
                    for (vantage, since) in faults {
                        now.vantage_faults.push(FaultAt {
                            id: id.clone(),
                            labels: labels.clone(),
                            vantage,
                            since,
                        });
                    }
                }
            }
        }
        Ok(LiveView { sources, now })
    })
}

/// The labels of `ids` as some instance recorded them.
async fn labels_of(client: &Client, ids: &[&str]) -> Result<HashMap<String, Labels>, Failure> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (id) id, province, district, commune, carrier FROM endpoints \
             WHERE id = ANY($1) ORDER BY id, first_seen_ms DESC",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let district: String = r.get(2);
            let labels = Labels {
                province: r.get::<_, String>(1).into(),
                district: (!district.is_empty()).then(|| district.into()),
                commune: r.get::<_, String>(3).into(),
                carrier: r.get::<_, String>(4).into(),
            };
            (r.get(0), labels)
        })
        .collect())
}

async fn sources(client: &Client) -> Result<Vec<SourceRow>, Failure> {
    let rows = client
        .query(
            "SELECT s.source, s.vantage, s.shard_index, s.shard_count, s.host, s.seen_ms, s.clock_skew_ms, \
             (SELECT max(r.last_seen_ms) FROM runs r WHERE r.source = s.source), \
             s.seen_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1 \
             FROM sources s ORDER BY s.vantage, s.shard_index, s.source",
            &[&LIVE_MS],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SourceRow {
            source: r.get(0),
            vantage: r.get(1),
            shard_index: r.get(2),
            shard_count: r.get(3),
            host: r.get(4),
            seen_ms: r.get(5),
            clock_skew_ms: r.get(6),
            shipped_to_ms: r.get(7),
            live: r.get(8),
        })
        .collect())
}

async fn merged(client: &Client, period: Interval, now_ms: i64, quorum: Quorum) -> Result<Merged, Failure> {
    let sources = client
        .query("SELECT source, vantage FROM sources ORDER BY vantage, source", &[])
        .await?;
    let mut per_vantage: Vec<(String, Vec<EndpointHistory>)> = Vec::new();
    for s in sources {
        let (source, vantage): (String, String) = (s.get(0), s.get(1));
        let rows = rows_of(client, &source, period).await?;
        per_vantage.push((vantage, build(rows, period, now_ms, |r| r.last_seen_ms)));
    }
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
