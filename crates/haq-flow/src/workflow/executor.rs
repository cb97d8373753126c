//! The `executor:` block: where stages run (locally, or as Slurm jobs) and what a Slurm
//! job asks for. At the top it sets the defaults of every stage; in a stage it overrides
//! them for that stage. Not part of any fingerprint: it changes where a stage runs, not
//! what it computes.

use std::path::PathBuf;

use serde::Deserialize;

/// Where `haq run` runs stale stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    /// Child processes of `haq run` (the default).
    #[default]
    Local,
    /// One `sbatch` job per stage.
    Slurm,
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(ExecutorKind::Local),
            "slurm" => Ok(ExecutorKind::Slurm),
            other => Err(format!("unknown executor {other:?}: use local or slurm")),
        }
    }
}

/// What a Slurm job asks for; each field left out is Slurm's (or the cluster's) default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// `--time`, e.g. `04:00:00` or `2-00:00:00`.
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem`, e.g. `16G`.
    pub mem: Option<String>,
    /// `--gres`, e.g. `gpu:1`; a stage with `device: cuda` and no gres asks for `gpu:1`.
    pub gres: Option<String>,
    /// More `sbatch` options, as written (`--qos=high`, `--constraint=a100`).
    pub sbatch: Vec<String>,
}

impl SlurmOptions {
    /// These options with `over`'s fields in place of ours; sbatch options add up, ours
    /// first (sbatch takes the last of a repeated option).
    pub fn merged(&self, over: &SlurmOptions) -> SlurmOptions {
        SlurmOptions {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            gres: over.gres.clone().or_else(|| self.gres.clone()),
            sbatch: [self.sbatch.clone(), over.sbatch.clone()].concat(),
        }
    }
}

/// The workflow's executor settings (the top-level block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorSpec {
    /// `kind:`; `haq run --executor` overrides it.
    pub kind: ExecutorKind,
    /// `workdir:`, resolved against the workflow file's folder: where Slurm jobs keep
    /// their directories. It must be on a filesystem the compute nodes share (see
    /// docs/slurm.md); by default `<store>.d/slurm/`.
    pub workdir: Option<PathBuf>,
    /// Whether a job asks Slurm to requeue it when preempted or its node fails
    /// (`--requeue`); default true.
    pub requeue: bool,
}

/// The block as written; the same keys at the top and in a stage, except that `kind`,
/// `workdir` and `requeue` belong to the top.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "an executor block: a map with kind:, workdir:, requeue:, partition:, account:, time:, cpus:, mem:, gres:, sbatch:"
)]
pub(super) struct RawExecutor {
    pub kind: Option<String>,
    pub workdir: Option<String>,
    pub requeue: Option<bool>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub gres: Option<String>,
    pub sbatch: Option<Vec<String>>,
}

impl RawExecutor {
    /// The Slurm options, or the field at fault and what to write instead.
    pub fn options(&self) -> Result<SlurmOptions, (&'static str, String)> {
        if self.cpus == Some(0) {
            return Err(("cpus", "0 CPUs; use 1 or more".into()));
        }
        let words = [
            ("partition", &self.partition),
            ("account", &self.account),
            ("time", &self.time),
            ("mem", &self.mem),
            ("gres", &self.gres),
        ];
        for (field, value) in words {
            // Each becomes one sbatch argument: a space or newline would be a mistake.
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.contains(char::is_whitespace))
            {
                return Err((
                    field,
                    format!("{value:?}: write one word, e.g. gres: gpu:1"),
                ));
            }
        }
        let sbatch = self.sbatch.clone().unwrap_or_default();
        if let Some(bad) = sbatch.iter().find(|o| !o.starts_with('-')) {
            return Err((
                "sbatch",
                format!("{bad:?} is not an option; write each as --name=value"),
            ));
        }
        Ok(SlurmOptions {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            cpus: self.cpus,
            mem: self.mem.clone(),
            gres: self.gres.clone(),
            sbatch,
        })
    }

    /// The top-level settings, with `workdir` still as written.
    pub fn spec(&self) -> Result<(ExecutorKind, Option<String>, bool), (&'static str, String)> {
        let kind = match &self.kind {
            Some(k) => k.parse().map_err(|m| ("kind", m))?,
            None => ExecutorKind::Local,
        };
        Ok((kind, self.workdir.clone(), self.requeue.unwrap_or(true)))
    }

    /// A stage's block may not set what only the top can.
    pub fn check_stage_level(&self) -> Result<(), (&'static str, String)> {
        let top_only = [
            ("kind", self.kind.is_some()),
            ("workdir", self.workdir.is_some()),
            ("requeue", self.requeue.is_some()),
        ];
        match top_only.into_iter().find(|(_, set)| *set) {
            Some((field, _)) => Err((
                field,
                format!("{field}: applies to the whole workflow; move it to the top-level executor: block"),
            )),
            None => Ok(()),
        }
    }
}
