//! Every metric family the daemon exports, in one place.
//!
//! Small families (the daemon itself, regions) live in a `prometheus` registry. Per-endpoint
//! families are written straight from the monitor's endpoint table by [`endpoint_text`]: with
//! 10,000+ endpoints, one registry child per series would cost tens of megabytes, while the table
//! already holds every figure.

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::probe::icmp::EngineTelemetry;

pub mod build;
use build::{REVISION, RUST_VERSION, VERSION};

/// RTT buckets, seconds: loopback and LAN up to a congested satellite link.
pub const RTT_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
];

pub struct DaemonMetrics {
    pub registry: Registry,
    /// `diemcau_vantage_info{vantage}`: see [`DaemonMetrics::set_vantage`].
    vantage_info: IntGaugeVec,
    /// `diemcau_shard_info{index,count,replicas}`: see [`DaemonMetrics::set_shard`].
    shard_info: IntGaugeVec,
    pub endpoints: IntGauge,
    pub ready: IntGauge,
    pub isolated: IntGauge,
    /// `diemcau_monitor_blind{family}`.
    pub blind: IntGaugeVec,
    /// `diemcau_path_findings_total{domain}`: faults placed by a trace.
    pub path_findings: IntCounterVec,
    /// `diemcau_path_route_changes_total`: baselines replaced by a different route.
    pub path_route_changes: IntCounter,
    pub rounds: IntCounter,
    pub transitions: IntCounterVec,
    pub region_rtt: HistogramVec,
    pub check_attempts: IntCounterVec,
    pub check_failures: IntCounterVec,
    pub check_skipped: IntCounterVec,
    pub sip_rejected: IntCounterVec,
    pub province_info: IntGaugeVec,
    pub reload_successful: IntGauge,
    pub reload_success_time: Gauge,
    pub engine: EngineTelemetry,
    /// Lookups of inventory host names.
    pub dns_resolutions: IntCounter,
    /// Failed lookups, by reason (`nxdomain`, `no_address`, `timeout`, `error`).
    pub dns_failures: IntCounterVec,
    /// Host names whose probed address changed.
    pub dns_address_changes: IntCounter,
    /// Inventory host names by status (`resolved`, `stale`, `failed`, `pending`).
    pub dns_names: IntGaugeVec,
}

/// The `status` values of `diemcau_dns_names`.
pub const DNS_NAME_STATUSES: [&str; 4] = ["resolved", "stale", "failed", "pending"];

impl DaemonMetrics {
    pub fn new() -> DaemonMetrics {
        Self::build().expect("metric definitions are static and valid")
    }

    /// Which share of the inventory this instance probes (at start and after each reload).
    pub fn set_shard(&self, shard: &crate::domain::shard::Shard) {
        self.shard_info.reset();
        self.shard_info
            .with_label_values(&[
                &shard.index.to_string(),
                &shard.count.to_string(),
                &shard.replicas.to_string(),
            ])
            .set(1);
    }

    /// Names this instance's vantage (once, at start: the name is the identity of the run).
    pub fn set_vantage(&self, name: &str) {
        self.vantage_info.reset();
        self.vantage_info.with_label_values(&[name]).set(1);
    }

    fn build() -> prometheus::Result<DaemonMetrics> {
        let registry = Registry::new();
        let r = &registry;
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> prometheus::Result<T> {
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let build_info = reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "diemcau_build_info",
                    "Build of the running daemon (version, git revision, rustc version); always 1.",
                ),
                &["version", "revision", "rustversion"],
            )?,
        )?;
        build_info.with_label_values(&[VERSION, REVISION, RUST_VERSION]).set(1);
        let shard_info = reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "diemcau_shard_info",
                    "This instance's share of the inventory ([shard]): shard index of count (0-based), each endpoint probed by replicas shards; always 1.",
                ),
                &["index", "count", "replicas"],
            )?,
        )?;
        let vantage_info = reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "diemcau_vantage_info",
                    "Where this instance probes from ([vantage] name); always 1. Join on instance to tell vantages apart.",
                ),
                &["vantage"],
            )?,
        )?;
        let rejected = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "diemcau_icmp_packets_rejected_total",
                    "ICMP packets received and not used, by reason.",
                ),
                &["reason"],
            )?,
        )?;
        let confirm_rounds = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "diemcau_confirmation_rounds_total",
                    "Confirmation rounds asked for after a regular round contradicted an endpoint's state: sent, or refused because the confirmation budget was spent.",
                ),
                &["result"],
            )?,
        )?;
        let watch_requests = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "diemcau_watch_requests_total",
                    "Watch requests asked for while an endpoint is Down (one per watch_spacing, to date its recovery): sent, or refused because the upper half of the confirmation budget was spent.",
                ),
                &["result"],
            )?,
        )?;
        let traces = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "diemcau_path_traces_total",
                    "Path traces asked for (to learn an endpoint's baseline path, or to place a fault at its first silent round): sent, or refused (the upper half of the confirmation budget was spent, or no socket can trace).",
                ),
                &["result"],
            )?,
        )?;
        let lag_buckets = vec![0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];
        let engine = EngineTelemetry {
            scheduler_lag: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "diemcau_scheduler_lag_seconds",
                        "How late each echo request left, against its place on the timeline.",
                    )
                    .buckets(lag_buckets),
                )?,
            )?,
            in_flight: reg(
                r,
                IntGauge::new(
                    "diemcau_probes_in_flight",
                    "Echo requests sent and still waiting for a reply or timeout.",
                )?,
            )?,
            rejected_malformed: rejected.with_label_values(&["malformed"]),
            rejected_unmatched: rejected.with_label_values(&["unmatched"]),
            rejected_late: rejected.with_label_values(&["late"]),
            icmp_errors: reg(
                r,
                IntCounter::new(
                    "diemcau_icmp_errors_received_total",
                    "ICMP unreachable/time-exceeded messages about our requests.",
                )?,
            )?,
            send_errors: reg(
                r,
                IntCounter::new(
                    "diemcau_icmp_send_errors_total",
                    "Echo requests that could not be sent (counted as lost).",
                )?,
            )?,
            cycles: reg(
                r,
                IntCounter::new(
                    "diemcau_scheduler_cycles_total",
                    "Full passes of the timeline over every endpoint.",
                )?,
            )?,
            stalls: reg(
                r,
                IntCounter::new(
                    "diemcau_monitor_stalls_total",
                    "Times the probe engine stood still for 2 s or more (process stopped, machine suspended, CPU starved).",
                )?,
            )?,
            confirmations: confirm_rounds.with_label_values(&["sent"]),
            confirmations_refused: confirm_rounds.with_label_values(&["over_budget"]),
            watches: watch_requests.with_label_values(&["sent"]),
            watches_refused: watch_requests.with_label_values(&["over_budget"]),
            traces: traces.with_label_values(&["sent"]),
            traces_refused: traces.with_label_values(&["refused"]),
            trace_requests: reg(
                r,
                IntCounter::new(
                    "diemcau_path_trace_requests_total",
                    "TTL-limited echo requests sent by path traces: the packets tracing adds to the regular rounds.",
                )?,
            )?,
            stalled_seconds: reg(
                r,
                prometheus::Counter::new(
                    "diemcau_monitor_stalled_seconds_total",
                    "Time the probe engine stood still in those stalls; the ledger records it as unknown.",
                )?,
            )?,
        };
        let m = DaemonMetrics {
            vantage_info,
            shard_info,
            endpoints: reg(r, IntGauge::new("diemcau_endpoints", "Endpoints in the inventory.")?)?,
            ready: reg(
                r,
                IntGauge::new("diemcau_ready", "1 once every endpoint has finished its first round.")?,
            )?,
            isolated: reg(
                r,
                IntGauge::new(
                    "diemcau_monitor_isolated",
                    "1 while the monitor itself is blind on every address family it probes (nearly every endpoint across carriers silent at once): silent endpoints are Unknown, not Down, and the time is unknown in the ledger.",
                )?,
            )?,
            blind: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "diemcau_monitor_blind",
                        "1 while the monitor is blind on one address family (its own IPv4 or IPv6 uplink cut): that family's silent endpoints are Unknown, not Down, and the time is unknown in the ledger for them.",
                    ),
                    &["family"],
                )?,
            )?,
            path_findings: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_path_findings_total",
                        "Faults placed by tracing a silent endpoint's path, by domain: endpoint (its site), path (a router on the way), monitor (the monitor's own network), unknown (no baseline to compare).",
                    ),
                    &["domain"],
                )?,
            )?,
            path_route_changes: reg(
                r,
                IntCounter::new(
                    "diemcau_path_route_changes_total",
                    "Baseline paths replaced because a trace that reached the endpoint went through other routers (re-routing, not a fault).",
                )?,
            )?,
            rounds: reg(
                r,
                IntCounter::new("diemcau_rounds_total", "Endpoint probe rounds completed.")?,
            )?,
            transitions: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_state_transitions_total",
                        "Endpoint state changes, by old and new state.",
                    ),
                    &["from", "to"],
                )?,
            )?,
            region_rtt: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "diemcau_region_rtt_seconds",
                        "Round-trip time of every echo reply, per province and carrier.",
                    )
                    .buckets(RTT_BUCKETS.to_vec()),
                    &["province", "carrier"],
                )?,
            )?,
            check_attempts: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_check_attempts_total",
                        "Service-check attempts, by check and result.",
                    ),
                    &["check", "result"],
                )?,
            )?,
            check_failures: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_check_failures_total",
                        "Failed service-check attempts, by check and reason.",
                    ),
                    &["check", "reason"],
                )?,
            )?,
            check_skipped: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_check_skipped_total",
                        "Service-check attempts skipped because max_in_flight attempts were running.",
                    ),
                    &["check"],
                )?,
            )?,
            sip_rejected: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_sip_messages_rejected_total",
                        "SIP datagrams and ICMP errors received and not used: malformed, unmatched, unmatched_icmp.",
                    ),
                    &["reason"],
                )?,
            )?,
            province_info: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "diemcau_province_info",
                        "Province centroid for maps ([geo] province_centroids); always 1.",
                    ),
                    &["province", "lat", "lon"],
                )?,
            )?,
            reload_successful: reg(
                r,
                IntGauge::new(
                    "diemcau_config_last_reload_successful",
                    "1 if the last config load or reload succeeded.",
                )?,
            )?,
            reload_success_time: reg(
                r,
                Gauge::new(
                    "diemcau_config_last_reload_success_timestamp_seconds",
                    "Unix time of the last successful config load or reload.",
                )?,
            )?,
            engine,
            dns_resolutions: reg(
                r,
                IntCounter::new(
                    "diemcau_dns_resolutions_total",
                    "Lookups of inventory host names (at load, at TTL expiry and retries).",
                )?,
            )?,
            dns_failures: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "diemcau_dns_resolution_failures_total",
                        "Failed lookups of inventory host names, by reason: nxdomain, no_address, timeout, error.",
                    ),
                    &["reason"],
                )?,
            )?,
            dns_address_changes: reg(
                r,
                IntCounter::new(
                    "diemcau_dns_address_changes_total",
                    "Inventory host names whose probed address changed on re-resolution.",
                )?,
            )?,
            dns_names: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "diemcau_dns_names",
                        "Inventory host names by status: resolved, stale (last good address kept while resolution fails), failed (no address: not probed), pending.",
                    ),
                    &["status"],
                )?,
            )?,
            registry,
        };
        for reason in ["nxdomain", "no_address", "timeout", "error"] {
            m.dns_failures.with_label_values(&[reason]);
        }
        for status in DNS_NAME_STATUSES {
            m.dns_names.with_label_values(&[status]);
        }
        for reason in ["malformed", "unmatched", "late"] {
            rejected.with_label_values(&[reason]);
        }
        m.registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(m)
    }

    /// Exports the centroids of the provinces that have endpoints (replacing earlier ones).
    pub fn set_province_centroids(
        &self,
        centroids: &[(String, f64, f64)],
        provinces: &std::collections::HashSet<&str>,
    ) {
        self.province_info.reset();
        for (p, lat, lon) in centroids.iter().filter(|(p, _, _)| provinces.contains(p.as_str())) {
            self.province_info
                .with_label_values(&[p.as_str(), &format!("{lat}"), &format!("{lon}")])
                .set(1);
        }
    }

    /// The registry's families in the text format.
    pub fn render_registry(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = prometheus::Encoder::encode(&encoder, &self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Default for DaemonMetrics {
    fn default() -> Self {
        Self::new()
    }
}
