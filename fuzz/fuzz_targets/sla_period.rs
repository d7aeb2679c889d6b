//! SLA period strings (`--period`, `/reports/sla?period=`): `YYYY-MM` or `FROM..TO` with dates,
//! local date-times or RFC 3339 times. The first byte picks the time zone (some with daylight
//! saving, for gaps and folds); the rest is the period.
#![no_main]

use diemcau::domain::sla::{as_month, local_time, month_period, parse_period, time_zone};
use libfuzzer_sys::fuzz_target;

const ZONES: [&str; 6] = [
    "Asia/Ho_Chi_Minh",
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Saigon",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else { return };
    let tz = ZONES[usize::from(selector) % ZONES.len()];
    let Ok(zone) = time_zone(tz) else { return };
    let Ok(period) = parse_period(input, tz) else { return };
    assert!(period.start < period.end, "{input:?} gave {period:?}");
    assert!(!local_time(period.start, &zone).is_empty());
    assert!(!local_time(period.end, &zone).is_empty());
    if let Some((year, month)) = as_month(period, &zone) {
        assert_eq!(month_period(year, month, tz).ok(), Some(period));
    }
    if !input.contains("..") {
        assert!(
            as_month(period, &zone).is_some(),
            "{input:?} is a month, {period:?} is not"
        );
    }
});
