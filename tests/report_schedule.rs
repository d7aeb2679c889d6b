//! Scheduled reports (`[[report.schedule]]`) against a local SMTP sink, with an injected clock
//! crossing month boundaries: the previous month's files appear on the 1st with the right
//! content, one mail per schedule carries them, and restarts neither repeat nor skip a month.

mod common;
#[path = "common/sla_ledger.rs"]
mod sla_ledger;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use base64::Engine as _;
use diemcau::app::report_schedule::{ScheduleSettings, Scheduler, TickOutcome};
use diemcau::config::Config;
use diemcau::store::{ManualClock, Store};
use diemcau::web::reports::ReportContext;
use sla_ledger::{local_ms, store_config, write_config};

/// One mail the sink accepted.
#[derive(Clone, Debug)]
struct Mail {
    rcpt: Vec<String>,
    data: String,
}

/// A minimal SMTP server on 127.0.0.1: accepts every mail, except that it answers DATA with a
/// temporary failure while `refuse` is above zero.
struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    refuse: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(AtomicUsize::new(0));
        let (m, r) = (mails.clone(), refuse.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = session(conn, &m, &r);
            }
        });
        Sink { port, mails, refuse }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mails").clone()
    }
}

fn session(conn: std::net::TcpStream, mails: &Mutex<Vec<Mail>>, refuse: &AtomicUsize) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?,
            "MAIL" => {
                rcpt.clear();
                out.write_all(b"250 OK\r\n")?
            }
            "RCPT" => {
                rcpt.push(line.trim().to_string());
                out.write_all(b"250 OK\r\n")?
            }
            "DATA" => {
                if refuse.load(Ordering::SeqCst) > 0 {
                    refuse.fetch_sub(1, Ordering::SeqCst);
                    out.write_all(b"451 4.3.0 try again later\r\n")?;
                    continue;
                }
                out.write_all(b"354 go on\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                mails.lock().expect("mails").push(Mail {
                    rcpt: rcpt.clone(),
                    data,
                });
                out.write_all(b"250 queued\r\n")?
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 OK\r\n")?,
        }
    }
}

/// The attachments of a MIME message: file name → decoded bytes.
fn attachments(mail: &Mail) -> BTreeMap<String, Vec<u8>> {
    let boundary = mail
        .data
        .split("boundary=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a multipart message");
    let mut files = BTreeMap::new();
    for part in mail.data.split(&format!("--{boundary}")) {
        let Some((head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let unfolded = head.replace("\r\n ", " ");
        // `filename="…"`, or split in RFC 2231 continuations `filename*0="…"; filename*1="…"`.
        let name: String = unfolded
            .split(';')
            .map(str::trim)
            .filter(|p| p.starts_with("filename=") || p.starts_with("filename*"))
            .filter_map(|p| p.split('"').nth(1))
            .collect();
        if name.is_empty() {
            continue;
        }
        assert!(
            unfolded
                .to_ascii_lowercase()
                .contains("content-transfer-encoding: base64"),
            "{head}"
        );
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        files.insert(name, bytes);
    }
    files
}

struct Daemon {
    store: Store,
    scheduler: Scheduler,
    settings: Arc<ArcSwap<ScheduleSettings>>,
}

/// What `app::daemon` does: the config's report context and schedules around an open ledger.
fn scheduler(config: &Path, store: Store, clock: &Arc<ManualClock>) -> Daemon {
    let config = Config::load(config).unwrap_or_else(|e| panic!("{e}"));
    let reports = Arc::new(ArcSwap::from_pointee(ReportContext::of(&config, &store)));
    let settings = Arc::new(ArcSwap::from_pointee(ScheduleSettings::of(&config)));
    let scheduler = Scheduler::new(reports, settings.clone(), clock.clone());
    Daemon {
        store,
        scheduler,
        settings,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn summary(outcomes: &[TickOutcome]) -> Vec<(String, String, usize, bool, bool, bool)> {
    outcomes
        .iter()
        .map(|o| {
            (
                o.schedule.clone(),
                o.month.clone(),
                o.written.len(),
                o.adopted,
                o.mailed,
                o.error.is_some(),
            )
        })
        .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_reports_are_written_and_mailed_once_across_restarts() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_schedule");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sink = Sink::start();
    let config = write_config(
        &dir,
        &format!(
            "\n[[report.schedule]]\nname = \"monthly\"\nformats = [\"csv\", \"xlsx\", \"html\"]\n\
             by = [\"province,carrier\", \"district\"]\ndirectory = \"reports/\"\n\
             mail_to = [\"noc@example.vn\", \"Phòng Kỹ thuật <kt@example.vn>\"]\n\n\
             [[report.schedule]]\nname = \"carriers\"\nformats = [\"worst-csv\"]\nby = [\"carrier\"]\n\
             directory = \"reports/carriers\"\n\n\
             [report.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             from = \"diemcau <diemcau@example.vn>\"\n",
            sink.port
        ),
    );
    let reports = dir.join("reports");
    let (store, clock) = sla_ledger::november(&dir, "2026-11-30T23:59");
    let d = scheduler(&config, store, &clock);

    // Before the 1st: October ended before the ledger began, so there is nothing to report.
    assert_eq!(summary(&d.scheduler.tick().await), []);
    assert!(files_in(&reports).is_empty() && sink.mails().is_empty());

    // 2026-12-01 00:00:30 in Hà Nội (17:00:30 UTC the day before): November's reports.
    clock.set(local_ms("2026-12-01T00:00") + 30_000);
    let t = Instant::now();
    let outcomes = d.scheduler.tick().await;
    println!("tick on the 1st (7 files, 1 mail): {:?}", t.elapsed());
    assert_eq!(
        summary(&outcomes),
        [
            (s("monthly"), s("2026-11"), 6, false, true, false),
            (s("carriers"), s("2026-11"), 1, false, false, false)
        ]
    );
    let monthly = [
        "sla-2026-11-district.csv",
        "sla-2026-11-district.html",
        "sla-2026-11-district.xlsx",
        "sla-2026-11-province-carrier.csv",
        "sla-2026-11-province-carrier.html",
        "sla-2026-11-province-carrier.xlsx",
    ];
    let mut want: Vec<String> = monthly.iter().map(|f| f.to_string()).collect();
    want.push("carriers".into());
    want.sort();
    assert_eq!(files_in(&reports), want, "no temporary file left behind");
    assert_eq!(files_in(&reports.join("carriers")), ["sla-2026-11-carrier-worst.csv"]);

    // Content: the same CSV as `diemcau report sla` for November, next to the running daemon.
    let csv = std::fs::read(reports.join("sla-2026-11-province-carrier.csv")).expect("csv");
    let cli = Command::new(env!("CARGO_BIN_EXE_diemcau"))
        .args(["report", "sla", "--config"])
        .arg(&config)
        .args(["--period", "2026-11", "--by", "province,carrier", "--format", "csv"])
        .output()
        .expect("report sla");
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(csv, cli.stdout, "the scheduled CSV is the CLI's");
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    assert!(text.starts_with('\u{feff}'), "BOM");
    assert_eq!(text.lines().count(), 7, "header + 3 provinces × 2 carriers");
    assert!(
        text.contains("Tỉnh Cao Bằng / Viettel,Tỉnh Cao Bằng,,Viettel,4,0,98.9468,99,yes,10368000,10258800,109200,2"),
        "{text}"
    );
    let district = std::fs::read_to_string(reports.join("sla-2026-11-district.csv")).expect("csv");
    assert!(district.contains("Tỉnh Đắk Lắk / Huyện Bảo Lâm 1"), "{district}");
    let html = std::fs::read_to_string(reports.join("sla-2026-11-district.html")).expect("html");
    assert!(html.contains("Tháng 11/2026") && html.contains("Tỉnh Cao Bằng"));
    let xlsx = std::fs::read(reports.join("sla-2026-11-province-carrier.xlsx")).expect("xlsx");
    assert_eq!(&xlsx[..4], b"PK\x03\x04");
    println!("xlsx: {} bytes", xlsx.len());

    // One mail, to both addresses, carrying exactly the six files.
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "one mail for the one schedule with mail_to");
    assert_eq!(mails[0].rcpt.len(), 2, "{:?}", mails[0].rcpt);
    assert!(mails[0].data.contains("Subject: "), "a subject");
    std::fs::write(dir.join("mail-1.eml"), &mails[0].data).expect("keep the mail");
    let attached = attachments(&mails[0]);
    assert_eq!(attached.keys().collect::<Vec<_>>(), monthly.iter().collect::<Vec<_>>());
    for (name, bytes) in &attached {
        assert_eq!(
            *bytes,
            std::fs::read(reports.join(name)).expect("file"),
            "{name} as attached"
        );
    }

    // Later ticks the same day do nothing.
    clock.set(local_ms("2026-12-01T00:01"));
    assert_eq!(summary(&d.scheduler.tick().await), []);

    // Restart: a new daemon on the same ledger does not repeat November.
    drop(d.scheduler);
    d.store.shutdown().expect("stop");
    clock.set(local_ms("2026-12-01T00:05"));
    let store = Store::open(store_config(&dir), clock.clone()).expect("reopen");
    let d = scheduler(&config, store, &clock);
    assert_eq!(summary(&d.scheduler.tick().await), []);
    assert_eq!(sink.mails().len(), 1, "November is not mailed again");

    // A renamed schedule finds November's files in place: adopted, not mailed.
    let mut renamed = (**d.settings.load()).clone();
    renamed.schedules[0].name = "monthly-renamed".into();
    d.settings.store(Arc::new(renamed));
    assert_eq!(
        summary(&d.scheduler.tick().await),
        [(s("monthly-renamed"), s("2026-11"), 0, true, false, false)]
    );
    assert_eq!(sink.mails().len(), 1);

    // Stopped from 1 December until 3 January: December is caught up on start (not November,
    // and not twice). The mail server refuses the first try; it is retried, and sent once.
    drop(d.scheduler);
    d.store.shutdown().expect("stop");
    clock.set(local_ms("2027-01-03T09:00"));
    sink.refuse.store(1, Ordering::SeqCst);
    let store = Store::open(store_config(&dir), clock.clone()).expect("reopen");
    let d = scheduler(&config, store, &clock);
    assert_eq!(
        summary(&d.scheduler.tick().await),
        [
            (s("monthly"), s("2026-12"), 6, false, false, true),
            (s("carriers"), s("2026-12"), 1, false, false, false)
        ]
    );
    assert_eq!(sink.mails().len(), 1, "the refused mail is not counted");
    assert_eq!(summary(&d.scheduler.tick().await), [], "no retry before 10 minutes");
    clock.set(local_ms("2027-01-03T09:11"));
    assert_eq!(
        summary(&d.scheduler.tick().await),
        [(s("monthly"), s("2026-12"), 0, false, true, false)]
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    let december: Vec<String> = attachments(&mails[1]).into_keys().collect();
    assert_eq!(december.len(), 6);
    assert!(december.iter().all(|f| f.starts_with("sla-2026-12-")), "{december:?}");
    assert_eq!(files_in(&reports.join("carriers")).len(), 2);

    // A run that died after handing a mail to the server (recorded as started, not sent) never
    // sends it again: the mail may have gone out.
    let runs = d.store.report_runs().expect("ledger");
    let names = vec!["sla-2027-01-district.csv".to_string()];
    runs.mark_written("monthly", "2027-01", &names, false, local_ms("2027-02-01T00:00"))
        .expect("written");
    runs.mark_mail_started("monthly", "2027-01", local_ms("2027-02-01T00:00"))
        .expect("started");
    clock.set(local_ms("2027-02-01T00:02"));
    let outcomes = d.scheduler.tick().await;
    assert_eq!(
        summary(&outcomes),
        [(s("carriers"), s("2027-01"), 1, false, false, false)]
    );
    assert_eq!(sink.mails().len(), 2, "no second mail for January");

    let all = runs.all().expect("all");
    let mailed: Vec<(&str, &str)> = all
        .iter()
        .filter(|(_, _, r)| r.mailed_ms.is_some())
        .map(|(s, m, _)| (s.as_str(), m.as_str()))
        .collect();
    assert_eq!(mailed, [("monthly", "2026-11"), ("monthly", "2026-12")]);
    d.store.shutdown().expect("stop");
}

/// The real daemon starts the scheduler: on start it catches up the month before today (real
/// clock, Asia/Ho_Chi_Minh) on a ledger that began in November 2026. (No mail here: the test
/// daemon runs in a private network namespace, where the sink's 127.0.0.1 is not reachable.)
#[test]
fn the_daemon_catches_up_last_month_on_start() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "");
    let (store, _clock) = sla_ledger::november(dir.path(), "2026-12-01T00:00");
    store.shutdown().expect("stop");
    let config = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let month = diemcau::app::report_schedule::previous_month(
        diemcau::store::unix_ms(std::time::SystemTime::now()),
        "Asia/Ho_Chi_Minh",
    )
    .expect("month");
    let reports = dir.path().join("reports");
    let inventory = std::fs::read_to_string(dir.path().join("inventory.csv")).expect("inventory");
    let daemon_config = format!(
        "[web]\nlisten_address = \"127.0.0.1:{{port}}\"\n[inventory]\nfiles = [\"inventory.csv\"]\n\
         [store]\npath = \"{}\"\n\
         [[report.schedule]]\nformats = [\"csv\"]\nby = [\"carrier\"]\ndirectory = \"{}\"\n",
        config.store.path.display(),
        reports.display(),
    );
    let mut d = common::Daemon::start(&daemon_config, &inventory);
    let file = reports.join(format!("sla-{month}-carrier.csv"));
    let took = d.wait_until(std::time::Duration::from_secs(30), "the report", |_| file.is_file());
    println!("daemon: {} after {took:?}", file.display());
    let text = std::fs::read_to_string(&file).expect("csv");
    assert!(
        text.starts_with('\u{feff}') && text.contains("VNPT") && text.contains("Viettel"),
        "{text}"
    );
    assert!(d.log().contains("scheduled report written"), "{}", d.log());
}
