//! The job side: what a Slurm job runs (`haq slurm-job DIR`). It executes the stage with
//! the local executor against the job store in DIR, never the driver's store, and leaves
//! the outcome in that store for the driver to import. A requeued job (preemption, node
//! failure) runs this again in the same directory and resumes from the job store's latest
//! checkpoint.

use std::path::{Path, PathBuf};

use haq_store::{Claim, NewRun, RunStatus, Store};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::executor::{self, Exit, Job};
use crate::terminal::Terminal;

/// What the driver writes into a job's directory before it lets the job run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Prepared {
    /// The run to execute, in the job store; `None`: the stage turned out to be a cache
    /// hit, and the job only has to end well so that its dependents may start.
    pub run_id: Option<i64>,
    /// The stage binary (on the shared filesystem).
    pub binary: PathBuf,
}

pub(crate) const PREPARED: &str = "prepared.json";
pub(crate) const STORE: &str = "store.db";
pub(crate) const STAGE_LOG: &str = "stage.log";

/// Runs the job in `dir`; the process's exit status (0 when the run is done).
pub fn main(dir: &Path) -> Result<i32> {
    executor::install_interrupt_handler();
    let path = dir.join(PREPARED);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let prepared: Prepared = serde_json::from_str(&text)
        .map_err(|e| Error::Slurm(format!("{}: {e}", path.display())))?;
    let Some(run_id) = prepared.run_id else {
        return Ok(0);
    };
    let store = Store::open(&dir.join(STORE))?;
    let run = store.run(run_id)?;
    let inputs = store.inputs(run_id)?;
    let new = NewRun {
        stage: &run.stage,
        kind: &run.kind,
        fingerprint: &run.fingerprint,
        params: &run.params,
        binary_id: &run.binary_id,
        workflow: &run.workflow,
        inputs: &inputs,
    };
    // Resuming drops what came after the latest checkpoint, as a local resume does.
    let (run, lock) = match store.claim(&new, false)? {
        Claim::Cached(_) => return Ok(0),
        Claim::Busy(_) => {
            return Err(Error::Slurm(format!(
                "run {run_id} in {} is held by another process: two jobs share this directory",
                dir.display()
            )))
        }
        Claim::Owned { run, lock, .. } => (run, lock),
    };
    eprintln!(
        "haq: run {} of stage {} (attempt {} in this job directory)",
        run.id, run.stage, run.attempts
    );
    let exit = executor::execute(&Job {
        stage: &run.stage,
        binary: &prepared.binary,
        store: store.path(),
        run_id,
        log: dir.join(STAGE_LOG),
        terminal: &Terminal::new(false),
        echo: false,
    })?;
    eprintln!("haq: run {run_id} ended: {exit:?}");
    Ok(match exit {
        Exit::Success => {
            store.finish_run(&lock)?;
            0
        }
        Exit::Failed(message) => {
            store.stop_run(&lock, RunStatus::Failed, Some(&message))?;
            1
        }
        Exit::Interrupted(message) => {
            store.stop_run(&lock, RunStatus::Interrupted, Some(&message))?;
            // As a shell reports a process ended by SIGTERM.
            143
        }
    })
}
