//! CSV renderers. UTF-8 with a byte-order mark (without it Excel on a Vietnamese Windows desktop
//! reads the file as Windows-1258 and garbles the diacritics), comma-separated, a header line,
//! `.` as the decimal mark. Durations are whole seconds; percentages have four decimals; a figure
//! that does not exist (availability without eligible time, MTTR/MTBF without outages) is an
//! empty field.
//!
//! Text cells that a spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, tab
//! or carriage return: a commune named `=HYPERLINK(…)` in an inventory) get a leading `'`, as the
//! OWASP guidance on CSV injection says; numbers, negative ones included, stay numbers.

use std::borrow::Cow;
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
/// | `brief_interruptions` | breaks too short to confirm, begun in eligible time (not downtime) |
/// | `mttr_s`, `mtbf_s` | `downtime_s / outages`, `up_s / outages`, rounded; empty without outages |
/// | `maintenance_s`, `unknown_s` | excluded time |
/// | `inventory_s` | time in the inventory = eligible + maintenance + unknown + excused |
/// | `downtime_site_s`, `downtime_path_s`, `downtime_unplaced_s` | downtime by where its fault lay: the commune's site, a router on the path, not placed (charged or not) |
/// | `excused_s` | downtime whose place `[report] charge` does not count against the carrier: excluded |
pub const GROUP_HEADER: [&str; 23] = [
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
    "brief_interruptions",
    "mttr_s",
    "mtbf_s",
    "maintenance_s",
    "unknown_s",
    "inventory_s",
    "downtime_site_s",
    "downtime_path_s",
    "downtime_unplaced_s",
    "excused_s",
];

/// The columns of [`write_worst`], one row per endpoint, worst first (`rank` from 1); the figure
/// columns mean what they do in [`GROUP_HEADER`].
pub const WORST_HEADER: [&str; 24] = [
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
    "brief_interruptions",
    "mttr_s",
    "mtbf_s",
    "maintenance_s",
    "unknown_s",
    "inventory_s",
    "downtime_site_s",
    "downtime_path_s",
    "downtime_unplaced_s",
    "excused_s",
    "period",
];

/// The UTF-8 byte-order mark every CSV starts with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `-12`, `+3.5`, `99.5000`: a plain decimal number, left as it is.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The cell as written: a leading `'` on text a spreadsheet would run as a formula.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if !is_number(cell) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A CSV writer over `out` that has written the BOM.
fn writer<W: Write>(mut out: W) -> Result<::csv::Writer<W>, ReportError> {
    out.write_all(BOM)?;
    Ok(::csv::Writer::from_writer(out))
}

fn write_row<W: Write>(w: &mut ::csv::Writer<W>, row: &[String]) -> Result<(), ReportError> {
    w.write_record(row.iter().map(|c| neutralize(c).into_owned()))?;
    Ok(())
}

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

fn figure_fields(f: &Figures) -> [String; 14] {
    [
        f.eligible_s.to_string(),
        f.up_s.to_string(),
        f.downtime_s.to_string(),
        f.outages.to_string(),
        f.brief_interruptions.to_string(),
        secs(f.mttr_s),
        secs(f.mtbf_s),
        f.maintenance_s.to_string(),
        f.unknown_s.to_string(),
        f.inventory_s.to_string(),
        f.downtime_site_s.to_string(),
        f.downtime_path_s.to_string(),
        f.downtime_unplaced_s.to_string(),
        f.excused_s.to_string(),
    ]
}

/// One row per group; see [`GROUP_HEADER`].
pub fn write_groups<W: Write>(report: &SlaReport, out: W) -> Result<(), ReportError> {
    let mut w = writer(out)?;
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
        write_row(&mut w, &row)?;
    }
    w.flush()?;
    Ok(())
}

/// One row per worst endpoint; see [`WORST_HEADER`]. `period` is `start..end` in unix seconds.
pub fn write_worst<W: Write>(report: &SlaReport, out: W) -> Result<(), ReportError> {
    let mut w = writer(out)?;
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
        write_row(&mut w, &row)?;
    }
    w.flush()?;
    Ok(())
}

/// [`write_groups`] into a string (starting with the BOM, U+FEFF).
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

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formulas_get_an_apostrophe_and_numbers_stay_numbers() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+84 912", "'+84 912"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-12", "-12"),
            ("-0.5000", "-0.5000"),
            ("+3", "+3"),
            ("99.5000", "99.5000"),
            ("Xã Tân Phú", "Xã Tân Phú"),
            ("", ""),
        ] {
            assert_eq!(neutralize(cell), want, "{cell:?}");
        }
    }
}
