//! Inputs found by the fuzz targets (`fuzz/`, see docs/fuzzing.md), each fed to its parser with
//! the target's checks, so that the stable suite keeps them fixed without nightly or cargo-fuzz.
//! Name each test after the target and say what went wrong.

use std::path::Path;

use diemcau::config::checks::ChecksConfig;
use diemcau::config::inventory::{RowContext, read_rows};
use diemcau::domain::diag::LoadError;

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
