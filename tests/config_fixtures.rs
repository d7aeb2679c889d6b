//! Every rejection rule of the config and inventory loader has a fixture directory under
//! tests/fixtures/config/<case>/ with the exact expected report (`expected.txt`) and exit status.
//! `diemcau check` runs inside an empty network namespace, so host-name lookups cannot leave
//! the machine and fail fast.

mod common;

use std::path::Path;
use std::process::Command;

fn check(case: &Path) -> (i32, String) {
    let out = Command::new("unshare")
        .args(["-rn", common::bin(), "check", "--config", "diemcau.toml"])
        .current_dir(case)
        .output()
        .expect("run unshare");
    let text = if out.status.success() { out.stdout } else { out.stderr };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

#[test]
fn every_fixture_gives_its_exact_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut cases: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 18, "fixtures missing: {cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let expected_status: i32 = std::fs::read_to_string(case.join("expected_status.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (status, report) = check(case);
        // BLESS=1 rewrites the expected reports after an intended change (review the diff).
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(case.join("expected.txt"), &report).unwrap();
            continue;
        }
        if status != expected_status || report != expected {
            failures.push(format!(
                "{}: exit {status} (want {expected_status})\n--- got\n{report}--- want\n{expected}",
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_valid_config_prints_endpoints_per_province_and_carrier() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid");
    let (status, out) = check(&case);
    assert_eq!(status, 0);
    assert!(out.contains("Thành phố Hồ Chí Minh") && out.contains("VNPT"), "{out}");
}

#[test]
fn the_embedded_and_example_configs_are_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/diemcau.toml");
    let out = Command::new(common::bin())
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(diemcau::config::Config::embedded().is_ok());
}

#[test]
fn a_generated_national_inventory_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for era in ["2021", "2025"] {
        let csv = dir.path().join(format!("vn-{era}.csv"));
        let status = Command::new(common::bin())
            .args(["inventory", "generate", "--era", era, "--out"])
            .arg(&csv)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(
            dir.path().join("diemcau.toml"),
            format!("[inventory]\nfiles = [\"vn-{era}.csv\"]\n"),
        )
        .unwrap();
        let out = Command::new(common::bin())
            .args(["check", "--config"])
            .arg(dir.path().join("diemcau.toml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let (expected, model) = if era == "2021" {
            ("10599 endpoints", "three-tier map")
        } else {
            ("3321 endpoints", "two-tier map")
        };
        assert!(text.contains(expected) && text.contains(model), "{text}");
    }
}
