//! Planned maintenance windows from the config file, excluded from SLA figures.
//!
//! ```toml
//! [[maintenance]]
//! name = "VNPT core upgrade"
//! scope = { carrier = "VNPT", province = "Tỉnh Hà Giang" }
//! start = "2026-11-08T01:00:00+07:00"   # one-off: start and end
//! end = "2026-11-08T03:00:00+07:00"
//!
//! [[maintenance]]
//! name = "Weekly window"
//! scope = { carrier = "Viettel" }
//! cron = "0 1 * * SUN"                  # recurring: start times, in time_zone
//! duration = "2h"
//! time_zone = "Asia/Ho_Chi_Minh"        # the default
//! ```
//!
//! The [`RawMaintenance`] structs mirror the file (unknown keys are errors); [`validate`] turns
//! them into [`MaintenanceWindow`]s and reports every problem at once, each naming the window,
//! the field, and what to write instead.
//!
//! Cron patterns have five fields (minute hour day-of-month month day-of-week). Unlike classic
//! cron, a pattern that restricts both day-of-month and day-of-week needs **both** to match:
//! `0 1 1-7 * SUN` is the first Sunday of the month, not "days 1–7 and every Sunday".

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Deserializer};

use crate::domain::Labels;
use crate::domain::diag::{LoadError, Problem};
use crate::domain::sla::{self, DEFAULT_TIME_ZONE, EndpointHistory, Interval};

/// The `[maintenance]` array of the config file, for parsing a file that holds only it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenanceFile {
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
}

/// One `[[maintenance]]` table, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub name: Option<String>,
    pub scope: Option<RawScope>,
    /// One-off start; a TOML date-time or a string (RFC 3339, or local time in `time_zone`).
    #[serde(default, deserialize_with = "time_text")]
    pub start: Option<String>,
    #[serde(default, deserialize_with = "time_text")]
    pub end: Option<String>,
    /// Recurring: the start times.
    pub cron: Option<String>,
    /// Recurring: how long each occurrence lasts (`"2h"`, `"90m"`, `"1h 30m"`).
    pub duration: Option<String>,
    pub time_zone: Option<String>,
}

/// Which endpoints a window applies to: every label given must match. `scope = {}` is every
/// endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    pub endpoint: Option<String>,
    pub commune: Option<String>,
    pub district: Option<String>,
    pub province: Option<String>,
    pub carrier: Option<String>,
}

/// Accepts a TOML date-time (`start = 2026-11-08T01:00:00+07:00`) as well as a string: TOML
/// hands date-times to serde as a one-entry map, which a plain `String` field would reject.
fn time_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date-time such as 2026-11-08T01:00:00+07:00")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_string()))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = None;
            while let Some((_, v)) = m.next_entry::<String, String>()? {
                out = Some(v);
            }
            out.map(Some).ok_or_else(|| serde::de::Error::custom("empty date-time"))
        }
    }
    d.deserialize_any(V)
}

/// The labels of one endpoint that a scope is matched against.
#[derive(Clone, Copy, Debug)]
pub struct ScopeLabels<'a> {
    pub endpoint: &'a str,
    pub labels: &'a Labels,
}

impl<'a> From<&'a EndpointHistory> for ScopeLabels<'a> {
    fn from(h: &'a EndpointHistory) -> ScopeLabels<'a> {
        ScopeLabels {
            endpoint: &h.id,
            labels: &h.labels,
        }
    }
}

impl<'a> From<&'a crate::domain::Endpoint> for ScopeLabels<'a> {
    fn from(e: &'a crate::domain::Endpoint) -> ScopeLabels<'a> {
        ScopeLabels {
            endpoint: e.id.as_str(),
            labels: &e.labels,
        }
    }
}

/// A validated scope. Names compare exactly after trimming (Vietnamese names as in the
/// inventory); the carrier ignores ASCII case (`VNPT` = `vnpt`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub endpoint: Option<String>,
    pub commune: Option<String>,
    pub district: Option<String>,
    pub province: Option<String>,
    pub carrier: Option<String>,
}

impl Scope {
    pub fn matches(&self, l: &ScopeLabels<'_>) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have.trim());
        eq(&self.endpoint, l.endpoint)
            && eq(&self.commune, &l.labels.commune)
            && eq(&self.district, l.labels.district_or_empty())
            && eq(&self.province, &l.labels.province)
            && self
                .carrier
                .as_deref()
                .is_none_or(|w| w.eq_ignore_ascii_case(l.labels.carrier.trim()))
    }
}

/// When a window happens.
#[derive(Clone, Debug)]
pub enum Schedule {
    OneOff(Interval),
    Recurring {
        cron: Box<Cron>,
        pattern: String,
        duration_s: i64,
        time_zone: TimeZone,
    },
    /// A recurring pattern that matches no date (`0 1 30 2 *`): accepted, with a warning, and
    /// never active.
    Never {
        pattern: String,
    },
}

/// A validated maintenance window.
#[derive(Clone, Debug)]
pub struct MaintenanceWindow {
    pub name: String,
    pub scope: Scope,
    pub schedule: Schedule,
}

/// Longest accepted occurrence: a window longer than a month is an inventory change, not
/// maintenance, and a typo like `duration = "200h"` should be caught.
const MAX_DURATION_S: i64 = 31 * 24 * 3600;

/// Validates every window; all problems are reported, not only the first. The problems carry
/// no file position: the caller that knows the file places them ([`Problem::placed`]).
pub fn validate(raw: &[RawMaintenance]) -> Result<Vec<MaintenanceWindow>, LoadError> {
    let mut out = Vec::new();
    let mut errors = LoadError::default();
    for (index, r) in raw.iter().enumerate() {
        match MaintenanceWindow::from_raw(index, r) {
            Ok(w) => out.push(w),
            Err(problems) => errors.problems.extend(problems),
        }
    }
    errors.into_result(out)
}

/// Parses and validates a TOML text that holds `[[maintenance]]` tables (and nothing else).
pub fn parse_toml(text: &str) -> Result<Vec<MaintenanceWindow>, LoadError> {
    let file: RawMaintenanceFile = toml::from_str(text).map_err(|e| LoadError {
        problems: vec![
            Problem::unplaced("maintenance")
                .says(e.to_string())
                .fix("use the [[maintenance]] keys name, scope, start/end or cron/duration, time_zone"),
        ],
    })?;
    validate(&file.maintenance)
}

impl MaintenanceWindow {
    /// Validates one raw window; `index` is its position, for error messages.
    pub fn from_raw(index: usize, r: &RawMaintenance) -> Result<MaintenanceWindow, Vec<Problem>> {
        let name = r.name.as_deref().map(str::trim).unwrap_or("").to_string();
        let shown = if name.is_empty() {
            "unnamed".to_string()
        } else {
            format!("{name:?}")
        };
        let mut errors = Vec::new();
        let mut err = |field: &'static str, message: String, fix: &str| {
            errors.push(
                Problem::unplaced(format!("maintenance[{index}].{field}"))
                    .says(format!("({shown}) {message}"))
                    .fix(fix),
            )
        };
        if name.is_empty() {
            err(
                "name",
                "missing or empty".into(),
                "add name = \"…\" so reports can say which window applied",
            );
        }
        let scope = match &r.scope {
            None => {
                err(
                    "scope",
                    "missing".into(),
                    "add scope = { carrier = \"VNPT\", province = \"…\" } (any of endpoint, commune, \
                     district, province, carrier), or scope = {} for every endpoint",
                );
                Scope::default()
            }
            Some(s) => {
                let clean = |v: &Option<String>,
                             field: &'static str,
                             err: &mut dyn FnMut(&'static str, String, &str)| {
                    match v.as_deref().map(str::trim) {
                        Some("") => {
                            err(
                                field,
                                "is empty".into(),
                                "give a name as written in the inventory, or remove the key",
                            );
                            None
                        }
                        other => other.map(str::to_string),
                    }
                };
                Scope {
                    endpoint: clean(&s.endpoint, "scope.endpoint", &mut err),
                    commune: clean(&s.commune, "scope.commune", &mut err),
                    district: clean(&s.district, "scope.district", &mut err),
                    province: clean(&s.province, "scope.province", &mut err),
                    carrier: clean(&s.carrier, "scope.carrier", &mut err),
                }
            }
        };
        let tz_name = r.time_zone.as_deref().map(str::trim).unwrap_or(DEFAULT_TIME_ZONE);
        let time_zone = match sla::time_zone(tz_name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                err(
                    "time_zone",
                    format!("{tz_name:?} is not in the time zone database"),
                    "use an IANA name such as \"Asia/Ho_Chi_Minh\" (the default)",
                );
                None
            }
        };
        let one_off = r.start.is_some() || r.end.is_some();
        let recurring = r.cron.is_some() || r.duration.is_some();
        let schedule = match (one_off, recurring) {
            (true, true) => {
                err(
                    "start/cron",
                    "has both a one-off time (start/end) and a recurrence (cron/duration)".into(),
                    "keep start and end for a single window, or cron and duration for a recurring one",
                );
                None
            }
            (false, false) => {
                err(
                    "start/cron",
                    "says neither when nor how often".into(),
                    "add start and end (one-off), or cron and duration (recurring)",
                );
                None
            }
            (true, false) => {
                let mut at = |field: &'static str, v: &Option<String>| match (v, &time_zone) {
                    (None, _) => {
                        err(
                            field,
                            "missing".into(),
                            "give both start and end, e.g. \"2026-11-08T03:00:00+07:00\"",
                        );
                        None
                    }
                    (Some(_), None) => None,
                    (Some(text), Some(tz)) => match parse_time(text, tz) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            err(field, e, "write an RFC 3339 time such as \"2026-11-08T01:00:00+07:00\"");
                            None
                        }
                    },
                };
                let (start, end) = (at("start", &r.start), at("end", &r.end));
                match (start, end) {
                    (Some(s), Some(e)) if e > s => Some(Schedule::OneOff(Interval::new(s, e))),
                    (Some(_), Some(_)) => {
                        err("end", "is not after start".into(), "make end later than start");
                        None
                    }
                    _ => None,
                }
            }
            (false, true) => {
                let cron = match r.cron.as_deref().map(str::trim) {
                    None => {
                        err(
                            "cron",
                            "missing (duration is given)".into(),
                            "add cron = \"0 1 * * SUN\" (start times)",
                        );
                        None
                    }
                    Some(p) => match parse_cron(p) {
                        Ok(c) => Some((c, p.to_string())),
                        Err(e) => {
                            err(
                                "cron",
                                format!("{p:?}: {e}"),
                                "five fields: minute hour day-of-month month day-of-week, e.g. \"0 1 * * SUN\"",
                            );
                            None
                        }
                    },
                };
                let duration_s = match r.duration.as_deref().map(str::trim) {
                    None => {
                        err("duration", "missing (cron is given)".into(), "add duration = \"2h\"");
                        None
                    }
                    Some(d) => match d.parse::<SignedDuration>() {
                        Ok(sd) if sd.as_secs() > 0 && sd.as_secs() <= MAX_DURATION_S => Some(sd.as_secs()),
                        Ok(_) => {
                            err(
                                "duration",
                                format!("{d:?} is not between 1s and 31 days"),
                                "e.g. duration = \"2h\"",
                            );
                            None
                        }
                        Err(e) => {
                            err(
                                "duration",
                                format!("{d:?}: {e}"),
                                "write a duration with a unit: \"2h\", \"90m\", \"1h 30m\"",
                            );
                            None
                        }
                    },
                };
                match (cron, duration_s, &time_zone) {
                    // Known once, here: a search for the next start of such a pattern runs
                    // through the thousands of years croner allows (tens to hundreds of
                    // milliseconds), at every maintenance refresh and per endpoint in a report.
                    (Some((cron, pattern)), Some(_), Some(tz)) if !ever_occurs(&cron, tz) => {
                        tracing::warn!(
                            window = %name,
                            cron = %pattern,
                            "maintenance window matches no date (such as 30 February): it never applies"
                        );
                        Some(Schedule::Never { pattern })
                    }
                    (Some((cron, pattern)), Some(duration_s), Some(tz)) => Some(Schedule::Recurring {
                        cron: Box::new(cron),
                        pattern,
                        duration_s,
                        time_zone: tz.clone(),
                    }),
                    _ => None,
                }
            }
        };
        match schedule {
            Some(schedule) if errors.is_empty() => Ok(MaintenanceWindow { name, scope, schedule }),
            _ => Err(errors),
        }
    }

    /// Whether the window covers this endpoint.
    pub fn applies_to(&self, labels: &ScopeLabels<'_>) -> bool {
        self.scope.matches(labels)
    }

    /// The window's occurrences that overlap `period`, whole (not clipped to it): a recurring
    /// window that started before the period and is still running is included.
    pub fn occurrences(&self, period: Interval) -> Vec<Interval> {
        match &self.schedule {
            Schedule::OneOff(i) => i.intersect(&period).map(|_| *i).into_iter().collect(),
            Schedule::Never { .. } => Vec::new(),
            Schedule::Recurring {
                cron,
                duration_s,
                time_zone,
                ..
            } => {
                // The first start that can still overlap: just after period.start − duration.
                let Some(from) = zoned(period.start - duration_s + 1, time_zone) else {
                    return Vec::new();
                };
                cron.iter_from(from, croner::Direction::Forward)
                    .map(|z| z.timestamp().as_second())
                    .take_while(|&s| s < period.end)
                    .map(|s| Interval::new(s, s + duration_s))
                    .collect()
            }
        }
    }

    /// Whether the window is under way at `unix`.
    pub fn active_at(&self, unix: i64) -> bool {
        match &self.schedule {
            Schedule::OneOff(i) => i.contains(unix),
            Schedule::Never { .. } => false,
            Schedule::Recurring {
                cron,
                duration_s,
                time_zone,
                ..
            } => {
                // The latest start at or before `unix` ends last among those: it alone decides.
                zoned(unix, time_zone)
                    .and_then(|z| cron.find_previous_occurrence(&z, true).ok())
                    .is_some_and(|start| unix < start.timestamp().as_second() + duration_s)
            }
        }
    }
}

/// The merged maintenance intervals of every window that applies to `labels`, over `period`:
/// what goes into [`EndpointHistory::maintenance`].
pub fn maintenance_for(windows: &[MaintenanceWindow], labels: &ScopeLabels<'_>, period: Interval) -> Vec<Interval> {
    let all: Vec<Interval> = windows
        .iter()
        .filter(|w| w.applies_to(labels))
        .flat_map(|w| w.occurrences(period))
        .collect();
    sla::normalize(&all)
}

fn zoned(unix: i64, tz: &TimeZone) -> Option<Zoned> {
    Timestamp::from_second(unix).ok().map(|t| t.to_zoned(tz.clone()))
}

/// Whether a pattern has any start at all. The Gregorian calendar repeats every 400 years, so a
/// pattern with no start in the 400 years from 2000 has none ever. Paid once, at load: one
/// search to croner's limit for a pattern that never matches, a short one otherwise.
fn ever_occurs(cron: &Cron, tz: &TimeZone) -> bool {
    const Y2000: i64 = 946_684_800;
    const Y2400: i64 = 13_569_465_600;
    zoned(Y2000, tz)
        .and_then(|from| cron.find_next_occurrence(&from, true).ok())
        .is_some_and(|first| first.timestamp().as_second() < Y2400)
}

fn parse_cron(pattern: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .dom_and_dow(true)
        .build()
        .parse(pattern)
}

/// RFC 3339 with offset, or a local date-time read in `tz`.
fn parse_time(text: &str, tz: &TimeZone) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.as_second());
    }
    text.parse::<jiff::civil::DateTime>()
        .map_err(|e| format!("{text:?} is not a date-time: {e}"))?
        .to_zoned(tz.clone())
        .map(|z| z.timestamp().as_second())
        .map_err(|e| format!("{text:?}: {e}"))
}
