//! haq-core's errors: haq-cost's (policies, weights, budgets, cost tables) wrapped whole,
//! and those only training meets (data files, checkpoints, divergence, libtorch). Each
//! message names what is wrong (file, field, value) and what to do about it.

use std::path::PathBuf;

pub use haq_cost::error::Error as CostError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the libtorch-free half: a policy, a budget, a cost model or its table.
    #[error(transparent)]
    Cost(#[from] CostError),

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

    /// A setting of data, training or search out of range or inconsistent with another.
    #[error("invalid {field}: {problem}")]
    Config { field: String, problem: String },

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

    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// haq-cost's error for serialised tensors that do not fit what they are loaded into.
    pub fn weights(problem: String) -> Error {
        CostError::Weights(problem).into()
    }

    /// haq-cost's error for a policy that does not fit the model.
    pub fn policy(problem: String) -> Error {
        CostError::Policy(problem).into()
    }

    /// The field a configuration error is about (empty for other errors) and what is wrong,
    /// for the stage harness's params check.
    pub fn field_and_message(&self) -> (String, String) {
        match self {
            Error::Config { field, problem } => (field.clone(), problem.clone()),
            Error::Cost(e) => e.field_and_message(),
            other => (String::new(), other.to_string()),
        }
    }
}
