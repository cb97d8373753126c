//! Params checked before anything runs: each stage kind's binary is asked once, for all
//! its stages at once, whether their params are valid (`--haq-check-params`, which every
//! stage built on `haq_stage::main` answers), so that a bad value fails at once and
//! is located in the workflow file, not minutes later inside a stage.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};

use haq_stage::{ParamError, CHECK_PARAMS_ARG};
use haq_store::{Run, RunStatus, Store};
use serde_json::Value;

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::workflow::Workflow;

/// Checks the params of `stages` (indices into `wf.stages`); the first bad one is the error.
/// A binary that does not answer the check (a stage of one's own written without the
/// harness) is not checked: its stage reports bad params when it runs.
pub fn check(wf: &Workflow, stages: &[usize], binaries: &Binaries) -> Result<()> {
    let mut by_kind: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in stages {
        by_kind.entry(&wf.stages[i].kind).or_default().push(i);
    }
    for (kind, indices) in by_kind {
        let Some(binary) = binaries.find(kind) else {
            continue;
        };
        let params: Vec<&Value> = indices.iter().map(|&i| &wf.stages[i].params).collect();
        let Some(answers) = ask(&binary, &params)? else {
            continue;
        };
        for (&i, answer) in indices.iter().zip(answers) {
            if let Some(e) = answer {
                return Err(wf.param_error(&wf.stages[i], &e.field, &e.message));
            }
        }
    }
    Ok(())
}

/// One answer per params object, or `None` when the binary does not take part.
fn ask(binary: &std::path::Path, params: &[&Value]) -> Result<Option<Vec<Option<ParamError>>>> {
    let io = |source| Error::Io {
        path: binary.to_path_buf(),
        source,
    };
    let mut child = Command::new(binary)
        .arg(CHECK_PARAMS_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io)?;
    let input = serde_json::to_vec(params).expect("JSON values serialize");
    // A binary that exits without reading its input closes the pipe: that is an answer too.
    let _ = child.stdin.take().expect("piped").write_all(&input);
    let out = child.wait_with_output().map_err(io)?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(
        serde_json::from_slice::<Vec<Option<ParamError>>>(&out.stdout)
            .ok()
            .filter(|answers| answers.len() == params.len()),
    )
}

/// The stages of `selection` whose params no completed run of theirs had: a run that
/// completed with the same kind and params has had them checked, so a no-op `haq run`
/// starts no binary for this.
pub fn unchecked(wf: &Workflow, selection: &[usize], store: &Store) -> Result<Vec<usize>> {
    // One query for all stages, grouped by stage: this is on the path of every no-op
    // `haq run`.
    let runs = store.runs(None)?;
    let mut done: HashMap<&str, Vec<&Run>> = HashMap::new();
    for run in runs.iter().filter(|r| r.status == RunStatus::Done) {
        done.entry(&run.stage).or_default().push(run);
    }
    Ok(selection
        .iter()
        .copied()
        .filter(|&i| {
            let stage = &wf.stages[i];
            !done
                .get(stage.name.as_str())
                .into_iter()
                .flatten()
                .any(|r| r.kind == stage.kind && r.params == stage.params)
        })
        .collect())
}
