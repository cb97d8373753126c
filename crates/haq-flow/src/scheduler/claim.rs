//! Claiming a stage's run in the store, the same for every executor: a completed run of
//! the stage's fingerprint is reused; otherwise its `deps:` files are stored and its run
//! claimed (new, or resumed from its latest checkpoint), unless another `haq run` holds it.

use std::time::Instant;

use haq_store::{Claim, NewRun, Run, RunLock, Store};

use super::events::{Event, OnEvent};
use crate::error::{Error, Result};
use crate::fingerprint::{RunKey, FILE_INPUT};
use crate::workflow::StageSpec;

pub(crate) enum Claimed {
    Cached(Run),
    /// Another `haq run` is executing it.
    Busy(Run),
    /// This process holds the run; it has been reported started.
    Owned(Owned),
}

/// A run this process holds, to execute.
pub(crate) struct Owned {
    pub(crate) run: Run,
    pub(crate) lock: RunLock,
    pub(crate) started: Instant,
}

/// The completed run of the stage's fingerprint, unless `force` asks for a new one.
pub(crate) fn done(
    store: &Store,
    stage: &StageSpec,
    key: &RunKey,
    force: bool,
) -> Result<Option<Run>> {
    match force {
        true => Ok(None),
        false => Ok(store.done_run(&stage.name, &key.fingerprint)?),
    }
}

/// Claims the run of `stage` (of the workflow named `workflow`) with run key `key`.
pub(crate) fn claim(
    store: &Store,
    workflow: &str,
    stage: &StageSpec,
    key: &RunKey,
    force: bool,
    on_event: &OnEvent,
) -> Result<Claimed> {
    if let Some(run) = done(store, stage, key, force)? {
        return Ok(Claimed::Cached(run));
    }
    store_deps(store, stage, key)?;
    let new = NewRun {
        stage: &stage.name,
        kind: &stage.kind,
        fingerprint: &key.fingerprint,
        params: &stage.params,
        binary_id: &key.binary_id,
        workflow,
        inputs: &key.inputs,
    };
    Ok(match store.claim(&new, force)? {
        Claim::Cached(run) => Claimed::Cached(run),
        Claim::Busy(run) => Claimed::Busy(run),
        Claim::Owned { run, lock, resumed } => {
            let resumed_from = match resumed {
                true => store.latest_checkpoint(run.id)?.map(|c| c.step),
                false => None,
            };
            on_event(&Event::Started {
                stage: stage.name.clone(),
                run: run.id,
                attempt: run.attempts,
                resumed_from,
            });
            Claimed::Owned(Owned {
                run,
                lock,
                started: Instant::now(),
            })
        }
    })
}

/// Reuses a completed run: its workspace files are written back where missing or changed.
pub(crate) fn reuse(store: &Store, stage: &str, run: &Run, on_event: &OnEvent) -> Result<()> {
    let restored = haq_store::workspace::restore(store, &store.outputs(run.id)?)?;
    on_event(&Event::Cached {
        stage: stage.to_string(),
        run: run.id,
        restored: restored.len(),
    });
    Ok(())
}

/// Stores each `deps:` file of a stage as the artifact its run's inputs name: the file as
/// it was hashed for the fingerprint.
fn store_deps(store: &Store, stage: &StageSpec, key: &RunKey) -> Result<()> {
    for path in &stage.deps {
        let expected = &key.inputs[&format!("{FILE_INPUT}{path}")];
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let stored = store.put_reader(file, "application/octet-stream")?;
        if &stored != expected {
            return Err(Error::Stage {
                stage: stage.name.clone(),
                message: format!("deps: {path} changed while haq read it; run again"),
            });
        }
    }
    Ok(())
}
