//! The one error type of haq's science (this crate and haq-core). Each message names what is wrong (file, field, value)
//! and what to do about it.

use std::path::PathBuf;

/// Errors from haq-cost and haq-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file or directory is absent.
    #[error("{path}: not found. {hint}")]
    MissingData { path: PathBuf, hint: String },

    /// A dataset file exists but its contents are not what the format requires.
    #[error("{path}: {problem}. {hint}")]
    CorruptData {
        path: PathBuf,
        problem: String,
        hint: String,
    },

    /// Reading a file failed for a reason other than its absence.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration value is out of range or inconsistent with another.
    #[error("invalid {field}: {problem}")]
    Config { field: String, problem: String },

    /// A measured cost table file that cannot be read, or does not cover a layer.
    /// `location` is `file`, `file:line` or `file:line: column <name>`.
    #[error("{location}: {problem}")]
    CostTable { location: String, problem: String },

    /// Serialised tensors (model weights, optimiser state) do not fit what they are
    /// loaded into.
    #[error("weights: {0}")]
    Weights(String),

    /// A quantization policy that cannot be read or does not fit the model.
    #[error("policy: {0}")]
    Policy(String),

    /// A search budget that even the cheapest reachable policy exceeds.
    #[error(
        "budget {budget} {unit} cannot be met: the least achievable cost is {minimum} {unit} \
         (every searched layer at {min_bits} bits); raise the budget or lower the minimum \
         bit width"
    )]
    Budget {
        budget: f64,
        minimum: f64,
        unit: crate::hw::unit::Unit,
        min_bits: u8,
    },

    /// Training whose loss or gradients were not finite numbers at every step of an epoch.
    #[error(
        "training diverged: the loss or its gradients were not finite numbers at every one \
         of the {steps} steps of epoch {epoch}; lower the learning rate, or raise the \
         policy's narrowest bit widths"
    )]
    Diverged { epoch: usize, steps: usize },

    /// A search checkpoint that cannot be read or was written by another search.
    #[error("search checkpoint: {0}")]
    Checkpoint(String),

    /// An error reported by libtorch (haq-core's tensors; this crate never makes one).
    #[error("libtorch: {0}")]
    Torch(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The field a configuration error is about (empty for other errors) and what is wrong,
    /// for the stage harness's params check.
    pub fn field_and_message(&self) -> (String, String) {
        match self {
            Error::Config { field, problem } => (field.clone(), problem.clone()),
            other => (String::new(), other.to_string()),
        }
    }
}
