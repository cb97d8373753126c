//! The Slurm executor: each stale stage becomes one `sbatch` job, submitted as soon as its
//! upstream stages are done or submitted, with `--dependency=afterok:` on their jobs, so a
//! whole DAG can be queued at once. A job whose inputs are not known yet (its upstream
//! jobs have not ended, so neither its fingerprint nor its run exists) is submitted held;
//! when they end, `haq run` imports their results, claims the stage's run as a local run
//! would (cache hit, resume or new), writes the job's store and releases it.
//!
//! The driver's store is never opened by a job: see [`haq_store::Store::export_job`] and
//! docs/slurm.md. Job ids are kept in the store (`slurm_jobs`), so a restarted `haq run`
//! re-attaches to jobs still queued or running instead of submitting them again.

mod commands;
pub mod job;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use haq_store::{BatchJob, Run, RunStatus, Store};

pub use commands::JobState;

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::executor;
use crate::fingerprint::run_key;
use crate::scheduler::claim::{self, Claimed, Owned};
use crate::scheduler::queue::Queue;
use crate::scheduler::{Event, OnEvent, Options, Summary};
use crate::workflow::{SlurmOptions, Workflow};
use crate::Dag;

/// How often the driver asks squeue about its jobs: the latency each job adds.
const POLL: Duration = Duration::from_millis(500);

/// How long squeue may keep failing (a busy or restarting slurmctld answers "Socket timed
/// out") before `haq run` gives up; its jobs run on, and the next `haq run` re-attaches.
const SQUEUE_PATIENCE: Duration = Duration::from_secs(120);

/// After cancelling its jobs on Ctrl-C, how long `haq run` waits for them to end (Slurm
/// gives a job `KillWait`, 30 s by default, between SIGTERM and SIGKILL).
const CANCEL_WAIT: Duration = Duration::from_secs(120);

/// The states of jobs, for `haq status`: squeue's live answer where it has one.
pub fn live_states(jobs: &[BatchJob]) -> BTreeMap<String, JobState> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    commands::states(&ids).unwrap_or_default()
}

/// The directory under which a workflow's jobs work: `executor.workdir`, else beside the
/// store.
fn workdir(wf: &Workflow) -> PathBuf {
    wf.executor.workdir.clone().unwrap_or_else(|| {
        let mut name = wf.store.file_name().unwrap_or_default().to_os_string();
        name.push(".d");
        wf.store.with_file_name(name).join("slurm")
    })
}

/// A submitted job of a stage.
struct Slot {
    job: String,
    dir: PathBuf,
    /// The run, once claimed and handed to the job; `None` while the job is held.
    owned: Option<Owned>,
    /// What was last said about the job's state.
    said: String,
}

struct Driver<'a> {
    wf: &'a Workflow,
    dag: &'a Dag,
    binaries: &'a Binaries,
    opts: &'a Options,
    on_event: &'a OnEvent<'a>,
    store: Store,
    workdir: PathBuf,
    haq: PathBuf,
    queue: Queue<'a>,
    /// The stages with a job, which the queue has as started.
    flight: BTreeMap<usize, Slot>,
    /// Stages this process submitted a job for: a held job of an earlier `haq run` that
    /// depends on an earlier job of one of them would wait forever.
    fresh: BTreeSet<usize>,
    /// Jobs of earlier `haq run`s, by stage, with their states when this one started.
    earlier: BTreeMap<String, (BatchJob, Option<JobState>)>,
    /// Stages whose run another `haq run` holds (said once).
    waiting: BTreeSet<usize>,
    /// Since when squeue has failed, if it is failing.
    squeue_failing: Option<Instant>,
    /// Jobs seen PREEMPTED or NODE_FAIL, and since when: Slurm may yet requeue them.
    requeue_seen: BTreeMap<String, Instant>,
}

/// Runs `selection` as Slurm jobs, driving them from `store` (the workflow's).
pub(crate) fn run(
    wf: &Workflow,
    dag: &Dag,
    selection: &[usize],
    binaries: &Binaries,
    opts: &Options,
    store: Store,
    on_event: &OnEvent,
) -> Result<Summary> {
    let jobs = store.batch_jobs()?;
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    let mut states = commands::states(&ids)?;
    let earlier = jobs
        .into_iter()
        .map(|j| {
            let state = states.remove(&j.job_id);
            (j.stage.clone(), (j, state))
        })
        .collect();
    let haq = std::env::current_exe().map_err(|source| Error::Io {
        path: "haq".into(),
        source,
    })?;
    let mut driver = Driver {
        wf,
        dag,
        binaries,
        opts,
        on_event,
        store,
        workdir: workdir(wf),
        haq,
        queue: Queue::new(dag, selection),
        flight: BTreeMap::new(),
        fresh: BTreeSet::new(),
        earlier,
        waiting: BTreeSet::new(),
        squeue_failing: None,
        requeue_seen: BTreeMap::new(),
    };
    driver.drive()?;
    Ok(driver.queue.finish())
}

impl Driver<'_> {
    fn drive(&mut self) -> Result<()> {
        loop {
            if executor::interrupted() {
                return self.cancel_all();
            }
            self.start_what_can()?;
            self.prepare_held()?;
            if self.flight.is_empty() && self.queue.pending().is_empty() {
                return Ok(());
            }
            thread::sleep(POLL);
            self.poll()?;
        }
    }

    fn event(&self, event: Event) {
        (self.on_event)(&event)
    }

    fn job_event(&self, i: usize, job: &str, what: impl Into<String>) {
        self.event(Event::Job {
            stage: self.wf.stages[i].name.clone(),
            job: job.to_string(),
            what: what.into(),
        })
    }

    /// Submits (or re-attaches to) a job for every pending stage whose upstream stages
    /// are done or submitted, while fewer than `jobs` are in flight.
    fn start_what_can(&mut self) -> Result<()> {
        for i in self.queue.pending() {
            if self.flight.len() >= self.opts.jobs.max(1) {
                break;
            }
            let startable = self
                .dag
                .upstream(i)
                .iter()
                .all(|u| self.queue.is_complete(*u) || self.flight.contains_key(u));
            if !startable {
                continue;
            }
            if self.queue.ready(i) {
                self.start_ready(i)?;
            } else {
                self.start_held(i)?;
            }
        }
        Ok(())
    }

    /// Claims the run of a stage whose upstream stages are all done.
    fn claim(&self, i: usize) -> Result<Claimed> {
        let stage = &self.wf.stages[i];
        let key = run_key(
            &self.store,
            stage,
            &self.queue.upstream_runs(i),
            self.binaries,
        )?;
        let force = self.opts.force.contains(&stage.name);
        claim::claim(
            &self.store,
            &self.wf.name,
            stage,
            &key,
            force,
            self.on_event,
        )
    }

    /// A job is in flight for stage `i`.
    fn fly(&mut self, i: usize, slot: Slot) {
        self.queue.start(i);
        self.flight.insert(i, slot);
    }

    /// A stage whose upstream stages are all done: a cache hit, or a job that can run at
    /// once. Nothing while another `haq run` holds its run.
    fn start_ready(&mut self, i: usize) -> Result<()> {
        let name = self.wf.stages[i].name.clone();
        let earlier = self.earlier.remove(&name);
        let owned = match self.claim(i)? {
            Claimed::Busy(run) => {
                // That process watches the job too; leave it alone.
                if let Some(job) = earlier {
                    self.earlier.insert(name.clone(), job);
                }
                if self.waiting.insert(i) {
                    self.event(Event::Waiting {
                        stage: name,
                        run: run.id,
                    });
                }
                return Ok(());
            }
            Claimed::Cached(run) => {
                if let Some((job, state)) = earlier {
                    self.forget(&job, state.as_ref())?;
                }
                return self.cached(i, run);
            }
            Claimed::Owned(owned) => owned,
        };
        if let Some((job, state)) = earlier {
            let dir = PathBuf::from(&job.dir);
            let alive = state.as_ref().is_some_and(|s| !s.ended());
            let held = job.run_id.is_none();
            let mine = job.run_id == Some(owned.run.id);
            if alive && (mine || (held && self.deps_hold(i))) {
                self.job_event(
                    i,
                    &job.job_id,
                    format!("re-attached ({})", describe(&state)),
                );
                let mut slot = Slot {
                    job: job.job_id,
                    dir,
                    owned: None,
                    said: describe(&state),
                };
                if mine {
                    slot.owned = Some(owned);
                } else {
                    self.hand_over(i, &mut slot, owned)?;
                }
                self.fly(i, slot);
                return Ok(());
            }
            if mine {
                // It ended while no `haq run` watched it: take what it left, then resume
                // from there with a new job unless it completed the run.
                let state = state.unwrap_or_else(|| JobState {
                    state: "UNKNOWN".into(),
                    reason: "gone from squeue and sacct".into(),
                });
                let slot = Slot {
                    job: job.job_id,
                    dir,
                    owned: Some(owned),
                    said: String::new(),
                };
                return match self.settle_run(i, slot, &state, RunStatus::Interrupted)? {
                    None => Ok(()),
                    Some(owned) => self.submit_ready(i, owned),
                };
            }
            self.forget(&job, state.as_ref())?;
        }
        self.submit_ready(i, owned)
    }

    /// Whether a held job of an earlier `haq run` can still start: none of the stage's
    /// upstream stages got a new job since.
    fn deps_hold(&self, i: usize) -> bool {
        self.dag.upstream(i).iter().all(|u| !self.fresh.contains(u))
    }

    /// Cancels and forgets an earlier job that will not be used.
    fn forget(&mut self, job: &BatchJob, state: Option<&JobState>) -> Result<()> {
        if state.is_some_and(|s| !s.ended()) {
            commands::scancel(&[&job.job_id])?;
        }
        Ok(self.store.remove_batch_job(&job.stage)?)
    }

    fn cached(&mut self, i: usize, run: Run) -> Result<()> {
        claim::reuse(&self.store, &self.wf.stages[i].name, &run, self.on_event)?;
        self.queue.cached(i, run);
        Ok(())
    }

    /// Submits a job for an owned run that can start at once.
    fn submit_ready(&mut self, i: usize, owned: Owned) -> Result<()> {
        let dir = self.job_dir(i);
        let mut slot = Slot {
            job: String::new(),
            dir,
            owned: None,
            said: String::new(),
        };
        self.write_prepared(i, &slot.dir, Some(owned.run.id))?;
        slot.job = self.submit(i, &slot.dir, &[], false)?;
        slot.owned = Some(owned);
        self.record(i, &slot)?;
        self.fly(i, slot);
        Ok(())
    }

    /// Submits a held job for a stage whose upstream jobs have not all ended, or
    /// re-attaches to an earlier one.
    fn start_held(&mut self, i: usize) -> Result<()> {
        let name = self.wf.stages[i].name.clone();
        if let Some((job, state)) = self.earlier.remove(&name) {
            let alive = state.as_ref().is_some_and(|s| !s.ended());
            if alive && job.run_id.is_none() && self.deps_hold(i) {
                self.job_event(
                    i,
                    &job.job_id,
                    format!("re-attached ({})", describe(&state)),
                );
                let slot = Slot {
                    job: job.job_id,
                    dir: PathBuf::from(job.dir),
                    owned: None,
                    said: describe(&state),
                };
                self.fly(i, slot);
                return Ok(());
            }
            self.forget(&job, state.as_ref())?;
        }
        let deps: Vec<String> = self
            .dag
            .upstream(i)
            .iter()
            .filter_map(|u| self.flight.get(u).map(|s| s.job.clone()))
            .collect();
        let dir = self.job_dir(i);
        let prepared = dir.join(job::PREPARED);
        let _ = std::fs::remove_file(&prepared);
        let job = self.submit(i, &dir, &deps, true)?;
        let slot = Slot {
            job,
            dir,
            owned: None,
            said: String::new(),
        };
        self.record(i, &slot)?;
        self.fly(i, slot);
        Ok(())
    }

    /// Held jobs whose upstream stages are now all done get their run and are released.
    fn prepare_held(&mut self) -> Result<()> {
        let ready: Vec<usize> = self
            .flight
            .iter()
            .filter(|(i, slot)| slot.owned.is_none() && self.queue.ready(**i))
            .map(|(i, _)| *i)
            .collect();
        for i in ready {
            match self.claim(i)? {
                Claimed::Busy(run) => {
                    if self.waiting.insert(i) {
                        let stage = self.wf.stages[i].name.clone();
                        self.event(Event::Waiting { stage, run: run.id });
                    }
                }
                Claimed::Cached(run) => {
                    // The job still has to end well: its dependents wait on it.
                    let slot = self.flight.remove(&i).expect("in flight");
                    self.write_prepared(i, &slot.dir, None)?;
                    commands::release(&slot.job)?;
                    self.store.remove_batch_job(&self.wf.stages[i].name)?;
                    self.cached(i, run)?;
                }
                Claimed::Owned(owned) => {
                    let mut slot = self.flight.remove(&i).expect("in flight");
                    self.hand_over(i, &mut slot, owned)?;
                    self.flight.insert(i, slot);
                }
            }
        }
        Ok(())
    }

    /// Gives a held job its run: the job store, what to run, then the release.
    fn hand_over(&mut self, i: usize, slot: &mut Slot, owned: Owned) -> Result<()> {
        self.write_prepared(i, &slot.dir, Some(owned.run.id))?;
        slot.owned = Some(owned);
        self.record(i, slot)?;
        commands::release(&slot.job)?;
        self.job_event(i, &slot.job, "released");
        Ok(())
    }

    /// `<workdir>/<stage>/`.
    fn job_dir(&self, i: usize) -> PathBuf {
        self.workdir.join(&self.wf.stages[i].name)
    }

    /// Writes the job store of `run_id` (when there is a run) and `prepared.json`, the
    /// latter last and atomically: a job that sees it sees a complete store.
    fn write_prepared(&self, i: usize, dir: &Path, run_id: Option<i64>) -> Result<()> {
        let stage = &self.wf.stages[i];
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        if let Some(run_id) = run_id {
            self.store.export_job(run_id, &dir.join(job::STORE))?;
            let _ = std::fs::remove_file(dir.join(job::STAGE_LOG));
        }
        let binary = self
            .binaries
            .find(&stage.kind)
            .ok_or_else(|| Error::Stage {
                stage: stage.name.clone(),
                message: format!("no executable haq-{} beside haq or on PATH", stage.kind),
            })?;
        let prepared = job::Prepared { run_id, binary };
        let path = dir.join(job::PREPARED);
        let partial = dir.join(".prepared.json.partial");
        std::fs::write(
            &partial,
            serde_json::to_vec(&prepared).expect("serializable"),
        )
        .map_err(io(&partial))?;
        std::fs::rename(&partial, &path).map_err(io(&path))
    }

    /// Writes the batch script into `dir` and submits it; the job id.
    fn submit(&mut self, i: usize, dir: &Path, deps: &[String], held: bool) -> Result<String> {
        let stage = &self.wf.stages[i];
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let device = stage
            .params
            .get("device")
            .and_then(|d| d.as_str())
            .unwrap_or("cpu");
        let script = batch_script(
            &self.wf.name,
            &stage.name,
            &stage.slurm,
            device,
            self.wf.executor.requeue,
            &self.haq,
            dir,
        );
        let path = dir.join("job.sh");
        std::fs::write(&path, script).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut extra = Vec::new();
        if held {
            extra.push("--hold".to_string());
        }
        if !deps.is_empty() {
            extra.push(format!("--dependency=afterok:{}", deps.join(":")));
        }
        let job = commands::sbatch(&path, &extra).map_err(|e| Error::Stage {
            stage: stage.name.clone(),
            message: e.to_string(),
        })?;
        self.fresh.insert(i);
        let what = match (held, deps.is_empty()) {
            (false, _) => "submitted".to_string(),
            (true, true) => "submitted (held)".to_string(),
            (true, false) => format!("submitted (held; after {})", deps.join(", ")),
        };
        self.job_event(i, &job, what);
        Ok(job)
    }

    /// Keeps the job in the store, for re-attaching and for `haq status`.
    fn record(&self, i: usize, slot: &Slot) -> Result<()> {
        let (state, reason) = slot.said.split_once(' ').unwrap_or((&slot.said, ""));
        Ok(self.store.put_batch_job(&BatchJob {
            stage: self.wf.stages[i].name.clone(),
            job_id: slot.job.clone(),
            dir: slot.dir.to_string_lossy().into_owned(),
            run_id: slot.owned.as_ref().map(|o| o.run.id),
            state: if state.is_empty() { "PENDING" } else { state }.to_string(),
            reason: reason.trim_matches(|c| c == '(' || c == ')').to_string(),
        })?)
    }

    /// Asks Slurm about every job in flight; settles those that ended.
    fn poll(&mut self) -> Result<()> {
        let ids: Vec<String> = self.flight.values().map(|s| s.job.clone()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let states = match commands::states(&refs) {
            Ok(states) => {
                self.squeue_failing = None;
                states
            }
            Err(e) => {
                let since = *self.squeue_failing.get_or_insert_with(Instant::now);
                if since.elapsed() > SQUEUE_PATIENCE {
                    return Err(e);
                }
                return Ok(());
            }
        };
        let stages: Vec<usize> = self.flight.keys().copied().collect();
        for i in stages {
            // Settling a failed stage cancels its held dependents.
            let Some(slot) = self.flight.get(&i) else {
                continue;
            };
            let job = slot.job.clone();
            let state = states.get(&job).cloned().unwrap_or_else(|| JobState {
                state: "UNKNOWN".into(),
                reason: "gone from squeue and sacct".into(),
            });
            let seen_for = if self.wf.executor.requeue && state.may_be_requeued() {
                let since = *self
                    .requeue_seen
                    .entry(job.clone())
                    .or_insert_with(Instant::now);
                since.elapsed()
            } else {
                self.requeue_seen.remove(&job);
                Duration::ZERO
            };
            if state.over(self.wf.executor.requeue, seen_for) || !states.contains_key(&job) {
                self.requeue_seen.remove(&job);
                let slot = self.flight.remove(&i).expect("in flight");
                self.settle(i, slot, &state)?;
            } else if state.describe() != self.flight[&i].said {
                let said = state.describe();
                self.job_event(i, &job, said.clone());
                let slot = self.flight.get_mut(&i).expect("in flight");
                slot.said = said;
                self.record(i, &self.flight[&i])?;
            }
        }
        Ok(())
    }

    /// A job ended: import its run, then carry on with (or skip) its dependents.
    fn settle(&mut self, i: usize, slot: Slot, state: &JobState) -> Result<()> {
        if slot.owned.is_none() {
            // Cancelled (by someone else) while held: there is no run to import.
            let name = self.wf.stages[i].name.clone();
            self.store.remove_batch_job(&name)?;
            self.event(Event::Skipped {
                stage: name,
                because: format!("slurm job {} {} while held", slot.job, state.describe()),
            });
            return self.failed(i);
        }
        let otherwise = if executor::interrupted() {
            RunStatus::Interrupted
        } else {
            RunStatus::Failed
        };
        if self.settle_run(i, slot, state, otherwise)?.is_some() {
            // A failed or interrupted run stays resumable; this `haq run` is done with it.
            match otherwise {
                RunStatus::Interrupted => self.queue.interrupted(i),
                _ => self.failed(i)?,
            }
        }
        Ok(())
    }

    /// Imports an ended job's run into the store. Done: the stage is complete (`None`).
    /// Otherwise the run is recorded as `otherwise` with Slurm's reason and the stage's
    /// own, and handed back.
    fn settle_run(
        &mut self,
        i: usize,
        mut slot: Slot,
        state: &JobState,
        otherwise: RunStatus,
    ) -> Result<Option<Owned>> {
        let name = self.wf.stages[i].name.clone();
        let owned = slot.owned.take().expect("a run");
        let job_store = slot.dir.join(job::STORE);
        let stage_error = job_store
            .is_file()
            .then(|| Store::open(&job_store).and_then(|s| s.run(owned.run.id)))
            .transpose()?
            .and_then(|r| r.error);
        let mut message = format!("slurm job {} {}", slot.job, state.describe());
        if let Some(error) = stage_error {
            message = format!("{message}: {error}");
        }
        if otherwise == RunStatus::Interrupted && executor::interrupted() {
            message = format!("interrupted by the user; {message}");
        }
        let status = self
            .store
            .import_job(&owned.lock, &job_store, (otherwise, &message))?;
        self.append_logs(owned.run.id, &slot)?;
        self.store.remove_batch_job(&name)?;
        let id = owned.run.id;
        if status == RunStatus::Done {
            let _ = std::fs::remove_dir_all(&slot.dir);
            self.event(Event::Done {
                stage: name.clone(),
                run: id,
                seconds: owned.started.elapsed().as_secs_f64(),
            });
            let run = self.store.run(id)?;
            drop(owned);
            self.queue.executed(i, run);
            return Ok(None);
        }
        let event = match otherwise {
            RunStatus::Interrupted => Event::Interrupted {
                stage: name,
                run: id,
                message,
            },
            _ => Event::Failed {
                stage: name,
                run: id,
                message,
            },
        };
        self.event(event);
        Ok(Some(owned))
    }

    /// The stage's output and the job's own (Slurm's `slurm-<id>.out`) go to the run's log.
    fn append_logs(&self, run_id: i64, slot: &Slot) -> Result<()> {
        use std::io::Write;
        let path = self.store.log_path(run_id);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        for name in [
            job::STAGE_LOG.to_string(),
            format!("slurm-{}.out", slot.job),
        ] {
            if let Ok(bytes) = std::fs::read(slot.dir.join(&name)) {
                writeln!(log, "==> haq: {name} of slurm job {}", slot.job).map_err(io)?;
                log.write_all(&bytes).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Stage `i` failed: its dependents are skipped, their held jobs (whose dependency can
    /// never be satisfied) cancelled.
    fn failed(&mut self, i: usize) -> Result<()> {
        for d in self.queue.failed(i, self.on_event) {
            if let Some(slot) = self.flight.remove(&d) {
                commands::scancel(&[&slot.job])?;
                self.store.remove_batch_job(&self.wf.stages[d].name)?;
            }
        }
        Ok(())
    }

    /// Ctrl-C: cancels every job in flight, waits for them to end, and imports their
    /// runs as interrupted, resumable from their latest checkpoints.
    fn cancel_all(&mut self) -> Result<()> {
        let ids: Vec<String> = self.flight.values().map(|s| s.job.clone()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        commands::scancel(&refs)?;
        let start = Instant::now();
        while !self.flight.is_empty() && start.elapsed() < CANCEL_WAIT {
            let ids: Vec<String> = self.flight.values().map(|s| s.job.clone()).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let states = commands::states(&refs)?;
            let stages: Vec<usize> = self.flight.keys().copied().collect();
            for i in stages {
                let Some(slot) = self.flight.get(&i) else {
                    continue;
                };
                let job = &slot.job;
                let Some(state) = states.get(job).filter(|s| s.ended()).cloned() else {
                    if states.contains_key(job) {
                        continue;
                    }
                    // Gone: ended long enough ago for squeue to forget it.
                    let state = JobState {
                        state: "CANCELLED".into(),
                        reason: String::new(),
                    };
                    let slot = self.flight.remove(&i).expect("in flight");
                    self.settle_interrupted(i, slot, &state)?;
                    continue;
                };
                let slot = self.flight.remove(&i).expect("in flight");
                self.settle_interrupted(i, slot, &state)?;
            }
            thread::sleep(POLL);
        }
        // Jobs that did not end in time stay in the store: the next `haq run` finds them.
        for i in std::mem::take(&mut self.flight).into_keys() {
            self.queue.interrupted(i);
        }
        Ok(())
    }

    fn settle_interrupted(&mut self, i: usize, slot: Slot, state: &JobState) -> Result<()> {
        if slot.owned.is_none() {
            self.store.remove_batch_job(&self.wf.stages[i].name)?;
            self.queue.not_run(i);
            return Ok(());
        }
        if self
            .settle_run(i, slot, state, RunStatus::Interrupted)?
            .is_some()
        {
            self.queue.interrupted(i);
        }
        Ok(())
    }
}

fn describe(state: &Option<JobState>) -> String {
    state.as_ref().map_or("UNKNOWN".into(), JobState::describe)
}

/// The batch script of a stage's job: `#SBATCH` lines for what it asks for, then `haq
/// slurm-job DIR`. A `device: cuda` stage without `gres` asks for one GPU.
pub fn batch_script(
    workflow: &str,
    stage: &str,
    options: &SlurmOptions,
    device: &str,
    requeue: bool,
    haq: &Path,
    dir: &Path,
) -> String {
    let mut lines = vec![
        "#!/bin/sh".to_string(),
        format!("#SBATCH --job-name=haq:{workflow}:{stage}"),
        format!(
            "#SBATCH --output={}",
            sbatch_word(&format!(
                "{}/slurm-%j.out",
                // `%` starts a filename pattern (%j the job id); %% is a literal one.
                dir.to_string_lossy().replace('%', "%%")
            ))
        ),
        // A requeued job appends to its output rather than losing the first attempt's.
        "#SBATCH --open-mode=append".to_string(),
        format!(
            "#SBATCH --chdir={}",
            sbatch_word(
                &std::env::current_dir()
                    .unwrap_or_default()
                    .to_string_lossy()
            )
        ),
    ];
    if requeue {
        lines.push("#SBATCH --requeue".into());
    }
    let gres = options
        .gres
        .clone()
        .or_else(|| device.starts_with("cuda").then(|| "gpu:1".to_string()));
    let fields = [
        ("partition", &options.partition),
        ("account", &options.account),
        ("time", &options.time),
        ("cpus-per-task", &options.cpus.map(|c| c.to_string())),
        ("mem", &options.mem),
        ("gres", &gres),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{name}={value}"));
        }
    }
    lines.extend(options.sbatch.iter().map(|o| format!("#SBATCH {o}")));
    lines.push(format!(
        "exec {} slurm-job {}",
        shell_quote(&haq.to_string_lossy()),
        shell_quote(&dir.to_string_lossy())
    ));
    lines.join("\n") + "\n"
}

/// `s` as one word of an `#SBATCH` line. sbatch splits those lines at whitespace outside
/// double quotes, takes a backslash to escape the next character, and ends the line at an
/// unescaped `#`, even inside quotes (`_get_argument` in Slurm's src/sbatch/opt.c).
fn sbatch_word(s: &str) -> String {
    let mut word = String::from('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '#') {
            word.push('\\');
        }
        word.push(c);
    }
    word.push('"');
    word
}

/// `s` as one word for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
