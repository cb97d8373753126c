//! The Slurm executor against a real Slurm: a single node on localhost that
//! `scripts/slurm start` sets up (scripts/test does, with `HAQ_SLURM_TESTS=1`). Without
//! that variable these tests say so and pass; with it, a missing Slurm fails them. The
//! smoke workflow through Slurm is compared with the local executor's in tests/smoke.rs,
//! which already runs it locally.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{kill9, logged_steps, ok, slurm_tests_enabled, wait_until, Project};
use haq_store::{RunStatus, Store};

/// A chain with a matrix stage, so some jobs wait on two upstream jobs.
fn chain(name: &str) -> String {
    format!(
        "name: {name}
seed: 7
stages:
  a:
    run: example
    params: {{steps: 3}}
  b:
    run: example
    needs: [a]
    matrix: {{offset: [1, 2]}}
    params: {{steps: 2, offset: \"${{matrix.offset}}\"}}
  c:
    run: example
    needs: [b]
    params: {{steps: 2, workspace_file: out/c.json}}
"
    )
}

/// A workflow name no other test (or earlier test run) uses: squeue lists jobs by it.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Every job Slurm knows of a workflow's stage (finished ones stay listed for MinJobAge).
fn jobs_named(workflow: &str, stage: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i", "-n"])
        .arg(format!("haq:{workflow}:{stage}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "squeue: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The job the store records for a stage, once there is one.
fn recorded_job(p: &Project, stage: &str) -> Option<haq_store::BatchJob> {
    Store::open(&p.store_path())
        .ok()?
        .batch_jobs()
        .ok()?
        .into_iter()
        .find(|j| j.stage == stage)
}

fn job_state(job: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%T", "-j", job])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_chain_through_slurm_gives_the_local_results_and_caches() {
    if !slurm_tests_enabled() {
        return;
    }
    let name = unique("chain");
    let local = Project::new(&chain(&name));
    let start = Instant::now();
    ok(&local.haq(&["run"]));
    let local_s = start.elapsed().as_secs_f64();

    let p = Project::new(&chain(&name));
    let start = Instant::now();
    let out = ok(&p.haq(&["run", "--executor", "slurm", "-j", "8"]));
    let slurm_s = start.elapsed().as_secs_f64();
    println!(
        "4 example stages: local {local_s:.2} s, slurm {slurm_s:.2} s; driver overhead {:.2} s per job",
        (slurm_s - local_s) / 4.0
    );
    assert!(out.contains("4 ran, 0 up to date"), "{out}");
    // Downstream jobs were queued, held, behind their upstream jobs.
    assert!(out.contains("c: slurm job"), "{out}");
    assert!(out.contains("submitted (held; after "), "{out}");
    assert_eq!(
        p.results(),
        local.results(),
        "identical outputs and metrics"
    );
    assert_eq!(
        std::fs::read(p.path("out/c.json")).unwrap(),
        std::fs::read(local.path("out/c.json")).unwrap()
    );
    assert!(
        p.store().batch_jobs().unwrap().is_empty(),
        "every job settled"
    );
    let log = String::from_utf8(p.haq(&["log", "c"]).stdout).unwrap();
    assert!(
        log.contains("step 2: acc"),
        "the stage's output is in its log: {log}"
    );

    let again = ok(&p.haq(&["run", "--executor", "slurm"]));
    assert!(again.contains("0 ran, 4 up to date"), "{again}");
    assert!(
        !again.contains("slurm job"),
        "a cache hit submits nothing: {again}"
    );
    // Local and Slurm runs share the cache: the executor is no part of a fingerprint.
    let local_again = ok(&p.haq(&["run"]));
    assert!(local_again.contains("0 ran, 4 up to date"), "{local_again}");
}

#[test]
fn a_project_whose_path_has_spaces_and_a_hash_runs_through_slurm() {
    if !slurm_tests_enabled() {
        return;
    }
    let name = unique("spaces");
    let p = Project::in_dir_named("my runs #2 100% ", &chain(&name));
    let out = ok(&p.haq(&["run", "--executor", "slurm", "-j", "8"]));
    assert!(out.contains("4 ran, 0 up to date"), "{out}");
    // The job's output went where its #SBATCH --output line says, under the project.
    let log = String::from_utf8(p.haq(&["log", "c"]).stdout).unwrap();
    assert!(log.contains("step 2: acc"), "{log}");
    assert!(p.path("out/c.json").is_file(), "--chdir was the project");
}

#[test]
fn a_killed_haq_run_reattaches_to_its_jobs_and_submits_nothing_twice() {
    if !slurm_tests_enabled() {
        return;
    }
    let name = unique("reattach");
    let workflow = format!(
        "name: {name}
stages:
  first:
    run: example
    params: {{steps: 8, sleep_ms: 400}}
  second:
    run: example
    needs: [first]
    params: {{steps: 2}}
  third:
    run: example
    needs: [second]
    params: {{steps: 2}}
"
    );
    let p = Project::new(&workflow);
    let haq = p.spawn(&["run", "--executor", "slurm", "-j", "4"]);
    // First running, the other two queued (held behind it).
    wait_until("first's job running", Duration::from_secs(60), || {
        recorded_job(&p, "third").is_some()
            && recorded_job(&p, "first").is_some_and(|j| job_state(&j.job_id) == "RUNNING")
    });
    kill9(haq.id());
    haq.wait_with_output().unwrap();
    let held = recorded_job(&p, "third").unwrap();
    assert!(
        ["PENDING", ""].contains(&job_state(&held.job_id).as_str()) || held.run_id.is_none(),
        "third is queued"
    );
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("first") && l.contains("slurm job") && l.contains("RUNNING")),
        "{status}"
    );

    let out = ok(&p.haq(&["run", "--executor", "slurm", "-j", "4"]));
    assert_eq!(out.matches("re-attached").count(), 3, "{out}");
    assert!(!out.contains("submitted"), "{out}");
    for stage in ["first", "second", "third"] {
        assert_eq!(
            jobs_named(&name, stage).len(),
            1,
            "one job for {stage}: {out}"
        );
    }
    let first = p.store().latest_done("first").unwrap().unwrap();
    let steps: Vec<i64> = p
        .store()
        .metrics(first.id, Some("step"))
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>());
}

/// Workflow `name`'s one 12-step stage `long` through Slurm, slowed to 250 ms a step,
/// once its job has logged step 4; and the reference: the same stage run locally at full
/// speed. Returns (reference, project, its running `haq run`, the job's id).
fn long_job_past_step_4(name: &str) -> (Project, Project, Child, String) {
    let workflow = |sleep_ms| {
        format!("name: {name}\nstages:\n  long:\n    run: example\n    params: {{steps: 12, sleep_ms: {sleep_ms}}}\n")
    };
    let reference = Project::new(&workflow(0));
    ok(&reference.haq(&["run"]));

    let p = Project::new(&workflow(250));
    let haq = p.spawn(&["run", "--executor", "slurm"]);
    let job_store = p.path(".haq/store.db.d/slurm/long/store.db");
    wait_until("step 4 in the job", Duration::from_secs(60), || {
        job_store.exists() && logged_steps(&job_store, "long", "step") >= 4
    });
    let job = recorded_job(&p, "long").unwrap().job_id;
    (reference, p, haq, job)
}

/// A stage's result digest and metric rows.
type Unnamed = (String, Vec<(String, i64, f64)>);

/// The results of `p`'s stages, without the stages' names.
fn unnamed_results(p: &Project) -> Vec<Unnamed> {
    p.results()
        .into_iter()
        .map(|(_, digest, metrics)| (digest, metrics))
        .collect()
}

#[test]
fn a_job_cancelled_mid_stage_resumes_from_its_checkpoint() {
    if !slurm_tests_enabled() {
        return;
    }
    let (reference, p, haq, job) = long_job_past_step_4(&unique("cancel"));
    assert!(Command::new("scancel")
        .arg(&job)
        .status()
        .unwrap()
        .success());
    let out = haq.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("long: FAILED (run 1): slurm job {job} CANCELLED")),
        "{stderr}"
    );
    let saved = p.store().latest_checkpoint(1).unwrap().unwrap().step;
    assert!(saved >= 4, "the job's checkpoint was imported: {saved}");

    let resumed = ok(&p.haq(&["run", "--executor", "slurm"]));
    assert!(
        resumed.contains(&format!(
            "long: resuming run 1 from its checkpoint at step {saved}"
        )),
        "{resumed}"
    );
    let log = String::from_utf8(p.haq(&["log", "long"]).stdout).unwrap();
    assert!(log.contains(&format!("resuming at step {saved}")), "{log}");
    assert_eq!(unnamed_results(&p), unnamed_results(&reference));
}

#[test]
fn a_failing_stage_fails_with_slurms_reason_and_its_dependents_do_not_run() {
    if !slurm_tests_enabled() {
        return;
    }
    let workflow = format!(
        "name: {}
stages:
  bad:
    run: example
    params: {{steps: 5, fail_at: 2}}
  after:
    run: example
    needs: [bad]
    params: {{steps: 1}}
",
        unique("failing")
    );
    let p = Project::new(&workflow);
    let out = p.haq(&["run", "--executor", "slurm", "-j", "4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let failed = stderr
        .lines()
        .find(|l| l.contains("bad: FAILED"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        failed.contains("FAILED (NonZeroExitCode): haq-example: failing at step 2 as asked"),
        "{failed}"
    );
    assert!(stderr.contains("after: skipped (bad failed)"), "{stderr}");
    assert!(
        stderr.contains("failed: bad, not run: after") || stderr.contains("not run: after"),
        "{stderr}"
    );
    let run = p.store().runs(Some("bad")).unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Failed);
    assert!(p.store().runs(Some("after")).unwrap().is_empty());
    assert!(
        p.store().batch_jobs().unwrap().is_empty(),
        "the held job was cancelled"
    );
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("bad") && l.contains("NonZeroExitCode")),
        "{status}"
    );
}

#[test]
fn ctrl_c_cancels_the_jobs_and_leaves_the_run_resumable() {
    if !slurm_tests_enabled() {
        return;
    }
    let workflow = format!(
        "name: {}\nstages:\n  long:\n    run: example\n    params: {{steps: 20, sleep_ms: 200}}\n",
        unique("ctrlc")
    );
    let p = Project::new(&workflow);
    let haq = p.spawn(&["run", "--executor", "slurm"]);
    let job_store = p.path(".haq/store.db.d/slurm/long/store.db");
    wait_until("step 3 in the job", Duration::from_secs(60), || {
        job_store.exists() && logged_steps(&job_store, "long", "step") >= 3
    });
    let job = recorded_job(&p, "long").unwrap().job_id;
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(haq.id() as i32, libc::SIGINT) };
    let out = haq.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("long: interrupted (run 1"), "{stderr}");
    assert_eq!(job_state(&job), "CANCELLED");
    let run = p.store().run(1).unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    let resumed = ok(&p.haq(&["run", "--executor", "slurm"]));
    assert!(
        resumed.contains("long: resuming run 1 from its checkpoint"),
        "{resumed}"
    );
}

#[test]
fn a_requeued_job_resumes_from_its_checkpoint_under_the_same_id() {
    if !slurm_tests_enabled() {
        return;
    }
    let name = unique("requeue");
    let (reference, p, haq, job) = long_job_past_step_4(&name);
    // As preemption does: the job is stopped and queued again under its id; Slurm starts
    // it again after its credentials' lifetime (scripts/slurm sets 10 s).
    let scontrol = |args: &[&str]| {
        assert!(Command::new("scontrol")
            .args(args)
            .status()
            .unwrap()
            .success())
    };
    scontrol(&["requeue", &job]);
    let out = haq.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(jobs_named(&name, "long"), [job], "{stderr}");
    let log = String::from_utf8(p.haq(&["log", "long"]).stdout).unwrap();
    assert!(log.contains("resuming at step"), "{log}");
    assert_eq!(unnamed_results(&p), unnamed_results(&reference));
}
