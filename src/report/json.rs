//! JSON renderer: the [`SlaReport`] as serde serializes it (pretty-printed, UTF-8 kept as is).
//! Missing figures are `null`; times are unix seconds; durations are seconds.

use std::io::Write;

use super::ReportError;
use crate::domain::sla::SlaReport;

/// Writes the report as pretty JSON followed by a newline.
pub fn write<W: Write>(report: &SlaReport, mut out: W) -> Result<(), ReportError> {
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The report as a pretty JSON string.
pub fn to_string(report: &SlaReport) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(report)?)
}
