//! `[[report.schedule]]` and `[report.smtp]`: monthly SLA reports written to a directory on the
//! 1st and optionally mailed. Validated here like the rest of the file, each problem at its
//! `file:line:col`; the scheduler itself is `app::report_schedule`.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::toml_file::{RawReport, RawSchedule, RawSmtp, SpannedList, position, table_position};
use crate::domain::diag::{LoadError, Problem};
use crate::domain::report_format::Format;
use crate::domain::sla::{GroupKey, parse_group_by};

/// One `[[report.schedule]]`: on the 1st of each month, the previous month's report in every
/// format × grouping, written to `directory` and mailed to `mail_to` when it is not empty.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSchedule {
    /// Identifies the schedule in the ledger of months done (`schedule-1`, … by default).
    pub name: String,
    pub formats: Vec<Format>,
    /// Groupings, each one report (`[]` is national).
    pub by: Vec<Vec<GroupKey>>,
    pub directory: PathBuf,
    pub mail_to: Vec<String>,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required), port 587 by default.
    StartTls,
    /// TLS from the first byte ("SMTPS"), port 465 by default.
    Tls,
    /// No encryption, port 25 by default: for a relay on the same host or network only.
    None,
}

/// `[report.smtp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Read when a mail is sent (first line, trimmed), so the password never sits in the config.
    pub password_file: Option<PathBuf>,
    pub from: String,
}

type ReadFile<'a> = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + 'a;

struct Check<'a> {
    file: &'a Path,
    text: &'a str,
    errors: &'a mut LoadError,
}

impl Check<'_> {
    fn at<T>(&mut self, value: &Spanned<T>, field: &str, message: String, fix: &str) {
        let (l, c) = position(self.text, value);
        self.errors
            .push(Problem::at(self.file, l, Some(c), field).says(message).fix(fix));
    }

    /// A problem about a table as a whole (a missing key): at its header.
    fn table(&mut self, place: Option<(usize, usize)>, field: &str, message: &str, fix: &str) {
        let (l, c) = place.unwrap_or((0, 0));
        let column = (l > 0).then_some(c);
        self.errors
            .push(Problem::at(self.file, l, column, field).says(message).fix(fix));
    }

    /// A list that must not be empty; `None` when it is missing or empty.
    fn list<'v>(
        &mut self,
        value: &'v Option<SpannedList>,
        place: Option<(usize, usize)>,
        field: &str,
        fix: &str,
    ) -> Option<&'v [Spanned<String>]> {
        match value {
            None => {
                self.table(place, field, "is missing", fix);
                None
            }
            Some(v) if v.get_ref().is_empty() => {
                self.at(v, field, "is empty".into(), fix);
                None
            }
            Some(v) => Some(v.get_ref()),
        }
    }

    fn mailbox(&mut self, value: &Spanned<String>, field: &str) -> Option<String> {
        match value.get_ref().parse::<lettre::message::Mailbox>() {
            Ok(_) => Some(value.get_ref().clone()),
            Err(e) => {
                self.at(
                    value,
                    field,
                    format!("{:?} is not a mail address: {e}", value.get_ref()),
                    "write an address such as \"noc@example.vn\" or \"NOC <noc@example.vn>\"",
                );
                None
            }
        }
    }
}

/// Validates `[[report.schedule]]` and `[report.smtp]`; paths are relative to `base`.
pub fn validate(
    file: &Path,
    text: &str,
    base: &Path,
    read: &ReadFile<'_>,
    raw: &RawReport,
    errors: &mut LoadError,
) -> (Vec<ReportSchedule>, Option<SmtpSettings>) {
    let mut c = Check { file, text, errors };
    let mut schedules: Vec<ReportSchedule> = Vec::new();
    for (index, s) in raw.schedule.iter().enumerate() {
        let place = table_position(text, &["report", "schedule"], Some(index));
        if let Some(one) = schedule(&mut c, base, index, s, place) {
            if let Some(dup) = schedules.iter().find(|o| o.name == one.name) {
                let message = format!("the name {:?} is used by two schedules", dup.name);
                c.table(
                    place,
                    "report.schedule.name",
                    &message,
                    "give each schedule its own name",
                );
            }
            schedules.push(one);
        }
    }
    let smtp = raw.smtp.as_ref().and_then(|s| smtp(&mut c, base, read, s));
    if raw.smtp.is_none()
        && let Some(s) = raw.schedule.iter().find_map(|s| s.mail_to.as_ref())
    {
        c.at(
            s,
            "report.schedule.mail_to",
            "needs a mail server".into(),
            "add a [report.smtp] section (host, from) or remove mail_to",
        );
    }
    (schedules, smtp)
}

fn schedule(
    c: &mut Check<'_>,
    base: &Path,
    index: usize,
    s: &RawSchedule,
    place: Option<(usize, usize)>,
) -> Option<ReportSchedule> {
    let before = c.errors.problems.len();
    let name = match &s.name {
        None => format!("schedule-{}", index + 1),
        Some(n) if n.get_ref().trim().is_empty() => {
            c.at(
                n,
                "report.schedule.name",
                "is empty".into(),
                "name the schedule, e.g. \"monthly\"",
            );
            String::new()
        }
        Some(n) => n.get_ref().trim().to_string(),
    };
    let mut formats = Vec::new();
    let fix = "list formats among \"csv\", \"worst-csv\", \"json\", \"html\", \"xlsx\"";
    for f in c
        .list(&s.formats, place, "report.schedule.formats", fix)
        .unwrap_or_default()
    {
        match f.get_ref().parse::<Format>() {
            Ok(f) if !formats.contains(&f) => formats.push(f),
            Ok(_) => {}
            Err(e) => c.at(f, "report.schedule.formats", e, fix),
        }
    }
    let mut by = Vec::new();
    match &s.by {
        None => by.push(vec![GroupKey::Province, GroupKey::Carrier]),
        Some(_) => {
            let fix = "list groupings such as \"province,carrier\", \"district\" or \"national\"";
            for b in c.list(&s.by, place, "report.schedule.by", fix).unwrap_or_default() {
                match parse_group_by(b.get_ref()) {
                    Ok(keys) if !by.contains(&keys) => by.push(keys),
                    Ok(_) => {}
                    Err(e) => c.at(b, "report.schedule.by", e, fix),
                }
            }
        }
    }
    let directory = match &s.directory {
        None => {
            let fix = "add directory = \"reports/\" (relative to the config file)";
            c.table(place, "report.schedule.directory", "is missing", fix);
            PathBuf::new()
        }
        Some(d) if d.get_ref().trim().is_empty() => {
            let fix = "name a directory, e.g. \"reports/\"";
            c.at(d, "report.schedule.directory", "is empty".into(), fix);
            PathBuf::new()
        }
        Some(d) => base.join(d.get_ref()),
    };
    let mut mail_to = Vec::new();
    if s.mail_to.is_some() {
        let fix = "list addresses, e.g. [\"noc@example.vn\"], or remove mail_to";
        for m in c
            .list(&s.mail_to, place, "report.schedule.mail_to", fix)
            .unwrap_or_default()
        {
            mail_to.extend(c.mailbox(m, "report.schedule.mail_to"));
        }
    }
    (c.errors.problems.len() == before).then_some(ReportSchedule {
        name,
        formats,
        by,
        directory,
        mail_to,
    })
}

fn smtp(c: &mut Check<'_>, base: &Path, read: &ReadFile<'_>, s: &RawSmtp) -> Option<SmtpSettings> {
    let before = c.errors.problems.len();
    let place = table_position(c.text, &["report", "smtp"], None);
    let host = match &s.host {
        Some(h) if !h.get_ref().trim().is_empty() => h.get_ref().trim().to_string(),
        Some(h) => {
            c.at(h, "report.smtp.host", "is empty".into(), "name the mail server");
            String::new()
        }
        None => {
            let fix = "add host = \"smtp.example.vn\"";
            c.table(place, "report.smtp.host", "is missing", fix);
            String::new()
        }
    };
    let fix = "write \"starttls\", \"tls\" or \"none\"";
    let security = match s.security.as_ref().map(|v| (v, v.get_ref().to_ascii_lowercase())) {
        None => SmtpSecurity::StartTls,
        Some((_, t)) if t == "starttls" => SmtpSecurity::StartTls,
        Some((_, t)) if t == "tls" => SmtpSecurity::Tls,
        Some((_, t)) if t == "none" => SmtpSecurity::None,
        Some((v, _)) => {
            c.at(
                v,
                "report.smtp.security",
                format!("{:?} is not valid", v.get_ref()),
                fix,
            );
            SmtpSecurity::StartTls
        }
    };
    let port = match &s.port {
        None => match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        },
        Some(p) => u16::try_from(*p.get_ref()).ok().filter(|p| *p > 0).unwrap_or_else(|| {
            let message = format!("{} is out of range", p.get_ref());
            c.at(p, "report.smtp.port", message, "choose a port from 1 to 65535");
            0
        }),
    };
    let username = s.username.as_ref().map(|u| u.get_ref().clone());
    let password_file = s.password_file.as_ref().map(|p| {
        let path = base.join(p.get_ref());
        if let Err(e) = read(&path) {
            let fix = "correct the path (relative to the config file) or create the file";
            c.at(
                p,
                "report.smtp.password_file",
                format!("{} cannot be read: {e}", path.display()),
                fix,
            );
        }
        path
    });
    match (&s.username, &s.password_file) {
        (Some(u), None) => c.at(
            u,
            "report.smtp.username",
            "has no password_file".into(),
            "add password_file",
        ),
        (None, Some(p)) => c.at(p, "report.smtp.password_file", "has no username".into(), "add username"),
        _ => {}
    }
    let from = match &s.from {
        Some(f) => c.mailbox(f, "report.smtp.from").unwrap_or_default(),
        None => {
            let fix = "add from = \"diemcau <diemcau@example.vn>\"";
            c.table(place, "report.smtp.from", "is missing", fix);
            String::new()
        }
    };
    (c.errors.problems.len() == before).then_some(SmtpSettings {
        host,
        port,
        security,
        username,
        password_file,
        from,
    })
}
