//! The ledger's own metrics, read from the writer's counters at scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Collector, Desc};
use prometheus::{Gauge, IntCounter, IntGauge};

use super::Counters;

/// The store's Prometheus families, filled from its counters on each scrape:
/// `diemcau_store_write_errors_total`, `diemcau_store_records_pending`,
/// `diemcau_store_records_dropped_total`, `diemcau_store_records_committed_total`,
/// `diemcau_store_commits_total`, `diemcau_store_last_commit_unix_seconds`,
/// `diemcau_store_healthy`, `diemcau_store_file_replaced_total`.
pub struct StoreCollector {
    counters: Arc<Counters>,
    write_errors: IntCounter,
    pending: IntGauge,
    dropped: IntCounter,
    committed: IntCounter,
    commits: IntCounter,
    last_commit: Gauge,
    healthy: IntGauge,
    replaced: IntCounter,
}

impl StoreCollector {
    pub(super) fn new(counters: Arc<Counters>) -> StoreCollector {
        // Static, valid names: these constructors cannot fail.
        let counter = |n: &str, h: &str| IntCounter::new(n, h).expect("static metric definition");
        let gauge = |n: &str, h: &str| IntGauge::new(n, h).expect("static metric definition");
        StoreCollector {
            counters,
            write_errors: counter(
                "diemcau_store_write_errors_total",
                "Ledger commits (or reopenings) that failed.",
            ),
            pending: gauge(
                "diemcau_store_records_pending",
                "Ledger records accepted and not yet committed.",
            ),
            dropped: counter(
                "diemcau_store_records_dropped_total",
                "Ledger records refused: channel or pending queue full, or store stopped.",
            ),
            committed: counter("diemcau_store_records_committed_total", "Ledger records committed."),
            commits: counter("diemcau_store_commits_total", "Ledger transactions committed."),
            last_commit: Gauge::new(
                "diemcau_store_last_commit_unix_seconds",
                "Time of the last successful ledger commit.",
            )
            .expect("static metric definition"),
            healthy: gauge("diemcau_store_healthy", "1 when the last ledger commit succeeded."),
            replaced: counter(
                "diemcau_store_file_replaced_total",
                "Ledger database or lock files found deleted or replaced at their path (then restored).",
            ),
        }
    }
}

impl Collector for StoreCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = Vec::new();
        d.extend(self.write_errors.desc());
        d.extend(self.pending.desc());
        d.extend(self.dropped.desc());
        d.extend(self.committed.desc());
        d.extend(self.commits.desc());
        d.extend(self.last_commit.desc());
        d.extend(self.healthy.desc());
        d.extend(self.replaced.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let c = &self.counters;
        let catch_up = |m: &IntCounter, v: &AtomicU64| {
            let delta = v.load(Ordering::Relaxed).saturating_sub(m.get());
            m.inc_by(delta);
        };
        catch_up(&self.write_errors, &c.write_errors);
        catch_up(&self.dropped, &c.dropped);
        catch_up(&self.committed, &c.committed);
        catch_up(&self.commits, &c.commits);
        catch_up(&self.replaced, &c.files_replaced);
        self.pending
            .set(i64::try_from(c.pending.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.last_commit
            .set(c.last_commit_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        self.healthy.set(i64::from(c.healthy.load(Ordering::Relaxed)));
        let mut out = Vec::new();
        out.extend(self.write_errors.collect());
        out.extend(self.pending.collect());
        out.extend(self.dropped.collect());
        out.extend(self.committed.collect());
        out.extend(self.commits.collect());
        out.extend(self.last_commit.collect());
        out.extend(self.healthy.collect());
        out.extend(self.replaced.collect());
        out
    }
}
