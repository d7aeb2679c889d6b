//! Refreshes the live merged view (every vantage's verdict from the shared ledger) in the
//! background, so the status page and `/api/v1/merged` never wait on the database.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::web::merged::MergedView;
use crate::web::reports::ReportContext;

/// How often the view is read again.
const REFRESH: Duration = Duration::from_secs(10);

/// Reads the view every [`REFRESH`] while `[store] url` is set (the report context follows
/// reloads, so a url added or removed takes effect at the next tick).
pub async fn refresh(reports: Arc<ArcSwap<ReportContext>>, cell: Arc<ArcSwap<MergedView>>) {
    // The first read waits a period: the shipper creates the database's tables on connecting.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some((ledger, quorum)) = reports.load().shared.clone() else {
            cell.store(Arc::new(MergedView::default()));
            continue;
        };
        let now_ms = crate::domain::unix_ms(std::time::SystemTime::now());
        let read = tokio::task::spawn_blocking(move || crate::store::replica::read::live_view(&ledger, quorum)).await;
        let previous = cell.load_full();
        let next = match read {
            Ok(Ok(view)) => MergedView {
                enabled: true,
                view: Some(view),
                read_ms: Some(now_ms),
                error: None,
            },
            Ok(Err(e)) => {
                if previous.error.is_none() {
                    tracing::warn!(error = %e, "the merged view cannot be read from the shared ledger");
                }
                MergedView {
                    enabled: true,
                    error: Some(e.to_string()),
                    ..(*previous).clone()
                }
            }
            Err(e) => MergedView {
                enabled: true,
                error: Some(format!("the read stopped: {e}")),
                ..(*previous).clone()
            },
        };
        cell.store(Arc::new(next));
    }
}
