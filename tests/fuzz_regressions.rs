//! Inputs found by the fuzz targets (`fuzz/`, see docs/fuzzing.md), each fed to its parser with
//! the target's checks, so that the stable suite keeps them fixed without nightly or cargo-fuzz.
//! Name each test after the target and say what went wrong.

use std::path::Path;
use std::time::{Duration, Instant};

use diemcau::config::checks::ChecksConfig;
use diemcau::config::inventory::{RowContext, read_rows};
use diemcau::domain::diag::LoadError;
use diemcau::domain::maintenance::{Schedule, parse_toml};
use diemcau::domain::sla::month_period;

/// inventory_csv, crash-1b433db5: a BOM, a CRLF header, then LF rows. The csv crate counted the
/// first row as line 1 (its lines run one behind after a CRLF), so every problem in a file saved
/// by Excel pointed one line too early.
#[test]
fn inventory_csv_rows_after_a_crlf_header_keep_their_lines() {
    let input: &[u8] = b"\xef\xbb\xbfid,province,district,commune,carrier,address\r\n\
        X-1,T\xe1\xbb\x89nh A,Huy\xe1\xbb\x87n B,X\xc3\xa3 C,VNPT,ddress\n\
        A,T\xe1nh C\xe0 Mau,H,X,VNPT,952.0.0.1\n\
        \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00G-PHUQUOC,T\xe1\xbb\x89nh An Giangel,::1\n";
    let checks = ChecksConfig::default();
    let mut ctx = RowContext {
        seen: Default::default(),
        interner: Default::default(),
        checks: &checks,
    };
    let mut errors = LoadError::default();
    let rows = read_rows(Path::new("inventory.csv"), input, &mut ctx, &mut errors);
    let rows: Vec<(&str, usize)> = rows.iter().map(|r| (r.id.as_str(), r.line)).collect();
    assert_eq!(rows, [("X-1", 2)]);
    let lines: Vec<usize> = errors.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4], "{errors}");
}

/// maintenance (found by timing the target on patterns that match no date, after its runs were
/// clean): for a cron such as "0 1 30 2 *" every search for an occurrence ran to croner's year
/// limit (0.13–0.5 s each in a debug build): under the monitor's lock at every maintenance
/// refresh, and once per endpoint in an SLA report. Such a pattern is now found once, at load.
#[test]
fn maintenance_cron_that_matches_no_date_costs_nothing_after_load() {
    let window = |pattern: &str| {
        format!("[[maintenance]]\nname = \"x\"\nscope = {{}}\ncron = \"{pattern}\"\nduration = \"1h\"\n")
    };
    let november = month_period(2026, 11, "Asia/Ho_Chi_Minh").expect("month");
    for pattern in [
        "0 1 30 2 *",
        "0 0 31 4 *",
        "* * 31 2 *",
        "0 0 1 1 SUN#5",
        "0 0 31 2 SUN",
    ] {
        let windows = parse_toml(&window(pattern)).expect(pattern);
        assert!(matches!(windows[0].schedule, Schedule::Never { .. }), "{pattern}");
        let started = Instant::now();
        for i in 0..100 {
            assert!(windows[0].occurrences(november).is_empty());
            assert!(!windows[0].active_at(november.start + i * 3600));
        }
        // Was 100 × two searches of 0.13 s or more.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{pattern}: {:?}",
            started.elapsed()
        );
    }
    // Rare but real: 29 February on a Monday, the fifth Sunday of a February (leap years that
    // start on a Thursday), and the everyday weekly window.
    for pattern in ["0 0 29 2 MON", "0 0 ? 2 SUN#5", "0 1 * * SUN"] {
        let windows = parse_toml(&window(pattern)).expect(pattern);
        assert!(matches!(windows[0].schedule, Schedule::Recurring { .. }), "{pattern}");
    }
    let weekly = parse_toml(&window("0 1 * * SUN")).expect("weekly");
    assert_eq!(
        weekly[0].occurrences(november).len(),
        5,
        "five Sundays in November 2026"
    );
}
