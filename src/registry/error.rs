//! Registry errors. Every problem carries the path of the offending field
//! (`services[2].ports[0].number`), and where the text is at hand its line
//! and column, so that a user can find it in a file of thousands of lines.

use std::fmt;
use std::path::PathBuf;

use super::locate::Location;

/// One thing wrong with a registry, located by the path of its field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    /// Where the path is in the registry text, once looked up (a problem
    /// of a Kubernetes object has none).
    pub location: Option<Location>,
}

impl Problem {
    /// A problem at `path`, not located yet.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            location: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a registry could not be loaded. The last good registry keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry {origin} is not valid {format}: {message}")]
    Syntax {
        origin: String,
        format: &'static str,
        message: String,
    },
    #[error("registry {origin} has {} problem(s):\n{}", problems.len(), list(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl RegistryError {
    /// `value` if there are no problems, else all of them as one error.
    pub fn unless_problems<T>(origin: &str, problems: Vec<Problem>, value: T) -> Result<T, Self> {
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(RegistryError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }
}

/// One line per problem; a located one starts `FILE:LINE:COLUMN:`, the
/// form editors and terminals jump to.
fn list(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match p.location {
            Some(at) => format!("  - {origin}:{at}: {p}"),
            None => format!("  - {p}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
