//! What each stage of a workflow needs: fresh, stale (and why), running, interrupted or
//! failed. `haq status` prints this; `haq run --dry-run` prints it for the selection.

use std::collections::BTreeMap;

use haq_store::{Run, RunStatus, Store};

use crate::binaries::Binaries;
use crate::error::Result;
use crate::fingerprint::{run_key, why_stale, Basis, RunKey, StaleReason};
use crate::workflow::{StageSpec, Workflow};
use crate::Dag;

/// Where one stage stands.
#[derive(Debug, Clone)]
pub enum State {
    /// A completed run matches the current fingerprint: a cache hit.
    Fresh(Run),
    /// It would run; the reasons say why.
    Stale(Vec<StaleReason>),
    /// A live `haq run` is executing it.
    Running(Run),
    /// Its run stopped early and will resume from its latest checkpoint.
    Interrupted(Run),
    /// Its run failed; `haq run` retries it, resuming from its latest checkpoint.
    Failed(Run),
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::Fresh(_) => "fresh",
            State::Stale(_) => "stale",
            State::Running(_) => "running",
            State::Interrupted(_) => "interrupted",
            State::Failed(_) => "failed",
        }
    }
}

/// The state of every stage in `order` (a topological order of the DAG).
pub fn status(
    wf: &Workflow,
    dag: &Dag,
    order: &[usize],
    store: &Store,
    binaries: &Binaries,
) -> Result<Vec<State>> {
    let mut states: BTreeMap<usize, State> = BTreeMap::new();
    for &i in order {
        let stage = &wf.stages[i];
        let mut blocked = Vec::new();
        let mut upstream = Vec::new();
        for &u in dag.upstream(i) {
            let name = wf.stages[u].name.as_str();
            let state = match states.get(&u) {
                Some(State::Fresh(run)) => {
                    upstream.push((name, run));
                    continue;
                }
                Some(other) => other.label(),
                None => "not selected",
            };
            blocked.push(StaleReason::Upstream {
                stage: name.to_string(),
                state,
            });
        }
        // The first cause and a count: the report stage of a large workflow has dozens.
        if blocked.len() > 1 {
            let more = blocked.len() - 1;
            blocked.truncate(1);
            blocked.push(StaleReason::MoreUpstream(more));
        }
        let state = if blocked.is_empty() {
            let upstream_runs: Vec<(&str, &Run)> = upstream.iter().map(|(n, r)| (*n, *r)).collect();
            let key = run_key(store, stage, &upstream_runs, binaries)?;
            state_of(store, stage, &key)?
        } else {
            State::Stale(blocked)
        };
        states.insert(i, state);
    }
    Ok(order
        .iter()
        .map(|i| states.remove(i).expect("every stage visited"))
        .collect())
}

fn state_of(store: &Store, stage: &StageSpec, key: &RunKey) -> Result<State> {
    let runs = store.runs(Some(&stage.name))?;
    let same = |r: &&Run| r.fingerprint == key.fingerprint;
    if let Some(run) = runs
        .iter()
        .filter(same)
        .find(|r| r.status == RunStatus::Done)
    {
        return Ok(State::Fresh(run.clone()));
    }
    if let Some(run) = runs.iter().find(same) {
        return Ok(match run.status {
            RunStatus::Running => State::Running(run.clone()),
            RunStatus::Failed => State::Failed(run.clone()),
            _ => State::Interrupted(run.clone()),
        });
    }
    let Some(last) = runs.iter().find(|r| r.status == RunStatus::Done) else {
        return Ok(State::Stale(vec![StaleReason::NeverRun]));
    };
    let old_inputs = store.inputs(last.id)?;
    let old = Basis {
        kind: &last.kind,
        params: &last.params,
        inputs: &old_inputs,
        binary_id: &last.binary_id,
    };
    Ok(State::Stale(why_stale(&old, &key.basis(stage))))
}
