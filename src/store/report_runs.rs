//! The ledger of scheduled reports: which month each `[[report.schedule]]` has written, and
//! whether its mail went out (table `report_runs`, migration 2). It is what keeps a restart from
//! skipping or repeating a month.
//!
//! A mail is marked *started* before it is handed to the SMTP server and *sent* after the server
//! accepted it. A run that died in between leaves "started" without "sent" or an error: the mail
//! may have gone out, so it is never sent again (at most once). An SMTP error is recorded and the
//! mail is retried.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::schema::connect;

/// What the ledger knows of one schedule's month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthRecord {
    pub written_ms: i64,
    /// File names, in the schedule's directory.
    pub files: Vec<String>,
    /// The files were found already written (by an earlier ledger, or by hand): not mailed.
    pub adopted: bool,
    pub mail_started_ms: Option<i64>,
    pub mailed_ms: Option<i64>,
    pub mail_error: Option<String>,
}

/// A read-write connection to `report_runs`, beside the writer thread's (WAL lets both write).
pub struct ReportRuns {
    conn: Connection,
}

impl ReportRuns {
    /// Opens the table in a ledger the daemon has already opened (and so migrated).
    pub fn open(path: &Path) -> Result<ReportRuns, StoreError> {
        Ok(ReportRuns { conn: connect(path)? })
    }

    pub fn get(&self, schedule: &str, month: &str) -> Result<Option<MonthRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT written_ms, files, adopted, mail_started_ms, mailed_ms, mail_error \
                 FROM report_runs WHERE schedule = ?1 AND month = ?2",
                params![schedule, month],
                |r| {
                    let files: String = r.get(1)?;
                    Ok(MonthRecord {
                        written_ms: r.get(0)?,
                        files: files.lines().map(String::from).collect(),
                        adopted: r.get::<_, i64>(2)? != 0,
                        mail_started_ms: r.get(3)?,
                        mailed_ms: r.get(4)?,
                        mail_error: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every record, by schedule and month: `(schedule, month, record)`.
    pub fn all(&self) -> Result<Vec<(String, String, MonthRecord)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT schedule, month FROM report_runs ORDER BY schedule, month")?;
        let keys: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (s, m) in keys {
            if let Some(rec) = self.get(&s, &m)? {
                out.push((s, m, rec));
            }
        }
        Ok(out)
    }

    /// The month's files are in place (`adopted`: they were there already).
    pub fn mark_written(
        &self,
        schedule: &str,
        month: &str,
        files: &[String],
        adopted: bool,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO report_runs (schedule, month, written_ms, files, adopted) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (schedule, month) DO UPDATE SET written_ms = ?3, files = ?4, adopted = ?5",
            params![schedule, month, at_ms, files.join("\n"), adopted],
        )?;
        Ok(())
    }

    /// Just before the mail is handed to the server.
    pub fn mark_mail_started(&self, schedule: &str, month: &str, at_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE report_runs SET mail_started_ms = ?3, mail_error = NULL WHERE schedule = ?1 AND month = ?2",
            params![schedule, month, at_ms],
        )?;
        Ok(())
    }

    /// The server accepted the mail.
    pub fn mark_mailed(&self, schedule: &str, month: &str, at_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE report_runs SET mailed_ms = ?3, mail_error = NULL WHERE schedule = ?1 AND month = ?2",
            params![schedule, month, at_ms],
        )?;
        Ok(())
    }

    /// The server refused the mail or could not be reached: it will be tried again.
    pub fn mark_mail_failed(&self, schedule: &str, month: &str, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE report_runs SET mail_error = ?3 WHERE schedule = ?1 AND month = ?2",
            params![schedule, month, error],
        )?;
        Ok(())
    }
}
