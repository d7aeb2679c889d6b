//! CSV renderers. UTF-8 without BOM, comma-separated, a header line, `.` as the decimal mark.
//! Durations are whole seconds; percentages have four decimals; a figure that does not exist
//! (availability without eligible time, MTTR/MTBF without outages) is an empty field.

use std::io::Write;

use super::ReportError;
use crate::domain::sla::{Figures, SlaReport};

/// The columns of [`write_groups`], one row per group of the report (the national total when it
/// was grouped on nothing):
///
/// | column | meaning |
/// | --- | --- |
/// | `group` | the group's labels joined by ` / `, or `Toàn quốc` |
/// | `province`, `district`, `carrier` | the labels grouped on; empty when not grouped on |
/// | `endpoints` | endpoints in the inventory at some time in the period |
/// | `endpoints_without_data` | of those, endpoints with no eligible time |
/// | `availability_pct` | `up_s / eligible_s × 100`; empty without eligible time |
/// | `target_pct`, `breach` | the target applied; `yes`/`no` (empty without availability) |
/// | `eligible_s`, `up_s`, `downtime_s` | eligible = up + down |
/// | `outages` | outages whose down part meets eligible time |
/// | `mttr_s`, `mtbf_s` | `downtime_s / outages`, `up_s / outages`, rounded; empty without outages |
/// | `maintenance_s`, `unknown_s` | excluded time |
/// | `inventory_s` | time in the inventory = eligible + maintenance + unknown |
pub const GROUP_HEADER: [&str; 18] = [
    "group",
    "province",
    "district",
    "carrier",
    "endpoints",
    "endpoints_without_data",
    "availability_pct",
    "target_pct",
    "breach",
    "eligible_s",
    "up_s",
    "downtime_s",
    "outages",
    "mttr_s",
    "mtbf_s",
    "maintenance_s",
    "unknown_s",
    "inventory_s",
];

/// The columns of [`write_worst`], one row per endpoint, worst first (`rank` from 1); the figure
/// columns mean what they do in [`GROUP_HEADER`].
pub const WORST_HEADER: [&str; 19] = [
    "rank",
    "id",
    "province",
    "district",
    "commune",
    "carrier",
    "availability_pct",
    "target_pct",
    "breach",
    "eligible_s",
    "up_s",
    "downtime_s",
    "outages",
    "mttr_s",
    "mtbf_s",
    "maintenance_s",
    "unknown_s",
    "inventory_s",
    "period",
];

fn pct(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.4}"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{}", v.round() as i64))
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    }
}

fn figure_fields(f: &Figures) -> [String; 9] {
    [
        f.eligible_s.to_string(),
        f.up_s.to_string(),
        f.downtime_s.to_string(),
        f.outages.to_string(),
        secs(f.mttr_s),
        secs(f.mtbf_s),
        f.maintenance_s.to_string(),
        f.unknown_s.to_string(),
        f.inventory_s.to_string(),
    ]
}

/// One row per group; see [`GROUP_HEADER`].
pub fn write_groups<W: Write>(report: &SlaReport, out: W) -> Result<(), ReportError> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(GROUP_HEADER)?;
    for g in &report.groups {
        let l = &g.labels;
        let mut row = vec![
            g.name.clone(),
            l.province.clone().unwrap_or_default(),
            l.district.clone().unwrap_or_default(),
            l.carrier.clone().unwrap_or_default(),
            g.endpoints.to_string(),
            g.endpoints_without_data.to_string(),
            pct(g.figures.availability_pct),
            format!("{}", g.target_pct),
            yes_no(g.breach).to_string(),
        ];
        row.extend(figure_fields(&g.figures));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// One row per worst endpoint; see [`WORST_HEADER`]. `period` is `start..end` in unix seconds.
pub fn write_worst<W: Write>(report: &SlaReport, out: W) -> Result<(), ReportError> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(WORST_HEADER)?;
    let period = format!("{}..{}", report.period.start, report.period.end);
    for (i, e) in report.worst.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            e.id.clone(),
            e.labels.province.to_string(),
            e.labels.district_or_empty().to_string(),
            e.labels.commune.to_string(),
            e.labels.carrier.to_string(),
            pct(e.figures.availability_pct),
            format!("{}", e.target_pct),
            yes_no(e.breach).to_string(),
        ];
        row.extend(figure_fields(&e.figures));
        row.push(period.clone());
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// [`write_groups`] into a string.
pub fn groups_to_string(report: &SlaReport) -> Result<String, ReportError> {
    let mut out = Vec::new();
    write_groups(report, &mut out)?;
    // The writer was given only `String`s, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// [`write_worst`] into a string.
pub fn worst_to_string(report: &SlaReport) -> Result<String, ReportError> {
    let mut out = Vec::new();
    write_worst(report, &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
