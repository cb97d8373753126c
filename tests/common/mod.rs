//! Helpers shared by the end-to-end tests: a project directory with a workflow file,
//! the real `haq` binary run in it, and its store.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use haq_store::{RunStatus, Store};

/// A completed stage: its name, the digest of its `result` output, its metric rows.
pub type StageResult = (String, String, Vec<(String, i64, f64)>);

pub const HAQ: &str = env!("CARGO_BIN_EXE_haq");

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(workflow: &str) -> Project {
        Project::in_dir_named("", workflow)
    }

    /// A project whose directory's name starts with `prefix` (e.g. with spaces in it).
    pub fn in_dir_named(prefix: &str, workflow: &str) -> Project {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        std::fs::write(dir.path().join("workflow.yaml"), workflow).unwrap();
        Project { dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HAQ);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn haq(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join(".haq/store.db")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.store_path()).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (stage, attempts) of every run, oldest first.
    pub fn runs(&self) -> Vec<(String, i64)> {
        let mut runs: Vec<_> = self
            .store()
            .runs(None)
            .unwrap()
            .into_iter()
            .map(|r| (r.stage, r.attempts))
            .collect();
        runs.reverse();
        runs
    }

    /// Every stage's final output digest and metric rows, to compare two projects.
    pub fn results(&self) -> Vec<StageResult> {
        let store = self.store();
        let mut out = Vec::new();
        for run in store
            .runs(None)
            .unwrap()
            .into_iter()
            .filter(|r| r.status == RunStatus::Done)
        {
            let outputs = store.outputs(run.id).unwrap();
            let metrics = store
                .metrics(run.id, None)
                .unwrap()
                .into_iter()
                .map(|m| (m.key, m.step, m.value))
                .collect();
            out.push((run.stage, outputs["result"].0.clone(), metrics));
        }
        out.sort_by(|x, y| x.0.cmp(&y.0));
        out
    }
}

/// Every done run's outputs by stage: output name -> digest.
pub fn outputs(store: &Store) -> BTreeMap<String, BTreeMap<String, String>> {
    store
        .runs(None)
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RunStatus::Done)
        .map(|r| {
            let outputs = store.outputs(r.id).unwrap();
            let digests = outputs.into_iter().map(|(k, d)| (k, d.0)).collect();
            (r.stage, digests)
        })
        .collect()
}

pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "haq failed: {}\n{stderr}", out.status);
    stderr
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn kill9(pid: u32) {
    // SAFETY: kill(2) on a child process we started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

/// The highest step at which the stage's latest run logged metric `key`.
pub fn logged_steps(store_path: &Path, stage: &str, key: &str) -> i64 {
    let Ok(store) = Store::open(store_path) else {
        return 0;
    };
    let Some(run) = store
        .runs(Some(stage))
        .ok()
        .and_then(|r| r.into_iter().next())
    else {
        return 0;
    };
    store
        .metrics(run.id, Some(key))
        .map(|m| m.iter().map(|m| m.step).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether to run: `HAQ_SLURM_TESTS=1`, else a note on how.
pub fn slurm_tests_enabled() -> bool {
    if std::env::var("HAQ_SLURM_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "Slurm tests not run: HAQ_SLURM_TESTS is not 1. scripts/test starts a local Slurm and \
         runs them; or `scripts/slurm start` (as root), then \
         SLURM_CONF=/tmp/haq-slurm/slurm.conf HAQ_SLURM_TESTS=1 cargo test --release --test slurm"
    );
    false
}
