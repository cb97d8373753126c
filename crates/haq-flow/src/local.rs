//! The local executor: runs the selected stages as child processes of `haq run`, in
//! dependency order, up to `jobs` at a time, each on a thread of its own; a stage whose
//! run another `haq run` on the same store is executing is waited for.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use haq_store::{Run, RunStatus, Store};

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::executor::{self, Exit, Job};
use crate::fingerprint::{run_key, RunKey};
use crate::scheduler::claim::{self, Claimed};
use crate::scheduler::queue::Queue;
use crate::scheduler::{Event, OnEvent, Options, Summary};
use crate::workflow::Workflow;
use crate::Dag;

/// How often a stage held by another process is checked on.
const POLL: Duration = Duration::from_millis(300);

enum Outcome {
    Executed(Box<Run>),
    Cached(Box<Run>),
    Failed,
    Interrupted,
}

/// Runs `selection` here, driving it from `store` (the workflow's).
pub(crate) fn run(
    wf: &Workflow,
    dag: &Dag,
    selection: &[usize],
    binaries: &Binaries,
    opts: &Options,
    store: Store,
    on_event: &OnEvent,
) -> Result<Summary> {
    let jobs = opts.jobs.max(1);
    let mut queue = Queue::new(dag, selection);
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<(usize, Result<Outcome>)>();
    thread::scope(|scope| -> Result<()> {
        loop {
            while running < jobs && !executor::interrupted() {
                let Some(i) = queue.next_ready() else {
                    break;
                };
                let stage = &wf.stages[i];
                let key = run_key(&store, stage, &queue.upstream_runs(i), binaries)?;
                // A completed run never changes, so reusing one needs no claim, no thread
                // and no connection of its own: that was most of a no-op `haq run`.
                let force = opts.force.contains(&stage.name);
                if let Some(run) = claim::done(&store, stage, &key, force)? {
                    claim::reuse(&store, &stage.name, &run, on_event)?;
                    queue.cached(i, run);
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
            match outcome? {
                Outcome::Executed(run) => queue.executed(i, *run),
                Outcome::Cached(run) => queue.cached(i, *run),
                Outcome::Failed => {
                    queue.failed(i, on_event);
                }
                Outcome::Interrupted => queue.interrupted(i),
            }
        }
        Ok(())
    })?;
    Ok(queue.finish())
}

fn run_stage(
    wf: &Workflow,
    i: usize,
    key: RunKey,
    binaries: &Binaries,
    opts: &Options,
    on_event: &OnEvent,
) -> Result<Outcome> {
    let stage = &wf.stages[i];
    let store = Store::open(&wf.store)?;
    let binary = binaries.find(&stage.kind).ok_or_else(|| Error::Stage {
        stage: stage.name.clone(),
        message: format!("no executable haq-{} beside haq or on PATH", stage.kind),
    })?;
    let mut force = opts.force.contains(&stage.name);
    let mut waiting = false;
    let owned = loop {
        match claim::claim(&store, &wf.name, stage, &key, force, on_event)? {
            Claimed::Cached(run) => {
                claim::reuse(&store, &stage.name, &run, on_event)?;
                return Ok(Outcome::Cached(Box::new(run)));
            }
            Claimed::Busy(run) => {
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
                // Another `haq run` executing the stage makes the fresh run forcing asks for.
                force = false;
                thread::sleep(POLL);
            }
            Claimed::Owned(owned) => break owned,
        }
    };
    let exit = executor::execute(&Job {
        stage: &stage.name,
        binary: &binary,
        store: store.path(),
        run_id: owned.run.id,
        log: store.log_path(owned.run.id),
        terminal: &opts.terminal,
        echo: opts.echo,
    })?;
    let (name, run) = (stage.name.clone(), owned.run.id);
    Ok(match exit {
        Exit::Success => {
            store.finish_run(&owned.lock)?;
            let seconds = owned.started.elapsed().as_secs_f64();
            on_event(&Event::Done {
                stage: name,
                run,
                seconds,
            });
            Outcome::Executed(Box::new(store.run(run)?))
        }
        Exit::Failed(message) => {
            store.stop_run(&owned.lock, RunStatus::Failed, Some(&message))?;
            on_event(&Event::Failed {
                stage: name,
                run,
                message,
            });
            Outcome::Failed
        }
        Exit::Interrupted(message) => {
            store.stop_run(&owned.lock, RunStatus::Interrupted, Some(&message))?;
            on_event(&Event::Interrupted {
                stage: name,
                run,
                message,
            });
            Outcome::Interrupted
        }
    })
}
