//! Renderers of an [`SlaReport`]: CSV (one row per group, or the worst endpoints), JSON (the whole
//! report, as serde sees it), one self-contained HTML page and an Excel workbook.
//!
//! Renderers only format: every figure comes from [`crate::domain::sla::compute`].

pub mod csv;
pub mod html;
pub mod json;
pub mod xlsx;

pub use crate::domain::report_format::{FORMATS, Format, file_name};
pub use html::{HtmlOptions, render_html};

use crate::domain::sla::{PeriodError, SlaReport};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("rendering HTML: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Period(#[from] PeriodError),
}

/// Renders `report` in `format` (`html` is used by [`Format::Html`] and [`Format::Xlsx`]: the
/// time zone of the period's title).
pub fn render(report: &SlaReport, format: Format, html: &HtmlOptions) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    match format {
        Format::Csv => csv::write_groups(report, &mut out)?,
        Format::WorstCsv => csv::write_worst(report, &mut out)?,
        Format::Json => json::write(report, &mut out)?,
        Format::Html => out = render_html(report, html)?.into_bytes(),
        Format::Xlsx => out = xlsx::write(report, html)?,
    }
    Ok(out)
}
