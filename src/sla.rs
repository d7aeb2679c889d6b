//! Monthly availability (SLA) figures per endpoint and per group, computed from time intervals.
//!
//! Pure arithmetic on half-open intervals of unix seconds, `[start, end)`: no clock (except the
//! report's `generated_at` stamp), no I/O. The SQLite ledger turns its rows into
//! [`EndpointHistory`] values; [`compute`] turns those into an [`SlaReport`] that the renderers in
//! [`crate::report`] print.
//!
//! # Classification
//!
//! Every second of the period during which an endpoint is in the inventory (`exists`) is exactly
//! one of, in this order of precedence:
//!
//! 1. **maintenance** — inside a planned window that applies to the endpoint: excluded;
//! 2. **unknown** — the daemon was not running (outside every `monitored` interval): excluded,
//!    because nobody saw whether the endpoint answered;
//! 3. **down** — inside an outage;
//! 4. **up** — everything else.
//!
//! Eligible time is `up + down`; availability is `up / (up + down)`, i.e.
//! `(eligible − downtime) / eligible`. With no eligible time availability is `None`, never 100 %.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil;
use jiff::tz::{Offset, TimeZone};
use serde::{Deserialize, Serialize};

/// The time zone the carriers' months are counted in.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// The availability target when a carrier has none of its own, in percent.
pub const DEFAULT_TARGET_PCT: f64 = 99.5;

/// A half-open span of unix seconds, `[start, end)`. An interval whose `end <= start` is empty:
/// such input (a clock that stepped back, a hand-edited row) is ignored rather than rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub const fn new(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    /// Length in seconds; 0 for an empty (or inverted) interval.
    pub fn len(&self) -> i64 {
        self.end.saturating_sub(self.start).max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// The common part, if any.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let i = Interval::new(self.start.max(other.start), self.end.min(other.end));
        (!i.is_empty()).then_some(i)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: i64| match jiff::Timestamp::from_second(t) {
            Ok(ts) => ts.to_string(),
            Err(_) => t.to_string(),
        };
        write!(f, "[{}, {})", show(self.start), show(self.end))
    }
}

/// Sorts, drops empty intervals and merges overlapping or touching ones. Touching outages
/// (`[a, b)` then `[b, c)`) become one outage: the endpoint never answered in between.
pub fn normalize(intervals: &[Interval]) -> Vec<Interval> {
    let mut v: Vec<Interval> = intervals.iter().copied().filter(|i| !i.is_empty()).collect();
    v.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(v.len());
    for i in v {
        match out.last_mut() {
            Some(last) if i.start <= last.end => last.end = last.end.max(i.end),
            _ => out.push(i),
        }
    }
    out
}

/// `a ∩ b` for two normalized sets.
pub fn intersect_sets(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if let Some(x) = a[i].intersect(&b[j]) {
            out.push(x);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// `a − b` for two normalized sets.
pub fn subtract_sets(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut j = 0;
    for &x in a {
        let mut cur = x.start;
        while j < b.len() && b[j].end <= cur {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start < x.end {
            if b[k].start > cur {
                out.push(Interval::new(cur, b[k].start));
            }
            cur = cur.max(b[k].end);
            k += 1;
        }
        if cur < x.end {
            out.push(Interval::new(cur, x.end));
        }
    }
    out
}

/// Total length in seconds of a normalized set.
pub fn total(set: &[Interval]) -> i64 {
    set.iter().map(Interval::len).sum()
}

/// Seconds of `x` covered by the normalized set `set`.
fn overlap_with(x: Interval, set: &[Interval]) -> i64 {
    let first = set.partition_point(|s| s.end <= x.start);
    set[first..]
        .iter()
        .take_while(|s| s.start < x.end)
        .filter_map(|s| s.intersect(&x))
        .map(|i| i.len())
        .sum()
}

/// What the ledger knows about one endpoint. Intervals need not be sorted, merged or clipped to
/// the period; [`compute`] does that.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHistory {
    pub id: String,
    pub province: String,
    pub district: String,
    pub commune: String,
    pub carrier: String,
    /// When the endpoint was in the inventory. Empty: it never was (it counts nowhere).
    pub exists: Vec<Interval>,
    /// When the daemon was running and probing (heartbeat intervals); outside is unknown time.
    pub monitored: Vec<Interval>,
    /// Outages (Down state); an outage still open ends at "now".
    pub down: Vec<Interval>,
    /// Planned maintenance windows that apply to this endpoint
    /// (see [`crate::maintenance::MaintenanceWindow::occurrences`]).
    pub maintenance: Vec<Interval>,
}

/// The figures of one endpoint or one group, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// `up / (up + down) × 100`; `None` without eligible time.
    pub availability_pct: Option<f64>,
    /// Time in the inventory during the period.
    pub inventory_s: i64,
    /// Excluded: planned maintenance.
    pub maintenance_s: i64,
    /// Excluded: the daemon was not monitoring (and no maintenance).
    pub unknown_s: i64,
    /// `up + down`.
    pub eligible_s: i64,
    pub up_s: i64,
    /// Eligible downtime.
    pub downtime_s: i64,
    /// Outages whose down part meets eligible time.
    pub outages: u64,
    /// Mean time to repair: `downtime / outages`; `None` without outages.
    pub mttr_s: Option<f64>,
    /// Mean time between failures: `up / outages`; `None` without outages.
    pub mtbf_s: Option<f64>,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.inventory_s += o.inventory_s;
        self.maintenance_s += o.maintenance_s;
        self.unknown_s += o.unknown_s;
        self.eligible_s += o.eligible_s;
        self.up_s += o.up_s;
        self.downtime_s += o.downtime_s;
        self.outages += o.outages;
    }

    /// Fills the ratios from the sums.
    fn finish(&mut self) {
        self.availability_pct = (self.eligible_s > 0).then(|| self.up_s as f64 * 100.0 / self.eligible_s as f64);
        let n = self.outages as f64;
        self.mttr_s = (self.outages > 0).then(|| self.downtime_s as f64 / n);
        self.mtbf_s = (self.outages > 0).then(|| self.up_s as f64 / n);
    }
}

/// Availability targets: one per carrier, and a default for the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub default_pct: f64,
    /// Carrier name (as in the inventory; ASCII case is ignored) → target in percent.
    pub carriers: BTreeMap<String, f64>,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            default_pct: DEFAULT_TARGET_PCT,
            carriers: BTreeMap::new(),
        }
    }
}

impl Targets {
    /// The default target with per-carrier exceptions.
    pub fn new(default_pct: f64, carriers: impl IntoIterator<Item = (String, f64)>) -> Targets {
        Targets {
            default_pct,
            carriers: carriers.into_iter().collect(),
        }
    }

    pub fn for_carrier(&self, carrier: &str) -> f64 {
        if let Some(t) = self.carriers.get(carrier) {
            return *t;
        }
        self.carriers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(carrier))
            .map_or(self.default_pct, |(_, t)| *t)
    }
}

/// One dimension to group by. Grouping by district always keeps the province too, since district
/// names repeat across provinces (there is a "Huyện Bảo Lâm" in Cao Bằng and in Lâm Đồng).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKey {
    Province,
    District,
    Carrier,
}

impl FromStr for GroupKey {
    type Err = String;
    fn from_str(s: &str) -> Result<GroupKey, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "province" => Ok(GroupKey::Province),
            "district" => Ok(GroupKey::District),
            "carrier" => Ok(GroupKey::Carrier),
            other => Err(format!(
                "unknown grouping {other:?}: use province, district, carrier (comma-separated) or national"
            )),
        }
    }
}

/// Parses `--group-by` text: `"province,carrier"`, `"district"`, or `"national"`/`""` (no key).
pub fn parse_group_by(s: &str) -> Result<Vec<GroupKey>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("national") {
        return Ok(Vec::new());
    }
    let mut keys: Vec<GroupKey> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// The labels that identify a group; a `None` label was not grouped on.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupLabels {
    pub province: Option<String>,
    pub district: Option<String>,
    pub carrier: Option<String>,
}

impl GroupLabels {
    fn of(h: &EndpointHistory, by: &[GroupKey]) -> GroupLabels {
        let has = |k| by.contains(&k);
        GroupLabels {
            province: (has(GroupKey::Province) || has(GroupKey::District)).then(|| h.province.clone()),
            district: has(GroupKey::District).then(|| h.district.clone()),
            carrier: has(GroupKey::Carrier).then(|| h.carrier.clone()),
        }
    }
}

impl fmt::Display for GroupLabels {
    /// `"Tỉnh Hà Giang / VNPT"`; `"Toàn quốc"` (national) when nothing was grouped on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [&self.province, &self.district, &self.carrier]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if parts.is_empty() {
            f.write_str("Toàn quốc")
        } else {
            f.write_str(&parts.join(" / "))
        }
    }
}

/// One group's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupFigures {
    pub labels: GroupLabels,
    /// `labels` as one display string.
    pub name: String,
    /// Endpoints in the inventory at some time in the period.
    pub endpoints: usize,
    /// Of those, endpoints with no eligible time (all maintenance or unknown).
    pub endpoints_without_data: usize,
    /// The group's carrier's target when it has one carrier, else the default.
    pub target_pct: f64,
    /// `availability < target`; `None` when availability is `None`.
    pub breach: Option<bool>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One endpoint's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointFigures {
    pub id: String,
    pub province: String,
    pub district: String,
    pub commune: String,
    pub carrier: String,
    pub target_pct: f64,
    pub breach: Option<bool>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The result of [`compute`]: what every renderer prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlaReport {
    pub period: Interval,
    pub group_by: Vec<GroupKey>,
    pub targets: Targets,
    /// Unix seconds when the report was computed.
    pub generated_at: i64,
    /// All endpoints.
    pub total: GroupFigures,
    /// One entry per group of `group_by`, in Vietnamese alphabetical order ([`collation_key`]).
    pub groups: Vec<GroupFigures>,
    /// One entry per province, whatever `group_by` is (for the chart).
    pub provinces: Vec<GroupFigures>,
    /// The `worst_n` endpoints with the lowest availability, then the most downtime (endpoints
    /// without eligible time are left out).
    pub worst: Vec<EndpointFigures>,
}

fn breach(availability: Option<f64>, target: f64) -> Option<bool> {
    availability.map(|a| a < target)
}

/// The figures of one endpoint over `period`.
pub fn endpoint_figures(period: Interval, h: &EndpointHistory, targets: &Targets) -> EndpointFigures {
    let figures = classify(period, h);
    let target_pct = targets.for_carrier(&h.carrier);
    EndpointFigures {
        id: h.id.clone(),
        province: h.province.clone(),
        district: h.district.clone(),
        commune: h.commune.clone(),
        carrier: h.carrier.clone(),
        target_pct,
        breach: breach(figures.availability_pct, target_pct),
        figures,
    }
}

fn classify(period: Interval, h: &EndpointHistory) -> Figures {
    let exists = intersect_sets(&normalize(&h.exists), &[period]);
    let maintenance = intersect_sets(&exists, &normalize(&h.maintenance));
    let watched_part = subtract_sets(&exists, &maintenance);
    let monitored = normalize(&h.monitored);
    let eligible = intersect_sets(&watched_part, &monitored);
    let (mut downtime, mut outages) = (0, 0);
    for outage in normalize(&h.down) {
        let d = overlap_with(outage, &eligible);
        if d > 0 {
            downtime += d;
            outages += 1;
        }
    }
    let eligible_s = total(&eligible);
    let mut f = Figures {
        inventory_s: total(&exists),
        maintenance_s: total(&maintenance),
        unknown_s: total(&watched_part) - eligible_s,
        eligible_s,
        up_s: eligible_s - downtime,
        downtime_s: downtime,
        outages,
        ..Figures::default()
    };
    f.finish();
    f
}

struct Acc {
    figures: Figures,
    endpoints: usize,
    without_data: usize,
    carriers: BTreeSet<String>,
}

fn aggregate(
    per_endpoint: &[(&EndpointHistory, EndpointFigures)],
    by: &[GroupKey],
    targets: &Targets,
) -> Vec<GroupFigures> {
    let mut groups: BTreeMap<GroupLabels, Acc> = BTreeMap::new();
    for (h, e) in per_endpoint {
        let acc = groups.entry(GroupLabels::of(h, by)).or_insert_with(|| Acc {
            figures: Figures::default(),
            endpoints: 0,
            without_data: 0,
            carriers: BTreeSet::new(),
        });
        acc.figures.add(&e.figures);
        if e.figures.inventory_s > 0 {
            acc.endpoints += 1;
            acc.carriers.insert(h.carrier.clone());
            if e.figures.eligible_s == 0 {
                acc.without_data += 1;
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, mut acc)| {
            acc.figures.finish();
            let target_pct = match (&labels.carrier, acc.carriers.len()) {
                (Some(c), _) => targets.for_carrier(c),
                (None, 1) => acc
                    .carriers
                    .first()
                    .map_or(targets.default_pct, |c| targets.for_carrier(c)),
                _ => targets.default_pct,
            };
            GroupFigures {
                name: labels.to_string(),
                labels,
                endpoints: acc.endpoints,
                endpoints_without_data: acc.without_data,
                target_pct,
                breach: breach(acc.figures.availability_pct, target_pct),
                figures: acc.figures,
            }
        })
        .collect()
}

/// Figures for every group of `group_by` (empty = one national group), the national total, one
/// entry per province and the `worst_n` worst endpoints over `period`.
///
/// Groups come from the histories given: a group whose endpoints were never in the inventory
/// during the period, or had no eligible time, is listed with availability `None`.
pub fn compute(
    period: Interval,
    histories: &[EndpointHistory],
    group_by: &[GroupKey],
    targets: &Targets,
    worst_n: usize,
) -> SlaReport {
    let mut group_by = group_by.to_vec();
    group_by.sort_unstable();
    group_by.dedup();
    let per_endpoint: Vec<(&EndpointHistory, EndpointFigures)> = histories
        .iter()
        .map(|h| (h, endpoint_figures(period, h, targets)))
        .collect();
    let mut groups = aggregate(&per_endpoint, &group_by, targets);
    groups.sort_by_cached_key(|g| group_sort_key(&g.labels));
    let mut provinces = aggregate(&per_endpoint, &[GroupKey::Province], targets);
    provinces.sort_by_cached_key(|g| group_sort_key(&g.labels));
    let total = aggregate(&per_endpoint, &[], targets).pop().unwrap_or_else(|| {
        // No histories at all: an empty national group.
        let labels = GroupLabels::default();
        GroupFigures {
            name: labels.to_string(),
            labels,
            endpoints: 0,
            endpoints_without_data: 0,
            target_pct: targets.default_pct,
            breach: None,
            figures: Figures::default(),
        }
    });
    let mut worst: Vec<EndpointFigures> = per_endpoint
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.figures.availability_pct.is_some())
        .collect();
    worst.sort_by(|a, b| {
        let av = |e: &EndpointFigures| e.figures.availability_pct.unwrap_or(f64::INFINITY);
        av(a)
            .total_cmp(&av(b))
            .then(b.figures.downtime_s.cmp(&a.figures.downtime_s))
            .then_with(|| a.id.cmp(&b.id))
    });
    worst.truncate(worst_n);
    SlaReport {
        period,
        group_by,
        targets: targets.clone(),
        generated_at: jiff::Timestamp::now().as_second(),
        total,
        groups,
        provinces,
        worst,
    }
}

/// Why a period could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("unknown time zone {name:?}: {source}; use an IANA name such as \"Asia/Ho_Chi_Minh\"")]
    TimeZone { name: String, source: jiff::Error },
    #[error("month {year}-{month:02} is out of range: the month must be 1–12")]
    Month { year: i16, month: i8 },
    #[error(
        "cannot read period {input:?}: {why}; use YYYY-MM (a calendar month), or FROM..TO with \
         dates (2026-11-01), local times (2026-11-01T08:00) or RFC 3339 times \
         (2026-11-01T08:00:00+07:00), TO excluded"
    )]
    Syntax { input: String, why: String },
    #[error("period {input:?} is empty: its end must come after its start")]
    Empty { input: String },
    #[error("time arithmetic failed for {what}: {source}")]
    Time { what: String, source: jiff::Error },
}

/// The named time zone from the system database. `Asia/Ho_Chi_Minh` (and its old name
/// `Asia/Saigon`) fall back to a fixed UTC+07:00 when the machine has no tzdata: Vietnam has kept
/// that offset, without daylight saving, since 1975, so the figures do not change.
pub fn time_zone(name: &str) -> Result<TimeZone, PeriodError> {
    match TimeZone::get(name) {
        Ok(tz) => Ok(tz),
        Err(e) if matches!(name, "Asia/Ho_Chi_Minh" | "Asia/Saigon") => {
            tracing::warn!(time_zone = name, error = %e, "no tzdata: using fixed UTC+07:00");
            Ok(TimeZone::fixed(Offset::constant(7)))
        }
        Err(source) => Err(PeriodError::TimeZone {
            name: name.to_string(),
            source,
        }),
    }
}

/// The calendar month `year-month` in `tz`: from its first midnight to the next month's.
/// 2026-11 in Asia/Ho_Chi_Minh is 2026-10-31T17:00Z .. 2026-11-30T17:00Z.
pub fn month_period(year: i16, month: i8, tz: &str) -> Result<Interval, PeriodError> {
    let zone = time_zone(tz)?;
    month_in(year, month, &zone)
}

fn month_in(year: i16, month: i8, zone: &TimeZone) -> Result<Interval, PeriodError> {
    if !(1..=12).contains(&month) {
        return Err(PeriodError::Month { year, month });
    }
    let what = || format!("month {year}-{month:02}");
    let first = civil::Date::new(year, month, 1).map_err(|source| PeriodError::Time { what: what(), source })?;
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|source| PeriodError::Time { what: what(), source })?;
    let at = |d: civil::Date| {
        d.to_zoned(zone.clone())
            .map(|z| z.timestamp().as_second())
            .map_err(|source| PeriodError::Time { what: what(), source })
    };
    Ok(Interval::new(at(first)?, at(next)?))
}

/// Reads `--period`: `2026-11` (that month in `tz`), or `FROM..TO` where each side is a date
/// (midnight in `tz`), a local date-time in `tz`, or an RFC 3339 time with offset; TO is
/// excluded.
pub fn parse_period(input: &str, tz: &str) -> Result<Interval, PeriodError> {
    let zone = time_zone(tz)?;
    let s = input.trim();
    let syntax = |why: String| PeriodError::Syntax {
        input: input.to_string(),
        why,
    };
    let period = if let Some((from, to)) = s.split_once("..") {
        let from = parse_instant(from.trim(), &zone).map_err(|e| syntax(format!("FROM: {e}")))?;
        let to = parse_instant(to.trim(), &zone).map_err(|e| syntax(format!("TO: {e}")))?;
        Interval::new(from, to)
    } else {
        let (y, m) = s
            .split_once('-')
            .ok_or_else(|| syntax("no '-' between year and month".into()))?;
        let year: i16 = y.parse().map_err(|_| syntax(format!("year {y:?} is not a number")))?;
        let month: i8 = m.parse().map_err(|_| syntax(format!("month {m:?} is not a number")))?;
        month_in(year, month, &zone)?
    };
    if period.is_empty() {
        return Err(PeriodError::Empty {
            input: input.to_string(),
        });
    }
    Ok(period)
}

/// One bound of a range: RFC 3339 with offset, else a civil date or date-time in `zone`.
fn parse_instant(s: &str, zone: &TimeZone) -> Result<i64, String> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil: civil::DateTime = match s.parse::<civil::DateTime>() {
        Ok(dt) => dt,
        Err(e) => return Err(format!("{s:?} is not a date or time ({e})")),
    };
    civil
        .to_zoned(zone.clone())
        .map(|z| z.timestamp().as_second())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// `"2026-11-01 00:00"` style local time of a unix second in `zone`, for reports.
pub fn local_time(unix: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => unix.to_string(),
    }
}

/// `Some((year, month))` when `period` is exactly one calendar month in `zone`.
pub fn as_month(period: Interval, zone: &TimeZone) -> Option<(i16, i8)> {
    let start = jiff::Timestamp::from_second(period.start).ok()?.to_zoned(zone.clone());
    let (y, m) = (start.year(), start.month());
    (month_in(y, m, zone).ok()? == period).then_some((y, m))
}

/// Vietnamese letters in alphabetical order, each with its tones in the usual order
/// (ngang, huyền, sắc, hỏi, ngã, nặng).
const VI_LETTERS: [&str; 33] = [
    "aàáảãạ",
    "ăằắẳẵặ",
    "âầấẩẫậ",
    "b",
    "c",
    "d",
    "đ",
    "eèéẻẽẹ",
    "êềếểễệ",
    "f",
    "g",
    "h",
    "iìíỉĩị",
    "j",
    "k",
    "l",
    "m",
    "n",
    "oòóỏõọ",
    "ôồốổỗộ",
    "ơờớởỡợ",
    "p",
    "q",
    "r",
    "s",
    "t",
    "uùúủũụ",
    "ưừứửữự",
    "v",
    "w",
    "x",
    "yỳýỷỹỵ",
    "z",
];

/// Administrative prefixes left out when sorting, so "Thành phố Cần Thơ" sorts under C.
const ADMIN_PREFIXES: [&str; 8] = [
    "Thành phố ",
    "Tỉnh ",
    "Thị xã ",
    "Thị trấn ",
    "Quận ",
    "Huyện ",
    "Phường ",
    "Xã ",
];

/// A sort key that orders Vietnamese names as a Vietnamese reader expects: by proper name
/// (administrative prefix dropped), letters first (a < ă < â < b … d < đ < e), tones only to
/// break ties, case ignored. Characters outside the alphabet sort after it, by code point.
pub fn collation_key(name: &str) -> (Vec<u32>, Vec<u32>, String) {
    let trimmed = name.trim();
    let proper = ADMIN_PREFIXES
        .iter()
        .find_map(|p| trimmed.strip_prefix(p))
        .unwrap_or(trimmed);
    let mut letters = Vec::new();
    let mut tones = Vec::new();
    for c in proper.chars().flat_map(char::to_lowercase) {
        let found = VI_LETTERS.iter().enumerate().find_map(|(rank, forms)| {
            forms
                .chars()
                .position(|f| f == c)
                .map(|tone| (rank as u32 + 1, tone as u32))
        });
        let (rank, tone) = match (found, c) {
            (Some(x), _) => x,
            (None, ' ') => (0, 0),
            (None, c) if c.is_ascii_digit() => (0x100 + c as u32, 0),
            (None, c) => (0x1000 + c as u32, 0),
        };
        letters.push(rank);
        tones.push(tone);
    }
    (letters, tones, trimmed.to_string())
}

type SortKey = Vec<(Vec<u32>, Vec<u32>, String)>;

fn group_sort_key(l: &GroupLabels) -> SortKey {
    [&l.province, &l.district, &l.carrier]
        .into_iter()
        .map(|v| collation_key(v.as_deref().unwrap_or("")))
        .collect()
}
