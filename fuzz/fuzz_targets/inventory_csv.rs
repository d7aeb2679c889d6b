//! Inventory CSV rows (`config::inventory::read_rows`): header, columns, labels, addresses and
//! the `checks` column. Host names stay names: `resolve_hosts` is never called.
#![no_main]

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use diemcau::config::checks::ChecksConfig;
use diemcau::config::inventory::{self, RowAddress, RowContext};
use diemcau::domain::diag::LoadError;
use libfuzzer_sys::fuzz_target;

/// Named checks that a `checks` cell may list (`sip;web;h323`).
const CHECKS: &str = r#"
[check.sip]
kind = "sip"
[check.web]
kind = "http"
[check.h323]
kind = "tcp"
port = 1720
[checks]
default = ["icmp"]
carrier = { Viettel = ["icmp", "sip"] }
"#;

static CHECKS_CONFIG: LazyLock<ChecksConfig> = LazyLock::new(|| {
    let file = Path::new("checks.toml");
    let mut errors = LoadError::default();
    let raw = diemcau::config::toml_file::parse(file, CHECKS, &mut errors).expect("fixed checks parse");
    let checks = diemcau::config::checks::validate(file, CHECKS, &raw.check, &raw.checks, &mut errors);
    assert!(errors.is_empty(), "{errors}");
    checks
});

fuzz_target!(|data: &[u8]| {
    let file = Path::new("inventory.csv");
    let mut ctx = RowContext {
        seen: Default::default(),
        interner: Default::default(),
        checks: &CHECKS_CONFIG,
    };
    let mut errors = LoadError::default();
    let rows = inventory::read_rows(file, data, &mut ctx, &mut errors);
    let mut ids = HashSet::new();
    let named = CHECKS_CONFIG.named.len();
    for row in &rows {
        assert!(row.line >= 2, "row {} is before the header", row.line);
        assert!(!row.id.is_empty());
        assert!(ids.insert(row.id.clone()), "duplicate id {:?} accepted", row.id);
        assert!(row.checks.iter().all(|&id| usize::from(id) < named));
        assert!(!row.labels.province.is_empty() && !row.labels.commune.is_empty());
        if let RowAddress::Literal(ip) = row.address {
            assert!(!ip.is_unspecified() && !ip.is_multicast());
        }
    }
    let _ = inventory::MapModel::of(rows.iter().map(|r| &r.labels));
    let _ = errors.to_string();
});
