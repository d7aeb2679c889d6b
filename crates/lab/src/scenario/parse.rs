//! Parsing the scenario TOML: the file's schema, value checks, and errors that point at the
//! line (and column) to fix.

use serde::Deserialize;
use toml::Spanned;

use super::routers::{MonitorRaw, RouterRaw};
use super::{DelaySpec, ProfilePatch, Rule, Scenario, ScenarioError, Selector, SipMode, WindowSpec};

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
pub(super) struct OutageRaw {
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
pub(super) struct SelectorRaw {
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
    #[serde(default)]
    router: Vec<Spanned<RouterRaw>>,
    monitor: Option<Spanned<MonitorRaw>>,
}

impl SelectorRaw {
    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_none()
            && self.province.is_none()
            && self.district.is_none()
            && self.commune.is_none()
            && self.carrier.is_none()
    }

    pub(super) fn into_selector(self) -> Selector {
        let id_list = self.ids.clone().unwrap_or_default();
        Selector {
            ids: self.ids.map(|v| v.into_iter().collect()),
            id_list,
            province: self.province,
            district: self.district,
            commune: self.commune,
            carrier: self.carrier,
        }
    }
}
/// 1-based (line, column) of a byte offset, for error messages.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
}

impl Ctx<'_> {
    pub(super) fn invalid(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            line: line_col(self.text, offset).0,
            message: message.into(),
        }
    }

    pub(super) fn check_delay(&self, off: usize, d: &DelaySpec) -> Result<(), ScenarioError> {
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

    pub(super) fn window(&self, o: &Spanned<OutageRaw>) -> Result<WindowSpec, ScenarioError> {
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
            if r.select.is_empty() {
                return Err(ctx.invalid(off, format!("rule #{} has an empty select", i + 1)));
            }
            let patch = ctx.patch(off, r.delay, r.loss, r.outages, r.never, r.sip)?;
            rules.push(Rule {
                line,
                select: r.select.into_selector(),
                patch,
            });
        }
        let routers = ctx.routers(raw.router)?;
        let monitor = match raw.monitor {
            None => Vec::new(),
            Some(m) => ctx.monitor(m)?,
        };
        Ok(Scenario {
            origin: origin.to_string(),
            defaults,
            rules,
            routers,
            monitor,
        })
    }
}
