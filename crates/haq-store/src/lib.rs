//! The haq store: one SQLite file holding runs, their params, inputs and outputs,
//! content-addressed artifacts, metrics and checkpoints; plus the harness every stage
//! binary uses to talk to it. No libtorch here, so the engine builds and tests fast.

mod artifact;
mod error;
mod lock;
pub mod progress;
mod runs;
mod schema;
pub mod stage;
mod store;
pub mod workspace;

pub use artifact::{ArtifactReader, Digest, GcStats};
pub use error::{Error, Result};
pub use lock::RunLock;
pub use runs::{Checkpoint, Claim, Metric, NewRun, Run, RunStatus};
pub use store::Store;
