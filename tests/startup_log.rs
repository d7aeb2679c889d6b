//! The daemon's INFO log at start: one summary line for the first round (counts by state per
//! province) instead of one line per endpoint leaving Unknown, one more when the endpoints
//! still Unknown then have a state, and individual changes after that. Runs `diemcau demo`
//! (the endpoint emulator in a private network namespace) on 300 endpoints: three never
//! answer, one has an outage later.

mod common;

use std::time::Duration;

use common::Daemon;

const N: usize = 300;
const PROVINCES: [&str; 3] = ["Thành phố Hồ Chí Minh", "Thành phố Hà Nội", "Tỉnh Hà Giang"];

fn inventory() -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for i in 0..N {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 1)) + i as u32);
        let province = PROVINCES[i % 3];
        s.push_str(&format!("S{i:03},{province},Huyện {},Xã {i},VNPT,{ip}\n", i % 7));
    }
    s
}

const SCENARIO: &str = r#"
[defaults]
delay = { kind = "fixed", ms = 2.0 }

[[rule]]
select = { ids = ["S000", "S001", "S002"] }
never = true

[[rule]]
select = { ids = ["S150"] }
outages = [ { start_s = 8, end_s = 14 } ]
"#;

#[test]
fn first_round_is_summarised_and_later_changes_are_logged_one_by_one() {
    if !common::require_tool("ip") {
        return;
    }
    let config = format!("{}[vantage]\nname = \"vnpt-hanoi\"\n", common::fast_config("1s", 2, 1));
    let mut d = Daemon::start_with_lab(&config, &inventory(), SCENARIO);
    let state = |d: &Daemon, id: &str| {
        d.metrics()
            .value("diemcau_endpoint_state", &[&format!("endpoint=\"{id}\"")])
    };
    d.wait_until(Duration::from_secs(30), "S150 to go down in its outage", |d| {
        state(d, "S150") == Some(3.0)
    });
    d.wait_until(Duration::from_secs(15), "S150 to come back", |d| {
        state(d, "S150") == Some(1.0)
    });
    // The vantage is exported, served and written with the run.
    assert_eq!(
        d.metrics().value("diemcau_vantage_info", &["vantage=\"vnpt-hanoi\""]),
        Some(1.0)
    );
    let (status, body) = d.get("/api/v1/summary");
    assert_eq!(status, 200);
    let summary: serde_json::Value = serde_json::from_str(&body).expect("summary JSON");
    assert_eq!(summary["vantage"], "vnpt-hanoi");
    let (status, page) = d.get("/status");
    assert!(status == 200 && page.contains("Điểm đo vnpt-hanoi"), "{status}");
    let log = d.stop();
    let ledger = diemcau::store::StoreReader::open(&d.dir.path().join("data").join("diemcau.db")).expect("ledger");
    let runs = ledger.runs().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].vantage, "vnpt-hanoi");

    // logfmt (the default format): `level=info … msg="…" key=value`.
    let info: Vec<&str> = log.lines().filter(|l| l.contains("level=info")).collect();
    let has = |l: &str, key: &str, value: &str| {
        l.contains(&format!("{key}={value}")) || l.contains(&format!("{key}=\"{value}\""))
    };
    println!("{} INFO lines for {N} endpoints:\n{}", info.len(), info.join("\n"));
    let changes: Vec<&str> = info
        .iter()
        .copied()
        .filter(|l| l.contains("endpoint state changed"))
        .collect();
    // S150's outage and recovery (through Degraded while its loss window drains), nothing else.
    assert!(
        changes.iter().all(|l| l.contains("endpoint=S150")) && (2..=3).contains(&changes.len()),
        "{changes:#?}"
    );
    assert!(
        has(changes[0], "from", "up") && has(changes[0], "to", "down"),
        "{}",
        changes[0]
    );
    assert!(has(changes[changes.len() - 1], "to", "up"), "{changes:#?}");

    let ready: Vec<&str> = info
        .iter()
        .copied()
        .filter(|l| l.contains("every endpoint has finished its first round: ready"))
        .collect();
    assert_eq!(ready.len(), 1, "{ready:#?}");
    assert!(
        info.iter()
            .any(|l| l.contains("ledger open") && has(l, "vantage", "vnpt-hanoi")),
        "{info:#?}"
    );
    for field in ["endpoints=300", "up=297", "degraded=0", "down=0", "unknown=3"] {
        assert!(ready[0].contains(field), "{field} in {}", ready[0]);
    }
    for p in PROVINCES {
        assert!(
            ready[0].contains(&format!("{p}: up 99, unknown 1")),
            "{p} in {}",
            ready[0]
        );
    }
    let settled: Vec<&str> = info
        .iter()
        .copied()
        .filter(|l| l.contains("every endpoint has a state"))
        .collect();
    assert_eq!(settled.len(), 1, "{settled:#?}");
    assert!(
        settled[0].contains("up=297") && settled[0].contains("down=3"),
        "{}",
        settled[0]
    );
    for p in PROVINCES {
        assert!(
            settled[0].contains(&format!("{p}: up 99, down 1")),
            "{p} in {}",
            settled[0]
        );
    }
    assert!(info.len() < 40, "{} INFO lines", info.len());
}
