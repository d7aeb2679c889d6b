//! A monitor that stood still (process stopped, machine suspended, CPU starved) saw nothing in
//! that time: it says so in the log and hands the span to the ledger as unknown time, instead of
//! turning it into loss, false outages or up time.

use std::sync::atomic::Ordering;

use super::Monitor;
use crate::domain::unix_ms;
use crate::probe::icmp::Stall;

impl Monitor {
    /// Called on the engine thread when it wakes from a stall.
    pub fn record_stall(&self, stall: &Stall) {
        let seconds = stall.to.duration_since(stall.from).unwrap_or_default().as_secs_f64();
        tracing::warn!(
            from_ms = unix_ms(stall.from),
            to_ms = unix_ms(stall.to),
            seconds = format_args!("{seconds:.1}"),
            dropped_rounds = stall.dropped_rounds,
            skipped_slots = stall.skipped_slots,
            "the monitor stood still (process stopped, machine suspended or starved of CPU): \
             that time is recorded as unknown, and the rounds it cut short are dropped, not counted as loss"
        );
        self.stalled_until_ms.fetch_max(unix_ms(stall.to), Ordering::Relaxed);
        if let Some(recorder) = self.recorder.get() {
            recorder.stall(stall);
        }
    }
}
