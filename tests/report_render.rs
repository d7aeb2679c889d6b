//! A synthetic month for 3,000 endpoints with known outages, maintenance and daemon downtime:
//! the CSV figures are checked against sums worked out independently here (per endpoint, from
//! the rules that generated it, without interval arithmetic); the HTML page is rendered,
//! screenshotted and dumped by headless Chromium.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diemcau::config::inventory_gen::PROVINCES_2025 as PROVINCES;
use diemcau::domain::Labels;
use diemcau::domain::maintenance::{self, ScopeLabels};
use diemcau::domain::sla::{self, EndpointHistory, GroupKey, Interval, Targets};
use diemcau::report::{self, Format, HtmlOptions};

const P0: i64 = 1_793_466_000; // 2026-11-01T00:00+07:00
const P1: i64 = 1_796_058_000; // 2026-12-01T00:00+07:00
const MONTH: i64 = 2_592_000;
const H: i64 = 3600;
const D: i64 = 86_400;
const NOV: Interval = Interval::new(P0, P1);
const ENDPOINTS: usize = 3000;
const NO_DATA_PROVINCE: usize = 33; // Tỉnh Cà Mau: in maintenance all month

const WINDOWS: &str = r#"
[[maintenance]]
name = "Nâng cấp lõi VNPT Hà Nội"
scope = { carrier = "VNPT", province = "Thành phố Hà Nội" }
start = "2026-11-16T00:00:00+07:00"
end = "2026-11-16T04:00:00+07:00"

[[maintenance]]
name = "Bảo trì hằng tuần Viettel"
scope = { carrier = "Viettel" }
cron = "0 1 * * SUN"
duration = "2h"

[[maintenance]]
name = "Di dời trung tâm dữ liệu Cà Mau"
scope = { province = "Tỉnh Cà Mau" }
start = "2026-10-25T00:00:00+07:00"
end = "2026-12-05T00:00:00+07:00"
"#;

struct Spec {
    province: usize,
    vnpt: bool,
    /// Added to the inventory this long after P0.
    added_after: i64,
    /// (start offset from P0, length) of each outage.
    outages: Vec<(i64, i64)>,
}

/// The generating rules, shared by the history builder and the expected figures.
fn spec(i: usize) -> Spec {
    let p = i % PROVINCES.len();
    let added_after = if i % 10 == 9 { 10 * D } else { 0 };
    let len = 60 * (1 + (i % 7) as i64);
    let minute = 60 * (i % 100) as i64;
    let mut outages: Vec<(i64, i64)> = (0..i % 4).map(|j| ((5 * (j as i64 + 1)) * D + minute, len)).collect();
    if i.is_multiple_of(50) {
        outages.push((3 * D + H, 2 * H)); // across the daemon's 2 h absence on day 3
    }
    if p % 7 == 3 && i.is_multiple_of(3) {
        outages.push((25 * D + 12 * H, 4 * H));
    }
    if p % 11 == 5 && i.is_multiple_of(3) {
        outages.push((25 * D + 12 * H, 24 * H));
    }
    Spec {
        province: p,
        vnpt: (i / PROVINCES.len()).is_multiple_of(2),
        added_after,
        outages,
    }
}

fn history(i: usize, windows: &[maintenance::MaintenanceWindow]) -> EndpointHistory {
    let s = spec(i);
    let mut h = EndpointHistory {
        id: format!("EP-{i:05}"),
        labels: Labels {
            province: PROVINCES[s.province].into(),
            district: Some(format!("Huyện Đông Sơn {}", i / 68 % 6 + 1).into()),
            commune: format!("Xã Phước Lộc {i}").into(),
            carrier: if s.vnpt { "VNPT" } else { "Viettel" }.into(),
        },
        exists: vec![Interval::new(P0 + s.added_after, P1 + 30 * D)],
        // The daemon was down on day 3 from 00:00 to 02:00.
        monitored: vec![
            Interval::new(P0 - 30 * D, P0 + 3 * D),
            Interval::new(P0 + 3 * D + 2 * H, P1 + D),
        ],
        down: s
            .outages
            .iter()
            .map(|&(o, l)| Interval::new(P0 + o, P0 + o + l))
            .collect(),
        maintenance: Vec::new(),
        brief: Vec::new(),
        ..EndpointHistory::default()
    };
    h.maintenance = maintenance::maintenance_for(windows, &ScopeLabels::from(&h), NOV);
    h
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Sums {
    endpoints: u64,
    eligible: i64,
    down: i64,
    outages: u64,
    maintenance: i64,
    unknown: i64,
}

/// The expected figures of endpoint `i`, by the rules alone: Sundays are days 0, 7, 14, 21, 28
/// (01:00–03:00, Viettel), the Hà Nội VNPT window is day 15 00:00–04:00, the daemon's absence is
/// day 3 00:00–02:00, and no rule-made outage meets a maintenance window except the day-15 ones
/// of Hà Nội VNPT (inside it).
fn expected(i: usize) -> Sums {
    let s = spec(i);
    let inventory = MONTH - s.added_after;
    if s.province == NO_DATA_PROVINCE {
        return Sums {
            endpoints: 1,
            maintenance: inventory,
            ..Sums::default()
        };
    }
    let sundays = [0, 7, 14, 21, 28].iter().filter(|&&d| d * D >= s.added_after).count() as i64;
    let hanoi_vnpt = s.province == 0 && s.vnpt;
    let maintenance = if s.vnpt { 0 } else { sundays * 2 * H } + if hanoi_vnpt { 4 * H } else { 0 };
    let unknown = if s.added_after == 0 { 2 * H } else { 0 };
    let (mut down, mut outages) = (0, 0);
    for &(start, len) in &s.outages {
        if start < s.added_after || (hanoi_vnpt && start / D == 15) {
            continue;
        }
        // Only the outage across the daemon's absence (day 3, 01:00–03:00) loses its first hour.
        down += if start == 3 * D + H { len - H } else { len };
        outages += 1;
    }
    Sums {
        endpoints: 1,
        eligible: inventory - maintenance - unknown,
        down,
        outages,
        maintenance,
        unknown,
    }
}

fn add(a: &mut Sums, b: Sums) {
    a.endpoints += b.endpoints;
    a.eligible += b.eligible;
    a.down += b.down;
    a.outages += b.outages;
    a.maintenance += b.maintenance;
    a.unknown += b.unknown;
}

fn pct(s: &Sums) -> String {
    if s.eligible == 0 {
        String::new()
    } else {
        format!("{:.4}", (s.eligible - s.down) as f64 * 100.0 / s.eligible as f64)
    }
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_render");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

#[test]
fn three_thousand_endpoints_csv_json_html() {
    let targets = Targets::new(99.5, [("VNPT".to_string(), 99.9)]);
    let t0 = Instant::now();
    let windows = maintenance::parse_toml(WINDOWS).unwrap_or_else(|e| panic!("{e}"));
    let histories: Vec<EndpointHistory> = (0..ENDPOINTS).map(|i| history(i, &windows)).collect();
    let t_histories = t0.elapsed();
    let t1 = Instant::now();
    let r = sla::compute(NOV, &histories, &[GroupKey::Province, GroupKey::Carrier], &targets, 20);
    let t_compute = t1.elapsed();
    let t2 = Instant::now();
    let csv = report::csv::groups_to_string(&r).expect("csv");
    let worst_csv = report::csv::worst_to_string(&r).expect("worst csv");
    let json = report::json::to_string(&r).expect("json");
    let html = report::render_html(&r, &HtmlOptions::default()).expect("html");
    let t_render = t2.elapsed();
    println!(
        "report for {ENDPOINTS} endpoints × 1 month: histories+maintenance {:?}, compute {:?}, \
         render csv+json+html {:?} (total {:?}; debug build); html {} KB, json {} KB",
        t_histories,
        t_compute,
        t_render,
        t0.elapsed(),
        html.len() / 1024,
        json.len() / 1024
    );

    // Expected sums per province × carrier, and nationally.
    let mut want: BTreeMap<String, Sums> = BTreeMap::new();
    let mut national = Sums::default();
    for i in 0..ENDPOINTS {
        let s = spec(i);
        let name = format!(
            "{} / {}",
            PROVINCES[s.province],
            if s.vnpt { "VNPT" } else { "Viettel" }
        );
        add(want.entry(name).or_default(), expected(i));
        add(&mut national, expected(i));
    }
    assert_eq!(want.len(), 68);

    // UTF-8 with a BOM (U+FEFF), so that Excel on a Vietnamese Windows desktop reads the diacritics.
    let body = csv.strip_prefix('\u{feff}').expect("the CSV starts with a BOM");
    let mut reader = ::csv::Reader::from_reader(body.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), report::csv::GROUP_HEADER);
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let mut seen = 0;
    for row in reader.records() {
        let row = row.expect("row");
        let name = &row[col("group")];
        let w = want.get(name).unwrap_or_else(|| panic!("unexpected group {name}"));
        let num = |c: &str| row[col(c)].parse::<i64>().unwrap_or_else(|e| panic!("{name} {c}: {e}"));
        assert_eq!(num("endpoints") as u64, w.endpoints, "{name}");
        assert_eq!(num("eligible_s"), w.eligible, "{name} eligible");
        assert_eq!(num("downtime_s"), w.down, "{name} downtime");
        assert_eq!(num("up_s"), w.eligible - w.down, "{name} up");
        assert_eq!(num("outages") as u64, w.outages, "{name} outages");
        assert_eq!(num("maintenance_s"), w.maintenance, "{name} maintenance");
        assert_eq!(num("unknown_s"), w.unknown, "{name} unknown");
        assert_eq!(&row[col("availability_pct")], pct(w), "{name} availability");
        let target = if name.ends_with("VNPT") { 99.9 } else { 99.5 };
        let breach = match pct(w).parse::<f64>() {
            Ok(_) => {
                if ((w.eligible - w.down) as f64 * 100.0 / w.eligible as f64) < target {
                    "yes"
                } else {
                    "no"
                }
            }
            Err(_) => "",
        };
        assert_eq!(&row[col("breach")], breach, "{name} breach");
        if w.outages > 0 {
            assert_eq!(
                num("mttr_s"),
                (w.down as f64 / w.outages as f64).round() as i64,
                "{name} mttr"
            );
        } else {
            assert_eq!(&row[col("mttr_s")], "", "{name} mttr");
        }
        seen += 1;
    }
    assert_eq!(seen, 68);
    let t = &r.total.figures;
    assert_eq!(
        (t.eligible_s, t.downtime_s, t.outages, t.maintenance_s, t.unknown_s),
        (
            national.eligible,
            national.down,
            national.outages,
            national.maintenance,
            national.unknown
        )
    );
    assert_eq!(
        format!("{:.4}", t.availability_pct.expect("national figure")),
        pct(&national)
    );
    println!(
        "national availability {}% over {} endpoints, {} outages",
        pct(&national),
        national.endpoints,
        national.outages
    );

    // Worst list: 20 rows, worst first, ties broken by downtime.
    let worst_body = worst_csv
        .strip_prefix('\u{feff}')
        .expect("the worst CSV starts with a BOM");
    let worst: Vec<::csv::StringRecord> = ::csv::Reader::from_reader(worst_body.as_bytes())
        .records()
        .collect::<Result<_, _>>()
        .expect("worst rows");
    assert_eq!(worst.len(), 20);
    let lowest = (0..ENDPOINTS)
        .map(expected)
        .filter(|s| s.eligible > 0)
        .map(|s| (s.eligible - s.down) as f64 * 100.0 / s.eligible as f64)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(&worst[0][6], format!("{lowest:.4}"));
    assert!(json.contains("\"Tỉnh Cà Mau\"") && json.contains("\"availability_pct\": null"));

    // The page: one file, nothing fetched from elsewhere.
    for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(banned), "page must be self-contained: found {banned}");
    }
    assert!(html.contains("<meta charset=\"utf-8\">") && html.contains("lang=\"vi\"") && html.contains("@media print"));
    assert!(html.contains("Tháng 11/2026"));

    // The screenshot shows one page grouped by carrier, with the province chart near the top.
    let by_carrier = sla::compute(NOV, &histories, &[GroupKey::Carrier], &targets, 15);
    let page = report::render(&by_carrier, Format::Html, &HtmlOptions::default()).expect("html");
    let dir = out_dir();
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, &page).expect("write html");
    std::fs::write(dir.join("report-province-carrier.html"), &html).expect("write html");
    std::fs::write(dir.join("report.csv"), &csv).expect("write csv");
    println!("HTML: {}", html_path.display());
    check_in_chromium(&html_path, &dir);
}

/// Runs `chromium` with a deadline; stdout goes to `stdout_to`.
fn chromium(args: &[String], stdout_to: &Path) -> bool {
    let out = File::create(stdout_to).expect("stdout file");
    let mut child = match Command::new("chromium")
        .args(args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("chromium did not start: {e}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium took over 120 s");
            }
        }
    }
}

fn check_in_chromium(html: &Path, dir: &Path) {
    let present = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is missing on CI (apt-get install chromium)");
        }
        println!("SKIPPED: chromium is not installed; the page was not rendered");
        return;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let png = dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    let url = format!("file://{}", html.display());
    let common = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut shot = common.to_vec();
    shot.extend([
        format!("--screenshot={}", png.display()),
        "--window-size=1280,2000".into(),
        url.clone(),
    ]);
    assert!(
        chromium(&shot, &dir.join("screenshot.log")),
        "chromium --screenshot failed"
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    println!("PNG: {} ({} KB)", png.display(), size / 1024);
    assert!(size > 10 * 1024, "screenshot is only {size} bytes");

    let mut dump = common.to_vec();
    dump.extend(["--dump-dom".to_string(), url]);
    let dom_path = dir.join("dom.html");
    assert!(chromium(&dump, &dom_path), "chromium --dump-dom failed");
    let dom = std::fs::read_to_string(&dom_path).expect("dom is UTF-8");
    for name in ["Thành phố Hồ Chí Minh", "Tỉnh Đắk Lắk", "Toàn quốc"] {
        assert!(dom.contains(name), "{name} missing from the rendered page");
    }
}
