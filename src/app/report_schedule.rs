//! Scheduled SLA reports (`[[report.schedule]]`): on the 1st of each month in `[report]
//! time_zone`, the previous month's report in every format × grouping of each schedule, written
//! to its directory (temporary file, then rename) and mailed once when `mail_to` is set.
//!
//! The ledger table `report_runs` (see `store::report_runs`) records each schedule's months, so:
//! - a restart never repeats a month: a month recorded as written is not written again, and a
//!   mail recorded as sent, or as handed to the server by a run that then died, is not re-sent;
//! - a restart never skips the last month: the scheduler always looks at the month before "now",
//!   so after a stop over the 1st it catches that month up (only the most recent one). If that
//!   month's files are all there already (an earlier ledger wrote them), they are adopted as
//!   they are and not mailed.
//!
//! The clock is injected, so tests move "now" across a month boundary without waiting for one.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::report_mail::{self, MailFile};
use crate::config::Config;
use crate::config::schedule::{ReportSchedule, SmtpSettings};
use crate::domain::report_format::file_name;
use crate::domain::sla::{self, GroupKey};
use crate::store::report_runs::{MonthRecord, ReportRuns};
use crate::store::{Clock, StoreError};
use crate::web::reports::{ReportContext, ReportRequest, render_at};

/// After a failed write or mail, the next try waits this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// The schedules and their mail server (swapped on reload).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduleSettings {
    pub schedules: Vec<ReportSchedule>,
    pub smtp: Option<SmtpSettings>,
}

impl ScheduleSettings {
    pub fn of(config: &Config) -> ScheduleSettings {
        ScheduleSettings {
            schedules: config.report.schedules.clone(),
            smtp: config.report.smtp.clone(),
        }
    }
}

/// What one schedule did in one [`Scheduler::tick`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickOutcome {
    pub schedule: String,
    /// `2026-11`.
    pub month: String,
    /// Files written in this tick (names in the schedule's directory).
    pub written: Vec<String>,
    /// The month's files were found in place without a ledger record: taken as done, not mailed.
    pub adopted: bool,
    pub mailed: bool,
    pub error: Option<String>,
}

/// The scheduler; [`Scheduler::run`] ticks it until stopped.
pub struct Scheduler {
    reports: Arc<ArcSwap<ReportContext>>,
    settings: Arc<ArcSwap<ScheduleSettings>>,
    clock: Arc<dyn Clock>,
    /// (schedule, month) known complete: the ledger is not asked again.
    done: Mutex<HashSet<(String, String)>>,
    /// Schedule → unix ms before which it is not tried again after a failure.
    retry_at: Mutex<HashMap<String, i64>>,
}

/// `YYYY-MM` of the month before the one `now_ms` falls in, in `time_zone`.
pub fn previous_month(now_ms: i64, time_zone: &str) -> Result<String, String> {
    let zone = sla::time_zone(time_zone).map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::from_millisecond(now_ms)
        .map_err(|e| e.to_string())?
        .to_zoned(zone);
    let (y, m) = match now.month() {
        1 => (now.year() - 1, 12),
        m => (now.year(), m - 1),
    };
    Ok(format!("{y:04}-{m:02}"))
}

fn by_text(by: &[GroupKey]) -> String {
    if by.is_empty() {
        return "national".into();
    }
    by.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

/// The files of one schedule's month: (file name, by, format), groupings first.
fn plan(s: &ReportSchedule, month: &str) -> Vec<(String, String, crate::report::Format)> {
    let mut files = Vec::new();
    for by in &s.by {
        for f in &s.formats {
            files.push((file_name(month, by, *f), by_text(by), *f));
        }
    }
    files
}

/// Writes `bytes` to `dir/name` through a temporary file in `dir` and a rename, so a reader never
/// sees half a report and a crash leaves either the old file or the new one.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn month_title(month: &str) -> String {
    match month.split_once('-') {
        Some((y, m)) => format!("tháng {}/{y}", m.trim_start_matches('0')),
        None => month.to_string(),
    }
}

impl Scheduler {
    pub fn new(
        reports: Arc<ArcSwap<ReportContext>>,
        settings: Arc<ArcSwap<ScheduleSettings>>,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        Scheduler {
            reports,
            settings,
            clock,
            done: Mutex::new(HashSet::new()),
            retry_at: Mutex::new(HashMap::new()),
        }
    }

    /// Ticks every `poll` until `stop` turns true (a tick under way finishes first).
    pub async fn run(self, poll: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Brings every schedule up to date for the month before now: writes what is missing,
    /// mails what is unsent. Returns what each schedule with something to do did.
    pub async fn tick(&self) -> Vec<TickOutcome> {
        let settings = self.settings.load_full();
        let ctx = self.reports.load_full();
        let now_ms = self.clock.now_ms();
        let month = match previous_month(now_ms, &ctx.time_zone) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "scheduled reports: cannot tell the month");
                return Vec::new();
            }
        };
        let mut outcomes = Vec::new();
        for s in &settings.schedules {
            let key = (s.name.clone(), month.clone());
            if lock(&self.done).contains(&key) {
                continue;
            }
            if lock(&self.retry_at).get(&s.name).is_some_and(|t| now_ms < *t) {
                continue;
            }
            let mut outcome = TickOutcome {
                schedule: s.name.clone(),
                month: month.clone(),
                ..TickOutcome::default()
            };
            let result = self.one(s, &settings, &ctx, &month, now_ms, &mut outcome).await;
            match result {
                Ok(true) => {
                    lock(&self.done).insert(key);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(schedule = %s.name, month = %month, error = %e, "scheduled report failed; it is tried again in {} min", RETRY_AFTER.as_secs() / 60);
                    lock(&self.retry_at).insert(s.name.clone(), now_ms + RETRY_AFTER.as_millis() as i64);
                    outcome.error = Some(e);
                }
            }
            if outcome.error.is_some() || outcome.adopted || outcome.mailed || !outcome.written.is_empty() {
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    /// One schedule's month; `Ok(true)` when nothing is left to do for it.
    async fn one(
        &self,
        s: &ReportSchedule,
        settings: &ScheduleSettings,
        ctx: &Arc<ReportContext>,
        month: &str,
        now_ms: i64,
        outcome: &mut TickOutcome,
    ) -> Result<bool, String> {
        let written = {
            let (s, ctx, month) = (s.clone(), ctx.clone(), month.to_string());
            tokio::task::spawn_blocking(move || write_month(&s, &ctx, &month, now_ms))
                .await
                .map_err(|e| e.to_string())??
        };
        let Some((record, written, adopted)) = written else {
            return Ok(true);
        };
        outcome.written = written;
        outcome.adopted = adopted;
        let smtp = match &settings.smtp {
            Some(smtp) if !s.mail_to.is_empty() && !record.adopted => smtp,
            _ => return Ok(true),
        };
        if record.mailed_ms.is_some() {
            return Ok(true);
        }
        if record.mail_started_ms.is_some() && record.mail_error.is_none() {
            tracing::warn!(
                schedule = %s.name,
                month,
                "the report mail was handed to the server by a run that stopped before the server \
                 answered; it may have gone out, so it is not sent again"
            );
            return Ok(true);
        }
        let planned = plan(s, month);
        let files = record
            .files
            .iter()
            .map(|name| {
                let path = s.directory.join(name);
                let format = planned.iter().find(|(n, ..)| n == name).map(|(_, _, f)| *f);
                std::fs::read(&path)
                    .map(|bytes| MailFile {
                        name: name.clone(),
                        content_type: format.map_or("application/octet-stream", |f| f.content_type()),
                        bytes,
                    })
                    .map_err(|e| format!("reading {} to mail it: {e}", path.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let subject = format!("Báo cáo SLA điểm cầu {}", month_title(month));
        let body = format!(
            "Báo cáo SLA điểm cầu {} ({}), lập tự động bởi diemcau.\n\
             Tệp đính kèm:\n{}\n\n\
             Tỷ lệ khả dụng = thời gian hoạt động / thời gian tính SLA; bảo trì theo kế hoạch và \
             thời gian hệ thống giám sát ngừng được loại trừ.\n",
            month_title(month),
            ctx.time_zone,
            record
                .files
                .iter()
                .map(|f| format!("- {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let message = report_mail::message(&smtp.from, &s.mail_to, &subject, &body, files)?;
        let (name, m) = (s.name.clone(), month.to_string());
        with_runs(ctx, move |r| r.mark_mail_started(&name, &m, now_ms)).await?;
        match report_mail::send(smtp, message).await {
            Ok(()) => {
                let (name, m, at) = (s.name.clone(), month.to_string(), self.clock.now_ms());
                with_runs(ctx, move |r| r.mark_mailed(&name, &m, at)).await?;
                tracing::info!(schedule = %s.name, month, to = ?s.mail_to, files = record.files.len(), "report mailed");
                outcome.mailed = true;
                Ok(true)
            }
            Err(e) => {
                let (name, m, err) = (s.name.clone(), month.to_string(), e.clone());
                with_runs(ctx, move |r| r.mark_mail_failed(&name, &m, &err)).await?;
                Err(e)
            }
        }
    }
}

/// Runs `f` on the ledger of scheduled reports, off the async workers.
async fn with_runs<F>(ctx: &ReportContext, f: F) -> Result<(), String>
where
    F: FnOnce(&ReportRuns) -> Result<(), StoreError> + Send + 'static,
{
    let store = ctx.store.clone().ok_or("no ledger")?;
    tokio::task::spawn_blocking(move || {
        let runs = store.report_runs().map_err(|e| e.to_string())?;
        f(&runs).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The month's record, the file names written now, and whether files found in place were adopted
/// now; `None` when the month ended before the ledger's first run.
type Written = Option<(MonthRecord, Vec<String>, bool)>;

/// Writes the month's files unless the ledger has them (or they are all on disk already).
fn write_month(s: &ReportSchedule, ctx: &ReportContext, month: &str, now_ms: i64) -> Result<Written, String> {
    let store = ctx.store.as_ref().ok_or("no ledger")?;
    let runs = store.report_runs().map_err(|e| e.to_string())?;
    if let Some(record) = runs.get(&s.name, month).map_err(|e| e.to_string())? {
        return Ok(Some((record, Vec::new(), false)));
    }
    // A month that ended before the ledger's first run has nothing to report (a new install).
    let period = sla::parse_period(month, &ctx.time_zone).map_err(|e| e.to_string())?;
    let reader = store.reader().map_err(|e| e.to_string())?;
    let first_run = reader.runs().map_err(|e| e.to_string())?.first().map(|r| r.started_ms);
    if first_run.is_none_or(|t| t >= period.end * 1000) {
        return Ok(None);
    }
    let files = plan(s, month);
    let names: Vec<String> = files.iter().map(|(n, ..)| n.clone()).collect();
    let adopted = names.iter().all(|n| s.directory.join(n).is_file());
    if adopted {
        tracing::info!(
            schedule = %s.name,
            month,
            directory = %s.directory.display(),
            "the month's report files are already there: taken as done, not mailed"
        );
        runs.mark_written(&s.name, month, &names, true, now_ms)
            .map_err(|e| e.to_string())?;
    } else {
        std::fs::create_dir_all(&s.directory).map_err(|e| format!("creating {}: {e}", s.directory.display()))?;
        // Commit what is queued so the report includes the last transitions.
        store.flush().map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        for (name, by, format) in &files {
            let request = ReportRequest {
                period: month.to_string(),
                by: by.clone(),
                format: *format,
            };
            let rendered = render_at(&reader, ctx, &request, now_ms)?;
            write_atomically(&s.directory, name, &rendered.body)
                .map_err(|e| format!("writing {}: {e}", s.directory.join(name).display()))?;
        }
        runs.mark_written(&s.name, month, &names, false, now_ms)
            .map_err(|e| e.to_string())?;
        tracing::info!(
            schedule = %s.name,
            month,
            directory = %s.directory.display(),
            files = ?names,
            took = ?started.elapsed(),
            "scheduled report written"
        );
    }
    let record = runs
        .get(&s.name, month)
        .map_err(|e| e.to_string())?
        .ok_or("the record just written is missing")?;
    let written = if adopted { Vec::new() } else { names };
    Ok(Some((record, written, adopted)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_month_is_counted_in_the_report_time_zone() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time").as_millisecond();
        let tz = "Asia/Ho_Chi_Minh";
        // 2026-12-01 00:30 in Hà Nội is still 30 November in UTC.
        assert_eq!(previous_month(at("2026-11-30T17:30:00Z"), tz).as_deref(), Ok("2026-11"));
        assert_eq!(previous_month(at("2026-11-30T16:59:59Z"), tz).as_deref(), Ok("2026-10"));
        assert_eq!(
            previous_month(at("2027-01-01T00:00:00+07:00"), tz).as_deref(),
            Ok("2026-12")
        );
        assert_eq!(month_title("2026-03"), "tháng 3/2026");
    }
}
