//! HTML renderer: one self-contained page (inline CSS and SVG, no script, no external request),
//! in Vietnamese, printable on A4. Every name goes through askama's HTML escaping.
//!
//! The template is inline (`source = …`) so the crate needs no `askama.toml` nor a `templates/`
//! directory at its root.

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
    mttr: String,
    mtbf: String,
    maintenance: String,
    unknown: String,
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
            mttr: opt_duration(f.mttr_s),
            mtbf: opt_duration(f.mtbf_s),
            maintenance: duration(f.maintenance_s),
            unknown: duration(f.unknown_s),
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
            commune: e.commune.clone(),
            district: e.district.clone(),
            province: e.province.clone(),
            carrier: e.carrier.clone(),
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
#[template(
    ext = "html",
    source = r##"<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} — {{ period_title }}</title>
<style>
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans", "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #1d2733; margin: 24px auto; max-width: 1180px; padding: 0 16px; font-size: 14px; line-height: 1.45; }
h1 { font-size: 24px; margin: 0 0 4px; color: #0b3d6b; }
h2 { font-size: 18px; margin: 28px 0 8px; color: #0b3d6b; border-bottom: 2px solid #d6e2ee; padding-bottom: 4px; }
.meta { color: #4a5a6a; margin: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #d6e2ee; border-radius: 6px; padding: 10px 14px; min-width: 150px; background: #f6f9fc; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { color: #4a5a6a; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #d6e2ee; padding: 4px 6px; text-align: right; white-space: nowrap; }
th { background: #eaf1f8; text-align: center; white-space: normal; }
td.name { text-align: left; white-space: normal; }
tr.breach td.st, td.breach { color: #b3261e; font-weight: 600; }
tr.ok td.st, td.ok { color: #1b7a36; }
tr.nodata td { color: #6b7785; }
tr.total td { font-weight: 600; background: #f6f9fc; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: inherit; font-size: 12px; fill: #1d2733; }
.bar.ok { fill: #2e8b57; }
.bar.breach { fill: #c62828; }
.grid { stroke: #e3e9ef; stroke-width: 1; }
.target { stroke: #b3261e; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg text.tl { fill: #b3261e; font-size: 11px; }
svg text.nd { fill: #6b7785; font-style: italic; }
.formula { background: #f6f9fc; border-left: 4px solid #0b3d6b; padding: 8px 12px; margin: 8px 0; }
ul { margin: 4px 0 4px 20px; padding: 0; }
footer { margin-top: 28px; color: #6b7785; font-size: 12px; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; }
  table, svg, .formula { break-inside: auto; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .card { background: none; }
  th, tr.total td { background: none; }
}
</style>
</head>
<body>
<header>
<h1>{{ title }} — {{ period_title }}</h1>
<p class="meta">Kỳ báo cáo: {{ period_text }} ({{ time_zone }})</p>
<p class="meta">Nhóm theo: {{ grouping }}</p>
</header>

<section class="cards">
<div class="card"><div class="v">{{ total.availability }}</div><div class="k">Tỷ lệ khả dụng toàn quốc (mục tiêu {{ total.target }})</div></div>
<div class="card"><div class="v">{{ total.endpoints }}</div><div class="k">Điểm cầu trong kỳ</div></div>
<div class="card"><div class="v">{{ total.outages }}</div><div class="k">Số lần gián đoạn</div></div>
<div class="card"><div class="v">{{ total.downtime }}</div><div class="k">Tổng thời gian gián đoạn</div></div>
<div class="card"><div class="v">{{ breaches }}</div><div class="k">Nhóm vi phạm mục tiêu</div></div>
</section>

<h2>Tổng hợp theo {{ grouping }}</h2>
<table>
<thead><tr><th>Nhóm</th><th>Điểm cầu</th><th>Không có dữ liệu</th><th>Tỷ lệ khả dụng</th><th>Mục tiêu</th><th>Đánh giá</th><th>Gián đoạn</th><th>Số lần</th><th>MTTR</th><th>MTBF</th><th>Bảo trì</th><th>Không giám sát</th></tr></thead>
<tbody>
{% for r in groups %}<tr class="{{ r.class }}"><td class="name">{{ r.name }}</td><td>{{ r.endpoints }}</td><td>{{ r.without_data }}</td><td>{{ r.availability }}</td><td>{{ r.target }}</td><td class="st">{{ r.status }}</td><td>{{ r.downtime }}</td><td>{{ r.outages }}</td><td>{{ r.mttr }}</td><td>{{ r.mtbf }}</td><td>{{ r.maintenance }}</td><td>{{ r.unknown }}</td></tr>
{% endfor %}<tr class="total {{ total.class }}"><td class="name">{{ total.name }}</td><td>{{ total.endpoints }}</td><td>{{ total.without_data }}</td><td>{{ total.availability }}</td><td>{{ total.target }}</td><td class="st">{{ total.status }}</td><td>{{ total.downtime }}</td><td>{{ total.outages }}</td><td>{{ total.mttr }}</td><td>{{ total.mtbf }}</td><td>{{ total.maintenance }}</td><td>{{ total.unknown }}</td></tr>
</tbody>
</table>

<h2>Tỷ lệ khả dụng theo tỉnh/thành phố</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ chart.width }}" height="{{ chart.height }}" viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-label="Tỷ lệ khả dụng theo tỉnh/thành phố">
{% for t in chart.ticks %}<line class="grid" x1="{{ t.x }}" y1="{{ chart.plot_top }}" x2="{{ t.x }}" y2="{{ chart.plot_bottom }}"/><text x="{{ t.x }}" y="{{ chart.axis_label_y }}" text-anchor="middle">{{ t.label }}</text>
{% endfor %}{% for b in chart.bars %}<text x="{{ chart.plot_x - 8.0 }}" y="{{ b.text_y }}" text-anchor="end" dominant-baseline="middle">{{ b.name }}</text>{% if b.has_value %}<rect class="bar {{ b.class }}" x="{{ chart.plot_x }}" y="{{ b.y }}" width="{{ b.width }}" height="{{ chart.bar_h }}"><title>{{ b.name }}: {{ b.value }}</title></rect><text x="{{ b.value_x }}" y="{{ b.text_y }}" dominant-baseline="middle">{{ b.value }}</text>{% else %}<text class="nd" x="{{ chart.plot_x + 4.0 }}" y="{{ b.text_y }}" dominant-baseline="middle">{{ b.value }}</text>{% endif %}
{% endfor %}<line x1="{{ chart.plot_x }}" y1="{{ chart.plot_top }}" x2="{{ chart.plot_x }}" y2="{{ chart.plot_bottom }}" stroke="#1d2733"/><line x1="{{ chart.plot_x }}" y1="{{ chart.plot_bottom }}" x2="{{ chart.plot_x + chart.plot_w }}" y2="{{ chart.plot_bottom }}" stroke="#1d2733"/>
{% for t in chart.targets %}<line class="target" x1="{{ t.x }}" y1="{{ chart.plot_top - 6.0 }}" x2="{{ t.x }}" y2="{{ chart.plot_bottom }}"/><text class="tl" x="{{ t.x }}" y="{{ chart.plot_top - 10.0 }}" text-anchor="middle">{{ t.label }}</text>
{% endfor %}</svg>
<p class="meta">Trục ngang bắt đầu từ {{ chart.lo_text }}; đường đứt nét đỏ là mục tiêu; thanh đỏ: dưới mục tiêu.</p>

<h2>{{ worst.len() }} điểm cầu có tỷ lệ khả dụng thấp nhất</h2>
{% if worst.is_empty() %}<p>Không có điểm cầu nào có dữ liệu trong kỳ.</p>{% else %}
<table>
<thead><tr><th>#</th><th>Xã/phường</th><th>Quận/huyện</th><th>Tỉnh/thành phố</th><th>Nhà mạng</th><th>Mã</th><th>Tỷ lệ khả dụng</th><th>Gián đoạn</th><th>Số lần</th><th>MTTR</th></tr></thead>
<tbody>
{% for w in worst %}<tr><td>{{ w.rank }}</td><td class="name">{{ w.commune }}</td><td class="name">{{ w.district }}</td><td class="name">{{ w.province }}</td><td class="name">{{ w.carrier }}</td><td class="name">{{ w.id }}</td><td class="{{ w.class }}">{{ w.availability }}</td><td>{{ w.downtime }}</td><td>{{ w.outages }}</td><td>{{ w.mttr }}</td></tr>
{% endfor %}</tbody>
</table>{% endif %}

<h2>Cách tính</h2>
<div class="formula">Tỷ lệ khả dụng = thời gian hoạt động / (thời gian hoạt động + thời gian gián đoạn) = (thời gian tính SLA − thời gian gián đoạn) / thời gian tính SLA</div>
<ul>
<li>Thời gian tính SLA = thời gian điểm cầu có trong danh mục trong kỳ − bảo trì theo kế hoạch − thời gian không giám sát.</li>
<li>Mỗi giây được xếp theo thứ tự ưu tiên: bảo trì (loại trừ) &gt; không giám sát (loại trừ) &gt; gián đoạn &gt; hoạt động.</li>
<li>Đã loại trừ: bảo trì theo kế hoạch {{ total.maintenance }}; không giám sát (hệ thống giám sát ngừng) {{ total.unknown }} — cộng dồn trên mọi điểm cầu.</li>
<li>Một lần gián đoạn được tính khi phần gián đoạn của nó nằm trong thời gian tính SLA; lần gián đoạn kéo dài qua ranh giới kỳ được tính ở cả hai kỳ.</li>
<li>MTTR = thời gian gián đoạn / số lần gián đoạn; MTBF = thời gian hoạt động / số lần gián đoạn.</li>
<li>Tỷ lệ của nhóm tính theo thời gian (tổng thời gian hoạt động / tổng thời gian tính SLA của mọi điểm cầu trong nhóm); nhóm không có thời gian tính SLA: "không có dữ liệu", không phải 100 %.</li>
<li>Mục tiêu: {{ targets }}. Nhóm gồm nhiều nhà mạng dùng mục tiêu mặc định.</li>
</ul>

<footer>Lập lúc {{ generated }} ({{ time_zone }}) bởi diemcau.</footer>
</body>
</html>
"##
)]
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

fn grouping_text(by: &[GroupKey]) -> String {
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

/// Renders the page.
pub fn render_html(report: &SlaReport, opts: &HtmlOptions) -> Result<String, ReportError> {
    let zone: TimeZone = sla::time_zone(&opts.time_zone)?;
    let period_title = match sla::as_month(report.period, &zone) {
        Some((y, m)) => format!("Tháng {m}/{y}"),
        None => format!(
            "{} – {}",
            sla::local_time(report.period.start, &zone),
            sla::local_time(report.period.end, &zone)
        ),
    };
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
