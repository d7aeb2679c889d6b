//! Maintenance windows from TOML: validation messages, scope, one-off and recurring occurrences
//! in Asia/Ho_Chi_Minh (UTC+7, no daylight saving), month boundaries, merging.

use diemcau::domain::Labels;
use diemcau::domain::maintenance::{self, MaintenanceWindow, ScopeLabels, parse_toml};
use diemcau::domain::sla::{self, EndpointHistory, Interval, Targets, month_period};

const P0: i64 = 1_793_466_000; // 2026-11-01T00:00+07:00
const P1: i64 = 1_796_058_000; // 2026-12-01T00:00+07:00
const H: i64 = 3600;
const D: i64 = 86_400;
const NOV: Interval = Interval::new(P0, P1);

const EXAMPLE: &str = r#"
[[maintenance]]
name = "VNPT core upgrade"
scope = { carrier = "VNPT", province = "Tỉnh Hà Giang" }
start = "2026-11-08T01:00:00+07:00"
end = 2026-11-08T03:00:00+07:00     # a TOML date-time works too

[[maintenance]]
name = "Weekly window"
scope = { carrier = "Viettel" }
cron = "0 1 * * SUN"
duration = "2h"
time_zone = "Asia/Ho_Chi_Minh"
"#;

fn labels(province: &str, carrier: &str) -> ScopeLabels<'static> {
    // Leaked: a handful of small label sets for the life of the test binary.
    let labels: &'static Labels = Box::leak(Box::new(Labels {
        province: province.into(),
        district: Some("Huyện Mèo Vạc".into()),
        commune: "Xã Lũng Cú".into(),
        carrier: carrier.into(),
    }));
    ScopeLabels {
        endpoint: "HG-001",
        labels,
    }
}

fn windows(text: &str) -> Vec<MaintenanceWindow> {
    parse_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> String {
    match parse_toml(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn one_off_window_and_scope() {
    let w = windows(EXAMPLE);
    assert_eq!(w.len(), 2);
    let core = &w[0];
    // 2026-11-08T01:00+07 = P0 + 7 days + 1 h.
    assert_eq!(
        core.occurrences(NOV),
        [Interval::new(P0 + 7 * D + H, P0 + 7 * D + 3 * H)]
    );
    assert!(core.applies_to(&labels("Tỉnh Hà Giang", "VNPT")));
    assert!(
        core.applies_to(&labels("Tỉnh Hà Giang", "vnpt")),
        "carrier ignores ASCII case"
    );
    assert!(
        !core.applies_to(&labels("Tỉnh Hà Giang", "Viettel")),
        "every scope key must match"
    );
    assert!(!core.applies_to(&labels("Tỉnh Cao Bằng", "VNPT")));
    assert!(core.active_at(P0 + 7 * D + H));
    assert!(core.active_at(P0 + 7 * D + 3 * H - 1));
    assert!(!core.active_at(P0 + 7 * D + 3 * H), "end excluded");
    // Outside the period: nothing.
    let dec = month_period(2026, 12, "Asia/Ho_Chi_Minh").unwrap();
    assert!(core.occurrences(dec).is_empty());
}

#[test]
fn weekly_window_in_ho_chi_minh() {
    let w = windows(EXAMPLE);
    let weekly = &w[1];
    // Sundays of November 2026: 1, 8, 15, 22, 29 (1 November is a Sunday), 01:00–03:00 +07.
    let want: Vec<Interval> = [0, 7, 14, 21, 28]
        .iter()
        .map(|d| Interval::new(P0 + d * D + H, P0 + d * D + 3 * H))
        .collect();
    assert_eq!(weekly.occurrences(NOV), want);
    assert!(weekly.applies_to(&labels("Tỉnh Cao Bằng", "Viettel")));
    assert!(weekly.active_at(P0 + 7 * D + 2 * H));
    assert!(!weekly.active_at(P0 + 7 * D + 3 * H));
    assert!(!weekly.active_at(P0 + 8 * D + 2 * H), "Monday");
    // In UTC the same pattern starts 7 h later.
    let utc = windows(&EXAMPLE.replace("Asia/Ho_Chi_Minh", "UTC"));
    assert_eq!(utc[1].occurrences(NOV)[0], Interval::new(P0 + 8 * H, P0 + 10 * H));
}

#[test]
fn month_boundary_includes_a_window_started_before() {
    let w = windows(
        r#"
[[maintenance]]
name = "Nightly"
scope = {}
cron = "0 23 * * *"
duration = "2h"
"#,
    );
    let occ = w[0].occurrences(NOV);
    // 31 October 23:00 (overlaps the first hour of November) + every night of November.
    assert_eq!(occ.len(), 31);
    assert_eq!(occ[0], Interval::new(P0 - H, P0 + H));
    assert_eq!(occ[30], Interval::new(P1 - H, P1 + H)); // runs past the end: whole
    assert!(
        w[0].active_at(P0 + 1800),
        "the October window is still running on 1 November"
    );
    // Clipped to the period: 30 nights × 2 h = 60 h exactly (1 h + 29 × 2 h + 1 h).
    let mut h = EndpointHistory {
        id: "x".into(),
        exists: vec![NOV],
        monitored: vec![NOV],
        ..EndpointHistory::default()
    };
    h.maintenance = maintenance::maintenance_for(&w, &ScopeLabels::from(&h), NOV);
    let f = sla::endpoint_figures(NOV, &h, &Targets::default()).figures;
    assert_eq!(f.maintenance_s, 60 * H);
}

#[test]
fn overlapping_windows_are_merged() {
    let w = windows(
        r#"
[[maintenance]]
name = "Carrier work"
scope = { carrier = "VNPT" }
start = "2026-11-10T01:00:00+07:00"
end = "2026-11-10T04:00:00+07:00"

[[maintenance]]
name = "Province work"
scope = { province = "Tỉnh Hà Giang" }
start = "2026-11-10T03:00:00+07:00"
end = "2026-11-10T05:00:00+07:00"

[[maintenance]]
name = "Other province"
scope = { province = "Tỉnh Cao Bằng" }
start = "2026-11-10T00:00:00+07:00"
end = "2026-11-10T23:00:00+07:00"
"#,
    );
    let l = labels("Tỉnh Hà Giang", "VNPT");
    let merged = maintenance::maintenance_for(&w, &l, NOV);
    // 01:00–04:00 ∪ 03:00–05:00 = 01:00–05:00 on day 10.
    assert_eq!(merged, [Interval::new(P0 + 9 * D + H, P0 + 9 * D + 5 * H)]);
}

#[test]
fn first_sunday_needs_both_day_fields() {
    // Croner would OR day-of-month and day-of-week; this module ANDs them.
    let w = windows(
        r#"
[[maintenance]]
name = "First Sunday"
scope = { carrier = "VNPT" }
cron = "0 2 1-7 * SUN"
duration = "1h"
"#,
    );
    assert_eq!(w[0].occurrences(NOV), [Interval::new(P0 + 2 * H, P0 + 3 * H)]);
}

#[test]
fn validation_names_window_field_and_fix() {
    let e = errors("[[maintenance]]\nname = \"A\"\nscope = {}\ncron = \"0 1 * * SUN\"\n");
    assert!(e.contains("maintenance[0].duration: (\"A\") missing"), "{e}");
    let e = errors(
        "[[maintenance]]\nname = \"B\"\nscope = {}\nstart = \"2026-11-08T01:00:00+07:00\"\nend = \"2026-11-08T03:00:00+07:00\"\ncron = \"0 1 * * *\"\nduration = \"1h\"\n",
    );
    assert!(e.contains("both a one-off time"), "{e}");
    let e = errors("[[maintenance]]\nname = \"C\"\nscope = {}\ncron = \"0 25 * * *\"\nduration = \"2 hours\"\n");
    assert!(
        e.contains("maintenance[0].cron: (\"C\")") && e.contains("five fields"),
        "{e}"
    );
    let e = errors("[[maintenance]]\nname = \"D\"\nscope = {}\ncron = \"0 1 * * *\"\nduration = \"two\"\n");
    assert!(
        e.contains("maintenance[0].duration: (\"D\")") && e.contains("\"2h\""),
        "{e}"
    );
    let e = errors(
        "[[maintenance]]\nname = \"E\"\nscope = {}\nstart = \"2026-11-08T03:00:00+07:00\"\nend = \"2026-11-08T01:00:00+07:00\"\n",
    );
    assert!(e.contains("end: (\"E\") is not after start"), "{e}");
    let e = errors(
        "[[maintenance]]\nname = \"F\"\nstart = \"2026-11-08T01:00:00+07:00\"\nend = \"2026-11-08T03:00:00+07:00\"\ntime_zone = \"Mars/Olympus\"\n",
    );
    assert!(
        e.contains("scope: (\"F\") missing") && e.contains("time_zone:"),
        "all problems at once: {e}"
    );
    println!("{e}");
    let e = errors(
        "[[maintenance]]\nname = \"G\"\nscope = { carier = \"VNPT\" }\ncron = \"0 1 * * *\"\nduration = \"1h\"\n",
    );
    assert!(e.contains("carier"), "unknown keys are errors: {e}");
    println!("{e}");
    let e = errors("[[maintenance]]\nname = \"H\"\nscope = {}\ncron = \"0 0 1 * * *\"\nduration = \"1h\"\n");
    assert!(e.contains("cron"), "seconds are refused: {e}");
    let e = errors("[[maintenance]]\nscope = {}\nstart = \"tomorrow\"\nend = \"2026-11-08T03:00:00+07:00\"\n");
    assert!(
        e.contains("maintenance[0].name: (unnamed) missing") && e.contains("start: (unnamed) \"tomorrow\""),
        "{e}"
    );
}

#[test]
fn local_times_are_read_in_the_window_zone() {
    let w =
        windows("[[maintenance]]\nname = \"L\"\nscope = {}\nstart = 2026-11-08T01:00:00\nend = \"2026-11-08T03:00\"\n");
    assert_eq!(
        w[0].occurrences(NOV),
        [Interval::new(P0 + 7 * D + H, P0 + 7 * D + 3 * H)]
    );
}

#[test]
fn a_pattern_that_never_matches_is_cheap() {
    // 30 February never comes: no occurrence, and no long search.
    let w = windows("[[maintenance]]\nname = \"Never\"\nscope = {}\ncron = \"0 0 30 2 *\"\nduration = \"1h\"\n");
    let t = std::time::Instant::now();
    assert!(w[0].occurrences(NOV).is_empty());
    assert!(!w[0].active_at(P0));
    // A hang detector: a search for 30 February that never ends would hit it.
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "{:?}", t.elapsed());
}
