//! Problems found in an AppSpec file, each with the place it points at.

use std::fmt;

use serde::Serialize;

/// A place in the AppSpec text. Lines and columns both start at 1; a column counts characters
/// (not bytes), which is also how Ruby's Psych counts them for the official agent's YAML errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The first character of the file: where problems about the file as a whole point.
    pub const START: Position = Position { line: 1, column: 1 };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Whether a problem stops the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The deployment fails on it (the official agent or service refuses the file too).
    Error,
    /// The file is accepted, but something in it is ignored or likely not what was meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem. `Display` gives `12:5: error: ...`; [`Diagnostic::in_file`] adds the file name
/// in front (`appspec.yml:12:5: error: ...`), the form editors and CI logs link to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl Diagnostic {
    pub fn error(at: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, message: message.into(), line: at.line, column: at.column }
    }

    pub fn warning(at: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, message: message.into(), line: at.line, column: at.column }
    }

    pub fn position(&self) -> Position {
        Position { line: self.line, column: self.column }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Displays as `FILE:LINE:COLUMN: SEVERITY: MESSAGE`. The crate reads no files, so the caller
    /// names the one it read.
    pub fn in_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        InFile { file, diagnostic: self }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.line, self.column, self.severity, self.message)
    }
}

struct InFile<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.diagnostic)
    }
}

/// Every problem found in one file, in the order they appear in it. As the `Err` of a parse it
/// holds at least one error, and the warnings found alongside.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// One line per problem, each prefixed by the file name (see [`Diagnostic::in_file`]).
    pub fn in_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        AllInFile { file, diagnostics: self }
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// Sorted by position so that a reader can walk the file top to bottom; the sort is stable,
    /// so problems at one place keep the order they were found in.
    pub(crate) fn from_unsorted(mut list: Vec<Diagnostic>) -> Diagnostics {
        list.sort_by_key(|d| (d.line, d.column));
        Diagnostics(list)
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

struct AllInFile<'a> {
    file: &'a str,
    diagnostics: &'a Diagnostics,
}

impl fmt::Display for AllInFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", d.in_file(self.file))?;
        }
        Ok(())
    }
}

/// Collects the problems of one parse. Validation goes on after an error so that one run reports
/// everything, as DESIGN.md asks; the result is an error as soon as one error was recorded.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    found: Vec<Diagnostic>,
}

impl Checker {
    pub(crate) fn error(&mut self, at: Position, message: impl Into<String>) {
        self.found.push(Diagnostic::error(at, message));
    }

    pub(crate) fn warning(&mut self, at: Position, message: impl Into<String>) {
        self.found.push(Diagnostic::warning(at, message));
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.found.iter().any(Diagnostic::is_error)
    }

    /// Takes over the problems another checker found.
    pub(crate) fn absorb(&mut self, other: Checker) {
        self.found.extend(other.found);
    }

    pub(crate) fn count_errors(&self) -> usize {
        self.found.iter().filter(|d| d.is_error()).count()
    }

    /// The parse's answer: the value with its warnings, or every problem. `value` is `None` only
    /// when an error was recorded; if it is not (a bug), an error says so rather than a panic.
    pub(crate) fn finish<T>(mut self, value: Option<T>) -> Result<crate::Parsed<T>, Diagnostics> {
        match value {
            Some(appspec) if !self.has_errors() => {
                Ok(crate::Parsed { appspec, warnings: Diagnostics::from_unsorted(self.found) })
            }
            _ => {
                if !self.has_errors() {
                    self.error(
                        Position::START,
                        "The AppSpec file could not be read (internal error: no value and no error).",
                    );
                }
                Err(Diagnostics::from_unsorted(self.found))
            }
        }
    }
}
