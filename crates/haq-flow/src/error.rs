//! The one error type of haq-flow.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read the workflow file: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },

    /// Something in the workflow file is wrong; `field` is its dotted path (empty for the
    /// document itself) and `message` says what is wrong and what to do.
    #[error("{at}: {}{message}", field_prefix(field))]
    Invalid {
        at: Location,
        field: String,
        message: String,
    },

    /// A `--set KEY=VALUE` override is malformed or names nothing in the workflow.
    #[error("--set {key}: {message}")]
    Override { key: String, message: String },

    #[error("no stage named {name:?}; known stages: {known}")]
    UnknownStage { name: String, known: String },

    #[error(transparent)]
    Store(#[from] haq_store::Error),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A stage binary is missing or misbehaves.
    #[error("stage {stage}: {message}")]
    Stage { stage: String, message: String },

    /// A Slurm command failed or answered something unexpected.
    #[error("slurm: {0}")]
    Slurm(String),
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Where in the workflow file an error was found: `file:line:column`, 1-based, or just the
/// file where no position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line_column: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line_column {
            write!(f, ":{line}:{column}")?;
        }
        Ok(())
    }
}
