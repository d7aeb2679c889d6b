//! `--format xlsx` and the Excel-friendly CSV, checked the way an office opens them: the workbook
//! that `diemcau report sla` writes for a November 2026 ledger is converted to CSV, sheet by
//! sheet, by LibreOffice headless, and the cells are compared with the JSON report (names with
//! diacritics, availability, durations, number formats). `/reports/sla?format=xlsx` is checked
//! for its content type and file name.

mod common;
#[path = "common/sla_ledger.rs"]
mod sla_ledger;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::bin;
use sla_ledger::{FORMULA_COMMUNE, write_config};

struct Fixture {
    dir: PathBuf,
    config: PathBuf,
}

/// The ledger of November 2026, the daemon stopped at 2026-12-01 00:00; kept after the test.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_xlsx");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let config = write_config(&dir, "");
        let (store, _clock) = sla_ledger::november(&dir, "2026-12-01T00:00");
        store.shutdown().expect("clean stop");
        Fixture { dir, config }
    })
}

fn report(f: &Fixture, args: &[&str]) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let out = Command::new(bin())
        .args(["report", "sla", "--config"])
        .arg(&f.config)
        .args(["--period", "2026-11"])
        .args(args)
        .output()
        .expect("run diemcau report sla");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout, t.elapsed())
}

/// `soffice`, installed with apt-get when missing and running as root (as scripts/test does).
/// Missing: fails under CI=true, skips elsewhere.
fn soffice() -> bool {
    let found = || {
        Command::new("sh")
            .args(["-c", "command -v soffice"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return true;
    }
    let root = nix_uid_is_root();
    if root {
        eprintln!("soffice is missing: installing libreoffice-calc with apt-get");
        let status = Command::new("sh")
            .args([
                "-c",
                "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
                 apt-get install -y -qq --no-install-recommends libreoffice-calc >/dev/null",
            ])
            .status();
        eprintln!("apt-get: {status:?}");
    }
    if found() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "soffice is required in CI (Debian package libreoffice-calc; scripts/test installs it as root)"
    );
    eprintln!("SKIPPED: soffice is not installed");
    false
}

fn nix_uid_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `soffice --convert-to FILTER --outdir OUT FILE`, one at a time (parallel instances can crash
/// on start-up), with a fresh profile each.
fn convert(file: &Path, filter: &str, out: &Path, infilter: Option<&str>) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    let profile = tempfile::tempdir().expect("profile");
    let status = Command::new("soffice")
        .arg(format!("-env:UserInstallation=file://{}", profile.path().display()))
        .args(["--headless", "--norestore", "--nolockcheck"])
        .args(infilter.map(|f| format!("--infilter={f}")))
        .args(["--convert-to", filter, "--outdir"])
        .arg(out)
        .arg(file)
        .stdout(Stdio::null())
        .status()
        .expect("run soffice");
    assert!(
        status.success(),
        "soffice --convert-to {filter} {}: {status}",
        file.display()
    );
}

/// Every sheet of `xlsx` as CSV rows, by sheet name. `as_shown`: the text as displayed (number
/// formats applied), else the cells' values at full precision.
fn sheets(xlsx: &Path, as_shown: bool) -> BTreeMap<String, Vec<Vec<String>>> {
    let out = xlsx.with_extension(if as_shown { "shown" } else { "values" });
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("out dir");
    // Separator `,`, quote `"`, UTF-8 (76), from line 1, …, "save as shown", …, all sheets (-1).
    let filter = format!("csv:Text - txt - csv (StarCalc):44,34,76,1,,1033,false,true,{as_shown},false,false,-1");
    let t = Instant::now();
    convert(xlsx, &filter, &out, None);
    println!("soffice --convert-to csv (as shown: {as_shown}): {:?}", t.elapsed());
    let stem = xlsx.file_stem().expect("stem").to_string_lossy().to_string();
    let mut sheets = BTreeMap::new();
    for e in std::fs::read_dir(&out).expect("converted") {
        let path = e.expect("entry").path();
        let name = path.file_stem().expect("stem").to_string_lossy().to_string();
        let sheet = name.strip_prefix(&format!("{stem}-")).unwrap_or(&name).to_string();
        let rows = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&path)
            .expect("csv")
            .records()
            .map(|r| r.expect("row").iter().map(String::from).collect())
            .collect();
        sheets.insert(sheet, rows);
    }
    sheets
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column {name} in {header:?}"))
}

/// `99.6412037037037%` (a value at full precision) → 99.6412037037037.
fn percent(cell: &str) -> f64 {
    cell.strip_suffix('%')
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{cell:?} is not a percentage"))
}

/// `[h]:mm:ss` of whole seconds.
fn hms(s: i64) -> String {
    format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

#[test]
fn the_workbook_opens_in_libreoffice_with_the_json_figures() {
    let f = fixture();
    let xlsx = f.dir.join("sla-2026-11-province-carrier.xlsx");
    let (_, took) = report(
        f,
        &[
            "--by",
            "province,carrier",
            "--format",
            "xlsx",
            "--out",
            xlsx.to_str().expect("utf-8"),
        ],
    );
    let size = std::fs::metadata(&xlsx).expect("xlsx").len();
    println!(
        "report sla --format xlsx: {size} bytes in {took:?} ({})",
        xlsx.display()
    );
    let (json, _) = report(f, &["--by", "province,carrier", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json).expect("json");
    if !soffice() {
        return;
    }
    let values = sheets(&xlsx, false);
    let shown = sheets(&xlsx, true);
    let names: Vec<&String> = values.keys().collect();
    assert_eq!(
        names,
        ["Theo tỉnh, nhà mạng", "Toàn quốc", "Điểm cầu kém nhất"],
        "one sheet each"
    );

    // Groups: one row per JSON group, same order, same figures.
    let rows = &values["Theo tỉnh, nhà mạng"];
    let header = &rows[0];
    assert_eq!(
        header[..6],
        [
            "Nhóm",
            "Tỉnh/thành phố",
            "Nhà mạng",
            "Điểm cầu",
            "Không có dữ liệu",
            "Tỷ lệ khả dụng"
        ]
    );
    let groups = json["groups"].as_array().expect("groups");
    assert_eq!(rows.len() - 1, groups.len());
    assert_eq!(groups.len(), 6, "3 provinces × 2 carriers");
    let shown_rows = &shown["Theo tỉnh, nhà mạng"];
    for ((row, text), g) in rows[1..].iter().zip(&shown_rows[1..]).zip(groups) {
        let name = g["name"].as_str().expect("name");
        let get = |c: &str| row[col(header, c)].clone();
        let what = format!("group {name}");
        assert_eq!(get("Nhóm"), name, "{what}");
        assert_eq!(
            get("Tỉnh/thành phố"),
            g["labels"]["province"].as_str().expect("province")
        );
        assert_eq!(get("Nhà mạng"), g["labels"]["carrier"].as_str().expect("carrier"));
        assert_eq!(get("Điểm cầu"), g["endpoints"].to_string(), "{what}");
        let pct = g["availability_pct"].as_f64().expect("availability");
        let cell = percent(&get("Tỷ lệ khả dụng"));
        assert!((cell - pct).abs() < 1e-9, "{what}: {cell} vs {pct} %");
        let shown_pct = &text[col(header, "Tỷ lệ khả dụng")];
        assert_eq!(*shown_pct, format!("{pct:.3}%"), "{what}: three decimals");
        for (column, key) in [
            ("Thời gian tính SLA", "eligible_s"),
            ("Gián đoạn", "downtime_s"),
            ("Bảo trì", "maintenance_s"),
            ("Không giám sát", "unknown_s"),
        ] {
            let want = g[key].as_i64().expect(key);
            assert_eq!(text[col(header, column)], hms(want), "{what} {column} as [h]:mm:ss");
        }
        assert_eq!(get("Số lần"), g["outages"].to_string(), "{what}");
        let verdict = match g["breach"].as_bool() {
            Some(true) => "Vi phạm",
            Some(false) => "Đạt",
            None => "",
        };
        assert_eq!(get("Đánh giá"), verdict, "{what}");
    }
    let breaches: Vec<&str> = groups
        .iter()
        .filter(|g| g["breach"] == true)
        .map(|g| g["name"].as_str().expect("name"))
        .collect();
    assert_eq!(breaches, ["Tỉnh Cao Bằng / Viettel"]);

    // National total.
    let national = &values["Toàn quốc"];
    let t = &json["total"];
    assert_eq!(national[1][0], "Toàn quốc");
    let cell = percent(&national[1][col(&national[0], "Tỷ lệ khả dụng")]);
    let pct = t["availability_pct"].as_f64().expect("total");
    assert!((cell - pct).abs() < 1e-9, "national {cell} vs {pct}");
    assert!(
        national
            .iter()
            .any(|r| r.len() > 1 && r[0] == "Kỳ báo cáo" && r[1].contains("2026-11-01 00:00")),
        "the period is written under the total: {national:?}"
    );

    // Worst endpoints, worst first; the commune named like a formula stays text.
    let worst = &values["Điểm cầu kém nhất"];
    let jw = json["worst"].as_array().expect("worst");
    assert_eq!(worst.len() - 1, jw.len());
    let h = &worst[0];
    for (row, w) in worst[1..].iter().zip(jw) {
        assert_eq!(row[col(h, "Mã")], w["id"].as_str().expect("id"));
        assert_eq!(row[col(h, "Xã/phường")], w["commune"].as_str().expect("commune"));
        let cell = percent(&row[col(h, "Tỷ lệ khả dụng")]);
        let pct = w["availability_pct"].as_f64().expect("pct");
        assert!((cell - pct).abs() < 1e-9, "{cell} vs {pct}");
    }
    assert_eq!(worst[1][col(h, "Xã/phường")], "Xã Tân Phú 3", "DC-03 is the worst");
    assert!(
        worst.iter().any(|r| r[col(h, "Xã/phường")] == FORMULA_COMMUNE),
        "{FORMULA_COMMUNE} is kept as text, not computed"
    );
}

#[test]
fn csv_has_a_bom_and_neutralised_formulas() {
    let f = fixture();
    let (csv, _) = report(f, &["--by", "province,carrier", "--format", "worst-csv"]);
    let body = csv.strip_prefix(b"\xEF\xBB\xBF".as_slice()).expect("UTF-8 BOM first");
    let text = std::str::from_utf8(body).expect("UTF-8");
    assert!(text.starts_with("rank,id,"), "{text}");
    assert!(
        text.contains(&format!(",'{FORMULA_COMMUNE},")),
        "formula neutralised: {text}"
    );
    assert!(text.contains("Tỉnh Cao Bằng") && text.contains("Thành phố Hà Nội"));
    if !soffice() {
        return;
    }
    // LibreOffice takes the BOM as the encoding mark, and the apostrophe keeps the cell text.
    let path = f.dir.join("worst.csv");
    std::fs::write(&path, &csv).expect("write");
    let out = f.dir.join("worst-converted");
    // Read as UTF-8 (76), as Excel does when it sees the BOM.
    convert(&path, "xlsx", &out, Some("CSV:44,34,76,1"));
    let back = sheets(&out.join("worst.xlsx"), true);
    let rows = back.values().next().expect("one sheet");
    assert_eq!(rows[0][0], "rank", "no stray BOM character in the first cell");
    let cell = rows
        .iter()
        .map(|r| &r[4])
        .find(|c| c.contains("Xã Thử"))
        .expect("the commune");
    assert!(cell.ends_with(FORMULA_COMMUNE), "kept as text, not computed: {cell:?}");
    assert!(rows.iter().any(|r| r[4] == "Xã Tân Phú 3"), "diacritics intact");
}

/// One GET, raw: status line and headers as text, body as bytes.
fn get(port: u16, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    (
        String::from_utf8_lossy(&raw[..split]).into_owned(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn reports_sla_serves_the_workbook_as_a_download() {
    let f = fixture();
    let inventory = std::fs::read_to_string(f.dir.join("inventory.csv")).expect("inventory");
    // A daemon on the same ledger (a copy: the fixture stays as it is).
    let ledger = tempfile::tempdir().expect("ledger dir");
    for suffix in ["", "-wal", "-shm"] {
        let from = f.dir.join(format!("ledger/diemcau.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, ledger.path().join(format!("diemcau.db{suffix}"))).expect("copy");
        }
    }
    let config = format!(
        "[web]\nlisten_address = \"127.0.0.1:{{port}}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [store]\npath = \"{}\"\n[report]\ntargets = {{ VNPT = 99.5, Viettel = 99.0 }}\n",
        ledger.path().join("diemcau.db").display()
    );
    let d = common::Daemon::start(&config, &inventory);
    let t = Instant::now();
    let (head, body) = get(d.port, "/reports/sla?period=2026-11&by=province,carrier&format=xlsx");
    println!(
        "GET /reports/sla format=xlsx: {} bytes in {:?}",
        body.len(),
        t.elapsed()
    );
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        lower.contains("content-type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "{head}"
    );
    assert!(
        lower.contains("content-disposition: attachment; filename=\"sla-2026-11-province-carrier.xlsx\""),
        "{head}"
    );
    assert_eq!(&body[..4], b"PK\x03\x04", "a zip (xlsx) file");
    let (head, body) = get(d.port, "/reports/sla?period=2026-11&by=district&format=csv");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-disposition: attachment; filename=\"sla-2026-11-district.csv\""),
        "{head}"
    );
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "CSV over HTTP has the BOM too");
    let (head, _) = get(d.port, "/reports/sla?period=2026-11&format=html");
    assert!(
        !head.to_ascii_lowercase().contains("content-disposition"),
        "a page opens in place"
    );
}
