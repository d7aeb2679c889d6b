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

use serde::{Deserialize, Serialize};

use super::Labels;

/// The availability target when a carrier has none of its own, in percent.
pub const DEFAULT_TARGET_PCT: f64 = 99.5;

pub use super::collation::collation_key;
use super::interval::overlap_with;
pub use super::interval::{Interval, intersect_sets, normalize, subtract_sets, total};
pub use super::period::{DEFAULT_TIME_ZONE, PeriodError, as_month, local_time, month_period, parse_period, time_zone};
pub use super::sla_cause::{ChargeRules, Charged};

/// What the ledger knows about one endpoint. Intervals need not be sorted, merged or clipped to
/// the period; [`compute`] does that.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHistory {
    pub id: String,
    #[serde(flatten)]
    pub labels: Labels,
    /// When the endpoint was in the inventory. Empty: it never was (it counts nowhere).
    pub exists: Vec<Interval>,
    /// When the daemon was running and probing (heartbeat intervals); outside is unknown time.
    pub monitored: Vec<Interval>,
    /// Outages (Down state); an outage still open ends at "now".
    pub down: Vec<Interval>,
    /// Of those, the ones a path trace placed at the endpoint's own site, and on the path (at
    /// a router); the rest were not placed.
    #[serde(default)]
    pub down_at_site: Vec<Interval>,
    #[serde(default)]
    pub down_on_path: Vec<Interval>,
    /// Planned maintenance windows that apply to this endpoint
    /// (see [`crate::domain::maintenance::MaintenanceWindow::occurrences`]).
    pub maintenance: Vec<Interval>,
    /// Starts (unix seconds) of breaks too short to confirm: counted, never downtime.
    #[serde(default)]
    pub brief: Vec<i64>,
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
    /// Eligible downtime (charged to the carrier).
    pub downtime_s: i64,
    /// Downtime in eligible time by where its fault lay, charged or not: the endpoint's own
    /// site, a router on the path, not placed.
    pub downtime_site_s: i64,
    pub downtime_path_s: i64,
    pub downtime_unplaced_s: i64,
    /// Excluded: downtime whose place `[report] charge` does not count against the carrier.
    pub excused_s: i64,
    /// Outages whose down part meets eligible time.
    pub outages: u64,
    /// Breaks too short to confirm (a silent round whose confirmation answered late) that began
    /// in eligible time; not downtime.
    pub brief_interruptions: u64,
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
        self.downtime_site_s += o.downtime_site_s;
        self.downtime_path_s += o.downtime_path_s;
        self.downtime_unplaced_s += o.downtime_unplaced_s;
        self.excused_s += o.excused_s;
        self.outages += o.outages;
        self.brief_interruptions += o.brief_interruptions;
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
    /// Which fault places count against each carrier (default: all).
    #[serde(default)]
    pub charge: super::sla_cause::ChargeRules,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            default_pct: DEFAULT_TARGET_PCT,
            carriers: BTreeMap::new(),
            charge: Default::default(),
        }
    }
}

impl Targets {
    /// The default target with per-carrier exceptions.
    pub fn new(default_pct: f64, carriers: impl IntoIterator<Item = (String, f64)>) -> Targets {
        Targets {
            default_pct,
            carriers: carriers.into_iter().collect(),
            charge: Default::default(),
        }
    }

    pub fn for_carrier(&self, carrier: &str) -> f64 {
        per_carrier(&self.carriers, carrier).unwrap_or(self.default_pct)
    }
}

/// `carrier`'s entry in a per-carrier setting: the exact name first, else the name with ASCII
/// case ignored (inventories spell "VNPT" and "Vnpt").
pub fn per_carrier<T: Copy>(map: &BTreeMap<String, T>, carrier: &str) -> Option<T> {
    map.get(carrier)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(carrier))
                .map(|(_, v)| v)
        })
        .copied()
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

impl GroupKey {
    /// `province`, `district` or `carrier`, as written in `--by`.
    pub fn name(self) -> &'static str {
        match self {
            GroupKey::Province => "province",
            GroupKey::District => "district",
            GroupKey::Carrier => "carrier",
        }
    }
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
            province: (has(GroupKey::Province) || has(GroupKey::District)).then(|| h.labels.province.to_string()),
            district: h
                .labels
                .district
                .as_deref()
                .filter(|_| has(GroupKey::District))
                .map(str::to_string),
            carrier: has(GroupKey::Carrier).then(|| h.labels.carrier.to_string()),
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
    #[serde(flatten)]
    pub labels: Labels,
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
    let figures = classify(period, h, targets.charge.for_carrier(&h.labels.carrier));
    let target_pct = targets.for_carrier(&h.labels.carrier);
    EndpointFigures {
        id: h.id.clone(),
        labels: h.labels.clone(),
        target_pct,
        breach: breach(figures.availability_pct, target_pct),
        figures,
    }
}

fn classify(period: Interval, h: &EndpointHistory, charged: super::sla_cause::Charged) -> Figures {
    let exists = intersect_sets(&normalize(&h.exists), &[period]);
    let maintenance = intersect_sets(&exists, &normalize(&h.maintenance));
    let watched_part = subtract_sets(&exists, &maintenance);
    let monitored = normalize(&h.monitored);
    let seen = intersect_sets(&watched_part, &monitored);
    // Downtime by place; what the carrier is not charged for leaves the eligible time.
    let all_down = normalize(&h.down);
    let site = intersect_sets(&normalize(&h.down_at_site), &all_down);
    let path = subtract_sets(&intersect_sets(&normalize(&h.down_on_path), &all_down), &site);
    let unplaced = subtract_sets(&subtract_sets(&all_down, &site), &path);
    let places = [&site, &path, &unplaced];
    let excused: Vec<Interval> = (0..places.len())
        .filter(|p| !charged.contains(*p))
        .flat_map(|p| intersect_sets(places[p], &seen))
        .collect();
    let excused = normalize(&excused);
    let eligible = subtract_sets(&seen, &excused);
    let (mut downtime, mut outages) = (0, 0);
    for outage in &all_down {
        let d = overlap_with(*outage, &eligible);
        if d > 0 {
            downtime += d;
            outages += 1;
        }
    }
    let eligible_s = total(&eligible);
    let in_seen = |set: &[Interval]| total(&intersect_sets(set, &seen));
    let mut f = Figures {
        inventory_s: total(&exists),
        maintenance_s: total(&maintenance),
        unknown_s: total(&watched_part) - total(&seen),
        eligible_s,
        up_s: eligible_s - downtime,
        downtime_s: downtime,
        downtime_site_s: in_seen(&site),
        downtime_path_s: in_seen(&path),
        downtime_unplaced_s: in_seen(&unplaced),
        excused_s: total(&excused),
        outages,
        brief_interruptions: h
            .brief
            .iter()
            .filter(|&&t| eligible.iter().any(|i| i.contains(t)))
            .count() as u64,
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
            acc.carriers.insert(h.labels.carrier.to_string());
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

type SortKey = Vec<(Vec<u32>, Vec<u32>, String)>;

fn group_sort_key(l: &GroupLabels) -> SortKey {
    [&l.province, &l.district, &l.carrier]
        .into_iter()
        .map(|v| collation_key(v.as_deref().unwrap_or("")))
        .collect()
}
