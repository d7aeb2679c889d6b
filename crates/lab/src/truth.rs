//! Ground truth: per-endpoint statistics, the emulator's own timing error, and the
//! JSON-lines truth file that tests and the demo compare the prober's results against.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use serde::Serialize;

/// Exact median up to this many samples per endpoint; reservoir sampling beyond, so memory
/// stays bounded (≤ 4 KiB per endpoint, and only for endpoints probed ≥ 1024 times).
pub(crate) const RESERVOIR: usize = 1024;

/// Per-endpoint counters and running delay statistics (delays are the actually applied
/// ones: write time minus read time of the request).
#[derive(Debug, Default, Clone)]
pub(crate) struct EpStats {
    pub echo_requests: u32,
    pub echo_replied: u32,
    pub sip_requests: u32,
    pub sip_replied: u32,
    pub tcp_requests: u32,
    pub tcp_replied: u32,
    pub dropped_loss: u32,
    pub dropped_outage: u32,
    pub dropped_silent: u32,
    n: u32,
    sum_ms: f64,
    min_ms: f64,
    max_ms: f64,
    last_ms: f64,
    sum_abs_diff_ms: f64,
    samples: Vec<f32>,
}

impl EpStats {
    pub(crate) fn saw_traffic(&self) -> bool {
        self.echo_requests + self.sip_requests + self.tcp_requests > 0
    }

    pub(crate) fn record_delay<R: Rng>(&mut self, ms: f64, rng: &mut R) {
        if self.n == 0 {
            self.min_ms = ms;
            self.max_ms = ms;
        } else {
            self.min_ms = self.min_ms.min(ms);
            self.max_ms = self.max_ms.max(ms);
            self.sum_abs_diff_ms += (ms - self.last_ms).abs();
        }
        self.n = self.n.saturating_add(1);
        self.sum_ms += ms;
        self.last_ms = ms;
        if self.samples.len() < RESERVOIR {
            self.samples.push(ms as f32);
        } else {
            let j = rng.random_range(0..self.n as usize);
            if j < RESERVOIR {
                self.samples[j] = ms as f32;
            }
        }
    }

    fn summary(&mut self) -> (f64, f64, f64, f64, f64) {
        if self.n == 0 {
            return (0.0, 0.0, 0.0, 0.0, 0.0);
        }
        self.samples.sort_by(|a, b| a.total_cmp(b));
        let k = self.samples.len();
        let median = if k % 2 == 1 {
            f64::from(self.samples[k / 2])
        } else {
            (f64::from(self.samples[k / 2 - 1]) + f64::from(self.samples[k / 2])) / 2.0
        };
        let jitter = if self.n > 1 {
            self.sum_abs_diff_ms / f64::from(self.n - 1)
        } else {
            0.0
        };
        (
            self.sum_ms / f64::from(self.n),
            median,
            self.min_ms,
            self.max_ms,
            jitter,
        )
    }
}

/// Histogram of the emulator's lateness (write time − due time), 1 µs buckets up to
/// 100 ms plus an overflow bucket. Atomic so `Lab::stats` can read it live; there is a
/// single writer so relaxed ordering is enough.
#[derive(Debug)]
pub(crate) struct LateHist {
    buckets: Box<[AtomicU64]>,
}

const LATE_BUCKETS: usize = 100_001;

impl LateHist {
    pub(crate) fn new() -> LateHist {
        LateHist {
            buckets: (0..LATE_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, late_ns: u64) {
        let us = (late_ns / 1000).min(LATE_BUCKETS as u64 - 1) as usize;
        self.buckets[us].fetch_add(1, Ordering::Relaxed);
    }

    /// Percentiles in µs (p in 0..=1). Returns 0 when empty.
    pub(crate) fn percentiles(&self, ps: &[f64]) -> Vec<u64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        ps.iter()
            .map(|&p| {
                if total == 0 {
                    return 0;
                }
                let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
                let mut acc = 0;
                for (us, &c) in counts.iter().enumerate() {
                    acc += c;
                    if acc >= rank {
                        return us as u64;
                    }
                }
                LATE_BUCKETS as u64 - 1
            })
            .collect()
    }
}

#[derive(Serialize)]
struct StartLine {
    kind: &'static str,
    unix_ns: u64,
    endpoints: usize,
}

#[derive(Serialize)]
struct WindowLine<'a> {
    kind: &'static str,
    endpoint: &'a str,
    start_unix_ns: u64,
    end_unix_ns: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    open: bool,
}

#[derive(Serialize)]
struct EndpointLine<'a> {
    kind: &'static str,
    endpoint: &'a str,
    echo_requests: u32,
    echo_replied: u32,
    sip_requests: u32,
    sip_replied: u32,
    tcp_requests: u32,
    tcp_replied: u32,
    dropped_loss: u32,
    dropped_outage: u32,
    dropped_silent: u32,
    delay_mean_ms: f64,
    delay_median_ms: f64,
    delay_min_ms: f64,
    delay_max_ms: f64,
    mean_abs_consecutive_delay_diff_ms: f64,
}

/// Counters echoed on the stop line so a truth file is self-contained.
#[derive(Serialize, Debug, Clone, Default)]
pub(crate) struct StopLine {
    pub kind: &'static str,
    pub unix_ns: u64,
    pub late_p50_us: u64,
    pub late_p99_us: u64,
    pub late_max_us: u64,
    pub packets_in: u64,
    pub replied: u64,
    pub dropped_loss: u64,
    pub dropped_outage: u64,
    pub malformed: u64,
    pub unknown_destination: u64,
}

/// Buffered JSON-lines writer. The first I/O error is kept and reported at stop, and
/// later writes are skipped: the emulator must keep answering even if the disk is full.
pub(crate) struct TruthWriter {
    out: Option<BufWriter<File>>,
    error: Option<io::Error>,
}

impl TruthWriter {
    pub(crate) fn new(file: Option<File>) -> TruthWriter {
        TruthWriter {
            out: file.map(|f| BufWriter::with_capacity(1 << 20, f)),
            error: None,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.out.is_some() && self.error.is_none()
    }

    fn line<T: Serialize>(&mut self, v: &T) {
        if self.error.is_some() {
            return;
        }
        let Some(out) = self.out.as_mut() else { return };
        let res = serde_json::to_writer(&mut *out, v)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = res {
            tracing::error!(error = %e, "truth file write failed; further truth lines dropped");
            self.error = Some(e);
        }
    }

    pub(crate) fn start(&mut self, unix_ns: u64, endpoints: usize) {
        self.line(&StartLine {
            kind: "start",
            unix_ns,
            endpoints,
        });
    }

    /// `kind` is "outage" (no answers) or "degrade" (ramped loss/delay).
    pub(crate) fn window(
        &mut self,
        kind: &'static str,
        endpoint: &str,
        start_unix_ns: u64,
        end_unix_ns: u64,
        open: bool,
    ) {
        self.line(&WindowLine {
            kind,
            endpoint,
            start_unix_ns,
            end_unix_ns,
            open,
        });
    }

    pub(crate) fn endpoint(&mut self, id: &str, s: &mut EpStats) {
        let (mean, median, min, max, jitter) = s.summary();
        self.line(&EndpointLine {
            kind: "endpoint",
            endpoint: id,
            echo_requests: s.echo_requests,
            echo_replied: s.echo_replied,
            sip_requests: s.sip_requests,
            sip_replied: s.sip_replied,
            tcp_requests: s.tcp_requests,
            tcp_replied: s.tcp_replied,
            dropped_loss: s.dropped_loss,
            dropped_outage: s.dropped_outage,
            dropped_silent: s.dropped_silent,
            delay_mean_ms: mean,
            delay_median_ms: median,
            delay_min_ms: min,
            delay_max_ms: max,
            mean_abs_consecutive_delay_diff_ms: jitter,
        });
    }

    /// Writes the stop line and flushes; returns the first error seen, if any.
    pub(crate) fn finish(&mut self, stop: &StopLine) -> io::Result<()> {
        self.line(stop);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match self.out.as_mut() {
            Some(out) => out.flush().and_then(|()| out.get_ref().sync_data()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stats_summary() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut s = EpStats::default();
        for ms in [10.0, 14.0, 12.0, 20.0] {
            s.record_delay(ms, &mut rng);
        }
        let (mean, median, min, max, jit) = s.summary();
        assert_eq!((mean, median, min, max), (14.0, 13.0, 10.0, 20.0));
        assert!((jit - (4.0 + 2.0 + 8.0) / 3.0).abs() < 1e-9);
        for _ in 0..5000 {
            s.record_delay(1.0, &mut rng);
        }
        assert_eq!(s.samples.len(), RESERVOIR);
    }

    #[test]
    fn late_percentiles() {
        let h = LateHist::new();
        for us in 1..=100u64 {
            h.record(us * 1000 + 500);
        }
        assert_eq!(h.percentiles(&[0.5, 0.99, 1.0]), vec![50, 99, 100]);
        h.record(10_000_000_000);
        assert_eq!(h.percentiles(&[1.0]), vec![100_000]);
    }
}
