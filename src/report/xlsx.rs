//! Excel workbook renderer (`--format xlsx`), for the offices and carriers that open reports in a
//! spreadsheet. Headers in Vietnamese (the HTML report's column names), real numbers with number
//! formats rather than text: availability and targets as percentages (`99.537%`), durations as
//! `[h]:mm:ss` (the cell holds days, as spreadsheets count time), counts as integers. A figure
//! that does not exist is an empty cell.
//!
//! Sheets: the report's groups (`Theo tỉnh, nhà mạng`; left out when the report is national), the
//! national total with the report's period and targets (`Toàn quốc`), and the worst endpoints
//! (`Điểm cầu kém nhất`). Each has a frozen, filterable header row and fitted column widths.

use rust_xlsxwriter::{DocProperties, Format as CellFormat, FormatBorder, Workbook, Worksheet};

use super::ReportError;
use super::html::{HtmlOptions, grouping_text, period_title};
use crate::domain::sla::{self, EndpointFigures, Figures, GroupFigures, GroupKey, SlaReport};

/// Name of the national sheet.
pub const NATIONAL_SHEET: &str = "Toàn quốc";
/// Name of the worst-endpoints sheet.
pub const WORST_SHEET: &str = "Điểm cầu kém nhất";

/// How a column's cells are written.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Count,
    /// Percent value (99.5), written as a fraction with three decimals shown.
    Pct,
    /// A target in percent, two decimals shown.
    Target,
    /// Seconds, written as days shown `[h]:mm:ss`.
    Duration,
}

enum Cell {
    Text(String),
    Num(f64),
    Empty,
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn num(v: impl Into<f64>) -> Cell {
    Cell::Num(v.into())
}

fn opt(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::Num)
}

fn verdict(breach: Option<bool>) -> Cell {
    match breach {
        Some(true) => text("Vi phạm"),
        Some(false) => text("Đạt"),
        None => Cell::Empty,
    }
}

/// The name of the groups sheet: `Theo tỉnh, nhà mạng`.
pub fn groups_sheet_name(by: &[GroupKey]) -> String {
    let keys: Vec<&str> = by
        .iter()
        .map(|k| match k {
            GroupKey::Province => "tỉnh",
            GroupKey::District => "huyện",
            GroupKey::Carrier => "nhà mạng",
        })
        .collect();
    format!("Theo {}", keys.join(", "))
}

/// The figure columns shared by every sheet, after the availability.
const FIGURE_COLUMNS: [(&str, Kind); 14] = [
    ("Thời gian tính SLA", Kind::Duration),
    ("Thời gian hoạt động", Kind::Duration),
    ("Gián đoạn", Kind::Duration),
    ("Số lần", Kind::Count),
    ("Gián đoạn ngắn", Kind::Count),
    ("MTTR", Kind::Duration),
    ("MTBF", Kind::Duration),
    ("Bảo trì", Kind::Duration),
    ("Không giám sát", Kind::Duration),
    ("Trong danh mục", Kind::Duration),
    ("Gián đoạn do điểm cầu", Kind::Duration),
    ("Gián đoạn do đường truyền", Kind::Duration),
    ("Gián đoạn chưa rõ vị trí", Kind::Duration),
    ("Không tính cho nhà mạng", Kind::Duration),
];

fn figure_cells(f: &Figures) -> Vec<Cell> {
    let secs = |v: i64| num(v as f64);
    vec![
        secs(f.eligible_s),
        secs(f.up_s),
        secs(f.downtime_s),
        num(f.outages as f64),
        num(f.brief_interruptions as f64),
        opt(f.mttr_s.map(f64::round)),
        opt(f.mtbf_s.map(f64::round)),
        secs(f.maintenance_s),
        secs(f.unknown_s),
        secs(f.inventory_s),
        secs(f.downtime_site_s),
        secs(f.downtime_path_s),
        secs(f.downtime_unplaced_s),
        secs(f.excused_s),
    ]
}

/// Columns and rows of one group table (the groups sheet, or the national total).
fn group_table(groups: &[&GroupFigures], by: &[GroupKey]) -> (Vec<(&'static str, Kind)>, Vec<Vec<Cell>>) {
    let has = |k| by.contains(&k);
    let (province, district, carrier) = (
        has(GroupKey::Province) || has(GroupKey::District),
        has(GroupKey::District),
        has(GroupKey::Carrier),
    );
    let mut columns = vec![("Nhóm", Kind::Text)];
    for (on, name) in [
        (province, "Tỉnh/thành phố"),
        (district, "Quận/huyện"),
        (carrier, "Nhà mạng"),
    ] {
        if on {
            columns.push((name, Kind::Text));
        }
    }
    columns.extend([
        ("Điểm cầu", Kind::Count),
        ("Không có dữ liệu", Kind::Count),
        ("Tỷ lệ khả dụng", Kind::Pct),
        ("Mục tiêu", Kind::Target),
        ("Đánh giá", Kind::Text),
    ]);
    columns.extend(FIGURE_COLUMNS);
    let rows = groups
        .iter()
        .map(|g| {
            let l = &g.labels;
            let mut row = vec![text(&g.name)];
            for (on, label) in [(province, &l.province), (district, &l.district), (carrier, &l.carrier)] {
                if on {
                    row.push(text(label.clone().unwrap_or_default()));
                }
            }
            row.extend([
                num(g.endpoints as f64),
                num(g.endpoints_without_data as f64),
                opt(g.figures.availability_pct),
                num(g.target_pct),
                verdict(g.breach),
            ]);
            row.extend(figure_cells(&g.figures));
            row
        })
        .collect();
    (columns, rows)
}

fn worst_table(worst: &[EndpointFigures]) -> (Vec<(&'static str, Kind)>, Vec<Vec<Cell>>) {
    let mut columns = vec![
        ("#", Kind::Count),
        ("Mã", Kind::Text),
        ("Xã/phường", Kind::Text),
        ("Quận/huyện", Kind::Text),
        ("Tỉnh/thành phố", Kind::Text),
        ("Nhà mạng", Kind::Text),
        ("Tỷ lệ khả dụng", Kind::Pct),
        ("Mục tiêu", Kind::Target),
        ("Đánh giá", Kind::Text),
    ];
    columns.extend(FIGURE_COLUMNS);
    let rows = worst
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let l = &e.labels;
            let mut row = vec![
                num((i + 1) as f64),
                text(&e.id),
                text(l.commune.to_string()),
                text(l.district_or_empty().to_string()),
                text(l.province.to_string()),
                text(l.carrier.to_string()),
                opt(e.figures.availability_pct),
                num(e.target_pct),
                verdict(e.breach),
            ];
            row.extend(figure_cells(&e.figures));
            row
        })
        .collect();
    (columns, rows)
}

struct Formats {
    header: CellFormat,
    count: CellFormat,
    pct: CellFormat,
    target: CellFormat,
    duration: CellFormat,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: CellFormat::new()
                .set_bold()
                .set_text_wrap()
                .set_background_color(0xDDE6F0)
                .set_border_bottom(FormatBorder::Thin),
            count: CellFormat::new().set_num_format("0"),
            pct: CellFormat::new().set_num_format("0.000%"),
            target: CellFormat::new().set_num_format("0.00%"),
            duration: CellFormat::new().set_num_format("[h]:mm:ss"),
        }
    }
}

/// Writes a header row, the rows under it, a frozen and filterable header, and column widths
/// fitted to the longest text (numbers get a width by kind).
fn write_table(
    ws: &mut Worksheet,
    f: &Formats,
    columns: &[(&str, Kind)],
    rows: &[Vec<Cell>],
) -> Result<(), ReportError> {
    for (c, (name, kind)) in columns.iter().enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, *name, &f.header)?;
        let longest = rows
            .iter()
            .filter_map(|r| match &r[c as usize] {
                Cell::Text(t) => Some(t.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let least = match kind {
            Kind::Text => 6,
            Kind::Count => 8,
            Kind::Pct | Kind::Target => 11,
            Kind::Duration => 12,
        };
        let header = name.chars().count().min(16);
        ws.set_column_width(c, (longest.max(header).max(least) + 2).min(50) as f64)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = (r + 1) as u32;
        for (c, (cell, (_, kind))) in row.iter().zip(columns).enumerate() {
            let c = c as u16;
            match (cell, kind) {
                (Cell::Empty, _) => {}
                (Cell::Text(t), _) => {
                    if !t.is_empty() {
                        ws.write_string(r, c, t)?;
                    }
                }
                (Cell::Num(v), Kind::Pct) => {
                    ws.write_number_with_format(r, c, v / 100.0, &f.pct)?;
                }
                (Cell::Num(v), Kind::Target) => {
                    ws.write_number_with_format(r, c, v / 100.0, &f.target)?;
                }
                (Cell::Num(v), Kind::Duration) => {
                    ws.write_number_with_format(r, c, v / 86_400.0, &f.duration)?;
                }
                (Cell::Num(v), _) => {
                    ws.write_number_with_format(r, c, *v, &f.count)?;
                }
            }
        }
    }
    ws.set_row_height(0, 32)?;
    ws.set_freeze_panes(1, 0)?;
    if !rows.is_empty() {
        ws.autofilter(0, 0, rows.len() as u32, (columns.len() - 1) as u16)?;
    }
    Ok(())
}

/// The workbook as bytes. `opts.time_zone` names the period (`Tháng 11/2026`).
pub fn write(report: &SlaReport, opts: &HtmlOptions) -> Result<Vec<u8>, ReportError> {
    let zone = sla::time_zone(&opts.time_zone)?;
    let title = format!(
        "{} — {}",
        opts.title.as_deref().unwrap_or("Báo cáo SLA điểm cầu"),
        period_title(report, &zone)
    );
    let f = Formats::new();
    let mut wb = Workbook::new();
    wb.set_properties(&DocProperties::new().set_title(&title).set_author("diemcau"));
    if !report.group_by.is_empty() {
        let ws = wb.add_worksheet();
        ws.set_name(groups_sheet_name(&report.group_by))?;
        let groups: Vec<&GroupFigures> = report.groups.iter().collect();
        let (columns, rows) = group_table(&groups, &report.group_by);
        write_table(ws, &f, &columns, &rows)?;
    }

    let ws = wb.add_worksheet();
    ws.set_name(NATIONAL_SHEET)?;
    let (columns, rows) = group_table(&[&report.total], &[]);
    write_table(ws, &f, &columns, &rows)?;
    let mut targets = vec![format!("mặc định {} %", report.targets.default_pct)];
    targets.extend(report.targets.carriers.iter().map(|(c, t)| format!("{c} {t} %")));
    let about = [
        ("Báo cáo", title.clone()),
        (
            "Kỳ báo cáo",
            format!(
                "từ {} đến {} (không kể thời điểm cuối), {}",
                sla::local_time(report.period.start, &zone),
                sla::local_time(report.period.end, &zone),
                opts.time_zone
            ),
        ),
        ("Nhóm theo", grouping_text(&report.group_by)),
        ("Mục tiêu", targets.join("; ")),
        (
            "Cách tính",
            "Tỷ lệ khả dụng = thời gian hoạt động / thời gian tính SLA; thời gian tính SLA = \
             thời gian trong danh mục − bảo trì − không giám sát"
                .to_string(),
        ),
        ("Lập lúc", sla::local_time(report.generated_at, &zone)),
    ];
    for (i, (k, v)) in about.iter().enumerate() {
        let r = (rows.len() + 3 + i) as u32;
        ws.write_string_with_format(r, 0, *k, &CellFormat::new().set_bold())?;
        ws.write_string(r, 1, v)?;
    }

    let ws = wb.add_worksheet();
    ws.set_name(WORST_SHEET)?;
    let (columns, rows) = worst_table(&report.worst);
    write_table(ws, &f, &columns, &rows)?;
    Ok(wb.save_to_buffer()?)
}
