//! The formats a report is written in, and the file names reports get (by `diemcau report sla`,
//! `/reports/sla` and the scheduled reports), so that the config can name formats too.

use std::fmt;
use std::str::FromStr;

use super::sla::GroupKey;

/// An output format, as named on the command line, in `format=` and in `[[report.schedule]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// One row per group (`report::csv::GROUP_HEADER`), UTF-8 with a BOM.
    Csv,
    /// One row per worst endpoint (`report::csv::WORST_HEADER`).
    WorstCsv,
    Json,
    Html,
    /// An Excel workbook: a sheet of the groups, one of the national total, one of the worst
    /// endpoints.
    Xlsx,
}

/// Every format, in the order they are listed to users.
pub const FORMATS: [Format; 5] = [Format::Csv, Format::WorstCsv, Format::Json, Format::Html, Format::Xlsx];

impl Format {
    /// The name used on the command line and in the config.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::WorstCsv => "worst-csv",
            Format::Json => "json",
            Format::Html => "html",
            Format::Xlsx => "xlsx",
        }
    }

    /// The HTTP `Content-Type` and mail attachment type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv | Format::WorstCsv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// A file name's ending: `.csv`, `-worst.csv`, `.json`, `.html`, `.xlsx`.
    fn suffix(self) -> &'static str {
        match self {
            Format::Csv => ".csv",
            Format::WorstCsv => "-worst.csv",
            Format::Json => ".json",
            Format::Html => ".html",
            Format::Xlsx => ".xlsx",
        }
    }

    /// Whether the body is a download rather than a page (HTTP `Content-Disposition: attachment`).
    pub fn is_download(self) -> bool {
        matches!(self, Format::Csv | Format::WorstCsv | Format::Xlsx)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "worst-csv" | "worst_csv" => Ok(Format::WorstCsv),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(format!(
                "unknown report format {other:?}: use csv, worst-csv, json, html or xlsx"
            )),
        }
    }
}

/// The grouping as written in file names: `province-carrier`, `district`, `national`.
pub fn group_by_slug(by: &[GroupKey]) -> String {
    if by.is_empty() {
        return "national".to_string();
    }
    by.iter().map(|k| k.name()).collect::<Vec<_>>().join("-")
}

/// `sla-2026-11-province-carrier.xlsx`: the period as given (`2026-11`, or `FROM..TO` with the
/// dots and any character unsafe in a file name replaced), the grouping, the format's suffix.
pub fn file_name(period: &str, by: &[GroupKey], format: Format) -> String {
    let period: String = period
        .replace("..", "_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("sla-{period}-{}{}", group_by_slug(by), format.suffix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_files_are_named_by_month_and_grouping() {
        for f in FORMATS {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("pdf".parse::<Format>().is_err());
        let by = [GroupKey::Province, GroupKey::Carrier];
        assert_eq!(
            file_name("2026-11", &by, Format::Xlsx),
            "sla-2026-11-province-carrier.xlsx"
        );
        assert_eq!(
            file_name("2026-11", &[], Format::WorstCsv),
            "sla-2026-11-national-worst.csv"
        );
        assert_eq!(
            file_name("2026-11-01..2026-11-15T08:00", &[GroupKey::District], Format::Csv),
            "sla-2026-11-01_2026-11-15T08-00-district.csv"
        );
    }
}
