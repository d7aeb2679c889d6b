//! The raw settings of one service check (a `[check.NAME]` table, or the `diemcau probe` flags)
//! read into typed values by the check's kind, with every problem reported at its key.
//!
//! A kind reads only the keys it knows; whatever it did not read is reported as an unknown key
//! for that kind, with the nearest known key suggested.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Spanned, Value};

use crate::domain::diag::{LoadError, Problem, line_col};

/// Keys every kind accepts besides its own.
const COMMON_KEYS: [&str; 1] = ["kind"];

/// A check's keys and values, each with its place in the file.
pub type RawParams = BTreeMap<String, Spanned<Value>>;

pub struct Params<'a> {
    values: &'a RawParams,
    /// Key path prefix for messages, e.g. `check.web`.
    prefix: &'a str,
    file: &'a Path,
    text: &'a str,
    errors: &'a mut LoadError,
    read: Vec<&'static str>,
}

impl<'a> Params<'a> {
    pub fn new(
        values: &'a RawParams,
        prefix: &'a str,
        file: &'a Path,
        text: &'a str,
        errors: &'a mut LoadError,
    ) -> Self {
        Params {
            values,
            prefix,
            file,
            text,
            errors,
            read: COMMON_KEYS.to_vec(),
        }
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Spanned<Value>> {
        self.read.push(key);
        self.values.get(key)
    }

    /// A path from the table: relative ones start at the config file's directory (at the
    /// working directory for the command line).
    pub fn relative_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.file.parent().unwrap_or(Path::new("")).join(path)
        }
    }

    /// Whether the table sets `key` (read or not).
    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Reports a problem at `key`'s value (or at the table when the key is absent).
    pub fn problem(&mut self, key: &str, message: impl Into<String>, fix: &str) {
        let (line, column) = match self.values.get(key).or_else(|| self.values.get("kind")) {
            Some(v) if !v.span().is_empty() => {
                let (l, c) = line_col(self.text, v.span().start);
                (l, Some(c))
            }
            _ => (0, None),
        };
        let field = self.field(key);
        self.errors
            .push(Problem::at(self.file, line, column, field).says(message).fix(fix));
    }

    pub fn string(&mut self, key: &'static str) -> Option<String> {
        let v = self.get(key)?;
        match v.get_ref() {
            Value::String(s) => Some(s.clone()),
            other => {
                let shown = other.to_string();
                self.problem(
                    key,
                    format!("{shown} is not a string"),
                    "write the value in double quotes",
                );
                None
            }
        }
    }

    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let v = self.get(key)?;
        match v.get_ref() {
            Value::Boolean(b) => Some(*b),
            other => {
                let shown = other.to_string();
                self.problem(key, format!("{shown} is not true or false"), "write true or false");
                None
            }
        }
    }

    /// A whole number within `range`.
    pub fn number(&mut self, key: &'static str, range: RangeInclusive<i64>) -> Option<i64> {
        let v = self.get(key)?;
        let fix = format!("choose a whole number from {} to {}", range.start(), range.end());
        match v.get_ref() {
            Value::Integer(n) if range.contains(n) => Some(*n),
            Value::Integer(n) => {
                self.problem(key, format!("{n} is out of range"), &fix);
                None
            }
            other => {
                let shown = other.to_string();
                self.problem(key, format!("{shown} is not a whole number"), &fix);
                None
            }
        }
    }

    pub fn port(&mut self) -> Option<u16> {
        self.number("port", 1..=65535).map(|p| p as u16)
    }

    /// A duration from 1 ms to 1 h, `default` when absent or wrong.
    pub fn duration(&mut self, key: &'static str, default: Duration) -> Duration {
        let Some(text) = self.string(key) else {
            return default;
        };
        match humantime::parse_duration(&text) {
            Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(3600) => d,
            _ => {
                self.problem(
                    key,
                    format!("{text:?} is not a duration from 1ms to 1h"),
                    "write e.g. \"3s\"",
                );
                default
            }
        }
    }

    /// One of `choices`, by position; `None` when absent or not one of them.
    pub fn choice(&mut self, key: &'static str, choices: &[&str], what: &str) -> Option<usize> {
        let text = self.string(key)?;
        let found = choices.iter().position(|c| *c == text);
        if found.is_none() {
            let list = choices.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
            self.problem(key, format!("{text:?} is not {what}"), &format!("write one of {list}"));
        }
        found
    }

    /// Strings, or whole numbers written as strings, from a list value.
    pub fn list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Value::Array(items) = v.get_ref() else {
            self.problem(key, "is not a list", "write e.g. [200, \"300-399\"]");
            return None;
        };
        Some(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        )
    }

    /// Reports every key no reader asked for, suggesting the nearest known one.
    pub fn finish(self, kind: &str) {
        let unknown: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !self.read.contains(&k.as_str()))
            .collect();
        let known = self.read.clone();
        let mut problems = Vec::new();
        for key in unknown {
            let nearest = known
                .iter()
                .map(|k| (strsim::levenshtein(key, k), *k))
                .min()
                .filter(|(d, _)| *d <= 2);
            let fix = match nearest {
                Some((_, k)) => format!("did you mean {k:?}? Otherwise remove it"),
                None => format!(
                    "remove it; a {kind} check takes {}",
                    known[COMMON_KEYS.len()..].join(", ")
                ),
            };
            problems.push((key.clone(), fix));
        }
        let mut me = self;
        for (key, fix) in problems {
            me.problem(&key, format!("is not a setting of a {kind} check"), &fix);
        }
    }
}
