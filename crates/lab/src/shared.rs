//! Counters the emulator thread publishes and the `Lab` handle reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::LabStats;
use crate::truth::LateHist;

/// Counters shared with the `Lab` handle; single writer (the engine), relaxed reads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub stop: AtomicBool,
    pub packets_in: AtomicU64,
    pub replied: AtomicU64,
    pub dropped_loss: AtomicU64,
    pub dropped_outage: AtomicU64,
    pub malformed: AtomicU64,
    pub unknown_destination: AtomicU64,
    pub ignored: AtomicU64,
    pub sip_silent: AtomicU64,
    pub write_errors: AtomicU64,
    pub late: AtomicU64,
    pub dropped_path: AtomicU64,
    pub expired: AtomicU64,
    pub time_exceeded: AtomicU64,
    pub queued: AtomicU64,
    pub cpu_ns: AtomicU64,
    pub late_hist: LateHist,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        let z = || AtomicU64::new(0);
        Shared {
            stop: AtomicBool::new(false),
            packets_in: z(),
            replied: z(),
            dropped_loss: z(),
            dropped_outage: z(),
            malformed: z(),
            unknown_destination: z(),
            ignored: z(),
            sip_silent: z(),
            write_errors: z(),
            late: z(),
            dropped_path: z(),
            expired: z(),
            time_exceeded: z(),
            queued: z(),
            cpu_ns: z(),
            late_hist: LateHist::new(),
        }
    }

    pub(crate) fn snapshot(&self) -> LabStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let p = self.late_hist.percentiles(&[0.5, 0.99, 1.0]);
        LabStats {
            packets_in: l(&self.packets_in),
            replied: l(&self.replied),
            dropped_loss: l(&self.dropped_loss),
            dropped_outage: l(&self.dropped_outage),
            malformed: l(&self.malformed),
            unknown_destination: l(&self.unknown_destination),
            ignored: l(&self.ignored),
            sip_silent: l(&self.sip_silent),
            write_errors: l(&self.write_errors),
            late: l(&self.late),
            dropped_path: l(&self.dropped_path),
            expired: l(&self.expired),
            time_exceeded: l(&self.time_exceeded),
            late_p50_us: p.first().copied().unwrap_or(0),
            late_p99_us: p.get(1).copied().unwrap_or(0),
            late_max_us: p.get(2).copied().unwrap_or(0),
            queued: l(&self.queued),
            emulator_cpu_ms: l(&self.cpu_ns) as f64 / 1e6,
        }
    }
}

#[inline]
pub(crate) fn bump(a: &AtomicU64) {
    // Single writer: a plain load+store is enough and avoids a locked instruction.
    a.store(a.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}
