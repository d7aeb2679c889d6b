//! The duty-room status page in a real browser: ~300 endpoints with Vietnamese names, ten of
//! them cut off by an nftables drop rule and four degraded by 40 % loss, rendered by headless
//! Chromium (DOM and screenshots, desktop and phone), plus the JSON API checked against the
//! metrics. Screenshots are kept under target/test-artifacts/ (CI artifacts) and the desktop
//! one is copied to docs/status-page.png.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Metrics, fast_config, require_tool};
use serde_json::Value;

const HCM: &str = "Thành phố Hồ Chí Minh";
const THU_DUC: &str = "Thành phố Thủ Đức";

/// (province, district, commune) written by hand; every commune name is unique.
const NAMED: &[(&str, &str, &str)] = &[
    (HCM, THU_DUC, "Phường Cát Lái"),
    (HCM, THU_DUC, "Phường Thảo Điền"),
    (HCM, THU_DUC, "Phường An Phú"),
    (HCM, THU_DUC, "Phường Bình Trưng Đông"),
    (HCM, THU_DUC, "Phường Thạnh Mỹ Lợi"),
    (HCM, THU_DUC, "Phường Hiệp Bình Chánh"),
    (HCM, THU_DUC, "Phường Linh Trung"),
    (HCM, "Quận 1", "Phường Bến Nghé"),
    (HCM, "Quận 1", "Phường Đa Kao"),
    (HCM, "Huyện Cần Giờ", "Xã Thạnh An"),
    (HCM, "Huyện Cần Giờ", "Thị trấn Cần Thạnh"),
    ("Thành phố Hà Nội", "Quận Ba Đình", "Phường Phúc Xá"),
    ("Thành phố Hà Nội", "Quận Ba Đình", "Phường Điện Biên"),
    ("Thành phố Hà Nội", "Huyện Sóc Sơn", "Xã Bắc Sơn"),
    ("Tỉnh Hà Giang", "Huyện Đồng Văn", "Xã Lũng Cú"),
    ("Tỉnh Hà Giang", "Huyện Đồng Văn", "Thị trấn Đồng Văn"),
    ("Tỉnh Thừa Thiên Huế", "Thành phố Huế", "Phường Phú Hội"),
    ("Tỉnh Đắk Lắk", "Huyện Krông Pắc", "Xã Ea Kly"),
    ("Tỉnh Cà Mau", "Huyện Ngọc Hiển", "Xã Đất Mũi"),
    ("Tỉnh Quảng Ninh", "Thành phố Hạ Long", "Phường Bãi Cháy"),
    ("Tỉnh Lào Cai", "Thị xã Sa Pa", "Phường Ô Quý Hồ"),
    ("Tỉnh Sơn La", "Huyện Mộc Châu", "Thị trấn Nông trường Mộc Châu"),
    ("Tỉnh Bà Rịa - Vũng Tàu", "Thành phố Vũng Tàu", "Phường Thắng Tam"),
];

/// Cut off by the drop rule.
const DOWN: &[&str] = &[
    "Phường Cát Lái",
    "Phường Thảo Điền",
    "Phường Bình Trưng Đông",
    "Phường Bến Nghé",
    "Xã Thạnh An",
    "Xã Lũng Cú",
    "Xã Ea Kly",
    "Xã Đất Mũi",
    "Phường Ô Quý Hồ",
    "Thị trấn Nông trường Mộc Châu",
];

/// 40 % of their echo requests dropped.
const LOSSY: &[&str] = &["Phường Đa Kao", "Xã Bắc Sơn", "Phường Phú Hội", "Phường Bãi Cháy"];

const TOTAL: usize = 300;
const CARRIERS: &[&str] = &["VNPT", "Viettel", "MobiFone", "FPT Telecom"];

struct Row {
    id: String,
    province: String,
    district: String,
    commune: String,
    address: Ipv4Addr,
}

/// The named communes first, then synthetic ones spread over the named districts.
fn inventory() -> Vec<Row> {
    let mut rows = Vec::new();
    for i in 0..TOTAL {
        let (province, district, commune) = match NAMED.get(i) {
            Some(&(p, d, c)) => (p, d, c.to_owned()),
            None => {
                let (p, d, _) = NAMED[i % NAMED.len()];
                let kind = if d.starts_with("Huyện") { "Xã" } else { "Phường" };
                (p, d, format!("{kind} Số {i:03}"))
            }
        };
        rows.push(Row {
            id: format!("VC{i:04}"),
            province: province.to_owned(),
            district: district.to_owned(),
            commune,
            address: Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 1)) + i as u32),
        });
    }
    rows
}

fn csv(rows: &[Row]) -> String {
    let mut s = String::from("id,province,district,commune,carrier,address\n");
    for (i, r) in rows.iter().enumerate() {
        let carrier = CARRIERS[i % CARRIERS.len()];
        s.push_str(&format!(
            "{},{},{},{},{carrier},{}\n",
            r.id, r.province, r.district, r.commune, r.address
        ));
    }
    s
}

fn by_commune<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter().find(|r| r.commune == name).expect("named commune")
}

fn addresses(rows: &[Row], names: &[&str]) -> String {
    names
        .iter()
        .map(|n| by_commune(rows, n).address.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent-encodes a query value as UTF-8.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Runs headless Chromium with the brief's flags plus `extra`, killed after 45 s; stdout.
fn chromium(extra: &[&str], window: &str, url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .arg(format!("--window-size={window}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "chromium {extra:?} {url} failed: {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(45) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {extra:?} {url} did not finish within 45 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader")
}

fn dom(window: &str, url: &str) -> String {
    let dom = chromium(&["--dump-dom"], window, url);
    assert!(dom.contains("</html>"), "no DOM from {url}: {dom:.300}");
    dom
}

fn screenshot(window: &str, url: &str, name: &str) -> PathBuf {
    let path = artifacts().join(name);
    let _ = std::fs::remove_file(&path);
    chromium(&[&format!("--screenshot={}", path.display())], window, url);
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(
        len > 10_000,
        "screenshot {} is missing or empty ({len} bytes)",
        path.display()
    );
    println!("screenshot: {} ({len} bytes, window {window}, {url})", path.display());
    path
}

/// The part of `dom` between `<table id="ID"` and its `</table>`.
fn table<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id}"));
    let end = dom[start..].find("</table>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// The number on the card labelled `label`.
fn card(dom: &str, label: &str) -> Option<u64> {
    let at = dom.find(&format!("<span>{label}</span><b>"))? + label.len() + 16;
    dom[at..].split('<').next()?.parse().ok()
}

const STATES: [(&str, f64); 4] = [("unknown", 0.0), ("up", 1.0), ("degraded", 2.0), ("down", 3.0)];

/// Checks /api/v1/summary and /api/v1/endpoints?state=down against one scrape taken before
/// and one after (retried until the two scrapes agree, so no transition falls in between).
fn check_api(d: &Daemon, rows: &[Row]) {
    for attempt in 1..=5 {
        let before = d.metrics();
        let (status, summary) = d.get("/api/v1/summary");
        assert_eq!(status, 200);
        let (status, down) = d.get("/api/v1/endpoints?state=down");
        assert_eq!(status, 200);
        let after = d.metrics();
        let states = before.by_endpoint("diemcau_endpoint_state");
        if states != after.by_endpoint("diemcau_endpoint_state") {
            println!("attempt {attempt}: a state changed during the snapshot, again");
            continue;
        }
        let summary: Value = serde_json::from_str(&summary).expect("summary is JSON");
        let down: Value = serde_json::from_str(&down).expect("endpoints is JSON");
        compare(&before, &states, &summary, &down, rows);
        return;
    }
    panic!("states kept changing during five snapshots");
}

fn compare(m: &Metrics, states: &std::collections::HashMap<String, f64>, summary: &Value, down: &Value, rows: &[Row]) {
    let national = &summary["national"];
    assert_eq!(summary["ready"], Value::Bool(true));
    assert_eq!(national["endpoints"].as_u64(), Some(TOTAL as u64));
    assert_eq!(m.value("diemcau_endpoints", &[]), Some(TOTAL as f64));
    for (state, code) in STATES {
        let from_series = states.values().filter(|v| **v == code).count() as u64;
        let from_region = m.sum("diemcau_region_endpoints", &[&format!("state=\"{state}\"")]) as u64;
        assert_eq!(
            national[state].as_u64(),
            Some(from_series),
            "national {state} vs endpoint_state"
        );
        assert_eq!(from_region, from_series, "{state}: region series vs endpoint_state");
    }
    assert_eq!(national["down"].as_u64(), Some(DOWN.len() as u64), "{national}");
    // A 40 %-loss endpoint's twelve-round window (36 requests) dips under the 10 % limit with a
    // chance of 2.4e-5 at any moment (it was 1.4 % with 30 % and six rounds, and the DOM checks
    // below failed on it): degraded endpoints are lossy ones, and nearly all lossy ones are
    // degraded.
    let lossy: BTreeSet<String> = LOSSY.iter().map(|n| by_commune(rows, n).id.clone()).collect();
    let degraded: Vec<&String> = states.iter().filter(|(_, v)| **v == 2.0).map(|(k, _)| k).collect();
    assert!(degraded.iter().all(|id| lossy.contains(*id)), "degraded: {degraded:?}");
    assert!(degraded.len() + 1 >= LOSSY.len(), "{national}");
    let provinces = summary["provinces"].as_array().expect("provinces");
    let names: BTreeSet<&str> = rows.iter().map(|r| r.province.as_str()).collect();
    assert_eq!(
        provinces
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect::<BTreeSet<_>>(),
        names,
        "one row per province, names with diacritics"
    );
    for p in provinces {
        let name = p["name"].as_str().expect("name");
        for (state, _) in STATES {
            let region = m.sum(
                "diemcau_region_endpoints",
                &[&format!("province=\"{name}\""), &format!("state=\"{state}\"")],
            );
            assert_eq!(p["counts"][state].as_u64(), Some(region as u64), "{name} {state}");
        }
        let total = rows.iter().filter(|r| r.province == name).count() as u64;
        assert_eq!(p["counts"]["endpoints"].as_u64(), Some(total), "{name}");
    }

    let down = down.as_array().expect("array");
    let api_ids: BTreeSet<&str> = down.iter().filter_map(|r| r["id"].as_str()).collect();
    let metric_ids: BTreeSet<&str> = states
        .iter()
        .filter(|(_, v)| **v == 3.0)
        .map(|(k, _)| k.as_str())
        .collect();
    let expected: BTreeSet<&str> = DOWN.iter().map(|n| by_commune(rows, n).id.as_str()).collect();
    assert_eq!(api_ids, metric_ids, "?state=down vs diemcau_endpoint_state == 3");
    assert_eq!(api_ids, expected, "the endpoints behind the drop rule");
    for r in down {
        let row = rows
            .iter()
            .find(|x| Some(x.id.as_str()) == r["id"].as_str())
            .expect("known id");
        assert_eq!(r["commune"].as_str(), Some(row.commune.as_str()));
        assert_eq!(r["district"].as_str(), Some(row.district.as_str()));
        assert_eq!(r["province"].as_str(), Some(row.province.as_str()));
        assert_eq!(r["address"].as_str(), Some(row.address.to_string().as_str()));
        assert_eq!(r["state"].as_str(), Some("down"));
        assert_eq!(r["failing_checks"], serde_json::json!(["icmp"]), "{r}");
        assert_eq!(r["loss_ratio"].as_f64(), Some(1.0), "{r}");
        let id = r["id"].as_str().unwrap_or_default();
        assert_eq!(
            m.value("diemcau_endpoint_up", &[&format!("endpoint=\"{id}\"")]),
            Some(0.0),
            "{id}"
        );
        assert!(r["since"].as_f64().is_some_and(|s| s > 1.7e9), "{r}");
    }
    println!(
        "API matches the metrics: national {}, {} provinces, {} down",
        national,
        provinces.len(),
        down.len()
    );
}

#[test]
fn status_page_in_headless_chromium() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let browser = require_tool("chromium");
    let rows = inventory();
    let config = format!(
        "{}[state.degraded]\nloss_ratio = 0.1\nwindow = 12\n",
        fast_config("2s", 2, 1)
    );
    let mut d = Daemon::start(&config, &csv(&rows));
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    d.nft(&format!(
        "table inet status_page {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr {{ {} }} drop\n  \
         ip daddr {{ {} }} icmp type echo-request numgen random mod 100 < 40 drop\n }}\n}}\n",
        addresses(&rows, DOWN),
        addresses(&rows, LOSSY)
    ));
    let down_ids: Vec<String> = DOWN
        .iter()
        .map(|n| format!("endpoint=\"{}\"", by_commune(&rows, n).id))
        .collect();
    let lossy_ids: Vec<String> = LOSSY
        .iter()
        .map(|n| format!("endpoint=\"{}\"", by_commune(&rows, n).id))
        .collect();
    let took = d.wait_until(Duration::from_secs(40), "10 down and 4 degraded", |d| {
        let m = d.metrics();
        let state = |l: &String| m.value("diemcau_endpoint_state", &[l]);
        down_ids.iter().all(|l| state(l) == Some(3.0))
            && lossy_ids.iter().all(|l| state(l) == Some(2.0))
            && m.sum("diemcau_region_endpoints", &["state=\"up\""]) == (TOTAL - DOWN.len() - LOSSY.len()) as f64
    });
    println!("10 down and 4 degraded after {took:?}");

    check_api(&d, &rows);

    if !browser {
        return;
    }
    let base = format!("http://127.0.0.1:{}", d.port);

    // National view.
    let started = Instant::now();
    let national = dom("1280,1600", &format!("{base}/status"));
    println!("DOM of /status: {} bytes in {:?}", national.len(), started.elapsed());
    let problems = table(&national, "problems");
    for name in DOWN.iter().chain(LOSSY) {
        assert!(problems.contains(name), "{name} missing from the problems table");
    }
    assert!(!problems.contains("Phường An Phú"), "an up endpoint is not a problem");
    assert!(national.contains("Không tham gia được (14)"), "problems heading");
    assert_eq!(card(&national, "Điểm cầu"), Some(TOTAL as u64));
    assert_eq!(card(&national, "Mất kết nối"), Some(DOWN.len() as u64));
    assert_eq!(card(&national, "Suy giảm"), Some(LOSSY.len() as u64));
    let groups = table(&national, "groups");
    assert!(national.contains("Theo tỉnh/thành phố"));
    for p in rows.iter().map(|r| &r.province).collect::<BTreeSet<_>>() {
        let link = format!(
            "<a href=\"/status?province={}\">{}</a>",
            enc(p),
            p.replace('&', "&amp;")
        );
        assert!(groups.contains(&link), "province row {link} missing");
    }
    // HCM: 5 down (Cát Lái, Thảo Điền, Bình Trưng Đông, Bến Nghé, Thạnh An), 1 degraded (Đa Kao).
    let hcm_total = rows.iter().filter(|r| r.province == HCM).count();
    let hcm_row = groups
        .split("<tr")
        .find(|r| r.contains(&format!(">{HCM}</a>")))
        .expect("HCM row");
    let cells: Vec<&str> = hcm_row
        .split("<td class=\"n")
        .skip(1)
        .filter_map(|c| c.split('>').nth(1)?.split('<').next())
        .collect();
    println!("HCM row: {cells:?}");
    assert_eq!(cells.first().copied(), Some(hcm_total.to_string().as_str()));
    assert_eq!(cells.get(2).copied(), Some("1"), "HCM degraded (Đa Kao)");
    assert_eq!(cells.get(3).copied(), Some("5"), "HCM down");

    // Province → districts, then district → communes (percent-encoded UTF-8 query).
    let province_dom = dom("1280,1600", &format!("{base}/status?province={}", enc(HCM)));
    assert!(province_dom.contains("Theo quận/huyện"));
    let district_link = format!("/status?province={}&amp;district={}", enc(HCM), enc(THU_DUC));
    assert!(province_dom.contains(&district_link), "district link {district_link}");
    let drill_url = format!("{base}/status?province={}&district={}", enc(HCM), enc(THU_DUC));
    let drill = dom("1280,1600", &drill_url);
    assert!(drill.contains(&format!("<title>Điểm cầu — tình trạng {THU_DUC}, {HCM}</title>")));
    assert!(drill.contains("Theo xã/phường"));
    let drill_problems = table(&drill, "problems");
    for name in ["Phường Cát Lái", "Phường Thảo Điền", "Phường Bình Trưng Đông"] {
        assert!(drill_problems.contains(name), "{name} in the Thủ Đức problems");
    }
    for name in ["Phường Bến Nghé", "Xã Lũng Cú", "Phường Đa Kao"] {
        assert!(!drill_problems.contains(name), "{name} is not in Thủ Đức");
    }
    assert!(drill.contains("Không tham gia được (3)"));
    let drill_groups = table(&drill, "groups");
    let thu_duc = rows.iter().filter(|r| r.district == THU_DUC).count();
    assert_eq!(
        drill_groups.matches("<tr data-search").count(),
        thu_duc,
        "one row per commune"
    );
    assert!(
        drill_groups.contains("Phường An Phú (VC0002, up)"),
        "commune rows carry id and state"
    );

    // Search.
    let search = dom("1280,1600", &format!("{base}/status?q={}", enc("Cát Lái")));
    let search_problems = table(&search, "problems");
    assert!(search_problems.contains("Phường Cát Lái"));
    assert!(!search_problems.contains("Phường Thảo Điền"));
    assert!(search.contains("Không tham gia được (1)"));
    assert!(search.contains("value=\"Cát Lái\""), "the search box keeps the query");
    let lower = dom("1280,1600", &format!("{base}/status?q={}", enc("cát lái")));
    assert!(
        table(&lower, "problems").contains("Phường Cát Lái"),
        "search ignores case"
    );

    // Screenshots.
    let desktop = screenshot("1280,1600", &format!("{base}/status"), "status-desktop.png");
    let phone = screenshot("390,844", &format!("{base}/status"), "status-phone.png");
    let phone_drill = screenshot("390,844", &drill_url, "status-phone-district.png");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png");
    std::fs::copy(&desktop, &docs).expect("copy to docs/status-page.png");
    println!("copied {} to {}", desktop.display(), docs.display());
    let _ = (phone, phone_drill);

    d.stop();
}

/// A search for a name that does not exist, while endpoints are down.
#[test]
fn search_without_a_match_does_not_claim_all_is_well() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let rows: Vec<Row> = inventory().into_iter().take(NAMED.len()).collect();
    let mut d = Daemon::start(&fast_config("1s", 2, 1), &csv(&rows));
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    d.nft(&format!(
        "table inet status_page {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr {{ {} }} drop\n }}\n}}\n",
        addresses(&rows, DOWN)
    ));
    d.wait_until(Duration::from_secs(15), "10 down", |d| {
        d.metrics().sum("diemcau_region_endpoints", &["state=\"down\""]) == DOWN.len() as f64
    });
    let (status, page) = d.get(&format!("/status?q={}", enc("Phường Cát Lai")));
    assert_eq!(status, 200);
    let problems = table(&page, "problems");
    let shown = problems.split("<tbody>").nth(1).unwrap_or("").trim();
    println!("/status?q=Phường Cát Lai (typo, no match) with 10 down shows: {shown:?}");
    assert!(page.contains("<b>10</b>"), "the cards still count 10 down");
    // A search that matches nothing (here a missing diacritic) must not tell the duty room all
    // is well while 10 endpoints are down.
    assert!(
        !shown.contains("Tất cả điểm cầu đang hoạt động"),
        "an empty search result must say that nothing matched, not that all endpoints work"
    );
}

/// Today's two-tier map (no district column): (id, province, commune) from the 2025 list.
const TWO_TIER: &[(&str, &str, &str)] = &[
    ("VN75-26068", "Tỉnh Đồng Nai", "Phường Biên Hòa"),
    ("VN75-26041", "Tỉnh Đồng Nai", "Phường Trấn Biên"),
    ("VN75-26017", "Tỉnh Đồng Nai", "Phường Tam Hiệp"),
    ("VN75-26020", "Tỉnh Đồng Nai", "Phường Long Bình"),
    ("VN75-25993", "Tỉnh Đồng Nai", "Phường Trảng Dài"),
    ("VN75-26005", "Tỉnh Đồng Nai", "Phường Hố Nai"),
    ("VN75-26080", "Tỉnh Đồng Nai", "Phường Long Khánh"),
    ("VN75-25195", "Tỉnh Đồng Nai", "Phường Bình Phước"),
    ("VN75-25222", "Tỉnh Đồng Nai", "Xã Bù Gia Mập"),
    ("VN75-25225", "Tỉnh Đồng Nai", "Xã Đăk Ơ"),
    ("VN79-26740", HCM, "Phường Sài Gòn"),
    ("VN79-26737", HCM, "Phường Tân Định"),
    ("VN79-26743", HCM, "Phường Bến Thành"),
];
const TWO_TIER_DOWN: &[&str] = &["VN75-26068", "VN75-26041", "VN79-26740"];

/// A province of the two-tier map lists its communes directly; nothing shows a blank district.
#[test]
fn two_tier_province_lists_its_communes_without_a_district() {
    if !require_tool("nft") || !require_tool("nsenter") {
        return;
    }
    let browser = require_tool("chromium");
    let address = |i: usize| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 1)) + i as u32);
    let mut csv = String::from("id,province,commune,carrier,address\n");
    for (i, (id, province, commune)) in TWO_TIER.iter().enumerate() {
        let carrier = CARRIERS[i % 2];
        csv.push_str(&format!("{id},{province},{commune},{carrier},{}\n", address(i)));
    }
    let down: Vec<String> = TWO_TIER
        .iter()
        .enumerate()
        .filter(|(_, (id, ..))| TWO_TIER_DOWN.contains(id))
        .map(|(i, _)| address(i).to_string())
        .collect();
    let mut d = Daemon::start(&fast_config("1s", 2, 1), &csv);
    d.wait_until(Duration::from_secs(20), "/-/ready", |d| d.get("/-/ready").0 == 200);
    d.nft(&format!(
        "table inet status_page {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
         ip daddr {{ {} }} drop\n }}\n}}\n",
        down.join(", ")
    ));
    d.wait_until(Duration::from_secs(15), "3 down, 10 up", |d| {
        let m = d.metrics();
        m.sum("diemcau_region_endpoints", &["state=\"down\""]) == 3.0
            && m.sum("diemcau_region_endpoints", &["state=\"up\""]) == 10.0
    });
    assert!(!d.metrics().0.contains("district="), "no district label in /metrics");
    let (_, api) = d.get("/api/v1/endpoints?state=down");
    let api: Value = serde_json::from_str(&api).expect("JSON");
    assert_eq!(api.as_array().map(Vec::len), Some(3), "{api}");
    assert!(
        api.as_array()
            .into_iter()
            .flatten()
            .all(|r| r.get("district").is_none()),
        "{api}"
    );

    let dong_nai = "Tỉnh Đồng Nai";
    let url = format!("http://127.0.0.1:{}/status?province={}", d.port, enc(dong_nai));
    let page = if browser {
        dom("1280,1000", &url)
    } else {
        d.get(&format!("/status?province={}", enc(dong_nai))).1
    };
    assert!(page.contains(&format!("<title>Điểm cầu — tình trạng {dong_nai}</title>")));
    assert!(
        page.contains("<h2>Theo xã/phường</h2>"),
        "the province lists its communes"
    );
    assert!(
        !page.contains("Theo quận/huyện") && !page.contains("district="),
        "no district level"
    );
    let groups = table(&page, "groups");
    assert!(groups.contains("<th>Xã/phường</th>"));
    assert_eq!(groups.matches("<tr data-search").count(), 10, "one row per commune");
    for (id, _, commune) in TWO_TIER.iter().filter(|(_, p, _)| *p == dong_nai) {
        let state = if TWO_TIER_DOWN.contains(id) { "down" } else { "up" };
        assert!(groups.contains(&format!("{commune} ({id}, {state})")), "{commune} row");
    }
    // Problems: the commune, then "province · id · address", no district cell or text at all.
    let problems = table(&page, "problems");
    assert!(page.contains("Không tham gia được (2)"));
    for (i, (id, province, commune)) in TWO_TIER.iter().enumerate().take(2) {
        let place = format!("{commune}<br><small>{province} · {id} · {}</small>", address(i));
        assert!(problems.contains(&place), "{place} in\n{problems}");
    }
    assert!(!problems.contains("Huyện"), "no district column header:\n{problems}");
    assert!(
        !problems.contains("<td class=\"hide-sm\"></td>"),
        "an empty cell:\n{problems}"
    );
    assert!(!problems.contains("<small>, "), "a dangling comma");

    if browser {
        let shot = screenshot("1280,1000", &url, "status-two-tier-province.png");
        println!("two-tier province page: {}", shot.display());
    }
    d.stop();
}
