//! The scheduler: runs the selected stages in dependency order, up to `jobs` at a time,
//! reusing cached runs, resuming interrupted ones, and waiting for stages another
//! `haq run` on the same store is executing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use haq_store::{Claim, NewRun, Run, RunStatus, Store};

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::executor::{self, Exit, Job};
use crate::fingerprint::{run_key, RunKey, FILE_INPUT};
use crate::terminal::Terminal;
use crate::workflow::{ExecutorKind, StageSpec, Workflow};
use crate::Dag;

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// Stages executed at once (at least 1).
    pub jobs: usize,
    /// Stages (expanded names) to rerun even if a cached run exists.
    pub force: BTreeSet<String>,
    /// Where progress bars are drawn and stage output echoed.
    pub terminal: Terminal,
    /// Copy stage output to the terminal as it comes.
    pub echo: bool,
    /// Where stages run.
    pub executor: ExecutorKind,
}

/// What happened, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    Cached {
        stage: String,
        run: i64,
        /// Workspace files written back because they were missing or changed.
        restored: usize,
    },
    Started {
        stage: String,
        run: i64,
        attempt: i64,
        resumed_from: Option<i64>,
    },
    Waiting {
        stage: String,
        run: i64,
    },
    Done {
        stage: String,
        run: i64,
        seconds: f64,
    },
    Failed {
        stage: String,
        run: i64,
        message: String,
    },
    Interrupted {
        stage: String,
        run: i64,
        message: String,
    },
    Skipped {
        stage: String,
        because: String,
    },
    /// News of a stage's batch job (submitted, re-attached, its state).
    Job {
        stage: String,
        job: String,
        what: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Cached {
                stage,
                run,
                restored: 0,
            } => write!(f, "{stage}: up to date (run {run})"),
            Event::Cached {
                stage,
                run,
                restored,
            } => write!(
                f,
                "{stage}: up to date (run {run}); restored {restored} workspace file{}",
                if *restored == 1 { "" } else { "s" }
            ),
            Event::Started {
                stage,
                run,
                attempt: 1,
                ..
            } => write!(f, "{stage}: running (run {run})"),
            Event::Started {
                stage,
                run,
                attempt,
                resumed_from: None,
            } => write!(
                f,
                "{stage}: restarting run {run} (attempt {attempt}; it saved no checkpoint)"
            ),
            Event::Started {
                stage,
                run,
                resumed_from: Some(step),
                ..
            } => {
                write!(
                    f,
                    "{stage}: resuming run {run} from its checkpoint at step {step}"
                )
            }
            Event::Waiting { stage, run } => {
                write!(
                    f,
                    "{stage}: run {run} is being executed by another haq process; waiting"
                )
            }
            Event::Done {
                stage,
                run,
                seconds,
            } => write!(f, "{stage}: done (run {run}, {seconds:.1}s)"),
            Event::Failed {
                stage,
                run,
                message,
            } => write!(f, "{stage}: FAILED (run {run}): {message}"),
            Event::Interrupted {
                stage,
                run,
                message,
            } => {
                write!(
                    f,
                    "{stage}: interrupted (run {run}, {message}); `haq run` resumes it"
                )
            }
            Event::Skipped { stage, because } => write!(f, "{stage}: skipped ({because})"),
            Event::Job { stage, job, what } => write!(f, "{stage}: slurm job {job} {what}"),
        }
    }
}

/// The outcome of a whole `haq run`.
#[derive(Debug, Default)]
pub struct Summary {
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub interrupted: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.interrupted.is_empty()
    }
}

enum Outcome {
    Complete { run: Box<Run>, cached: bool },
    Failed,
    Interrupted,
}

/// Runs `selection` (indices into `wf.stages`, closed under upstream).
pub fn run(
    wf: &Workflow,
    dag: &Dag,
    selection: &[usize],
    binaries: &Binaries,
    opts: &Options,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<Summary> {
    // Fail early on an unopenable store or a missing binary rather than mid-run.
    let store = Store::open(&wf.store)?;
    for &i in selection {
        binaries.identity(&wf.stages[i].kind)?;
    }
    if opts.executor == ExecutorKind::Slurm {
        return crate::slurm::run(wf, dag, selection, binaries, opts, store, on_event);
    }
    let jobs = opts.jobs.max(1);
    let mut pending: Vec<usize> = selection.to_vec();
    let mut complete: BTreeMap<usize, Run> = BTreeMap::new();
    let mut summary = Summary::default();
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<(usize, Result<Outcome>)>();
    thread::scope(|scope| -> Result<()> {
        loop {
            while running < jobs && !executor::interrupted() {
                let Some(pos) = pending
                    .iter()
                    .position(|i| dag.upstream(*i).iter().all(|u| complete.contains_key(u)))
                else {
                    break;
                };
                let i = pending.remove(pos);
                let stage = &wf.stages[i];
                let upstream: Vec<(&str, &Run)> = dag
                    .upstream(i)
                    .iter()
                    .map(|u| (wf.stages[*u].name.as_str(), &complete[u]))
                    .collect();
                let key = run_key(&store, stage, &upstream, binaries)?;
                // A completed run never changes, so reusing one needs no claim, no thread
                // and no connection of its own: that was most of a no-op `haq run`.
                let cached = match opts.force.contains(&stage.name) {
                    true => None,
                    false => store.done_run(&stage.name, &key.fingerprint)?,
                };
                if let Some(run) = cached {
                    reuse(&store, &stage.name, &run, on_event)?;
                    summary.cached.push(stage.name.clone());
                    complete.insert(i, run);
                    continue;
                }
                let tx = tx.clone();
                running += 1;
                scope.spawn(move || {
                    let _ = tx.send((i, run_stage(wf, i, key, binaries, opts, on_event)));
                });
            }
            if running == 0 {
                break;
            }
            let (i, outcome) = rx.recv().expect("a worker is running");
            running -= 1;
            let name = wf.stages[i].name.clone();
            match outcome? {
                Outcome::Complete { run, cached } => {
                    if cached {
                        summary.cached.push(name)
                    } else {
                        summary.executed.push(name)
                    }
                    complete.insert(i, *run);
                }
                Outcome::Failed => {
                    summary.failed.push(name.clone());
                    skip_downstream(wf, dag, i, &mut pending, &mut summary, on_event);
                }
                Outcome::Interrupted => summary.interrupted.push(name),
            }
        }
        Ok(())
    })?;
    for i in pending {
        summary.skipped.push(wf.stages[i].name.clone());
    }
    Ok(summary)
}

fn skip_downstream(
    wf: &Workflow,
    dag: &Dag,
    failed: usize,
    pending: &mut Vec<usize>,
    summary: &mut Summary,
    on_event: &(dyn Fn(&Event) + Sync),
) {
    let downstream: BTreeSet<usize> = dag.downstream(failed).into_iter().collect();
    pending.retain(|i| {
        if !downstream.contains(i) {
            return true;
        }
        let stage = wf.stages[*i].name.clone();
        on_event(&Event::Skipped {
            stage: stage.clone(),
            because: format!("{} failed", wf.stages[failed].name),
        });
        summary.skipped.push(stage);
        false
    });
}

/// Reuses a completed run: its workspace files are written back where missing or changed.
fn reuse(store: &Store, stage: &str, run: &Run, on_event: &(dyn Fn(&Event) + Sync)) -> Result<()> {
    let restored = haq_store::workspace::restore(store, &store.outputs(run.id)?)?;
    on_event(&Event::Cached {
        stage: stage.to_string(),
        run: run.id,
        restored: restored.len(),
    });
    Ok(())
}

/// How often a stage held by another process is checked on.
const POLL: Duration = Duration::from_millis(300);

/// Stores each `deps:` file of a stage as the artifact its run's inputs name: the file as
/// it was hashed for the fingerprint.
pub(crate) fn store_deps(store: &Store, stage: &StageSpec, key: &RunKey) -> Result<()> {
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

fn run_stage(
    wf: &Workflow,
    i: usize,
    key: RunKey,
    binaries: &Binaries,
    opts: &Options,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<Outcome> {
    let stage = &wf.stages[i];
    let store = Store::open(&wf.store)?;
    store_deps(&store, stage, &key)?;
    let binary = binaries.find(&stage.kind).ok_or_else(|| Error::Stage {
        stage: stage.name.clone(),
        message: format!("no executable haq-{} beside haq or on PATH", stage.kind),
    })?;
    let new = NewRun {
        stage: &stage.name,
        kind: &stage.kind,
        fingerprint: &key.fingerprint,
        params: &stage.params,
        binary_id: &key.binary_id,
        workflow: &wf.name,
        inputs: &key.inputs,
    };
    let mut force = opts.force.contains(&stage.name);
    let mut waiting = false;
    loop {
        let claim = store.claim(&new, force)?;
        force = false;
        let (run, lock, resumed) = match claim {
            Claim::Cached(run) => {
                reuse(&store, &stage.name, &run, on_event)?;
                return Ok(Outcome::Complete {
                    run: Box::new(run),
                    cached: true,
                });
            }
            Claim::Busy(run) => {
                if !waiting {
                    on_event(&Event::Waiting {
                        stage: stage.name.clone(),
                        run: run.id,
                    });
                    waiting = true;
                }
                if executor::interrupted() {
                    return Ok(Outcome::Interrupted);
                }
                thread::sleep(POLL);
                continue;
            }
            Claim::Owned { run, lock, resumed } => (run, lock, resumed),
        };
        let resumed_from = if resumed {
            store.latest_checkpoint(run.id)?.map(|c| c.step)
        } else {
            None
        };
        on_event(&Event::Started {
            stage: stage.name.clone(),
            run: run.id,
            attempt: run.attempts,
            resumed_from,
        });
        let started = Instant::now();
        let exit = executor::execute(&Job {
            stage: &stage.name,
            binary: &binary,
            store: store.path(),
            run_id: run.id,
            log: store.log_path(run.id),
            terminal: &opts.terminal,
            echo: opts.echo,
        })?;
        let (stage_name, id) = (stage.name.clone(), run.id);
        return Ok(match exit {
            Exit::Success => {
                store.finish_run(&lock)?;
                let seconds = started.elapsed().as_secs_f64();
                on_event(&Event::Done {
                    stage: stage_name,
                    run: id,
                    seconds,
                });
                Outcome::Complete {
                    run: Box::new(store.run(id)?),
                    cached: false,
                }
            }
            Exit::Failed(message) => {
                store.stop_run(&lock, RunStatus::Failed, Some(&message))?;
                on_event(&Event::Failed {
                    stage: stage_name,
                    run: id,
                    message,
                });
                Outcome::Failed
            }
            Exit::Interrupted(message) => {
                store.stop_run(&lock, RunStatus::Interrupted, Some(&message))?;
                on_event(&Event::Interrupted {
                    stage: stage_name,
                    run: id,
                    message,
                });
                Outcome::Interrupted
            }
        });
    }
}
