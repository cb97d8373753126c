//! `haq run`: checks what every executor needs, then hands the selected stages to the
//! executor the options name.

use haq_store::Store;

use crate::binaries::Binaries;
use crate::error::Result;
use crate::scheduler::{OnEvent, Options, Summary};
use crate::workflow::{ExecutorKind, Workflow};
use crate::{local, slurm, Dag};

/// Runs `selection` (indices into `wf.stages`, closed under upstream, in topological
/// order), reusing cached runs and resuming interrupted ones.
pub fn run(
    wf: &Workflow,
    dag: &Dag,
    selection: &[usize],
    binaries: &Binaries,
    opts: &Options,
    on_event: &OnEvent,
) -> Result<Summary> {
    // Fail early on an unopenable store or a missing binary rather than mid-run.
    let store = Store::open(&wf.store)?;
    for &i in selection {
        binaries.identity(&wf.stages[i].kind)?;
    }
    match opts.executor {
        ExecutorKind::Local => local::run(wf, dag, selection, binaries, opts, store, on_event),
        ExecutorKind::Slurm => slurm::run(wf, dag, selection, binaries, opts, store, on_event),
    }
}
