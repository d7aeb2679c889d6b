//! Scenario TOML: what every emulated endpoint does (delay, loss, outages, SIP mode), and
//! the routers on the way to it and the monitor's own uplink.
//!
//! The file is parsed strictly (unknown keys are errors with `file:line:col`) because a
//! typo in a scenario silently turning into "no outage" would make a test or demo lie.
//! Rules are resolved once at start into a small set of deduplicated [`Profile`]s so the
//! hot path only does an index lookup per packet.
//!
//! # Keys
//!
//! ```toml
//! [defaults]                       # every endpoint; [[rule]] tables override in order
//! delay = { kind = "fixed", ms = 20.0 }    # | uniform {min_ms, max_ms} | normal {mean_ms, stddev_ms}
//! loss = 0.002
//! outages = [ { start_s = 120, end_s = 720 },          # seconds from the lab's start
//!             { flap = { period_s = 60, down_s = 5, start_s = 0, end_s = 600 } },
//!             { degrade = { start_s, end_s, loss_from, loss_to, extra_delay_ms_to } } ]
//! never = false                    # true: never answers
//! sip = "200"                      # "200" | "503" | "silent"
//!
//! [[rule]]
//! select = { ids = ["VN07-00012"], province = "…", district = "…", commune = "…", carrier = "…" }
//! # …any [defaults] key
//!
//! [monitor]                        # the monitor's own uplink
//! outages = [ { start_s = 300, end_s = 360 } ]         # every packet dropped; also flap
//!
//! [[router]]                       # one hop between the monitor and endpoints
//! name = "dongnai-vnpt"            # unique
//! address = "198.19.1.1"           # unique; answers Time Exceeded from it (IPv4 or IPv6)
//! parent = "core-vnpt"             # "" or absent: the first hop after the monitor
//! select = { province = "Tỉnh Đồng Nai" }  # absent: every endpoint its parent reaches
//! delay = { kind = "fixed", ms = 1.0 }     # what this hop adds to the round trip (default 1 ms)
//! outages = [ { start_s = 60, end_s = 120 } ]          # down: its hop and all behind it silent
//! icmp_rate_limit = 10             # at most 10 Time Exceeded in any second; still forwards
//! silent = false                   # true: never answers Time Exceeded ("* * *"), forwards
//! ```
//!
//! Paths (see `routers.rs`): a router reaches the endpoints its `select` matches among those
//! its parent reaches; an endpoint's path is the chain of routers of its address family
//! that reach it, first hop first, and must not fork (two routers under one parent reaching
//! the same endpoint are an error). An endpoint no router reaches has an empty path and
//! behaves exactly as without routers. A request with TTL (hop limit) t ≤ k, the path's
//! length, expires at the t-th router, which answers ICMP Time Exceeded after the delays of
//! the routers up to it; longer-lived requests reach the endpoint, whose own `delay` is the
//! whole round trip. Router and monitor windows, like endpoint ones, are judged when the
//! request arrives.

mod decide;
mod parse;
mod routers;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_routers;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::EmulatedEndpoint;

pub(crate) use decide::{Decision, Delay, Profile, Window};

/// Errors found while parsing or validating a scenario. Every variant carries the origin
/// (usually a file name) and, where known, the line so the user can fix the file quickly.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// TOML syntax error or a key/type the scenario schema does not know.
    #[error("{origin}:{line}:{col}: {message}")]
    Parse {
        origin: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A value that parses but makes no sense (negative delay, loss > 1, ...).
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
    /// A `[[rule]]` whose selector matches no endpoint: almost always a typo.
    #[error("{origin}:{line}: rule #{rule} selects no endpoint")]
    EmptySelection { origin: String, line: usize, rule: usize },
    /// A rule names an endpoint id that does not exist.
    #[error("{origin}:{line}: rule #{rule} names unknown endpoint id {id:?}")]
    UnknownId {
        origin: String,
        line: usize,
        rule: usize,
        id: String,
    },
    /// Two endpoints share an id or an address; answers would be ambiguous.
    #[error("duplicate endpoint {what}")]
    DuplicateEndpoint { what: String },
}

/// How a reply delay is drawn, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DelaySpec {
    /// Always the same delay.
    Fixed { ms: f64 },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform { min_ms: f64, max_ms: f64 },
    /// Normal, truncated at 0.
    Normal { mean_ms: f64, stddev_ms: f64 },
}

/// What an endpoint answers to a SIP OPTIONS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum SipMode {
    /// `SIP/2.0 200 OK`
    #[default]
    #[serde(rename = "200")]
    Ok200,
    /// `SIP/2.0 503 Service Unavailable`
    #[serde(rename = "503")]
    Unavailable503,
    /// No answer at all (SIP stack dead but host up).
    #[serde(rename = "silent")]
    Silent,
}
/// An outage-like window, in seconds relative to scenario time zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowSpec {
    /// Down in `[start_s, end_s)`.
    Down { start_s: f64, end_s: f64 },
    /// Down for `down_s` at the start of every `period_s`, from `start_s` (until `end_s`).
    Flap {
        period_s: f64,
        down_s: f64,
        start_s: f64,
        end_s: Option<f64>,
    },
    /// In `[start_s, end_s)` loss ramps `loss_from→loss_to`, extra delay `0→extra_delay_ms_to`.
    Degrade {
        start_s: f64,
        end_s: f64,
        loss_from: f64,
        loss_to: f64,
        extra_delay_ms_to: f64,
    },
}

/// A (partial) profile: `None` fields inherit from earlier rules / defaults.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProfilePatch {
    delay: Option<DelaySpec>,
    loss: Option<f64>,
    windows: Option<Vec<WindowSpec>>,
    never: Option<bool>,
    sip: Option<SipMode>,
}

#[derive(Debug, Clone, Default)]
struct Selector {
    ids: Option<HashSet<String>>,
    id_list: Vec<String>,
    province: Option<String>,
    district: Option<String>,
    commune: Option<String>,
    carrier: Option<String>,
}

impl Selector {
    fn matches(&self, ep: &EmulatedEndpoint) -> bool {
        fn eq(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|w| w == have)
        }
        self.ids.as_ref().is_none_or(|s| s.contains(&ep.id))
            && eq(&self.province, &ep.province)
            && eq(&self.district, &ep.district)
            && eq(&self.commune, &ep.commune)
            && eq(&self.carrier, &ep.carrier)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    select: Selector,
    patch: ProfilePatch,
}

/// A parsed and value-checked scenario. Resolve it against endpoints with
/// [`Scenario::validate`] (done again by `Lab::start`).
#[derive(Debug, Clone)]
pub struct Scenario {
    origin: String,
    defaults: ProfilePatch,
    rules: Vec<Rule>,
    routers: Vec<routers::RouterDef>,
    /// `[monitor] outages`: the monitor's uplink is cut, every packet is dropped.
    monitor: Vec<WindowSpec>,
}

impl Default for Scenario {
    /// Zero delay, no loss, no outages: every endpoint answers immediately.
    fn default() -> Self {
        Scenario {
            origin: "<default>".into(),
            defaults: ProfilePatch::default(),
            rules: Vec::new(),
            routers: Vec::new(),
            monitor: Vec::new(),
        }
    }
}
impl Scenario {
    /// Checks the scenario against the endpoint list: unique ids/addresses, every rule
    /// selects at least one endpoint, every listed id exists, every router is on some
    /// endpoint's path and no endpoint's path is ambiguous.
    pub fn validate(&self, endpoints: &[EmulatedEndpoint]) -> Result<(), ScenarioError> {
        self.resolve(endpoints)?;
        self.resolve_network(endpoints).map(|_| ())
    }

    /// The routers' addresses, for the lab to route them to its device.
    pub(crate) fn router_addresses(&self) -> impl Iterator<Item = std::net::IpAddr> + '_ {
        self.routers.iter().map(|r| r.address())
    }

    /// Resolves per-endpoint profiles. Returns the distinct profiles and, per endpoint,
    /// the index of its profile. Endpoints matched by the same set of rules share a profile.
    pub(crate) fn resolve(&self, endpoints: &[EmulatedEndpoint]) -> Result<(Vec<Profile>, Vec<u32>), ScenarioError> {
        let mut ids = HashSet::with_capacity(endpoints.len());
        let mut addrs = HashSet::with_capacity(endpoints.len());
        for ep in endpoints {
            if !ids.insert(ep.id.as_str()) {
                return Err(ScenarioError::DuplicateEndpoint {
                    what: format!("id {:?}", ep.id),
                });
            }
            if !addrs.insert(ep.addr) {
                return Err(ScenarioError::DuplicateEndpoint {
                    what: format!("address {}", ep.addr),
                });
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(unknown) = rule.select.id_list.iter().find(|id| !ids.contains(id.as_str())) {
                return Err(ScenarioError::UnknownId {
                    origin: self.origin.clone(),
                    line: rule.line,
                    rule: i + 1,
                    id: unknown.clone(),
                });
            }
        }
        let mut hits = vec![0usize; self.rules.len()];
        let mut by_key: HashMap<Vec<u16>, u32> = HashMap::new();
        let mut profiles = Vec::new();
        let mut assignment = Vec::with_capacity(endpoints.len());
        let mut key = Vec::new();
        for ep in endpoints {
            key.clear();
            for (i, rule) in self.rules.iter().enumerate() {
                if rule.select.matches(ep) {
                    hits[i] += 1;
                    key.push(i as u16);
                }
            }
            let idx = match by_key.get(&key) {
                Some(&idx) => idx,
                None => {
                    let mut merged = self.defaults.clone();
                    for &i in &key {
                        merged.apply(&self.rules[i as usize].patch);
                    }
                    let idx = profiles.len() as u32;
                    profiles.push(Profile::from_patch(&merged));
                    by_key.insert(key.clone(), idx);
                    idx
                }
            };
            assignment.push(idx);
        }
        if let Some(i) = hits.iter().position(|&h| h == 0) {
            return Err(ScenarioError::EmptySelection {
                origin: self.origin.clone(),
                line: self.rules[i].line,
                rule: i + 1,
            });
        }
        Ok((profiles, assignment))
    }
}
impl ProfilePatch {
    fn apply(&mut self, over: &ProfilePatch) {
        if over.delay.is_some() {
            self.delay = over.delay;
        }
        if over.loss.is_some() {
            self.loss = over.loss;
        }
        if over.windows.is_some() {
            self.windows.clone_from(&over.windows);
        }
        if over.never.is_some() {
            self.never = over.never;
        }
        if over.sip.is_some() {
            self.sip = over.sip;
        }
    }
}
