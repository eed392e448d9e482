//! Validation problems, each with a field name and a message in Japanese and English.
//!
//! Validators report every problem they find, not only the first, so a form or a CSV
//! import can show all of them at once.

use serde::Serialize;
use std::fmt;

/// One thing wrong with an input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field (or CSV column, or JSON path) the problem is about.
    pub field: String,
    /// A short stable code, e.g. `invalid_code`.
    pub code: &'static str,
    /// The message in Japanese.
    pub ja: String,
    /// The message in English.
    pub en: String,
}

impl Problem {
    /// Returns a problem about `field`.
    pub fn new(field: impl Into<String>, code: &'static str, ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self { field: field.into(), code, ja: ja.into(), en: en.into() }
    }

    /// Returns the same problem with its field name prefixed (e.g. by a CSV row).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}{}", self.field);
        self
    }

    /// Returns the message in the given language (`"en"` or anything else for Japanese).
    pub fn message(&self, lang: &str) -> &str {
        if lang == "en" { &self.en } else { &self.ja }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.en)
    }
}

/// A list of problems; empty means valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Adds a problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Returns `Ok(value)` when there is no problem, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }

    /// Returns true when there is no problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Self(vec![p])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
