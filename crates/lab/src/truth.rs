//! Ground truth: per-endpoint statistics, the emulator's own timing error, and the
//! JSON-lines truth file that tests and the demo compare the prober's results against.
//!
//! Lines, by `kind` (times are unix ns; a window still going on at stop ends then, `open`):
//! - `start`: `unix_ns`, `endpoints`;
//! - `outage` / `degrade`: one per endpoint and window occurrence, `endpoint`, `start_unix_ns`,
//!   `end_unix_ns`;
//! - `monitor_outage`: the monitor's uplink was cut, `start_unix_ns`, `end_unix_ns`,
//!   `endpoints` (all of them were silent);
//! - `router_outage`: `router`, `address`, `start_unix_ns`, `end_unix_ns`,
//!   `endpoints_behind` (those whose path goes through it);
//! - `router`: per router at stop, `router`, `address`, `parent` (absent for a first hop),
//!   `endpoints_behind`, `expired`, `time_exceeded`, `rate_limited`, `dropped_outage`;
//! - `endpoint`: per endpoint that saw traffic, its request, reply and drop counts and the
//!   applied delays; with routers also `path` (router addresses, first hop first), `expired`,
//!   `time_exceeded` and `dropped_path` (absent when empty or zero, so a scenario without
//!   routers writes the lines it always did);
//! - `stop`: the lab's counters.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use std::net::IpAddr;

use rand::Rng;
use serde::Serialize;

use crate::path::{Network, Router};
use crate::scenario::Window;

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
    /// Requests whose TTL ran out at a router on the path (answered or not).
    pub expired: u32,
    /// Time Exceeded messages written for requests to this endpoint.
    pub time_exceeded: u32,
    /// Requests dropped on the way: the monitor's uplink or a router on the path was down.
    pub dropped_path: u32,
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
    #[serde(skip_serializing_if = "is_zero")]
    expired: u32,
    #[serde(skip_serializing_if = "is_zero")]
    time_exceeded: u32,
    #[serde(skip_serializing_if = "is_zero")]
    dropped_path: u32,
    /// Router addresses on the way, first hop first (absent when there is none).
    #[serde(skip_serializing_if = "<[IpAddr]>::is_empty")]
    path: &'a [IpAddr],
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
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_path: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub expired: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub time_exceeded: u64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A router's or the monitor's outage window occurrence.
#[derive(Serialize)]
struct NetOutageLine<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    router: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<IpAddr>,
    start_unix_ns: u64,
    end_unix_ns: u64,
    /// Endpoints silenced by it: those behind the router, or every endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints_behind: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    open: bool,
}

/// What one router did over the whole run.
#[derive(Serialize)]
struct RouterLine<'a> {
    kind: &'static str,
    router: &'a str,
    address: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    endpoints_behind: u32,
    expired: u64,
    time_exceeded: u64,
    rate_limited: u64,
    dropped_outage: u64,
}

/// Occurrences of one flapping window reported at most, so a tiny period cannot stall the
/// stop (the run would have to last for days to reach it with any sensible period).
const MAX_OCCURRENCES: u64 = 1_000_000;

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

    pub(crate) fn endpoint(&mut self, id: &str, s: &mut EpStats, path: &[IpAddr]) {
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
            expired: s.expired,
            time_exceeded: s.time_exceeded,
            dropped_path: s.dropped_path,
            path,
            delay_mean_ms: mean,
            delay_median_ms: median,
            delay_min_ms: min,
            delay_max_ms: max,
            mean_abs_consecutive_delay_diff_ms: jitter,
        });
    }

    /// At stop: every outage of the monitor's uplink and of each router that began before
    /// `now` (ns since time zero; one still going on ends at `now` and is `open`), then one
    /// summary line per router.
    pub(crate) fn network(&mut self, net: &Network, wall0_ns: u64, now: u64, endpoints: usize) {
        let line = |t: &mut TruthWriter, w: &Window, router: Option<&Router>| {
            for k in 0..MAX_OCCURRENCES {
                let Some((start, end)) = w.occurrence(k) else { break };
                if start >= now {
                    break;
                }
                t.line(&NetOutageLine {
                    kind: if router.is_some() {
                        "router_outage"
                    } else {
                        "monitor_outage"
                    },
                    router: router.map(|r| r.name.as_str()),
                    address: router.map(|r| r.addr),
                    start_unix_ns: wall0_ns + start,
                    end_unix_ns: wall0_ns + end.min(now),
                    endpoints_behind: router.map(|r| r.endpoints_behind),
                    endpoints: router.is_none().then_some(endpoints),
                    open: end > now,
                });
            }
        };
        for w in &net.monitor {
            line(self, w, None);
        }
        for r in &net.routers {
            for w in &r.windows {
                line(self, w, Some(r));
            }
        }
        for (r, hop) in net.routers.iter().zip(&net.hops) {
            self.line(&RouterLine {
                kind: "router",
                router: &r.name,
                address: r.addr,
                parent: r.parent.map(|p| net.routers[p as usize].name.as_str()),
                endpoints_behind: r.endpoints_behind,
                expired: hop.expired,
                time_exceeded: hop.time_exceeded,
                rate_limited: hop.rate_limited,
                dropped_outage: hop.dropped_outage,
            });
        }
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

    /// Without routers an endpoint line and the stop line have exactly the keys they had
    /// before routers existed; with them, the path and the path counters appear.
    #[test]
    fn lines_without_routers_keep_their_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.jsonl");
        let mut t = TruthWriter::new(Some(File::create(&path).expect("create")));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut s = EpStats {
            echo_requests: 2,
            ..EpStats::default()
        };
        s.record_delay(1.0, &mut rng);
        t.endpoint("A", &mut s.clone(), &[]);
        s.expired = 1;
        s.time_exceeded = 1;
        t.endpoint("B", &mut s, &["198.19.0.1".parse().expect("ip")]);
        t.finish(&StopLine {
            kind: "stop",
            ..StopLine::default()
        })
        .expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        let keys = |l: &str| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v.as_object().expect("object").keys().cloned().collect()
        };
        let lines: Vec<&str> = text.lines().collect();
        let legacy = "echo_requests echo_replied sip_requests sip_replied tcp_requests tcp_replied dropped_loss \
                      dropped_outage dropped_silent delay_mean_ms delay_median_ms delay_min_ms delay_max_ms \
                      mean_abs_consecutive_delay_diff_ms";
        let mut want: Vec<String> = ["kind", "endpoint"].iter().map(|k| k.to_string()).collect();
        want.extend(legacy.split_whitespace().map(String::from));
        want.sort();
        let mut a = keys(lines[0]);
        a.sort();
        assert_eq!(a, want);
        assert!(
            lines[1].contains(r#""expired":1,"time_exceeded":1,"path":["198.19.0.1"]"#),
            "{}",
            lines[1]
        );
        let mut stop = keys(lines[2]);
        stop.sort();
        assert_eq!(
            stop.join(" "),
            "dropped_loss dropped_outage kind late_max_us late_p50_us late_p99_us malformed packets_in replied unix_ns unknown_destination"
        );
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
