//! The shipper's metrics, read from its counters at scrape time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::{Gauge, IntCounter, IntGauge};

use super::Counters;

/// `diemcau_store_replica_healthy`, `…_backlog_rows`, `…_rows_shipped_total`,
/// `…_errors_total`, `…_last_ship_unix_seconds`, `…_conflicting_sources`,
/// `diemcau_clock_skew_seconds`.
pub struct ReplicaCollector {
    counters: Arc<Counters>,
    healthy: IntGauge,
    backlog: IntGauge,
    shipped: IntCounter,
    errors: IntCounter,
    last_ship: Gauge,
    conflicts: IntGauge,
    skew: Gauge,
}

impl ReplicaCollector {
    pub(super) fn new(counters: Arc<Counters>) -> ReplicaCollector {
        // Static, valid names: these constructors cannot fail.
        let int = |n: &str, h: &str| IntGauge::new(n, h).expect("static metric definition");
        let counter = |n: &str, h: &str| IntCounter::new(n, h).expect("static metric definition");
        let float = |n: &str, h: &str| Gauge::new(n, h).expect("static metric definition");
        ReplicaCollector {
            counters,
            healthy: int(
                "diemcau_store_replica_healthy",
                "1 when the last shipping round to the shared ledger succeeded.",
            ),
            backlog: int(
                "diemcau_store_replica_backlog_rows",
                "Ledger rows changed and not yet shipped to the shared ledger.",
            ),
            shipped: counter(
                "diemcau_store_replica_rows_shipped_total",
                "Ledger rows written to the shared ledger.",
            ),
            errors: counter(
                "diemcau_store_replica_errors_total",
                "Failed connections to or rounds with the shared ledger.",
            ),
            last_ship: float(
                "diemcau_store_replica_last_ship_unix_seconds",
                "Time of the last successful shipping round.",
            ),
            conflicts: int(
                "diemcau_store_replica_conflicting_sources",
                "Other live instances shipping with this vantage name and shard (each would count twice).",
            ),
            skew: float(
                "diemcau_clock_skew_seconds",
                "This instance's clock minus the shared ledger database's clock.",
            ),
        }
    }

    fn metrics(&self) -> [&dyn Collector; 7] {
        [
            &self.healthy,
            &self.backlog,
            &self.shipped,
            &self.errors,
            &self.last_ship,
            &self.conflicts,
            &self.skew,
        ]
    }
}

impl Collector for ReplicaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.metrics().into_iter().flat_map(|m| m.desc()).collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let c = &self.counters;
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.healthy.set(i64::from(c.healthy.load(Ordering::Relaxed)));
        self.backlog.set(to_i64(c.backlog.load(Ordering::Relaxed)));
        for (m, v) in [(&self.shipped, &c.shipped), (&self.errors, &c.errors)] {
            m.inc_by(v.load(Ordering::Relaxed).saturating_sub(m.get()));
        }
        self.last_ship
            .set(c.last_ship_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        self.conflicts.set(to_i64(c.conflicts.load(Ordering::Relaxed)));
        self.skew.set(c.skew_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        self.metrics().into_iter().flat_map(|m| m.collect()).collect()
    }
}
