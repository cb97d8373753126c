//! Slurm's own commands, run as child processes: `sbatch` submits, `scontrol release`
//! lets a held job go, `squeue` (then `sacct`, for a job squeue has forgotten) reports
//! states, `scancel` cancels. They read the cluster from the environment as usual
//! (`SLURM_CONF`, or the installed configuration).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long a requeueable job may show PREEMPTED or NODE_FAIL before it counts as ended.
pub const REQUEUE_PATIENCE: Duration = Duration::from_secs(60);

/// A job's state as Slurm names it (`PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, ...)
/// and the reason it gives (`Dependency`, `NonZeroExitCode`, `None`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
}

impl JobState {
    /// Whether the job is over: nothing of it runs and Slurm will not start it again.
    /// `COMPLETING` is not: its processes may still be writing.
    pub fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "PREEMPTED"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "REVOKED"
        )
    }

    /// A state Slurm leaves a job in for good unless the job was submitted with
    /// `--requeue`, in which case it puts the job back in the queue as PENDING: preempted,
    /// or its node failed (sbatch(1), --requeue; squeue(1), JOB STATE CODES).
    pub fn may_be_requeued(&self) -> bool {
        matches!(self.state.as_str(), "PREEMPTED" | "NODE_FAIL")
    }

    /// Whether a job seen in this state for `seen_for` is over for good. With `requeue`,
    /// PREEMPTED and NODE_FAIL are over only once they have lasted [`REQUEUE_PATIENCE`]:
    /// a poll may see them before Slurm requeues the job, and a cluster whose PreemptMode
    /// cancels keeps them.
    pub fn over(&self, requeue: bool, seen_for: Duration) -> bool {
        self.ended() && !(requeue && self.may_be_requeued() && seen_for < REQUEUE_PATIENCE)
    }

    /// `STATE` or `STATE (Reason)` when the reason says something.
    pub fn describe(&self) -> String {
        match self.reason.as_str() {
            "" | "None" => self.state.clone(),
            reason => format!("{} ({reason})", self.state),
        }
    }
}

/// Runs a Slurm command; its stdout, or an error with its stderr.
fn slurm(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Slurm(format!(
                "cannot run {program}: {e} (is Slurm installed and on PATH?)"
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Slurm(format!(
            "{program} {}: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits the batch script at `script` (its `#SBATCH` lines say what it asks for); the
/// new job's id.
pub fn sbatch(script: &Path, extra: &[String]) -> Result<String> {
    let script = script.to_string_lossy();
    let mut args: Vec<&str> = vec!["--parsable"];
    args.extend(extra.iter().map(String::as_str));
    args.push(&script);
    let out = slurm("sbatch", &args)?;
    // --parsable prints `id` or `id;cluster`.
    let id = out.trim().split(';').next().unwrap_or_default();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Slurm(format!(
            "sbatch printed {out:?}, not a job id"
        )));
    }
    Ok(id.to_string())
}

/// Lets a held job be scheduled.
pub fn release(job: &str) -> Result<()> {
    slurm("scontrol", &["release", job]).map(drop)
}

/// Cancels jobs; ones already over are not an error.
pub fn scancel(jobs: &[&str]) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    slurm("scancel", jobs).map(drop)
}

/// The states of `jobs`. squeue knows a finished job for `MinJobAge` (300 s by default);
/// an older one is looked up with sacct where accounting is on. A job neither knows is
/// left out.
pub fn states(jobs: &[&str]) -> Result<BTreeMap<String, JobState>> {
    let mut found = BTreeMap::new();
    if jobs.is_empty() {
        return Ok(found);
    }
    let list = jobs.join(",");
    match slurm(
        "squeue",
        &["-h", "-t", "all", "-j", &list, "-o", "%i|%T|%r"],
    ) {
        Ok(out) => {
            for line in out.lines() {
                let mut parts = line.splitn(3, '|');
                if let (Some(id), Some(state), Some(reason)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    let state = JobState {
                        state: state.trim().to_string(),
                        reason: reason.trim().to_string(),
                    };
                    found.insert(id.trim().to_string(), state);
                }
            }
        }
        // squeue fails when none of the ids is known any more; sacct may still know them.
        Err(Error::Slurm(message)) if message.contains("Invalid job id") => {}
        Err(e) => return Err(e),
    }
    let missing: Vec<&str> = jobs
        .iter()
        .copied()
        .filter(|j| !found.contains_key(*j))
        .collect();
    for job in missing {
        if let Some(state) = sacct(job) {
            found.insert(job.to_string(), state);
        }
    }
    Ok(found)
}

/// A job's final state from accounting, if accounting is on and knows it.
fn sacct(job: &str) -> Option<JobState> {
    let out = slurm(
        "sacct",
        &["-n", "-X", "-P", "-j", job, "-o", "State,ExitCode"],
    )
    .ok()?;
    let line = out.lines().next()?;
    let (state, exit) = line.split_once('|')?;
    // sacct writes `CANCELLED by 0`; the first word is the state.
    let state = state.split_whitespace().next()?.to_string();
    Some(JobState {
        state,
        reason: format!("exit code {exit}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> JobState {
        JobState {
            state: name.into(),
            reason: "None".into(),
        }
    }

    #[test]
    fn preempted_and_node_fail_end_a_requeueable_job_only_once_they_last() {
        let moment = Duration::from_secs(1);
        for name in ["PREEMPTED", "NODE_FAIL"] {
            let s = state(name);
            assert!(s.ended());
            assert!(!s.over(true, moment), "{name} may be requeued");
            assert!(s.over(true, REQUEUE_PATIENCE), "{name} kept is final");
            assert!(s.over(false, moment), "{name} without --requeue is final");
        }
        for name in [
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
        ] {
            assert!(state(name).over(true, Duration::ZERO), "{name}");
        }
        for name in ["PENDING", "RUNNING", "REQUEUED", "COMPLETING", "SUSPENDED"] {
            assert!(!state(name).over(false, REQUEUE_PATIENCE), "{name}");
        }
    }
}
