//! Starts the shipper to the shared PostgreSQL ledger (`[store] url`) beside the local one.

use crate::config::Config;
use crate::metrics::DaemonMetrics;
use crate::store::replica::{Replica, ReplicaConfig, redacted};

/// The shipper, when `[store] url` is set; its metrics join the daemon's.
pub fn start(config: &Config, metrics: &DaemonMetrics) -> anyhow::Result<Option<Replica>> {
    let Some(ledger) = &config.store.shared else {
        return Ok(None);
    };
    let cfg = ReplicaConfig {
        shard: (config.shard.index, config.shard.count),
        ..ReplicaConfig::new(ledger.clone(), config.vantage.clone())
    };
    let replica = Replica::start(cfg, config.store.path.clone())?;
    metrics.registry.register(Box::new(replica.collector()))?;
    tracing::info!(url = %redacted(&ledger.url), tls = ledger.tls, "shipping the ledger to the shared ledger");
    Ok(Some(replica))
}
