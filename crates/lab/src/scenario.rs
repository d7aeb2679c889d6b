//! Scenario TOML: what every emulated endpoint does (delay, loss, outages, SIP mode).
//!
//! The file is parsed strictly (unknown keys are errors with `file:line:col`) because a
//! typo in a scenario silently turning into "no outage" would make a test or demo lie.
//! Rules are resolved once at start into a small set of deduplicated [`Profile`]s so the
//! hot path only does an index lookup per packet.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;
use toml::Spanned;

use crate::EmulatedEndpoint;

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlapRaw {
    period_s: f64,
    down_s: f64,
    #[serde(default)]
    start_s: f64,
    end_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DegradeRaw {
    start_s: f64,
    end_s: f64,
    #[serde(default)]
    loss_from: f64,
    #[serde(default)]
    loss_to: f64,
    #[serde(default)]
    extra_delay_ms_to: f64,
}

/// One element of `outages = [...]`; exactly one of the three shapes must be used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageRaw {
    start_s: Option<f64>,
    end_s: Option<f64>,
    flap: Option<FlapRaw>,
    degrade: Option<DegradeRaw>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProfileRaw {
    delay: Option<DelaySpec>,
    loss: Option<f64>,
    outages: Option<Vec<Spanned<OutageRaw>>>,
    never: Option<bool>,
    sip: Option<SipMode>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SelectorRaw {
    ids: Option<Vec<String>>,
    province: Option<String>,
    district: Option<String>,
    commune: Option<String>,
    carrier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    select: SelectorRaw,
    delay: Option<DelaySpec>,
    loss: Option<f64>,
    outages: Option<Vec<Spanned<OutageRaw>>>,
    never: Option<bool>,
    sip: Option<SipMode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioRaw {
    defaults: Option<Spanned<ProfileRaw>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleRaw>>,
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
}

impl Default for Scenario {
    /// Zero delay, no loss, no outages: every endpoint answers immediately.
    fn default() -> Self {
        Scenario {
            origin: "<default>".into(),
            defaults: ProfilePatch::default(),
            rules: Vec::new(),
        }
    }
}

/// 1-based (line, column) of a byte offset, for error messages.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            line: line_col(self.text, offset).0,
            message: message.into(),
        }
    }

    fn check_delay(&self, off: usize, d: &DelaySpec) -> Result<(), ScenarioError> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let good = match *d {
            DelaySpec::Fixed { ms } => ok(ms),
            DelaySpec::Uniform { min_ms, max_ms } => ok(min_ms) && ok(max_ms) && min_ms <= max_ms,
            DelaySpec::Normal { mean_ms, stddev_ms } => ok(mean_ms) && ok(stddev_ms),
        };
        if good {
            Ok(())
        } else {
            Err(self.invalid(off, format!("invalid delay {d:?} (need finite ms >= 0, min <= max)")))
        }
    }

    fn check_prob(&self, off: usize, name: &str, p: f64) -> Result<(), ScenarioError> {
        if (0.0..=1.0).contains(&p) {
            Ok(())
        } else {
            Err(self.invalid(off, format!("{name} = {p} is not a probability in [0, 1]")))
        }
    }

    fn window(&self, o: &Spanned<OutageRaw>) -> Result<WindowSpec, ScenarioError> {
        let off = o.span().start;
        let r = o.get_ref();
        let secs = |v: f64| v.is_finite() && v >= 0.0;
        match (r.start_s, r.end_s, &r.flap, &r.degrade) {
            (Some(start_s), Some(end_s), None, None) => {
                if !(secs(start_s) && secs(end_s) && start_s < end_s) {
                    return Err(self.invalid(off, "outage needs 0 <= start_s < end_s"));
                }
                Ok(WindowSpec::Down { start_s, end_s })
            }
            (None, None, Some(f), None) => {
                let end_ok = f.end_s.is_none_or(|e| secs(e) && e > f.start_s);
                let valid = secs(f.period_s)
                    && f.period_s > 0.0
                    && secs(f.down_s)
                    && f.down_s > 0.0
                    && f.down_s <= f.period_s
                    && secs(f.start_s)
                    && end_ok;
                if !valid {
                    return Err(self.invalid(
                        off,
                        "flap needs period_s > 0, 0 < down_s <= period_s, start_s >= 0, end_s > start_s",
                    ));
                }
                Ok(WindowSpec::Flap {
                    period_s: f.period_s,
                    down_s: f.down_s,
                    start_s: f.start_s,
                    end_s: f.end_s,
                })
            }
            (None, None, None, Some(d)) => {
                if !(secs(d.start_s) && secs(d.end_s) && d.start_s < d.end_s) {
                    return Err(self.invalid(off, "degrade needs 0 <= start_s < end_s"));
                }
                self.check_prob(off, "loss_from", d.loss_from)?;
                self.check_prob(off, "loss_to", d.loss_to)?;
                if !secs(d.extra_delay_ms_to) {
                    return Err(self.invalid(off, "extra_delay_ms_to must be >= 0"));
                }
                Ok(WindowSpec::Degrade {
                    start_s: d.start_s,
                    end_s: d.end_s,
                    loss_from: d.loss_from,
                    loss_to: d.loss_to,
                    extra_delay_ms_to: d.extra_delay_ms_to,
                })
            }
            _ => Err(self.invalid(
                off,
                "an outage is exactly one of {start_s, end_s}, {flap = {...}}, {degrade = {...}}",
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn patch(
        &self,
        off: usize,
        delay: Option<DelaySpec>,
        loss: Option<f64>,
        outages: Option<Vec<Spanned<OutageRaw>>>,
        never: Option<bool>,
        sip: Option<SipMode>,
    ) -> Result<ProfilePatch, ScenarioError> {
        if let Some(d) = &delay {
            self.check_delay(off, d)?;
        }
        if let Some(p) = loss {
            self.check_prob(off, "loss", p)?;
        }
        let windows = match outages {
            None => None,
            Some(list) => Some(list.iter().map(|o| self.window(o)).collect::<Result<Vec<_>, _>>()?),
        };
        Ok(ProfilePatch {
            delay,
            loss,
            windows,
            never,
            sip,
        })
    }
}

impl Scenario {
    /// Parses a scenario. `origin` (e.g. the file path) is only used in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw: ScenarioRaw = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            ScenarioError::Parse {
                origin: origin.to_string(),
                line,
                col,
                message: e.message().to_string(),
            }
        })?;
        let ctx = Ctx { text, origin };
        let defaults = match raw.defaults {
            None => ProfilePatch::default(),
            Some(d) => {
                let off = d.span().start;
                let d = d.into_inner();
                ctx.patch(off, d.delay, d.loss, d.outages, d.never, d.sip)?
            }
        };
        let mut rules = Vec::with_capacity(raw.rule.len());
        for (i, spanned) in raw.rule.into_iter().enumerate() {
            let off = spanned.span().start;
            let line = line_col(text, off).0;
            let r = spanned.into_inner();
            let s = r.select;
            if s.ids.is_none()
                && s.province.is_none()
                && s.district.is_none()
                && s.commune.is_none()
                && s.carrier.is_none()
            {
                return Err(ctx.invalid(off, format!("rule #{} has an empty select", i + 1)));
            }
            let patch = ctx.patch(off, r.delay, r.loss, r.outages, r.never, r.sip)?;
            let id_list = s.ids.clone().unwrap_or_default();
            rules.push(Rule {
                line,
                select: Selector {
                    ids: s.ids.map(|v| v.into_iter().collect()),
                    id_list,
                    province: s.province,
                    district: s.district,
                    commune: s.commune,
                    carrier: s.carrier,
                },
                patch,
            });
        }
        Ok(Scenario {
            origin: origin.to_string(),
            defaults,
            rules,
        })
    }

    /// Checks the scenario against the endpoint list: unique ids/addresses, every rule
    /// selects at least one endpoint, every listed id exists.
    pub fn validate(&self, endpoints: &[EmulatedEndpoint]) -> Result<(), ScenarioError> {
        self.resolve(endpoints).map(|_| ())
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

const NS_PER_S: f64 = 1e9;
const NS_PER_MS: f64 = 1e6;

fn s_to_ns(s: f64) -> u64 {
    (s * NS_PER_S).round().max(0.0) as u64
}

/// Delay distribution ready for sampling (Normal pre-built so the hot path only draws).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delay {
    Fixed(f64),
    Uniform(f64, f64),
    Normal(Normal<f64>),
}

/// Window in nanoseconds since scenario time zero.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Window {
    Down {
        start: u64,
        end: u64,
    },
    Flap {
        start: u64,
        period: u64,
        down: u64,
        end: Option<u64>,
    },
    Degrade {
        start: u64,
        end: u64,
        loss_from: f64,
        loss_to: f64,
        extra_ms: f64,
    },
}

impl Window {
    /// The k-th occurrence `[start, end)` of this window, `None` past the last one.
    /// Used by the truth writer to report windows exactly as the hot path applies them.
    pub(crate) fn occurrence(&self, k: u64) -> Option<(u64, u64)> {
        match *self {
            Window::Down { start, end } | Window::Degrade { start, end, .. } => (k == 0).then_some((start, end)),
            Window::Flap {
                start,
                period,
                down,
                end,
            } => {
                let s = start.checked_add(period.checked_mul(k)?)?;
                let e = s.checked_add(down)?;
                match end {
                    Some(limit) if s >= limit => None,
                    Some(limit) => Some((s, e.min(limit))),
                    None => Some((s, e)),
                }
            }
        }
    }

    pub(crate) fn is_degrade(&self) -> bool {
        matches!(self, Window::Degrade { .. })
    }

    fn is_down_at(&self, t: u64) -> bool {
        match *self {
            Window::Down { start, end } => t >= start && t < end,
            Window::Flap {
                start,
                period,
                down,
                end,
            } => t >= start && end.is_none_or(|e| t < e) && (t - start) % period < down,
            Window::Degrade { .. } => false,
        }
    }
}

/// Outcome of the per-packet decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    Outage,
    Loss,
    Reply { delay_ns: u64 },
}

/// A fully resolved endpoint behaviour.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) delay: Delay,
    pub(crate) loss: f64,
    pub(crate) windows: Vec<Window>,
    pub(crate) never: bool,
    pub(crate) sip: SipMode,
}

impl Profile {
    fn from_patch(p: &ProfilePatch) -> Profile {
        let delay = match p.delay.unwrap_or(DelaySpec::Fixed { ms: 0.0 }) {
            DelaySpec::Fixed { ms } => Delay::Fixed(ms),
            DelaySpec::Uniform { min_ms, max_ms } => Delay::Uniform(min_ms, max_ms),
            DelaySpec::Normal { mean_ms, stddev_ms } => match Normal::new(mean_ms, stddev_ms) {
                Ok(n) => Delay::Normal(n),
                // Only reachable with a non-finite stddev, which parsing rejects.
                Err(_) => Delay::Fixed(mean_ms),
            },
        };
        let windows = p
            .windows
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|w| match *w {
                WindowSpec::Down { start_s, end_s } => Window::Down {
                    start: s_to_ns(start_s),
                    end: s_to_ns(end_s),
                },
                WindowSpec::Flap {
                    period_s,
                    down_s,
                    start_s,
                    end_s,
                } => Window::Flap {
                    start: s_to_ns(start_s),
                    period: s_to_ns(period_s).max(1),
                    down: s_to_ns(down_s),
                    end: end_s.map(s_to_ns),
                },
                WindowSpec::Degrade {
                    start_s,
                    end_s,
                    loss_from,
                    loss_to,
                    extra_delay_ms_to,
                } => Window::Degrade {
                    start: s_to_ns(start_s),
                    end: s_to_ns(end_s),
                    loss_from,
                    loss_to,
                    extra_ms: extra_delay_ms_to,
                },
            })
            .collect();
        Profile {
            delay,
            loss: p.loss.unwrap_or(0.0),
            windows,
            never: p.never.unwrap_or(false),
            sip: p.sip.unwrap_or_default(),
        }
    }

    /// Decides what happens to a request arriving at `t` ns after time zero.
    /// Outage wins over loss; degrade loss combines with base loss as independent drops.
    pub(crate) fn decide<R: Rng>(&self, t: u64, rng: &mut R) -> Decision {
        if self.never || self.windows.iter().any(|w| w.is_down_at(t)) {
            return Decision::Outage;
        }
        let mut loss = self.loss;
        let mut extra_ms = 0.0;
        for w in &self.windows {
            if let Window::Degrade {
                start,
                end,
                loss_from,
                loss_to,
                extra_ms: to,
            } = *w
                && t >= start
                && t < end
            {
                let f = (t - start) as f64 / (end - start) as f64;
                let l = loss_from + (loss_to - loss_from) * f;
                loss = 1.0 - (1.0 - loss) * (1.0 - l);
                extra_ms += to * f;
            }
        }
        if loss > 0.0 && rng.random::<f64>() < loss {
            return Decision::Loss;
        }
        let base = match self.delay {
            Delay::Fixed(ms) => ms,
            Delay::Uniform(lo, hi) => {
                if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                }
            }
            Delay::Normal(n) => n.sample(rng),
        };
        let ms = (base + extra_ms).max(0.0);
        Decision::Reply {
            delay_ns: (ms * NS_PER_MS) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ep(id: &str, province: &str, carrier: &str, addr: &str) -> EmulatedEndpoint {
        EmulatedEndpoint {
            id: id.into(),
            province: province.into(),
            district: "D".into(),
            commune: "C".into(),
            carrier: carrier.into(),
            addr: addr.parse().expect("test addr"),
        }
    }

    const EXAMPLE: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 5.0 }
loss = 0.0

[[rule]]
select = { ids = ["HN-00001"] }
delay = { kind = "normal", mean_ms = 40.0, stddev_ms = 8.0 }
loss = 0.2
outages = [ { start_s = 60, end_s = 180 }, { flap = { period_s = 120, down_s = 30 } } ]
never = false
sip = "503"

[[rule]]
select = { province = "HCM", carrier = "VT" }
outages = [ { degrade = { start_s = 0, end_s = 10, loss_from = 0.0, loss_to = 1.0, extra_delay_ms_to = 100 } } ]
sip = "silent"
"#;

    #[test]
    fn parses_example_and_resolves() {
        let s = Scenario::from_toml_str(EXAMPLE, "ex.toml").expect("parse");
        let eps = vec![
            ep("HN-00001", "HN", "VT", "198.18.0.1"),
            ep("HCM-1", "HCM", "VT", "198.18.0.2"),
            ep("HCM-2", "HCM", "VN", "198.18.0.3"),
        ];
        let (profiles, assign) = s.resolve(&eps).expect("resolve");
        assert_eq!(profiles.len(), 3);
        let p0 = &profiles[assign[0] as usize];
        assert_eq!(p0.sip, SipMode::Unavailable503);
        assert!((p0.loss - 0.2).abs() < 1e-12);
        assert_eq!(p0.windows.len(), 2);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        assert_eq!(p0.decide(s_to_ns(100.0), &mut rng), Decision::Outage);
        assert_eq!(p0.decide(s_to_ns(250.0), &mut rng), Decision::Outage); // flap 240..270
        let p1 = &profiles[assign[1] as usize];
        assert_eq!(p1.sip, SipMode::Silent);
        let p2 = &profiles[assign[2] as usize];
        assert_eq!(p2.decide(0, &mut rng), Decision::Reply { delay_ns: 5_000_000 });
    }

    #[test]
    fn unknown_key_has_line() {
        let text = "# c\n[defaults]\nloss = 2.0\n";
        let msg = Scenario::from_toml_str(text, "d.toml")
            .expect_err("must fail")
            .to_string();
        assert!(msg.starts_with("d.toml:2:"), "{msg}");
        let text = "[defaults]\nloss = 0.1\nlos = 0.2\n";
        let e = Scenario::from_toml_str(text, "f.toml").expect_err("must fail");
        let msg = e.to_string();
        assert!(msg.starts_with("f.toml:3:"), "{msg}");
        let text = "[[rule]]\nselect = { ids = [\"a\"] }\ndelay = { kind = \"fixed\", ms = 1, extra = 2 }\n";
        let msg = Scenario::from_toml_str(text, "g.toml").expect_err("fail").to_string();
        assert!(msg.starts_with("g.toml:3:"), "{msg}");
        let text = "[[rule]]\nselect = { ids = [\"a\"] }\noutages = [ { start_s = 1, end_s = 2, flap = { period_s = 1, down_s = 1 } } ]\n";
        let msg = Scenario::from_toml_str(text, "h.toml").expect_err("fail").to_string();
        assert!(msg.starts_with("h.toml:3:"), "{msg}");
    }

    #[test]
    fn empty_selection_and_unknown_id() {
        let eps = vec![ep("A", "HN", "VT", "198.18.0.1")];
        let s =
            Scenario::from_toml_str("[[rule]]\nselect = { province = \"XX\" }\nloss = 0.5\n", "r.toml").expect("parse");
        let e = s.validate(&eps).expect_err("empty");
        assert!(matches!(e, ScenarioError::EmptySelection { line: 1, .. }), "{e}");
        let s = Scenario::from_toml_str("\n[[rule]]\nselect = { ids = [\"B\"] }\n", "r.toml").expect("parse");
        let e = s.validate(&eps).expect_err("unknown");
        assert!(matches!(e, ScenarioError::UnknownId { line: 2, .. }), "{e}");
    }

    #[test]
    fn invalid_values() {
        for bad in [
            "[defaults]\nloss = 1.5\n",
            "[defaults]\ndelay = { kind = \"uniform\", min_ms = 5, max_ms = 1 }\n",
            "[defaults]\noutages = [ { flap = { period_s = 10, down_s = 20 } } ]\n",
            "[defaults]\nsip = \"404\"\n",
            "[[rule]]\nselect = {}\n",
        ] {
            assert!(Scenario::from_toml_str(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn flap_occurrences() {
        let w = Window::Flap {
            start: 10,
            period: 100,
            down: 30,
            end: Some(250),
        };
        assert_eq!(w.occurrence(0), Some((10, 40)));
        assert_eq!(w.occurrence(2), Some((210, 240)));
        assert_eq!(w.occurrence(3), None);
        assert!(w.is_down_at(215) && !w.is_down_at(245) && !w.is_down_at(5));
    }
}
