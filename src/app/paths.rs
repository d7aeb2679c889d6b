//! Baseline learning: four times a second, asks the engine to trace the endpoints whose path is not
//! known yet (first) or is older than `[paths] refresh`, within `[paths] budget` of the regular
//! packet rate (a start with no baselines may use [`MIN_LEARN_RATE`] when that is more, so a
//! small inventory learns its paths within a minute). The engine's own confirmation budget
//! bounds it again; what it refuses is asked again later.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::config::paths::MIN_LEARN_RATE;
use crate::monitor::Monitor;
use crate::probe::icmp::{EngineController, MAX_HOPS};

/// Requests per trace assumed until enough traces were sent to measure it.
const FIRST_GUESS_COST: f64 = 8.0;
/// Between two batches of requests: a few traces at a time, as the engine's bucket takes them.
const TICK: Duration = Duration::from_millis(250);

/// Echo requests per second the regular rounds send for `config`'s probed endpoints.
pub fn regular_rate(config: &Config) -> f64 {
    let probed = config.endpoints.iter().filter(|e| e.address.is_some()).count();
    probed as f64 * f64::from(config.probe.packets) / config.probe.interval.as_secs_f64().max(1e-3)
}

/// Runs until the engine stops.
pub async fn learn(monitor: Arc<Monitor>, engine: EngineController) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut allowance = 0.0_f64;
    loop {
        tick.tick().await;
        let (settings, regular) = {
            let state = monitor.lock();
            (state.paths.settings.clone(), state.paths.regular_rate)
        };
        if !settings.trace || settings.budget == 0.0 {
            allowance = 0.0;
            continue;
        }
        let telemetry = &monitor.metrics.engine;
        let (sent, requests) = (telemetry.traces.get(), telemetry.trace_requests.get());
        let cost = if sent >= 20 {
            (requests as f64 / sent as f64).clamp(1.0, f64::from(MAX_HOPS))
        } else {
            FIRST_GUESS_COST
        };
        let budget = settings.budget * regular;
        // At most one tick's worth carried over: a pause does not turn into a burst (the
        // engine refuses a burst beyond half its confirmation bucket).
        let per_tick = budget.max(MIN_LEARN_RATE) / cost * TICK.as_secs_f64();
        allowance = (allowance + per_tick).min(per_tick + 1.0);
        let (wanted, missing) = monitor.baselines_wanted(SystemTime::now(), allowance.floor() as usize);
        // The floor applies only while baselines are missing; refreshes keep to the budget.
        if !missing {
            allowance = allowance.min(budget / cost * TICK.as_secs_f64() + 1.0);
        }
        allowance -= wanted.len() as f64;
        if !wanted.is_empty() && engine.trace(wanted).is_err() {
            return;
        }
    }
}
