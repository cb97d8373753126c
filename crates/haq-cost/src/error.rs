//! The errors of haq's libtorch-free science (haq-core wraps them in its own). Each message names what is wrong (file, field, value)
//! and what to do about it.

/// Errors from haq-cost.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
