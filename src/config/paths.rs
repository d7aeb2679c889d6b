//! `[paths]`: path tracing, to tell where a fault is (the commune's site, a router on the path,
//! or the monitor's own network). See [`crate::domain::path`] and `docs/paths.md`.

use std::net::IpAddr;
use std::time::Duration;

use super::toml_file::{RawMonitor, RawPaths};
use super::{Validator, position};

#[derive(Clone, Debug, PartialEq)]
pub struct PathsConfig {
    /// Learn each endpoint's path while it answers, and trace it again at its first silent round.
    pub trace: bool,
    /// Baseline traces may add at most this fraction of the regular packet rate (a start with
    /// no baselines may use a small floor above it: [`MIN_LEARN_RATE`]).
    pub budget: f64,
    /// A baseline older than this is traced again (routes change).
    pub refresh: Duration,
}

/// Packets per second baseline learning may always use while endpoints have no baseline, so a
/// few hundred endpoints learn theirs within a minute (5 % of a small inventory is too little).
pub const MIN_LEARN_RATE: f64 = 50.0;

impl Default for PathsConfig {
    fn default() -> PathsConfig {
        PathsConfig {
            trace: true,
            budget: 0.05,
            refresh: Duration::from_secs(6 * 3600),
        }
    }
}

impl Validator<'_> {
    pub(super) fn paths(&mut self, raw: &RawPaths) -> PathsConfig {
        let d = PathsConfig::default();
        PathsConfig {
            trace: raw.trace.as_ref().map_or(d.trace, |t| *t.get_ref()),
            budget: match &raw.budget {
                None => d.budget,
                Some(v) => self
                    .parse(
                        v,
                        "paths.budget",
                        |r| (0.0..=0.5).contains(r).then_some(*r),
                        "write a fraction of the regular packet rate from 0.0 to 0.5, e.g. 0.05",
                    )
                    .unwrap_or(d.budget),
            },
            refresh: self.duration(
                &raw.refresh,
                "paths.refresh",
                d.refresh,
                Duration::from_secs(60),
                Duration::from_secs(30 * 86_400),
            ),
        }
    }
}

impl Validator<'_> {
    /// `[monitor] references`: unicast IP addresses (no host names: a reference must not
    /// depend on the resolver the monitor may have lost), at most 64.
    pub(super) fn references(&mut self, raw: &RawMonitor) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for (i, r) in raw.references.iter().flatten().enumerate() {
            let (l, c) = position(self.text, r);
            let text: String = r.get_ref().chars().take(80).collect();
            match r.get_ref().parse::<IpAddr>() {
                Ok(ip) if super::resolve::usable(ip) && !out.contains(&ip) && i < 64 => out.push(ip),
                Ok(ip) if out.contains(&ip) => self.problem_at(
                    l,
                    c,
                    "monitor.references",
                    &format!("{ip} is listed twice"),
                    "list each reference once",
                ),
                Ok(_) if i >= 64 => self.problem_at(
                    l,
                    c,
                    "monitor.references",
                    "more than 64 references",
                    "keep a few addresses per carrier core",
                ),
                Ok(ip) => self.problem_at(
                    l,
                    c,
                    "monitor.references",
                    &format!("{ip} is not a unicast address"),
                    "list the addresses of hosts that always answer, e.g. the central bridge",
                ),
                Err(_) => self.problem_at(
                    l,
                    c,
                    "monitor.references",
                    &format!("{text:?} is not an IP address"),
                    "write IP addresses, e.g. [\"10.0.0.1\", \"2001:db8::1\"] (no host names)",
                ),
            }
        }
        out
    }
}
