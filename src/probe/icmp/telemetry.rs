//! The engine's own counters.

/// Counters the engine keeps about itself (cheap prometheus handles).
#[derive(Clone)]
pub struct EngineTelemetry {
    pub scheduler_lag: prometheus::Histogram,
    pub in_flight: prometheus::IntGauge,
    pub rejected_malformed: prometheus::IntCounter,
    pub rejected_unmatched: prometheus::IntCounter,
    pub rejected_late: prometheus::IntCounter,
    pub icmp_errors: prometheus::IntCounter,
    pub send_errors: prometheus::IntCounter,
    pub cycles: prometheus::IntCounter,
    pub stalls: prometheus::IntCounter,
    pub confirmations: prometheus::IntCounter,
    pub confirmations_refused: prometheus::IntCounter,
    pub watches: prometheus::IntCounter,
    pub watches_refused: prometheus::IntCounter,
    /// Path traces scheduled, and refused (budget spent, or no socket can trace).
    pub traces: prometheus::IntCounter,
    pub traces_refused: prometheus::IntCounter,
    /// TTL-limited requests sent by traces: the extra packets tracing costs.
    pub trace_requests: prometheus::IntCounter,
    pub stalled_seconds: prometheus::Counter,
}

impl EngineTelemetry {
    /// Handles registered nowhere: for one-off probes and tests.
    pub fn detached() -> EngineTelemetry {
        let counter = |n: &str| prometheus::IntCounter::new(n, n).expect("static metric name");
        EngineTelemetry {
            scheduler_lag: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("lag", "lag"))
                .expect("static metric name"),
            in_flight: prometheus::IntGauge::new("in_flight", "in flight").expect("static metric name"),
            rejected_malformed: counter("malformed"),
            rejected_unmatched: counter("unmatched"),
            rejected_late: counter("late"),
            icmp_errors: counter("errors"),
            send_errors: counter("send_errors"),
            cycles: counter("cycles"),
            stalls: counter("stalls"),
            confirmations: counter("confirmations"),
            confirmations_refused: counter("confirmations_refused"),
            watches: counter("watches"),
            watches_refused: counter("watches_refused"),
            traces: counter("traces"),
            traces_refused: counter("traces_refused"),
            trace_requests: counter("trace_requests"),
            stalled_seconds: prometheus::Counter::new("stalled", "stalled").expect("static metric name"),
        }
    }
}
