//! Slurm's own commands, run as child processes: `sbatch` submits, `scontrol release`
//! lets a held job go, `squeue` (then `sacct`, for a job squeue has forgotten) reports
//! states, `scancel` cancels. They read the cluster from the environment as usual
//! (`SLURM_CONF`, or the installed configuration).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

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
