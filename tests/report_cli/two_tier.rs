//! `report sla` on a ledger of today's two-tier map (no districts since 1 July 2025): grouping by
//! district is refused with a message that says why and what to group by instead; grouping by
//! province and carrier works, with figures computed here.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use diemcau::domain::health::State;
use diemcau::domain::{EndpointId, Labels};
use diemcau::store::{InventoryRecord, ManualClock, Store, StoreConfig, Transition};

use super::{D, H, local, p0};
use crate::common::bin;

/// (id, province, commune, carrier); the first is down on 12 November 10:00–13:00.
const ENDPOINTS: [(&str, &str, &str, &str); 4] = [
    ("VN75-26068", "Tỉnh Đồng Nai", "Phường Biên Hòa", "VNPT"),
    ("VN75-26041", "Tỉnh Đồng Nai", "Phường Trấn Biên", "Viettel"),
    ("VN79-26740", "Thành phố Hồ Chí Minh", "Phường Sài Gòn", "VNPT"),
    ("VN79-26737", "Thành phố Hồ Chí Minh", "Phường Tân Định", "Viettel"),
];

fn transition(id: &str, from: State, to: State, t: i64) -> Transition {
    Transition {
        endpoint: EndpointId(Arc::from(id)),
        from,
        to,
        at_ms: t * 1000,
        reason: "test".into(),
        check: "icmp".into(),
    }
}

/// Writes the inventory (no district column), the config and a ledger covering November 2026.
fn build(dir: &Path) {
    let mut csv = String::from("id,province,commune,carrier,address\n");
    let mut records = Vec::new();
    for (i, (id, province, commune, carrier)) in ENDPOINTS.iter().enumerate() {
        let address = format!("127.16.0.{}", i + 1);
        csv.push_str(&format!("{id},{province},{commune},{carrier},{address}\n"));
        records.push(InventoryRecord {
            id: Arc::from(*id),
            labels: Labels {
                province: (*province).into(),
                district: None,
                commune: (*commune).into(),
                carrier: (*carrier).into(),
            },
            address,
        });
    }
    std::fs::write(dir.join("inventory.csv"), csv).expect("inventory");
    std::fs::write(
        dir.join("diemcau.toml"),
        "[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"ledger/diemcau.db\"\n",
    )
    .expect("config");
    let cfg = StoreConfig {
        batch_interval: Duration::from_millis(20),
        ..StoreConfig::new(dir.join("ledger").join("diemcau.db"))
    };
    let (start, end) = (p0() - H, p0() + 30 * D + H);
    let clock = Arc::new(ManualClock::new(start * 1000));
    let store = Store::open(cfg, clock.clone()).expect("open the ledger");
    store.sync_inventory(records);
    for (id, ..) in ENDPOINTS {
        store.record_transition(transition(id, State::Unknown, State::Up, start));
    }
    let (down, up) = (local(12, 10, 0), local(12, 13, 0));
    clock.set(down * 1000);
    store.record_transition(transition(ENDPOINTS[0].0, State::Up, State::Down, down));
    clock.set(up * 1000);
    store.record_transition(transition(ENDPOINTS[0].0, State::Down, State::Up, up));
    // Out of the inventory after the month, so the figures do not depend on today's date.
    clock.set(end * 1000);
    store.sync_inventory(Vec::new());
    store.shutdown().expect("clean stop");
}

fn report(dir: &Path, by: &str) -> Output {
    Command::new(bin())
        .args([
            "report", "sla", "--period", "2026-11", "--format", "csv", "--by", by, "--config",
        ])
        .arg(dir.join("diemcau.toml"))
        .output()
        .expect("run diemcau report sla")
}

#[test]
fn two_tier_ledger_refuses_district_grouping_and_groups_by_province_and_carrier() {
    let dir = tempfile::tempdir().expect("temp dir");
    build(dir.path());

    for by in ["district", "province,district", "district,carrier"] {
        let out = report(dir.path(), by);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("--by {by}: {} {stderr}", out.status);
        assert_eq!(out.status.code(), Some(1), "--by {by} fails: {stderr}");
        assert!(out.stdout.is_empty(), "no report on standard output");
        assert!(stderr.contains("cannot group by district"), "{stderr}");
        assert!(stderr.contains("two-tier map"), "says why: {stderr}");
        assert!(
            stderr.contains("group by province and/or carrier"),
            "says what to do: {stderr}"
        );
    }

    let out = report(dir.path(), "province,carrier");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).expect("UTF-8");
    let csv = csv
        .strip_prefix('\u{feff}')
        .expect("CSV reports start with a BOM (Excel)");
    println!("--by province,carrier:\n{csv}");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "one row per province and carrier");
    let month = 30 * D;
    for (_, province, _, carrier) in ENDPOINTS {
        let row = rows
            .iter()
            .find(|r| r[col("province")] == province && r[col("carrier")] == carrier)
            .unwrap_or_else(|| panic!("no row for {province} / {carrier}"));
        assert_eq!(row[col("district")], "", "not grouped on district");
        assert_eq!(row[col("group")], format!("{province} / {carrier}"));
        let downtime = if (province, carrier) == ("Tỉnh Đồng Nai", "VNPT") {
            3 * H
        } else {
            0
        };
        assert_eq!(row[col("endpoints")], "1");
        assert_eq!(row[col("eligible_s")], month.to_string());
        assert_eq!(row[col("downtime_s")], downtime.to_string());
        assert_eq!(row[col("up_s")], (month - downtime).to_string());
        let pct = (month - downtime) as f64 / month as f64 * 100.0;
        assert_eq!(row[col("availability_pct")], format!("{pct:.4}"));
    }
}
