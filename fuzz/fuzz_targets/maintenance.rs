//! `[[maintenance]]` windows (`domain::maintenance::parse_toml`): one-off RFC 3339 / local
//! times, cron patterns, durations, time zones; then their occurrences over a month and
//! whether each is active at its own start.
#![no_main]

use std::sync::LazyLock;

use diemcau::domain::Labels;
use diemcau::domain::maintenance::{ScopeLabels, maintenance_for, parse_toml};
use diemcau::domain::sla::month_period;
use libfuzzer_sys::fuzz_target;

static LABELS: LazyLock<Labels> = LazyLock::new(|| Labels {
    province: "Tỉnh Hà Giang".into(),
    district: None,
    commune: "Xã Lũng Cú".into(),
    carrier: "VNPT".into(),
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(windows) = parse_toml(text) else { return };
    let period = month_period(2026, 11, "Asia/Ho_Chi_Minh").expect("November 2026");
    for w in &windows {
        assert!(!w.name.is_empty());
        let occurrences = w.occurrences(period);
        for pair in occurrences.windows(2) {
            assert!(pair[0].start < pair[1].start, "occurrences out of order: {pair:?}");
        }
        for (i, o) in occurrences.iter().enumerate() {
            assert!(o.start < o.end, "empty occurrence {o:?}");
            assert!(o.intersect(&period).is_some(), "{o:?} is outside {period:?}");
            // active_at is a search of its own: checked on the first few only, to keep runs fast.
            if i < 32 && period.contains(o.start) {
                assert!(w.active_at(o.start), "{:?} not active at the start of {o:?}", w.name);
            }
        }
    }
    let labels = ScopeLabels {
        endpoint: "HG-1",
        labels: &LABELS,
    };
    let merged = maintenance_for(&windows, &labels, period);
    for pair in merged.windows(2) {
        assert!(pair[0].end < pair[1].start, "not merged: {pair:?}");
    }
});
