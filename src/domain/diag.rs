//! Diagnostics that point at the exact place to fix: `file:line[:col]: field: problem; fix: …`.
//! Every file parser of the daemon (config, inventory, checks, geo, maintenance) reports with
//! these, and loading never stops at the first problem.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a config or inventory file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based; `None` for CSV rows (the field name says where).
    pub column: Option<usize>,
    /// The key path (TOML) or column name (CSV) at fault.
    pub field: String,
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    pub fn at(file: &Path, line: usize, column: Option<usize>, field: impl Into<String>) -> ProblemBuilder {
        ProblemBuilder(Problem {
            file: file.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: String::new(),
            fix: String::new(),
        })
    }
}

impl Problem {
    /// A problem whose place in a file is not known yet (a parser that sees values, not text);
    /// the caller that holds the file sets it with [`Problem::placed`].
    pub fn unplaced(field: impl Into<String>) -> ProblemBuilder {
        Problem::at(Path::new(""), 0, None, field)
    }

    /// The same problem at `file:line[:column]`.
    pub fn placed(mut self, file: &Path, line: usize, column: Option<usize>) -> Problem {
        self.file = file.to_path_buf();
        self.line = line;
        self.column = column.filter(|_| line > 0);
        self
    }
}

/// Longest problem text kept; values quoted in problems are cut with it.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Small builder so call sites read as one sentence: `Problem::at(..).says(..).fix(..)`.
pub struct ProblemBuilder(Problem);

impl ProblemBuilder {
    /// The problem, cut to [`MAX_MESSAGE_CHARS`]: a 10 MB bad value is not echoed back whole.
    pub fn says(mut self, message: impl Into<String>) -> Self {
        let message = message.into();
        self.0.message = match message.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}… ({} characters in all)", &message[..cut], message.chars().count()),
            None => message,
        };
        self
    }
    pub fn fix(mut self, fix: impl Into<String>) -> Problem {
        self.0.fix = fix.into();
        self.0
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}", self.file.display())?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
                if let Some(c) = self.column {
                    write!(f, ":{c}")?;
                }
            }
            f.write_str(": ")?;
        }
        write!(f, "{}: {}; fix: {}", self.field, self.message, self.fix)
    }
}

/// Every problem found while loading, in file order. Loading never stops at the first one.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LoadError {
    pub problems: Vec<Problem>,
}

impl LoadError {
    pub fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }
    /// Orders problems by file (in order of first mention), then line and column, so the report
    /// reads top to bottom like the files do.
    pub fn sort(&mut self) {
        let mut files: Vec<PathBuf> = Vec::new();
        for p in &self.problems {
            if !files.contains(&p.file) {
                files.push(p.file.clone());
            }
        }
        self.problems
            .sort_by_key(|p| (files.iter().position(|f| *f == p.file), p.line, p.column));
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
    pub fn into_result<T>(self, ok: T) -> Result<T, LoadError> {
        if self.problems.is_empty() { Ok(ok) } else { Err(self) }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "{n} problem{} found:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Line starts of a text, for many offset → (line, column) look-ups in logarithmic time.
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        LineIndex(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    /// Same as [`line_col`], for an offset into the text the index was built from.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = text.floor_char_boundary(offset.min(text.len()));
        let line = self.0.partition_point(|&start| start <= offset);
        let start = self.0[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }
}

/// Byte offset → (line, column), both 1-based, column counted in characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
