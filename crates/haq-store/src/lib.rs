//! The haq store: one SQLite file holding runs, their params, inputs and outputs,
//! content-addressed artifacts, metrics and checkpoints (the stage harness that talks to it
//! from a stage binary is `haq-stage`). No libtorch here, so the engine builds and tests
//! fast.

mod artifact;
mod error;
mod job;
mod lock;
mod runs;
mod schema;
mod store;
pub mod workspace;

pub use artifact::{ArtifactReader, Digest, GcStats};
pub use error::{Error, Result};
pub use job::BatchJob;
pub use lock::RunLock;
pub use runs::{Checkpoint, Claim, Metric, NewRun, Run, RunStatus};
pub use store::Store;
