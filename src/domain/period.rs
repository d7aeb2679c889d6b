//! Report periods and time zones: calendar months and FROM..TO spans in the carriers' zone.

use jiff::civil;
use jiff::tz::{Offset, TimeZone};

use super::interval::Interval;

/// The time zone the carriers' months are counted in.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// Why a period could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("unknown time zone {name:?}: {source}; use an IANA name such as \"Asia/Ho_Chi_Minh\"")]
    TimeZone { name: String, source: jiff::Error },
    #[error("month {year}-{month:02} is out of range: the month must be 1–12")]
    Month { year: i16, month: i8 },
    #[error(
        "cannot read period {input:?}: {why}; use YYYY-MM (a calendar month), or FROM..TO with \
         dates (2026-11-01), local times (2026-11-01T08:00) or RFC 3339 times \
         (2026-11-01T08:00:00+07:00), TO excluded"
    )]
    Syntax { input: String, why: String },
    #[error("period {input:?} is empty: its end must come after its start")]
    Empty { input: String },
    #[error("time arithmetic failed for {what}: {source}")]
    Time { what: String, source: jiff::Error },
}

/// The named time zone from the system database. `Asia/Ho_Chi_Minh` (and its old name
/// `Asia/Saigon`) fall back to a fixed UTC+07:00 when the machine has no tzdata: Vietnam has kept
/// that offset, without daylight saving, since 1975, so the figures do not change.
pub fn time_zone(name: &str) -> Result<TimeZone, PeriodError> {
    match TimeZone::get(name) {
        Ok(tz) => Ok(tz),
        Err(e) if matches!(name, "Asia/Ho_Chi_Minh" | "Asia/Saigon") => {
            tracing::warn!(time_zone = name, error = %e, "no tzdata: using fixed UTC+07:00");
            Ok(TimeZone::fixed(Offset::constant(7)))
        }
        Err(source) => Err(PeriodError::TimeZone {
            name: name.to_string(),
            source,
        }),
    }
}

/// The calendar month `year-month` in `tz`: from its first midnight to the next month's.
/// 2026-11 in Asia/Ho_Chi_Minh is 2026-10-31T17:00Z .. 2026-11-30T17:00Z.
pub fn month_period(year: i16, month: i8, tz: &str) -> Result<Interval, PeriodError> {
    let zone = time_zone(tz)?;
    month_in(year, month, &zone)
}

pub(crate) fn month_in(year: i16, month: i8, zone: &TimeZone) -> Result<Interval, PeriodError> {
    if !(1..=12).contains(&month) {
        return Err(PeriodError::Month { year, month });
    }
    let what = || format!("month {year}-{month:02}");
    let first = civil::Date::new(year, month, 1).map_err(|source| PeriodError::Time { what: what(), source })?;
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(|source| PeriodError::Time { what: what(), source })?;
    let at = |d: civil::Date| {
        d.to_zoned(zone.clone())
            .map(|z| z.timestamp().as_second())
            .map_err(|source| PeriodError::Time { what: what(), source })
    };
    Ok(Interval::new(at(first)?, at(next)?))
}

/// Reads `--period`: `2026-11` (that month in `tz`), or `FROM..TO` where each side is a date
/// (midnight in `tz`), a local date-time in `tz`, or an RFC 3339 time with offset; TO is
/// excluded.
pub fn parse_period(input: &str, tz: &str) -> Result<Interval, PeriodError> {
    let zone = time_zone(tz)?;
    let s = input.trim();
    let syntax = |why: String| PeriodError::Syntax {
        input: input.to_string(),
        why,
    };
    let period = if let Some((from, to)) = s.split_once("..") {
        let from = parse_instant(from.trim(), &zone).map_err(|e| syntax(format!("FROM: {e}")))?;
        let to = parse_instant(to.trim(), &zone).map_err(|e| syntax(format!("TO: {e}")))?;
        Interval::new(from, to)
    } else {
        let (y, m) = s
            .split_once('-')
            .ok_or_else(|| syntax("no '-' between year and month".into()))?;
        let year: i16 = y.parse().map_err(|_| syntax(format!("year {y:?} is not a number")))?;
        let month: i8 = m.parse().map_err(|_| syntax(format!("month {m:?} is not a number")))?;
        month_in(year, month, &zone)?
    };
    if period.is_empty() {
        return Err(PeriodError::Empty {
            input: input.to_string(),
        });
    }
    Ok(period)
}

/// One bound of a range: RFC 3339 with offset, else a civil date or date-time in `zone`.
fn parse_instant(s: &str, zone: &TimeZone) -> Result<i64, String> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil: civil::DateTime = match s.parse::<civil::DateTime>() {
        Ok(dt) => dt,
        Err(e) => return Err(format!("{s:?} is not a date or time ({e})")),
    };
    civil
        .to_zoned(zone.clone())
        .map(|z| z.timestamp().as_second())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// `"2026-11-01 00:00"` style local time of a unix second in `zone`, for reports.
pub fn local_time(unix: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => unix.to_string(),
    }
}

/// `Some((year, month))` when `period` is exactly one calendar month in `zone`.
pub fn as_month(period: Interval, zone: &TimeZone) -> Option<(i16, i8)> {
    let start = jiff::Timestamp::from_second(period.start).ok()?.to_zoned(zone.clone());
    let (y, m) = (start.year(), start.month());
    (month_in(y, m, zone).ok()? == period).then_some((y, m))
}
