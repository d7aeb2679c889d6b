//! A small November 2026 ledger for the report tests (xlsx, scheduled reports): 24 endpoints in
//! three provinces with Vietnamese names (and one commune named like a formula), two carriers,
//! outages of known length, written through the library with a manual clock. Include it with
//! `#[path = "common/sla_ledger.rs"] mod sla_ledger;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diemcau::domain::health::State;
use diemcau::domain::{EndpointId, Labels};
use diemcau::store::{Clock as _, InventoryRecord, ManualClock, Store, StoreConfig, Transition};

pub const ENDPOINTS: usize = 24;
pub const PROVINCES: [&str; 3] = ["Tỉnh Cao Bằng", "Thành phố Hà Nội", "Tỉnh Đắk Lắk"];
/// The commune name a spreadsheet would take for a formula.
pub const FORMULA_COMMUNE: &str = "=1+2 Xã Thử";

/// Unix ms of `2026-MM-DD HH:MM` in Asia/Ho_Chi_Minh (UTC+7).
pub fn local_ms(text: &str) -> i64 {
    let t: jiff::Timestamp = format!("{text}:00+07:00").parse().expect("local time");
    t.as_millisecond()
}

fn id(i: usize) -> String {
    format!("DC-{i:02}")
}

pub fn labels(i: usize) -> Labels {
    let commune = if i == 5 {
        FORMULA_COMMUNE.to_string()
    } else {
        format!("Xã Tân Phú {i}")
    };
    Labels {
        province: PROVINCES[i % 3].into(),
        district: Some(format!("Huyện Bảo Lâm {}", i % 2).into()),
        commune: commune.into(),
        carrier: (if i.is_multiple_of(2) { "VNPT" } else { "Viettel" }).into(),
    }
}

/// Outages of endpoint `i`: (start, end) unix ms. DC-03 is down 30 hours (Cao Bằng / Viettel
/// breaches its 99 % target); every fifth endpoint has a short outage.
pub fn outages(i: usize) -> Vec<(i64, i64)> {
    let mut v = Vec::new();
    if i == 3 {
        v.push((local_ms("2026-11-10T08:00"), local_ms("2026-11-11T14:00")));
    }
    if i.is_multiple_of(5) {
        let start = local_ms(&format!("2026-11-{:02}T10:00", i % 28 + 1));
        v.push((start, start + (i as i64 % 7 + 1) * 600_000));
    }
    v
}

/// Writes `inventory.csv` and `diemcau.toml` (with `extra` appended) into `dir`.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let mut csv = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..ENDPOINTS {
        let l = labels(i);
        csv.push_str(&format!(
            "{},{},{},{},{},127.16.0.{}\n",
            id(i),
            l.province,
            l.district_or_empty(),
            l.commune,
            l.carrier,
            i + 1
        ));
    }
    std::fs::write(dir.join("inventory.csv"), csv).expect("inventory");
    let config = dir.join("diemcau.toml");
    std::fs::write(
        &config,
        format!(
            "[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"ledger/diemcau.db\"\n\
             [report]\ntime_zone = \"Asia/Ho_Chi_Minh\"\ntargets = {{ VNPT = 99.5, Viettel = 99.0 }}\n{extra}"
        ),
    )
    .expect("config");
    config
}

pub fn store_config(dir: &Path) -> StoreConfig {
    StoreConfig {
        batch_interval: Duration::from_millis(20),
        ..StoreConfig::new(dir.join("ledger").join("diemcau.db"))
    }
}

fn transition(i: usize, from: State, to: State, at_ms: i64) -> Transition {
    Transition {
        endpoint: EndpointId(Arc::from(id(i))),
        from,
        to,
        at_ms,
        reason: "test".into(),
        check: "icmp".into(),
    }
}

/// Runs the daemon's ledger over November 2026: opened at its first midnight, every endpoint up,
/// the outages of [`outages`], and the clock left at `until` (local time, `2026-12-01T00:00`).
/// The store stays open (a running daemon); the caller stops it.
pub fn november(dir: &Path, until: &str) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(local_ms("2026-11-01T00:00")));
    let store = Store::open(store_config(dir), clock.clone()).expect("open the ledger");
    let inventory: Vec<InventoryRecord> = (0..ENDPOINTS)
        .map(|i| InventoryRecord {
            id: id(i).into(),
            labels: labels(i),
            address: format!("127.16.0.{}", i + 1),
        })
        .collect();
    store.sync_inventory(inventory);
    for i in 0..ENDPOINTS {
        store.record_transition(transition(i, State::Unknown, State::Up, clock.now_ms()));
    }
    let mut events: Vec<(i64, usize, bool)> = Vec::new();
    for i in 0..ENDPOINTS {
        for (s, e) in outages(i) {
            events.push((s, i, true));
            events.push((e, i, false));
        }
    }
    events.sort();
    for (at, i, down) in events {
        clock.set(at);
        let (from, to) = if down {
            (State::Up, State::Down)
        } else {
            (State::Down, State::Up)
        };
        store.record_transition(transition(i, from, to, at));
        store.flush().expect("flush");
    }
    clock.set(local_ms(until));
    store.flush().expect("flush");
    (store, clock)
}
