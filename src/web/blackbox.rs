//! `/probe?target=…&module=…`: blackbox_exporter's multi-target pattern, so Prometheus scrape
//! configs written for blackbox_exporter work unchanged against diemcau.
//!
//! Modules are `icmp` (one round through a one-shot engine) and every `[check.NAME]` of the
//! config. Metric names follow blackbox_exporter: `probe_success`, `probe_duration_seconds`,
//! `probe_icmp_duration_seconds{phase="rtt"}`, `probe_ip_protocol`, `probe_http_status_code`,
//! `probe_http_redirects`, `probe_ssl_earliest_cert_expiry`; SIP adds `probe_sip_status_code`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::config::checks::{ChecksConfig, ICMP};
use crate::config::{ProbeConfig, ProbeTargets};
use crate::probe::Gauges;
use crate::probe::sip::SipClient;

/// What /probe needs from the current config (swapped on reload).
#[derive(Clone)]
pub struct ProbeModules {
    pub probe: ProbeConfig,
    pub checks: ChecksConfig,
    pub sip: Arc<SipClient>,
    pub targets: ProbeTargets,
    /// The inventory's addresses: what `/probe` may reach by default.
    pub inventory: Arc<HashSet<IpAddr>>,
    /// Probes running at once, shared across reloads; a request finding none free gets 503.
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// `/probe` requests running at once, at most.
pub const MAX_CONCURRENT_PROBES: usize = 16;

/// Why a `/probe` request was refused: the HTTP status and the message.
pub type Refusal = (u16, String);

impl ProbeModules {
    pub fn new(
        config: &crate::config::Config,
        sip: Arc<SipClient>,
        slots: Arc<tokio::sync::Semaphore>,
    ) -> ProbeModules {
        ProbeModules {
            probe: config.probe.clone(),
            checks: config.checks.clone(),
            sip,
            targets: config.web.probe_targets,
            inventory: Arc::new(config.endpoints.iter().filter_map(|e| e.address).collect()),
            slots,
        }
    }

    /// Refuses what the inventory itself refuses (unspecified, multicast, broadcast) and, unless
    /// `probe_targets = "any"`, every address that is not an endpoint's.
    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let broadcast = ip == IpAddr::from([255, 255, 255, 255]);
        if ip.is_unspecified() || ip.is_multicast() || broadcast {
            return Err((400, format!("target {ip} is not a unicast address")));
        }
        if self.targets == ProbeTargets::Inventory && !self.inventory.contains(&ip) {
            return Err((
                403,
                format!(
                    "target {ip} is not an endpoint of the inventory; /probe reaches only those \
                     unless [web] probe_targets = \"any\""
                ),
            ));
        }
        Ok(())
    }
}

/// Query parameters; `Err` is a message for a 400 answer.
pub fn parse_query(query: &str) -> Result<(String, String), String> {
    let (mut target, mut module) = (None, None);
    for pair in crate::web::query::pairs(query) {
        let (k, v) = pair.map_err(|k| format!("parameter {k:?} is not valid percent-encoding"))?;
        match k {
            "target" => target = Some(v),
            "module" => module = Some(v),
            _ => {}
        }
    }
    let target = target.filter(|t| !t.is_empty()).ok_or("target parameter is missing")?;
    Ok((target, module.unwrap_or_else(|| ICMP.to_string())))
}

/// Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal; resolves names.
async fn resolve(target: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    // `[v6]` alone: without this, the last `:` would split it into a "host" `[2001:db8:` that
    // never resolves.
    if let Some(v6) = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok())
    {
        return Ok((IpAddr::V6(v6), None));
    }
    if let Ok(sa) = target.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().ok()),
        _ => (target, None),
    };
    let mut addrs = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
    let addr = addrs.next().ok_or_else(|| format!("{host:?} has no address"))?;
    Ok((addr.ip(), port))
}

/// Runs the probe and renders blackbox-style metrics; `Err` is the status and message of a
/// refusal (400 bad request, 403 target not allowed, 503 too many probes at once).
pub async fn probe(modules: &ProbeModules, target: &str, module: &str) -> Result<String, Refusal> {
    let Ok(_slot) = modules.slots.try_acquire() else {
        return Err((503, format!("{MAX_CONCURRENT_PROBES} probes are running; retry later")));
    };
    let started = Instant::now();
    let mut out = String::new();
    let (ip, port) = match resolve(target).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(target, error = %e, "probe target did not resolve");
            gauge(&mut out, "probe_success", "Whether the probe succeeded.", 0.0);
            gauge(
                &mut out,
                "probe_duration_seconds",
                "How long the probe took.",
                started.elapsed().as_secs_f64(),
            );
            return Ok(out);
        }
    };
    modules.admit(ip)?;
    let resolved = started.elapsed().as_secs_f64();
    let internal = |e: String| (500, e);
    let success = if module == ICMP {
        let probe = modules.probe.clone();
        let (stats, _) = tokio::task::spawn_blocking(move || crate::probe::icmp::oneshot::probe_once(ip, &probe))
            .await
            .map_err(|e| internal(e.to_string()))?
            .map_err(|e| internal(e.to_string()))?;
        let _ = writeln!(
            out,
            "# HELP probe_icmp_duration_seconds Duration of icmp request by phase\n# TYPE probe_icmp_duration_seconds gauge"
        );
        let _ = writeln!(out, "probe_icmp_duration_seconds{{phase=\"resolve\"}} {resolved}");
        let _ = writeln!(
            out,
            "probe_icmp_duration_seconds{{phase=\"rtt\"}} {}",
            stats.rtt_avg.unwrap_or(0.0)
        );
        gauge(
            &mut out,
            "probe_icmp_packets_sent",
            "Echo requests sent (diemcau extension).",
            f64::from(stats.sent),
        );
        gauge(
            &mut out,
            "probe_icmp_packets_received",
            "Echo replies received (diemcau extension).",
            f64::from(stats.received),
        );
        stats.received > 0
    } else {
        let named = modules
            .checks
            .named
            .iter()
            .find(|c| &*c.name == module)
            .ok_or_else(|| {
                (
                    400,
                    format!("unknown module {module:?}: use icmp or a [check.NAME] of the config"),
                )
            })?;
        let mut check = named.check.clone();
        if let Some(p) = port {
            check.set_port(p);
        }
        let ctx = crate::probe::ProbeContext {
            sip: modules.sip.clone(),
        };
        let outcome = check.attempt(ip, &ctx).await;
        check.blackbox_metrics(&outcome.detail, &mut Gauges(&mut out));
        outcome.success
    };
    gauge(
        &mut out,
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6.",
        if ip.is_ipv4() { 4.0 } else { 6.0 },
    );
    gauge(
        &mut out,
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds.",
        resolved,
    );
    gauge(
        &mut out,
        "probe_success",
        "Displays whether or not the probe was a success.",
        f64::from(u8::from(success)),
    );
    gauge(
        &mut out,
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds.",
        started.elapsed().as_secs_f64(),
    );
    Ok(out)
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn targets_split_into_address_and_port_on_both_families() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        for (target, address, port) in [
            ("198.18.0.1", "198.18.0.1", None),
            ("198.18.0.1:80", "198.18.0.1", Some(80)),
            ("2001:2::1", "2001:2::1", None),
            ("[2001:2::1]", "2001:2::1", None),
            ("[2001:2::1]:5060", "2001:2::1", Some(5060)),
            ("[::1]", "::1", None),
        ] {
            assert_eq!(resolve(target).await, Ok((ip(address), port)), "{target}");
        }
    }
}
