//! The workflow engine.

pub mod binaries;
pub mod dag;
pub mod error;
pub mod executor;
pub mod fingerprint;
mod local;
pub mod param_check;
pub mod plan;
mod run;
pub mod scheduler;
pub mod slurm;
pub mod terminal;
mod topo;
pub mod workflow;

pub use dag::Dag;
pub use error::{Error, Location, Result};
pub use fingerprint::{canonical_json, diff_params, fingerprint};
pub use run::run;
pub use workflow::{deep_merge, ExecutorKind, Override, SlurmOptions, StageSpec, Workflow};
