//! Where is the fault (issue 11): the daemon learns every endpoint's path through the
//! emulator's routers (gateway → carrier core → province → area → commune, on IPv4 and IPv6),
//! then three faults begin at once: an area router of VNPT in Đồng Nai (4 communes behind it),
//! a province router of Viettel in Hà Giang (8 communes in two districts) and one commune's
//! own site. Every affected endpoint must be Down with the right `fault` in the API (domain,
//! last hop, failing hop), the two routers must each be one incident in `/api/v1/incidents`
//! and in `diemcau_path_incident_endpoints`, and everything else stays Up. When the faults
//! end, the incidents and their series go away. The ground truth is the emulator's.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use common::Daemon;
use diemcau::store::StoreReader;
use serde_json::Value;

const CARRIERS: [&str; 2] = ["VNPT", "Viettel"];
const PROVINCES: [(&str, [&str; 2]); 2] = [
    ("Tỉnh Đồng Nai", ["Thành phố Biên Hòa", "Huyện Long Thành"]),
    ("Tỉnh Hà Giang", ["Huyện Đồng Văn", "Huyện Mèo Vạc"]),
];
const COMMUNES: usize = 4;
const FAULT_START_S: f64 = 30.0;
const FAULT_END_S: f64 = 70.0;
/// The commune whose own site fails (VNPT, Hà Giang, Mèo Vạc, first commune; IPv4).
const SITE: &str = "V0-1-1-0";

/// Router addresses: tier (0 gateway, 1 core, 2 province, 3 area) and indices.
fn router(v6: bool, tier: u8, c: usize, p: usize, d: usize) -> IpAddr {
    let (c, p, d) = (c as u8, p as u8, d as u8);
    let n = match tier {
        0 => 254,
        1 => 1 + c,
        2 => 10 + c * 2 + p,
        _ => 20 + c * 4 + p * 2 + d,
    };
    match v6 {
        false => Ipv4Addr::new(198, 19, tier, n).into(),
        true => Ipv6Addr::new(0x2001, 2, 0xff, u16::from(tier), 0, 0, 0, u16::from(n)).into(),
    }
}

struct Commune {
    id: String,
    v6: bool,
    c: usize,
    p: usize,
    d: usize,
}

fn communes() -> Vec<Commune> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        for c in 0..2 {
            for p in 0..2 {
                for d in 0..2 {
                    for k in 0..COMMUNES {
                        let id = format!("{}{c}-{p}-{d}-{k}", if v6 { "W" } else { "V" });
                        v.push(Commune { id, v6, c, p, d });
                    }
                }
            }
        }
    }
    v
}

fn inventory(all: &[Commune]) -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for (i, e) in all.iter().enumerate() {
        let ip: IpAddr = match e.v6 {
            false => Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 1 + i as u32).into(),
            true => Ipv6Addr::from(u128::from(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0)) + 1 + i as u128).into(),
        };
        let (province, districts) = PROVINCES[e.p];
        s.push_str(&format!(
            "{},{province},{},Xã {},{},{ip}\n",
            e.id, districts[e.d], e.id, CARRIERS[e.c]
        ));
    }
    s
}

/// The failing elements: (carrier, province, district or none) of each router outage.
const AREA_FAULT: (usize, usize, usize) = (0, 0, 0);
const PROVINCE_FAULT: (usize, usize) = (1, 1);

fn scenario() -> String {
    let window = format!("outages = [ {{ start_s = {FAULT_START_S}, end_s = {FAULT_END_S} }} ]");
    let mut s = format!(
        "[defaults]\ndelay = {{ kind = \"fixed\", ms = 2.0 }}\n\
         [[rule]]\nselect = {{ ids = [\"{SITE}\"] }}\n{window}\n"
    );
    for v6 in [false, true] {
        let family = if v6 { "v6" } else { "v4" };
        s += &format!(
            "[[router]]\nname = \"gw-{family}\"\naddress = \"{}\"\n",
            router(v6, 0, 0, 0, 0)
        );
        for (c, carrier) in CARRIERS.iter().enumerate() {
            s += &format!(
                "[[router]]\nname = \"core-{c}-{family}\"\naddress = \"{}\"\nparent = \"gw-{family}\"\n\
                 select = {{ carrier = \"{carrier}\" }}\n",
                router(v6, 1, c, 0, 0)
            );
            for (p, (province, districts)) in PROVINCES.iter().enumerate() {
                let fault = if (c, p) == PROVINCE_FAULT { window.as_str() } else { "" };
                s += &format!(
                    "[[router]]\nname = \"prov-{c}-{p}-{family}\"\naddress = \"{}\"\nparent = \"core-{c}-{family}\"\n\
                     select = {{ province = \"{province}\" }}\n{fault}\n",
                    router(v6, 2, c, p, 0)
                );
                for (d, district) in districts.iter().enumerate() {
                    let fault = if (c, p, d) == AREA_FAULT { window.as_str() } else { "" };
                    s += &format!(
                        "[[router]]\nname = \"area-{c}-{p}-{d}-{family}\"\naddress = \"{}\"\n\
                         parent = \"prov-{c}-{p}-{family}\"\nselect = {{ district = \"{district}\" }}\n{fault}\n",
                        router(v6, 3, c, p, d)
                    );
                }
            }
        }
    }
    s
}

/// What the API must say of `e` during the faults: (domain, last hop, failing hop), or None
/// when it is not affected.
fn expected(e: &Commune) -> Option<(&'static str, IpAddr, Option<IpAddr>)> {
    let r = |tier, c, p, d| router(e.v6, tier, c, p, d);
    if (e.c, e.p, e.d) == AREA_FAULT {
        return Some(("path", r(2, e.c, e.p, 0), Some(r(3, e.c, e.p, e.d))));
    }
    if (e.c, e.p) == PROVINCE_FAULT {
        return Some(("path", r(1, e.c, 0, 0), Some(r(2, e.c, e.p, 0))));
    }
    (e.id == SITE).then(|| ("endpoint", r(3, e.c, e.p, e.d), None))
}

fn endpoints(d: &Daemon) -> HashMap<String, Value> {
    let (status, body) = d.get("/api/v1/endpoints");
    assert_eq!(status, 200, "{body}");
    let rows: Vec<Value> = serde_json::from_str(&body).expect("endpoints JSON");
    rows.into_iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r))
        .collect()
}

fn ip(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok())
}

#[test]
fn a_router_a_province_and_a_site_are_each_placed_with_the_failing_hop_named() {
    if !common::require_tool("ip") {
        return;
    }
    let all = communes();
    // VNPT is charged for faults on its path and unplaced ones, not for a commune's own site.
    let config = "[web]\nlisten_address = \"127.0.0.1:{port}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
                  [probe]\ninterval = \"1s\"\npackets = 3\npacket_spacing = \"100ms\"\ntimeout = \"500ms\"\n\
                  [report]\ncharge_by_carrier = { VNPT = [\"path\", \"unknown\"] }\n";
    let mut d = Daemon::start_with_lab(config, &inventory(&all), &scenario());

    // Baselines first: every endpoint's path known before the faults begin.
    let learned = d.wait_until(Duration::from_secs(25), "a baseline for every endpoint", |d| {
        d.metrics().sum("diemcau_path_baselines", &[]) == all.len() as f64
    });
    println!(
        "RESULT path_baselines endpoints={} learned_s={:.1}",
        all.len(),
        learned.as_secs_f64()
    );

    let affected: Vec<&Commune> = all.iter().filter(|e| expected(e).is_some()).collect();
    assert_eq!(affected.len(), 2 * (COMMUNES + 2 * COMMUNES) + 1);
    d.wait_until(
        Duration::from_secs(60),
        "every affected endpoint down with its fault placed",
        |d| {
            let rows = endpoints(d);
            affected.iter().all(|e| {
                rows.get(&e.id)
                    .is_some_and(|r| r["state"] == "down" && r["fault"]["domain"] != "unknown")
            })
        },
    );
    let rows = endpoints(&d);
    let mut right = 0;
    for e in &all {
        let row = &rows[&e.id];
        // Every endpoint shows its baseline: the four routers in order.
        let want: Vec<Value> = (0..4)
            .map(|tier| Value::String(router(e.v6, tier, e.c, e.p, e.d).to_string()))
            .collect();
        assert_eq!(row["path"], Value::Array(want), "{}'s baseline", e.id);
        match expected(e) {
            None => assert_eq!(row["state"], "up", "{} is not behind a fault: {row}", e.id),
            Some((domain, last, failing)) => {
                let f = &row["fault"];
                let got = (f["domain"].as_str(), ip(&f["last_hop"]), ip(&f["failing_hop"]));
                if got == (Some(domain), Some(last), failing) {
                    right += 1;
                } else {
                    println!("{}: expected {domain} {last} {failing:?}, got {f}", e.id);
                }
                assert!(f["since"].as_f64().is_some(), "{row}");
            }
        }
    }
    println!("RESULT path_faults affected={} placed_right={right}", affected.len());
    assert_eq!(right, affected.len(), "every affected endpoint's fault is placed right");

    // One incident per failing router and family, with every endpoint behind it.
    let (status, body) = d.get("/api/v1/incidents");
    assert_eq!(status, 200);
    let incidents: Vec<Value> = serde_json::from_str(&body).expect("incidents JSON");
    let m = d.metrics();
    for v6 in [false, true] {
        let (c, p, dd) = AREA_FAULT;
        let (pc, pp) = PROVINCE_FAULT;
        for (hop, n, carrier) in [
            (router(v6, 3, c, p, dd), COMMUNES, CARRIERS[c]),
            (router(v6, 2, pc, pp, 0), 2 * COMMUNES, CARRIERS[pc]),
        ] {
            let i = incidents
                .iter()
                .find(|i| ip(&i["hop"]) == Some(hop))
                .unwrap_or_else(|| panic!("an incident at {hop}: {body}"));
            assert_eq!(
                (i["domain"].as_str(), i["endpoints"].as_u64(), i["carrier"].as_str()),
                (Some("path"), Some(n as u64), Some(carrier)),
                "{i}"
            );
            let series = m.value(
                "diemcau_path_incident_endpoints",
                &[&format!("hop=\"{hop}\""), "domain=\"path\""],
            );
            assert_eq!(series, Some(n as f64), "the incident's series at {hop}");
        }
    }
    assert_eq!(incidents.len(), 4, "no other incident: {body}");
    // The status page names the routers.
    let (status, page) = d.get("/status");
    assert_eq!(status, 200);
    let hop = router(false, 2, PROVINCE_FAULT.0, PROVINCE_FAULT.1, 0);
    assert!(
        page.contains(&format!("Chặng {hop} — Viettel — {} điểm cầu", 2 * COMMUNES)),
        "the status page lists the incident at {hop}"
    );
    assert!(
        page.contains("đường đi: 198.19.0.254 › "),
        "the status page shows the baselines"
    );

    // The faults end: everything Up again, no incident, no series left.
    d.wait_until(Duration::from_secs(60), "every endpoint up again", |d| {
        d.metrics().sum("diemcau_endpoint_up", &[]) == all.len() as f64
    });
    let (_, body) = d.get("/api/v1/incidents");
    assert_eq!(body.trim(), "[]");
    let m = d.metrics();
    assert!(m.values("diemcau_path_incident_endpoints", &[]).is_empty());
    assert!(m.values("diemcau_endpoint_fault_info", &[]).is_empty());
    assert!(m.sum("diemcau_path_findings_total", &["domain=\"path\""]) >= (affected.len() - 1) as f64);
    let log = d.stop();
    assert!(log.contains("fault placed on the path"), "{}", common::tail(&log, 20));
    let truth = std::fs::read_to_string(d.truth_path()).expect("truth");
    for name in ["area-0-0-0-v4", "prov-1-1-v4", "area-0-0-0-v6", "prov-1-1-v6"] {
        assert!(
            truth
                .lines()
                .any(|l| l.contains("\"router_outage\"") && l.contains(&format!("\"{name}\""))),
            "the truth records the outage of {name}"
        );
    }

    // The ledger keeps each outage's place and every baseline.
    let db = d.dir.path().join("data").join("diemcau.db");
    let reader = StoreReader::open(&db).expect("ledger");
    let outages = reader.outages(None, 0, i64::MAX).expect("outages");
    for e in &affected {
        let Some((domain, _, failing)) = expected(e) else {
            continue;
        };
        let o = outages
            .iter()
            .find(|o| o.endpoint == e.id)
            .unwrap_or_else(|| panic!("an outage of {}", e.id));
        assert_eq!(
            (o.domain.as_str(), o.failing_hop.as_str()),
            (domain, failing.map(|h| h.to_string()).unwrap_or_default().as_str()),
            "{o:?}"
        );
    }
    assert_eq!(outages.len(), affected.len(), "no other outage: {outages:?}");
    assert_eq!(reader.baselines().expect("baselines").len(), all.len());
    drop(reader);

    // `report sla` splits the downtime by place; VNPT is not charged for the site.
    let out = std::process::Command::new(common::bin())
        .args(["report", "sla", "--config"])
        .arg(d.dir.path().join("diemcau.toml"))
        .args([
            "--period",
            "2026-01-01T00:00:00Z..2100-01-01T00:00:00Z",
            "--by",
            "carrier",
            "--format",
            "json",
        ])
        .output()
        .expect("report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let carrier = |name: &str| {
        report["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("a {name} group: {report}"))
    };
    let (vnpt, viettel) = (carrier("VNPT"), carrier("Viettel"));
    let s = |g: &Value, k: &str| g[k].as_i64().unwrap_or_else(|| panic!("{k} in {g}"));
    println!(
        "RESULT path_sla vnpt_site_s={} vnpt_path_s={} vnpt_excused_s={} viettel_path_s={}",
        s(&vnpt, "downtime_site_s"),
        s(&vnpt, "downtime_path_s"),
        s(&vnpt, "excused_s"),
        s(&viettel, "downtime_path_s")
    );
    assert!(s(&vnpt, "downtime_site_s") >= 30, "{vnpt}");
    assert_eq!(s(&vnpt, "excused_s"), s(&vnpt, "downtime_site_s"), "{vnpt}");
    assert!(s(&vnpt, "downtime_path_s") >= 8 * 30, "4 communes × 2 families: {vnpt}");
    assert_eq!(
        s(&vnpt, "downtime_s"),
        s(&vnpt, "downtime_path_s") + s(&vnpt, "downtime_unplaced_s")
    );
    assert!(s(&viettel, "downtime_path_s") >= 16 * 30, "{viettel}");
    assert_eq!((s(&viettel, "downtime_site_s"), s(&viettel, "excused_s")), (0, 0));

    // A restart takes the baselines back from the ledger instead of learning them again.
    d.restart();
    d.wait_until(Duration::from_secs(10), "the baselines restored", |d| {
        d.log().contains("baseline paths restored")
    });
    assert_eq!(d.metrics().sum("diemcau_path_baselines", &[]), all.len() as f64);
    let log = d.stop();
    assert!(
        log.contains(&format!("restored={} kept={}", all.len(), all.len())),
        "{}",
        common::tail(&log, 30)
    );
}
