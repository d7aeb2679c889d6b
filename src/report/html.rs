//! HTML renderer: one self-contained page (inline CSS and SVG, no script, no external request),
//! in Vietnamese, printable on A4. Every name goes through askama's HTML escaping.
//!
//! The markup is `templates/report.html`, which extends the pages' shared `templates/base.html`.

use askama::Template;
use jiff::tz::TimeZone;

use super::ReportError;
use crate::domain::sla::{self, DEFAULT_TIME_ZONE, EndpointFigures, GroupFigures, GroupKey, SlaReport};

/// Page options.
#[derive(Clone, Debug)]
pub struct HtmlOptions {
    /// Time zone of the period and times shown (IANA name).
    pub time_zone: String,
    /// Replaces the default title ("Báo cáo SLA điểm cầu").
    pub title: Option<String>,
}

impl Default for HtmlOptions {
    fn default() -> HtmlOptions {
        HtmlOptions {
            time_zone: DEFAULT_TIME_ZONE.to_string(),
            title: None,
        }
    }
}

/// Percentages the Vietnamese way: decimal comma, `99,9512 %`.
fn pct(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$} %").replace('.', ","),
        None => "không có dữ liệu".to_string(),
    }
}

/// `00:12:00` under a day, `3 ngày 04:05` (seconds dropped) from a day on; group sums of many
/// endpoints run to thousands of days.
fn duration(s: i64) -> String {
    let s = s.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{} ngày {h:02}:{m:02}", count(d as u64))
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    }
}

fn opt_duration(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), |s| duration(s.round() as i64))
}

/// Thousands with a dot, as written in Vietnam: `3.000`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

struct Row {
    name: String,
    endpoints: String,
    without_data: String,
    availability: String,
    target: String,
    status: &'static str,
    class: &'static str,
    downtime: String,
    outages: String,
    brief: String,
    mttr: String,
    mtbf: String,
    maintenance: String,
    unknown: String,
    /// Downtime by where its fault lay, and what the carrier was not charged for.
    site: String,
    path: String,
    unplaced: String,
    excused: String,
}

fn status(breach: Option<bool>) -> (&'static str, &'static str) {
    match breach {
        Some(true) => ("Vi phạm", "breach"),
        Some(false) => ("Đạt", "ok"),
        None => ("—", "nodata"),
    }
}

impl Row {
    fn of(g: &GroupFigures) -> Row {
        let (status, class) = status(g.breach);
        let f = &g.figures;
        Row {
            name: g.name.clone(),
            endpoints: count(g.endpoints as u64),
            without_data: count(g.endpoints_without_data as u64),
            availability: pct(f.availability_pct, 4),
            target: pct(Some(g.target_pct), 2),
            status,
            class,
            downtime: duration(f.downtime_s),
            outages: count(f.outages),
            brief: count(f.brief_interruptions),
            mttr: opt_duration(f.mttr_s),
            mtbf: opt_duration(f.mtbf_s),
            maintenance: duration(f.maintenance_s),
            unknown: duration(f.unknown_s),
            site: duration(f.downtime_site_s),
            path: duration(f.downtime_path_s),
            unplaced: duration(f.downtime_unplaced_s),
            excused: duration(f.excused_s),
        }
    }
}

struct Worst {
    rank: usize,
    id: String,
    commune: String,
    district: String,
    province: String,
    carrier: String,
    availability: String,
    class: &'static str,
    downtime: String,
    outages: String,
    mttr: String,
}

impl Worst {
    fn of(rank: usize, e: &EndpointFigures) -> Worst {
        Worst {
            rank,
            id: e.id.clone(),
            commune: e.labels.commune.to_string(),
            district: e.labels.district_or_empty().to_string(),
            province: e.labels.province.to_string(),
            carrier: e.labels.carrier.to_string(),
            availability: pct(e.figures.availability_pct, 4),
            class: status(e.breach).1,
            downtime: duration(e.figures.downtime_s),
            outages: count(e.figures.outages),
            mttr: opt_duration(e.figures.mttr_s),
        }
    }
}

struct Bar {
    name: String,
    /// Baseline of the label and value text.
    text_y: f64,
    y: f64,
    width: f64,
    value: String,
    value_x: f64,
    class: &'static str,
    has_value: bool,
}

struct Tick {
    x: f64,
    label: String,
}

struct TargetLine {
    x: f64,
    label: String,
}

/// A horizontal bar chart, one bar per province, drawn between `lo` % and 100 %.
struct Chart {
    width: f64,
    height: f64,
    plot_x: f64,
    plot_w: f64,
    plot_top: f64,
    plot_bottom: f64,
    axis_label_y: f64,
    bar_h: f64,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    targets: Vec<TargetLine>,
    lo_text: String,
}

const ROW_H: f64 = 22.0;
const LABEL_W: f64 = 240.0;
const PLOT_W: f64 = 560.0;

impl Chart {
    fn of(provinces: &[GroupFigures]) -> Chart {
        // The axis starts below the lowest availability and target, on a 0.5 % step, so that
        // figures near 100 % stay apart; it never starts above 99 % nor below 0 %.
        let lowest = provinces
            .iter()
            .flat_map(|p| [p.figures.availability_pct, Some(p.target_pct)])
            .flatten()
            .fold(99.0_f64, f64::min);
        let lo = ((lowest - 0.25) * 2.0).floor().max(0.0) / 2.0;
        let span = 100.0 - lo;
        let plot_top = 24.0;
        let x_of = |v: f64| LABEL_W + ((v - lo) / span).clamp(0.0, 1.0) * PLOT_W;
        let bars: Vec<Bar> = provinces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let y = plot_top + i as f64 * ROW_H + 3.0;
                let a = p.figures.availability_pct;
                let width = a.map_or(0.0, |a| x_of(a) - LABEL_W);
                Bar {
                    name: p.labels.province.clone().unwrap_or_else(|| p.name.clone()),
                    text_y: y + ROW_H / 2.0 + 1.0,
                    y,
                    width,
                    value: pct(a, 3),
                    value_x: LABEL_W + width + 4.0,
                    class: status(p.breach).1,
                    has_value: a.is_some(),
                }
            })
            .collect();
        let plot_bottom = plot_top + provinces.len() as f64 * ROW_H + 4.0;
        let step = if span <= 1.0 {
            0.1
        } else if span <= 2.5 {
            0.25
        } else if span <= 5.0 {
            0.5
        } else if span <= 10.0 {
            1.0
        } else if span <= 25.0 {
            5.0
        } else {
            10.0
        };
        let decimals = if step < 0.5 {
            2
        } else if step < 1.0 {
            1
        } else {
            0
        };
        let n = (span / step).round() as i64;
        let ticks = (0..=n)
            .map(|k| {
                let v = lo + k as f64 * step;
                Tick {
                    x: x_of(v),
                    label: pct(Some(v), decimals),
                }
            })
            .collect();
        let mut target_values: Vec<f64> = provinces.iter().map(|p| p.target_pct).collect();
        target_values.sort_by(f64::total_cmp);
        target_values.dedup();
        let targets = target_values
            .into_iter()
            .map(|t| TargetLine {
                x: x_of(t),
                label: format!("mục tiêu {}", pct(Some(t), 2)),
            })
            .collect();
        Chart {
            width: LABEL_W + PLOT_W + 90.0,
            height: plot_bottom + 34.0,
            plot_x: LABEL_W,
            plot_w: PLOT_W,
            plot_top,
            plot_bottom,
            axis_label_y: plot_bottom + 16.0,
            bar_h: ROW_H - 6.0,
            bars,
            ticks,
            targets,
            lo_text: pct(Some(lo), 1),
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page {
    title: String,
    period_title: String,
    period_text: String,
    time_zone: String,
    grouping: String,
    total: Row,
    breaches: String,
    groups: Vec<Row>,
    chart: Chart,
    worst: Vec<Worst>,
    targets: String,
    generated: String,
}

pub(super) fn grouping_text(by: &[GroupKey]) -> String {
    if by.is_empty() {
        return "toàn quốc".to_string();
    }
    by.iter()
        .map(|k| match k {
            GroupKey::Province => "tỉnh/thành phố",
            GroupKey::District => "huyện",
            GroupKey::Carrier => "nhà mạng",
        })
        .collect::<Vec<_>>()
        .join(" × ")
}

/// `Tháng 11/2026` for a calendar month, else `2026-11-01 00:00 – 2026-11-15 00:00`.
pub(super) fn period_title(report: &SlaReport, zone: &TimeZone) -> String {
    match sla::as_month(report.period, zone) {
        Some((y, m)) => format!("Tháng {m}/{y}"),
        None => format!(
            "{} – {}",
            sla::local_time(report.period.start, zone),
            sla::local_time(report.period.end, zone)
        ),
    }
}

/// Renders the page.
pub fn render_html(report: &SlaReport, opts: &HtmlOptions) -> Result<String, ReportError> {
    let zone: TimeZone = sla::time_zone(&opts.time_zone)?;
    let period_title = period_title(report, &zone);
    let mut targets = vec![format!("mặc định {}", pct(Some(report.targets.default_pct), 2))];
    targets.extend(
        report
            .targets
            .carriers
            .iter()
            .map(|(c, t)| format!("{c} {}", pct(Some(*t), 2))),
    );
    let breaches = report.groups.iter().filter(|g| g.breach == Some(true)).count();
    let page = Page {
        title: opts.title.clone().unwrap_or_else(|| "Báo cáo SLA điểm cầu".to_string()),
        period_title,
        period_text: format!(
            "từ {} đến {} (không kể thời điểm cuối)",
            sla::local_time(report.period.start, &zone),
            sla::local_time(report.period.end, &zone)
        ),
        time_zone: opts.time_zone.clone(),
        grouping: grouping_text(&report.group_by),
        total: Row::of(&report.total),
        breaches: format!("{} / {}", count(breaches as u64), count(report.groups.len() as u64)),
        groups: report.groups.iter().map(Row::of).collect(),
        chart: Chart::of(&report.provinces),
        worst: report
            .worst
            .iter()
            .enumerate()
            .map(|(i, e)| Worst::of(i + 1, e))
            .collect(),
        targets: targets.join("; "),
        generated: sla::local_time(report.generated_at, &zone),
    };
    Ok(page.render()?)
}
