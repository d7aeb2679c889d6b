//! Renderers of an [`SlaReport`]: CSV (one row per group, or the worst endpoints), JSON (the whole
//! report, as serde sees it) and one self-contained HTML page.
//!
//! Renderers only format: every figure comes from [`crate::domain::sla::compute`].

pub mod csv;
pub mod html;
pub mod json;

use std::str::FromStr;

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
    #[error("rendering HTML: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Period(#[from] PeriodError),
}

/// An output format, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One row per group: [`csv::GROUP_HEADER`].
    Csv,
    /// One row per worst endpoint: [`csv::WORST_HEADER`].
    WorstCsv,
    Json,
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "worst-csv" | "worst_csv" => Ok(Format::WorstCsv),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown report format {other:?}: use csv, worst-csv, json or html"
            )),
        }
    }
}

/// Renders `report` in `format` (`html` is used by [`Format::Html`] only).
pub fn render(report: &SlaReport, format: Format, html: &HtmlOptions) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    match format {
        Format::Csv => csv::write_groups(report, &mut out)?,
        Format::WorstCsv => csv::write_worst(report, &mut out)?,
        Format::Json => json::write(report, &mut out)?,
        Format::Html => out = render_html(report, html)?.into_bytes(),
    }
    Ok(out)
}
