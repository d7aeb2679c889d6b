//! `--log.format logfmt`: one event per line as `key=value` pairs, the format of Prometheus and
//! its exporters: `ts=2026-12-01T03:04:05.678Z level=info target=diemcau::app::daemon
//! msg="web server listening" address=127.0.0.1:9808`. Values with spaces, quotes, `=` or
//! control characters are quoted and escaped; Vietnamese text is written as is.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(super) struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        write!(
            w,
            "ts={:.3} level={} target={}",
            jiff::Timestamp::now(),
            meta.level().as_str().to_ascii_lowercase(),
            fields.log_target.as_deref().unwrap_or(meta.target())
        )?;
        if let Some(msg) = &fields.message {
            w.write_str(" msg=")?;
            write_value(&mut w, msg)?;
        }
        w.write_str(&fields.rest)?;
        w.write_char('\n')
    }
}

/// The event's message, and its other fields already written as ` key=value`.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    /// The target of an event bridged from the `log` crate (its `log.target` field).
    log_target: Option<String>,
    rest: String,
}

impl Fields {
    fn push(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_string()),
            "log.target" => self.log_target = Some(value.to_string()),
            // The rest of a bridged event's source location: noise in an operator's log.
            "log.module_path" | "log.file" | "log.line" => {}
            _ => self.push_pair(field, value),
        }
    }

    fn push_pair(&mut self, field: &Field, value: &str) {
        // A field named with a raw identifier (`r#type`) is written without the prefix.
        let name = field.name().strip_prefix("r#").unwrap_or(field.name());
        let _ = write!(self.rest, " {name}=");
        let _ = write_value(&mut self.rest, value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

/// Writes `value` bare when it is a plain token, else quoted with `\"`, `\\`, `\n`, `\r`, `\t`
/// and other control characters escaped.
fn write_value(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if bare {
        return w.write_str(value);
    }
    w.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if c.is_control() => write!(w, "\\u{:04x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::write_value;

    fn quoted(v: &str) -> String {
        let mut s = String::new();
        write_value(&mut s, v).unwrap();
        s
    }

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        assert_eq!(quoted("127.0.0.1:9808"), "127.0.0.1:9808");
        assert_eq!(quoted("Phường Cát Lái"), "\"Phường Cát Lái\"");
        assert_eq!(quoted("Xã_Tả_Van"), "Xã_Tả_Van");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted("say \"hi\"\nthen\\"), "\"say \\\"hi\\\"\\nthen\\\\\"");
        assert_eq!(quoted("bell\u{7}"), "\"bell\\u0007\"");
    }
}
