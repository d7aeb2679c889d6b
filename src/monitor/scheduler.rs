//! The service-check scheduler: every (endpoint, check) pair gets one attempt per
//! `[checks] interval`, spread evenly over it like ICMP rounds, with at most `max_in_flight`
//! attempts running at once. An attempt that finds no free slot is skipped and counted rather
//! than delaying the timeline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until};

use super::Monitor;
use crate::config::checks::ChecksConfig;
use crate::domain::{Endpoint, EndpointId};
use crate::metrics::DaemonMetrics;
use crate::probe::ProbeContext;
use crate::probe::icmp::STALL_AFTER;
use crate::probe::sip::SipClient;

/// Runs until `stop` turns true. Restarted by the daemon on reload with the new inventory.
pub async fn run(
    monitor: Arc<Monitor>,
    checks: Arc<ChecksConfig>,
    endpoints: Vec<Arc<Endpoint>>,
    sip: Arc<SipClient>,
    metrics: Arc<DaemonMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let items: Vec<(EndpointId, IpAddr, u16)> = endpoints
        .iter()
        .filter_map(|e| Some((e, e.address?)))
        .flat_map(|(e, address)| e.checks.iter().map(move |c| (e.id.clone(), address, *c)))
        .collect();
    if items.is_empty() {
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let step = checks.interval / items.len() as u32;
    let slots = Arc::new(Semaphore::new(checks.max_in_flight));
    let ctx = ProbeContext { sip: sip.clone() };
    let start = Instant::now();
    let mut sip_seen = (0u64, 0u64, 0u64);
    for (n, (id, target, check_id)) in items.iter().cycle().enumerate() {
        let due = start + step * (n as u32 % items.len() as u32) + checks.interval * (n / items.len()) as u32;
        tokio::select! {
            _ = sleep_until(due) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Slots whose time passed while the process stood still are not made up in a burst.
        if Instant::now().saturating_duration_since(due) >= STALL_AFTER {
            continue;
        }
        let Some(named) = checks.named.get(usize::from(*check_id)) else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.check_skipped.with_label_values(&[&named.name]).inc();
            continue;
        };
        let (task_monitor, task_metrics, task_ctx, named, id, target) = (
            monitor.clone(),
            metrics.clone(),
            ctx.clone(),
            named.clone(),
            id.clone(),
            *target,
        );
        tokio::spawn(async move {
            let (monitor, metrics, ctx) = (task_monitor, task_metrics, task_ctx);
            let started = SystemTime::now();
            let outcome = named.check.attempt(target, &ctx).await;
            let result = if outcome.success { "success" } else { "failure" };
            metrics.check_attempts.with_label_values(&[&named.name, result]).inc();
            if let Some(f) = &outcome.failure {
                metrics
                    .check_failures
                    .with_label_values(&[&named.name, f.label()])
                    .inc();
            }
            monitor.record_check(&id, &named.name, outcome, started, SystemTime::now());
            drop(permit);
        });
        let now = (
            sip.malformed_total(),
            sip.unmatched_total(),
            sip.unmatched_errors_total(),
        );
        metrics
            .sip_rejected
            .with_label_values(&["malformed"])
            .inc_by(now.0.saturating_sub(sip_seen.0));
        metrics
            .sip_rejected
            .with_label_values(&["unmatched"])
            .inc_by(now.1.saturating_sub(sip_seen.1));
        metrics
            .sip_rejected
            .with_label_values(&["unmatched_icmp"])
            .inc_by(now.2.saturating_sub(sip_seen.2));
        sip_seen = now;
    }
}
