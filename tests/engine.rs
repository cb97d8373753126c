//! End-to-end tests of the engine: the real `haq` binary running the `haq-example`
//! stage on a real SQLite store.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{kill9, logged_steps, ok, wait_until, Project};
use haq_store::RunStatus;

const CHAIN: &str = "
name: chain
seed: 7
stages:
  a:
    run: example
    params: {steps: 3}
  b:
    run: example
    needs: [a]
    matrix: {offset: [1, 2]}
    params: {steps: 2, offset: \"${matrix.offset}\"}
  c:
    run: example
    needs: [b]
    params: {steps: 2}
";

#[test]
fn a_second_run_is_all_cache_hits() {
    let p = Project::new(CHAIN);
    let first = ok(&p.haq(&["run"]));
    assert!(first.contains("4 ran, 0 up to date"), "{first}");
    let second = ok(&p.haq(&["run"]));
    assert!(second.contains("0 ran, 4 up to date"), "{second}");
    assert_eq!(p.runs().len(), 4, "nothing new was recorded");
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert_eq!(
        status.lines().filter(|l| l.contains(" fresh ")).count(),
        4,
        "{status}"
    );
}

#[test]
fn a_changed_param_reruns_that_stage_and_its_dependents_only() {
    let p = Project::new(CHAIN);
    ok(&p.haq(&["run"]));
    let status = String::from_utf8(p.haq(&["status", "--set", "b@1.steps=3"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("b@1 ") && l.contains("param steps: 2 -> 3")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("c ") && l.contains("upstream b@1 is stale")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("b@2 ") && l.contains("fresh")),
        "{status}"
    );
    let out = ok(&p.haq(&["run", "--set", "b@1.steps=3"]));
    assert!(out.contains("2 ran, 2 up to date"), "{out}");
    let stages: Vec<String> = p.runs().into_iter().skip(4).map(|(s, _)| s).collect();
    assert_eq!(stages, ["b@1", "c"]);
    // Going back to the old value is a cache hit again: results are keyed by content.
    let back = ok(&p.haq(&["run"]));
    assert!(back.contains("0 ran, 4 up to date"), "{back}");
}

/// Replicates of `b` at two seeds, each with its own downstream `c`, sharing `a`.
const REPLICATES: &str = "
name: replicates
seed: 7
stages:
  a:
    run: example
    params: {steps: 2}
  b:
    run: example
    needs: [a]
    matrix: {seed: &seeds [0, 1]}
    params: {steps: 2}
  c:
    run: example
    needs: [\"b@${matrix.seed}\"]
    matrix: {seed: *seeds}
    params: {steps: 1}
";

#[test]
fn replicates_share_their_upstream_run_and_a_new_seed_runs_only_its_replicates() {
    let p = Project::new(REPLICATES);
    let first = ok(&p.haq(&["run"]));
    assert!(first.contains("5 ran, 0 up to date"), "{first}");
    let stages: Vec<String> = p.runs().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        stages.iter().filter(|s| *s == "a").count(),
        1,
        "one a for every replicate: {stages:?}"
    );
    // Each replicate ran with its seed, the matrix's, not the workflow's 7.
    let params = String::from_utf8(p.haq(&["show", "b@1"]).stdout).unwrap();
    assert!(
        params.contains("\"seed\": 1") || params.contains("seed: 1"),
        "{params}"
    );

    // A third seed: only its replicates run; the first two are up to date.
    let three = REPLICATES.replace("[0, 1]", "[0, 1, 2]");
    std::fs::write(p.path("workflow.yaml"), three).unwrap();
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("b@2 ") && l.contains("never run")),
        "{status}"
    );
    let out = ok(&p.haq(&["run"]));
    assert!(out.contains("2 ran, 5 up to date"), "{out}");
    let new: Vec<String> = p.runs().into_iter().skip(5).map(|(s, _)| s).collect();
    assert_eq!(new, ["b@2", "c@2"]);
}

#[test]
fn run_selects_targets_with_their_upstream_and_force_reruns() {
    let p = Project::new(CHAIN);
    let out = ok(&p.haq(&["run", "b@2"]));
    assert!(out.contains("2 ran"), "{out}");
    let stages: Vec<String> = p.runs().into_iter().map(|(s, _)| s).collect();
    assert_eq!(stages, ["a", "b@2"]);
    let forced = ok(&p.haq(&["run", "a", "--force", "a"]));
    assert!(forced.contains("1 ran"), "{forced}");
}

fn slow(steps: u32, sleep_ms: u32, state_bytes: u32, pid_file: &Path) -> String {
    format!(
        "name: slow\nstages:\n  prep:\n    run: example\n    params: {{steps: 2}}\n  long:\n    run: example\n    needs: [prep]\n    \
         params: {{steps: {steps}, sleep_ms: {sleep_ms}, state_bytes: {state_bytes}, pid_file: {:?}}}\n",
        pid_file.display()
    )
}

#[test]
fn a_killed_stage_resumes_from_its_checkpoint_with_identical_results() {
    let reference = Project::new("");
    let pid_ref = reference.path("pid");
    std::fs::write(reference.path("workflow.yaml"), slow(12, 0, 0, &pid_ref)).unwrap();
    ok(&reference.haq(&["run"]));

    let p = Project::new("");
    let pid_file = p.path("pid");
    std::fs::write(p.path("workflow.yaml"), slow(12, 150, 0, &pid_file)).unwrap();
    let haq = p.spawn(&["run"]);
    wait_until("step 4", Duration::from_secs(60), || {
        logged_steps(&p.store_path(), "long", "step") >= 4
    });
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill9(pid);
    let out = haq.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("killed by signal 9"));
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("long") && l.contains("interrupted")),
        "{status}"
    );

    let resumed = ok(&p.haq(&["run"]));
    assert!(
        resumed.contains("long: resuming run 2 from its checkpoint at step"),
        "{resumed}"
    );
    let long = p.store().latest_done("long").unwrap().unwrap();
    assert_eq!(long.attempts, 2);
    // Metric rows after the kill were dropped and redone: one row per step, as uninterrupted.
    let steps: Vec<i64> = p
        .store()
        .metrics(long.id, Some("step"))
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    let strip = |mut r: Vec<common::StageResult>| {
        r.retain(|(stage, ..)| stage == "long");
        r.into_iter()
            .map(|(_, digest, metrics)| (digest, metrics))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(p.results()), strip(reference.results()));
}

#[test]
fn two_concurrent_runs_execute_each_stage_exactly_once() {
    let p = Project::new("");
    std::fs::write(p.path("workflow.yaml"), slow(6, 100, 0, &p.path("pid"))).unwrap();
    let first = p.spawn(&["run"]);
    let second = p.spawn(&["run"]);
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let (a, b) = (ok(&a), ok(&b));
    assert_eq!(
        p.runs(),
        [("prep".to_string(), 1), ("long".to_string(), 1)],
        "{a}\n{b}"
    );
    let ran = [&a, &b]
        .iter()
        .map(|o| o.matches(": done (run").count())
        .sum::<usize>();
    assert_eq!(ran, 2, "each stage executed once in total:\n{a}\n{b}");
}

#[test]
fn kill9_during_store_writes_leaves_a_sound_store() {
    let p = Project::new("");
    // 2 MiB checkpoints every step: most of the stage's time is spent writing the store.
    std::fs::write(
        p.path("workflow.yaml"),
        slow(40, 0, 2 << 20, &p.path("pid")),
    )
    .unwrap();
    for delay_ms in [150u64, 400, 650] {
        let mut haq = p.spawn(&["run"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Killing haq kills its stage too (parent-death signal), mid-write.
        kill9(haq.id());
        haq.wait().unwrap();
        let pid: u32 = std::fs::read_to_string(p.path("pid"))
            .map(|s| s.trim().parse().unwrap_or(0))
            .unwrap_or(0);
        if pid != 0 {
            // SAFETY: kill(2) with signal 0 sends nothing; it asks whether the pid exists.
            wait_until("the stage to die", Duration::from_secs(10), || unsafe {
                libc::kill(pid as i32, 0) != 0
            });
        }
        let store = p.store();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        for run in store.runs(None).unwrap() {
            if run.status == RunStatus::Done {
                assert!(
                    store.outputs(run.id).unwrap().contains_key("result"),
                    "a done run has its output"
                );
            } else {
                assert_ne!(run.status, RunStatus::Running, "no live process holds it");
            }
        }
    }
    ok(&p.haq(&["run"]));
    let long = p.store().latest_done("long").unwrap().unwrap();
    let steps: Vec<i64> = p
        .store()
        .metrics(long.id, Some("step"))
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, (1..=40).collect::<Vec<_>>());
}

#[test]
fn a_stage_being_run_shows_its_live_metrics_and_its_dependents_one_cause() {
    let p = Project::new("");
    let workflow = slow(30, 100, 0, &p.path("pid"))
        + "  after:\n    run: example\n    needs: [long]\n    params: {steps: 1}\n"
        + "  last:\n    run: example\n    needs: [long, after]\n    params: {steps: 1}\n";
    std::fs::write(p.path("workflow.yaml"), workflow).unwrap();
    let haq = p.spawn(&["run"]);
    wait_until("step 2", Duration::from_secs(60), || {
        logged_steps(&p.store_path(), "long", "step") >= 2
    });
    let out = p.haq(&["metrics", "long", "step"]);
    let note = ok(&out);
    assert!(
        note.contains("no completed run; this is run 2, which is running"),
        "{note}"
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("step") && l.contains(" 2 ")),
        "{table}"
    );
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    let line = |stage: &str| status.lines().find(|l| l.starts_with(stage)).unwrap();
    assert!(
        line("after").ends_with("  upstream long is running"),
        "{status}"
    );
    assert!(
        line("last").ends_with("  upstream long is running; 1 more upstream stage not fresh"),
        "{status}"
    );
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(haq.id() as i32, libc::SIGINT) };
    haq.wait_with_output().unwrap();
}

#[test]
fn ctrl_c_stops_the_stage_and_leaves_it_resumable() {
    let p = Project::new("");
    std::fs::write(p.path("workflow.yaml"), slow(30, 100, 0, &p.path("pid"))).unwrap();
    let haq = p.spawn(&["run"]);
    wait_until("step 2", Duration::from_secs(60), || {
        logged_steps(&p.store_path(), "long", "step") >= 2
    });
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(haq.id() as i32, libc::SIGINT) };
    let out = haq.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let long = p.store().runs(Some("long")).unwrap().remove(0);
    assert_eq!(long.status, RunStatus::Interrupted);
    assert!(p.store().latest_checkpoint(long.id).unwrap().is_some());
    ok(&p.haq(&["run"]));
    assert_eq!(p.store().run(long.id).unwrap().status, RunStatus::Done);
}

#[test]
fn a_failing_stage_is_reported_logged_and_skips_its_dependents() {
    let p = Project::new(
        "stages:\n  a:\n    run: example\n    params: {steps: 3, fail_at: 2}\n  b:\n    run: example\n    needs: [a]\n    params: {steps: 1}\n",
    );
    let out = p.haq(&["run"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a: FAILED (run 1): haq-example: failing at step 2 as asked (fail_at)"),
        "{stderr}"
    );
    assert!(stderr.contains("b: skipped (a failed)"), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("haq: not every stage completed"),
        "{stderr}"
    );
    let log = String::from_utf8(p.haq(&["log", "a"]).stdout).unwrap();
    assert!(log.contains("step 1: acc"), "{log}");
    assert!(log.contains("failing at step 2"), "{log}");
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("failed")),
        "{status}"
    );
}

#[test]
fn inspection_commands_print_runs_metrics_and_outputs() {
    let p = Project::new(CHAIN);
    ok(&p.haq(&["run"]));
    let csv =
        String::from_utf8(p.haq(&["metrics", "a", "step", "--format", "csv"]).stdout).unwrap();
    assert_eq!(
        csv,
        "run,key,step,value,time\n".to_string()
            + &csv
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
    );
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r[0], r[1], r[2], r[3]))
            .collect::<Vec<_>>(),
        [
            ("1", "step", "1", "1"),
            ("1", "step", "2", "2"),
            ("1", "step", "3", "3")
        ]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&p.haq(&["runs", "--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    assert_eq!(json[0]["stage"], "c");
    let show = String::from_utf8(p.haq(&["show", "c"]).stdout).unwrap();
    assert!(
        show.contains("b@1/result") && show.contains("b@2/result") && show.contains("outputs"),
        "{show}"
    );
    let missing = p.haq(&["show", "nope"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no completed run of stage \"nope\""), "{err}");
    let gc = String::from_utf8(p.haq(&["gc"]).stdout).unwrap();
    assert!(gc.contains("removed 0 artifacts"), "{gc}");
}

#[test]
fn the_runs_table_sizes_its_columns_to_long_stage_names() {
    let long = "a-stage-name-longer-than-any-default-column";
    let p = Project::new(&format!(
        "stages:\n  short:\n    run: example\n    params: {{steps: 1}}\n  \"{long}\":\n    \
         run: example\n    params: {{steps: 1}}\n"
    ));
    ok(&p.haq(&["run"]));
    let table = String::from_utf8(p.haq(&["runs"]).stdout).unwrap();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().any(|r| r.contains(long)), "{table}");
    // Every left-aligned column starts where its header does, on every row.
    for column in ["stage", "status", "started", "fingerprint"] {
        let at = header.find(column).unwrap();
        for row in &rows {
            assert!(
                at == 0 || row.as_bytes()[at - 1] == b' ',
                "{column} is not aligned:\n{table}"
            );
            assert_ne!(
                row.as_bytes()[at],
                b' ',
                "{column} is not aligned:\n{table}"
            );
        }
    }
}

#[test]
fn a_bad_workflow_is_one_clear_line() {
    let p = Project::new("stages:\n  a:\n    run: example\n    needs: [nope]\n");
    let out = p.haq(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("workflow.yaml:4:") && err.contains("nope"),
        "{err}"
    );
    let p = Project::new("stages:\n  a:\n    run: no-such-kind\n");
    let err = String::from_utf8_lossy(&p.haq(&["run"]).stderr).into_owned();
    assert!(
        err.contains("workflow.yaml:3:10: stages.a.run: unknown stage kind \"no-such-kind\""),
        "{err}"
    );
    assert!(
        err.contains("known kinds: ") && err.contains("example"),
        "{err}"
    );
}

#[test]
fn a_file_listed_in_deps_is_an_input_and_editing_it_reruns_the_stage() {
    let p = Project::new(
        "
name: deps
stages:
  a:
    run: example
    deps: [policy.json]
    params: {steps: 2}
  b:
    run: example
    needs: [a]
    params: {steps: 1}
",
    );
    let missing = p.haq(&["run"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("stage a: deps: cannot read policy.json"),
        "{stderr}"
    );

    std::fs::write(p.path("policy.json"), "[8, 4]").unwrap();
    assert!(ok(&p.haq(&["run"])).contains("2 ran, 0 up to date"));
    let store = p.store();
    let a = store.latest_done("a").unwrap().unwrap();
    let stored = &store.inputs(a.id).unwrap()["file:policy.json"];
    assert_eq!(
        store.get_bytes(stored).unwrap(),
        b"[8, 4]",
        "the file is kept"
    );

    std::fs::write(p.path("policy.json"), "[8, 2]").unwrap();
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("deps: file policy.json changed")),
        "{status}"
    );
    // The example stage folds its inputs into its result, so b reruns too.
    assert!(ok(&p.haq(&["run"])).contains("2 ran, 0 up to date"));
    // Content, not time, decides: the old contents are a cache hit again.
    std::fs::write(p.path("policy.json"), "[8, 4]").unwrap();
    assert!(ok(&p.haq(&["run"])).contains("0 ran, 2 up to date"));
}

/// On a terminal, haq draws every running stage's bar from the progress the stage reports,
/// pinned below the stage output it echoes, as cargo does. Before, each stage drew its own
/// bar on the terminal, and the screen read `[b]        b [=====>    ] 5/8 (2s)step 5`.
/// The screen is read back from a real terminal emulator (tmux), history included.
#[test]
fn on_a_terminal_the_bars_stay_below_the_stage_output() {
    let p = Project::new(
        "
name: bars
jobs: 2
stages:
  a:
    run: example
    params: {steps: 8, sleep_ms: 150}
  b:
    run: example
    params: {steps: 6, sleep_ms: 200}
",
    );
    let socket = format!("haq-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = std::process::Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("running tmux (scripts/setup installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let command = format!(
        "cd {} && {} run; echo haq-exit-$?; sleep 120",
        p.dir.path().display(),
        common::HAQ
    );
    tmux(&["new-session", "-d", "-x", "100", "-y", "40", &command]);
    let (mut screen, mut bars_seen) = (String::new(), false);
    wait_until("haq run in tmux", Duration::from_secs(60), || {
        screen = tmux(&["capture-pane", "-p", "-S", "-"]);
        bars_seen |= screen.contains("a: steps [") || screen.contains("b: steps [");
        screen.contains("haq-exit-")
    });
    tmux(&["kill-server"]);
    assert!(screen.contains("haq-exit-0"), "{screen}");
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    for (stage, steps) in [("a", 8), ("b", 6)] {
        for step in 1..=steps {
            let prefix = format!("[{stage}] step {step}: acc ");
            let found: Vec<&&str> = lines.iter().filter(|l| l.contains(&prefix)).collect();
            assert_eq!(found.len(), 1, "{prefix}:\n{screen}");
            let acc = found[0].strip_prefix(&prefix);
            assert!(
                acc.is_some_and(|n| n.parse::<u64>().is_ok()),
                "something was drawn into the line {:?}:\n{screen}",
                found[0]
            );
        }
    }
    // Drawn while their stages ran, gone once they are done.
    assert!(bars_seen, "no progress bar was drawn");
    assert!(!screen.contains("=>"), "{screen}");
    let log = String::from_utf8(p.haq(&["log", "a"]).stdout).unwrap();
    assert!(
        log.contains("step 8: acc") && !log.contains('\x1b'),
        "{log}"
    );
}

/// A stage's workspace files come back on a cache hit, as DVC's checkout restores outputs:
/// deleted, edited, or in a fresh directory running the same workflow on the same store.
#[test]
fn a_cache_hit_writes_back_missing_or_changed_workspace_files() {
    let p = Project::new(
        "
name: ws
stages:
  a:
    run: example
    params: {steps: 2, workspace_file: out/result.json}
  b:
    run: example
    needs: [a]
    params: {steps: 1}
",
    );
    ok(&p.haq(&["run"]));
    let file = p.path("out/result.json");
    let original = std::fs::read(&file).unwrap();
    assert!(ok(&p.haq(&["run"])).contains("a: up to date (run 1)\n"));

    std::fs::remove_dir_all(p.path("out")).unwrap();
    let status = String::from_utf8(p.haq(&["status"]).stdout).unwrap();
    assert!(
        status.contains(
            "fresh        run 1; 1 workspace file missing or changed, e.g. out/result.json"
        ),
        "{status}"
    );
    let again = ok(&p.haq(&["run"]));
    assert!(again.contains("0 ran, 2 up to date"), "{again}");
    assert!(again.contains("restored 1 workspace file\n"), "{again}");
    assert_eq!(std::fs::read(&file).unwrap(), original);

    std::fs::write(&file, "edited").unwrap();
    assert!(ok(&p.haq(&["run"])).contains("restored 1 workspace file"));
    assert_eq!(std::fs::read(&file).unwrap(), original);

    // Another directory, the same workflow and store: the file appears there too.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::HAQ)
        .args(["run", "-f"])
        .arg(p.path("workflow.yaml"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("0 ran"), "{text}");
    assert_eq!(
        std::fs::read(elsewhere.path().join("out/result.json")).unwrap(),
        original
    );
}
