//! What each stage of a workflow needs: fresh, stale (and why), running, interrupted or
//! failed. `haq status` prints this; `haq run --dry-run` prints it for the selection.

use std::collections::{BTreeMap, BTreeSet};

use haq_store::{Digest, Run, RunStatus, Store};

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::fingerprint::{diff_params, fingerprint};
use crate::workflow::{StageSpec, Workflow};
use crate::Dag;

/// Where one stage stands.
#[derive(Debug, Clone)]
pub enum State {
    /// A completed run matches the current fingerprint: a cache hit.
    Fresh(Run),
    /// It would run; the reasons say why.
    Stale(Vec<String>),
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

/// The identity of a stage's next run: what its fingerprint is made of.
pub struct RunKey {
    pub inputs: BTreeMap<String, Digest>,
    pub binary_id: String,
    pub fingerprint: String,
}

/// The prefix of the input a `deps:` file becomes.
pub const FILE_INPUT: &str = "file:";

/// The blake3 digest of a `deps:` file, as the store would name it. Only regular files
/// (a device such as /dev/zero never ends), read in chunks so that Ctrl-C stops `haq run`
/// even inside a large file.
fn file_digest(stage: &StageSpec, path: &str) -> Result<Digest> {
    use std::io::Read;
    let bad = |why: String| Error::Stage {
        stage: stage.name.clone(),
        message: format!(
            "deps: cannot read {path}: {why} (paths are relative to the directory haq runs \
             in; list only files that exist)"
        ),
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(
            "not a regular file; deps: lists files whose contents the stage reads".into(),
        ));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if crate::executor::interrupted() {
            return Err(bad("interrupted".into()));
        }
        let n = file.read(&mut buf).map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest(hasher.finalize().to_hex().to_string()))
}

/// Computes a stage's fingerprint from its upstream runs' outputs and its `deps:` files.
pub fn run_key(
    store: &Store,
    stage: &StageSpec,
    upstream: &[(&str, &Run)],
    binaries: &Binaries,
) -> Result<RunKey> {
    let mut inputs = BTreeMap::new();
    for (name, run) in upstream {
        for (output, digest) in store.outputs(run.id)? {
            inputs.insert(format!("{name}/{output}"), digest);
        }
    }
    for path in &stage.deps {
        inputs.insert(format!("{FILE_INPUT}{path}"), file_digest(stage, path)?);
    }
    let binary_id = binaries.identity(&stage.kind)?;
    let named: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let fingerprint = fingerprint(&stage.kind, &stage.params, &named, &binary_id);
    Ok(RunKey {
        inputs,
        binary_id,
        fingerprint,
    })
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
            match states.get(&u) {
                Some(State::Fresh(run)) => upstream.push((name, run)),
                Some(other) => blocked.push(format!("upstream {name} is {}", other.label())),
                None => blocked.push(format!("upstream {name} is not selected")),
            }
        }
        // The first cause and a count: the report stage of a large workflow has dozens.
        if blocked.len() > 1 {
            let more = blocked.len() - 1;
            blocked.truncate(1);
            blocked.push(format!(
                "{more} more upstream stage{} not fresh",
                if more == 1 { "" } else { "s" }
            ));
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
        return Ok(State::Stale(vec!["never run".to_string()]));
    };
    Ok(State::Stale(why_changed(store, last, stage, key)?))
}

/// Why the last completed run no longer matches.
fn why_changed(store: &Store, last: &Run, stage: &StageSpec, key: &RunKey) -> Result<Vec<String>> {
    let mut reasons = Vec::new();
    if last.kind != stage.kind {
        reasons.push(format!("run kind changed: {} -> {}", last.kind, stage.kind));
    }
    for change in diff_params(&last.params, &stage.params) {
        reasons.push(format!("param {change}"));
    }
    let old_inputs = store.inputs(last.id)?;
    let names: BTreeSet<&String> = old_inputs.keys().chain(key.inputs.keys()).collect();
    for name in names {
        let (old, new) = (old_inputs.get(name), key.inputs.get(name));
        if old != new {
            let what = match (old, new) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed",
            };
            match name.strip_prefix(FILE_INPUT) {
                Some(path) => reasons.push(format!("deps: file {path} {what}")),
                None => {
                    let upstream = name.rsplit_once('/').map(|(s, _)| s).unwrap_or(name);
                    reasons.push(format!("upstream {upstream}: input {name} {what}"));
                }
            }
        }
    }
    if last.binary_id != key.binary_id {
        reasons.push(format!(
            "stage binary haq-{} was rebuilt from different sources",
            stage.kind
        ));
    }
    if reasons.is_empty() {
        reasons.push("fingerprint changed".to_string());
    }
    Ok(reasons)
}
