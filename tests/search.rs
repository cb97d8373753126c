//! End-to-end tests of the search stage: the real `haq` binary running pretrain, calibrate
//! and search on Fashion-MNIST with a small MobileNet-V1, on a real store.
//!
//! The stages are built first (`cargo build` of the stage packages, in this test's
//! profile): `haq` runs the binaries beside it, and a test must not run stale ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use haq_store::{RunStatus, Store};
use serde_json::Value;

const HAQ: &str = env!("CARGO_BIN_EXE_haq");

/// The shared settings, pretrain (100 steps) and calibrate.
const UPSTREAM: &str = r#"
seed: 7
device: cpu
settings:
  dataset: {name: fashion-mnist, val_size: 500}
  model: {arch: mobilenetv1, width: 0.25}
stages:
  pretrain:
    run: pretrain
    params: {epochs: 1, batch_size: 64, lr: 0.1, warmup_epochs: 0.1, train_subset: 6400,
             augment: {crop_padding: 0, flip: false}}
  calibrate:
    run: calibrate
    needs: [pretrain]
    params: {hardware: [bismo-edge, bitfusion, size], calib_batch: 128}
"#;

/// Search stages, DDPG's of six episodes (three of warm-up), greedy's of widths 6..8 (55
/// probes and the walked policy, at a budget 6 bits everywhere meets): (name, hardware,
/// objective, budget, further params).
const SEARCHES: [(&str, &str, &str, &str, &str); 9] = [
    ("greedy", "bismo-edge", "latency", "{ratio: 0.85}", ""),
    ("greedy_again", "bismo-edge", "latency", "{ratio: 0.85}", ""),
    ("latency", "bismo-edge", "latency", "{ratio: 0.6}", ""),
    // The same search again, to interrupt.
    ("latency_again", "bismo-edge", "latency", "{ratio: 0.6}", ""),
    (
        "energy",
        "bitfusion",
        "energy",
        "{match: \"uniform:4\"}",
        "",
    ),
    ("size", "size", "size", "{ratio: 0.1}", ""),
    (
        "energy_on_bismo",
        "bismo-edge",
        "energy",
        "{ratio: 0.6}",
        "",
    ),
    (
        "unreachable",
        "bismo-edge",
        "latency",
        "{absolute: {value: 0.001, unit: ms}}",
        "",
    ),
    (
        "finalists",
        "bismo-edge",
        "latency",
        "{ratio: 0.6}",
        ", finalists: 3, finalist_val_subset: 300",
    ),
];

fn workflow() -> String {
    let mut yaml = UPSTREAM.to_string();
    for (name, hardware, objective, budget, more) in SEARCHES {
        let method = if name.starts_with("greedy") {
            "method: greedy, bits: {min: 6, max: 8}"
        } else {
            "episodes: 6, warmup: 3"
        };
        yaml += &format!(
            "  {name}:\n    run: search\n    needs: [pretrain, calibrate]\n    params: \
             {{hardware: {hardware}, objective: {objective}, budget: {budget}, {method}, \
             reward: finetune, finetune_steps: 4, finetune_batch: 32, \
             train_subset: 256, val_subset: 200{more}}}\n"
        );
    }
    yaml
}

struct Project {
    dir: PathBuf,
}

/// The project all tests share, so pretrain and calibrate run once.
fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        build_stages();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("search-e2e");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("workflow.yaml"), workflow()).unwrap();
        Project { dir }
    })
}

fn build_stages() {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--quiet",
        "-p",
        "haq-pretrain",
        "-p",
        "haq-calibrate",
        "-p",
        "haq-search",
    ]);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let status = cargo.status().unwrap();
    assert!(status.success(), "building the stages failed");
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HAQ);
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn haq(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.join(".haq/store.db")).unwrap()
    }

    /// The latest run of `stage`.
    fn run(&self, stage: &str) -> haq_store::Run {
        self.store().runs(Some(stage)).unwrap().remove(0)
    }

    /// Every metric of the latest run of `stage` but the timings, as (key, step, value).
    fn metrics(&self, stage: &str) -> Vec<(String, i64, f64)> {
        let run = self.run(stage);
        self.store()
            .metrics(run.id, None)
            .unwrap()
            .into_iter()
            .filter(|m| !m.key.starts_with("time_"))
            .map(|m| (m.key, m.step, m.value))
            .collect()
    }

    fn output(&self, stage: &str, name: &str) -> Value {
        let store = self.store();
        let run = self.run(stage);
        let digest = &store.outputs(run.id).unwrap()[name];
        serde_json::from_slice(&store.get_bytes(digest).unwrap()).unwrap()
    }
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "haq failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    format!("{stdout}{stderr}")
}

/// The process id of `parent`'s child called `name`, if it has one.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once(" (")?.1;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && comm == name).then(|| entry.file_name().to_str()?.parse().ok())?
        })
}

/// Runs `reference`, then `again` (the same search) killed by SIGKILL once episode
/// `kill_after` has logged its metrics, resumed: the resumed run's metrics and outputs are
/// the uninterrupted one's, byte for byte. Returns the reference's episodes.
fn killed_mid_way_resumes(reference: &str, again: &str, kill_after: i64) -> Vec<Value> {
    let p = project();
    ok(&p.haq(&["run", reference]));

    let mut haq = p
        .command(&["run", again])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let stage = loop {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the search never got going"
        );
        // (A haq-search child may also be `haq-search --haq-identity`, before the run.)
        let store = p.store();
        let run = store.runs(Some(again)).unwrap().into_iter().next();
        let logged = run.map(|r| store.metrics(r.id, Some("reward")).unwrap());
        if logged.is_some_and(|m| m.last().is_some_and(|m| m.step >= kill_after)) {
            if let Some(pid) = child_named(haq.id(), "haq-search") {
                break pid;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on a process our child started.
    let sent = unsafe { libc::kill(stage as libc::pid_t, libc::SIGKILL) };
    assert_eq!(sent, 0);
    assert!(!haq.wait().unwrap().success());
    let killed = p.run(again);
    assert_ne!(killed.status, RunStatus::Done);
    let expected = p.metrics(reference);
    let episodes = expected.iter().filter(|m| m.0 == "reward").count() as i64;
    assert!(
        p.metrics(again).iter().all(|m| m.1 < episodes - 1),
        "killed too late"
    );

    let log = ok(&p.haq(&["run", again]));
    assert!(log.contains("resuming after episode"), "{log}");
    let resumed = p.run(again);
    assert_eq!((resumed.id, resumed.attempts), (killed.id, 2));
    assert_eq!(p.metrics(again), expected);
    // Every output, byte for byte: timings are in the metrics only.
    let store = p.store();
    assert_eq!(
        store.outputs(p.run(again).id).unwrap(),
        store.outputs(p.run(reference).id).unwrap()
    );
    let episodes = p.output(reference, "episodes");
    episodes.as_array().unwrap().clone()
}

#[test]
fn a_search_killed_mid_way_resumes_to_the_results_of_an_uninterrupted_one() {
    // Killed once four episodes (one past the warm-up) have logged metrics.
    let episodes = killed_mid_way_resumes("latency", "latency_again", 3);
    assert_eq!(episodes.len(), 6);
    // Not a degenerate search: the agent met different policies and accuracies.
    assert!(episodes
        .iter()
        .any(|e| e["policy"] != episodes[0]["policy"]));
    assert!(episodes
        .iter()
        .any(|e| e["accuracy"] != episodes[0]["accuracy"]));
}

#[test]
fn a_greedy_search_killed_among_its_probes_resumes_exactly() {
    let episodes = killed_mid_way_resumes("greedy", "greedy_again", 20);
    // The widest policy, 27 searched layers at 7 and 6 bits, then the walked policy,
    // the only one not a probe and the only one within budget.
    assert_eq!(episodes.len(), 1 + 27 * 2 + 1);
    let (probes, walked) = episodes.split_at(episodes.len() - 1);
    assert!(probes.iter().all(|e| e["probe"] == true));
    assert!(walked[0].get("probe").is_none());
    assert!(walked[0]["cost_ratio"].as_f64().unwrap() <= 1.0);
    let summary = project().output("greedy", "search_summary");
    assert_eq!(summary["method"], "greedy");
    assert_eq!(summary["chosen_episode"], episodes.len() - 1);
    let front = summary["details"]["front"].as_array().unwrap();
    assert!(front.len() > 1, "{summary}");
    assert!(front.last().unwrap()["cost"].as_f64() <= summary["budget_value"].as_f64());
}

#[test]
fn every_episode_of_every_objective_keeps_within_its_budget() {
    let p = project();
    let log = ok(&p.haq(&["run", "energy", "size"]));
    for (stage, model, unit) in [
        ("energy", "bitfusion", "energy_mj"),
        ("size", "size", "size_bytes"),
    ] {
        let summary = p.output(stage, "search_summary");
        let budget = summary["budget_value"].as_f64().unwrap();
        let episodes = p.output(stage, "episodes");
        let episodes = episodes.as_array().unwrap();
        assert_eq!(episodes.len(), 6, "{stage}");
        for e in episodes {
            let ratio = e["cost_ratio"].as_f64().unwrap();
            assert!(
                ratio <= 1.0,
                "{stage}: episode {} at {ratio} of budget",
                e["episode"]
            );
            assert!(e["cost"].as_f64().unwrap() <= budget, "{stage}");
        }
        let ratios = p.metrics(stage).into_iter().filter(|m| m.0 == "cost_ratio");
        assert_eq!(ratios.filter(|m| m.2 <= 1.0).count(), 6, "{stage}");

        // The best policy, costed on every cost model the calibrate stage tabulated.
        let policy = p.output(stage, "policy");
        let costs = policy["costs"].as_object().unwrap();
        assert_eq!(costs.len(), 3, "{stage}: {costs:?}");
        let own = costs[model][unit].as_f64().unwrap();
        assert_eq!(own, summary["best_cost"].as_f64().unwrap(), "{stage}");
        assert!(own <= budget, "{stage}");
        let layers = policy["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 28);
        // Size is searched in k-means mode: weights only; energy pins the first layer.
        if stage == "size" {
            assert!(layers.iter().all(|l| l.get("a_bits").is_none()), "{policy}");
        } else {
            assert_eq!(layers[0], serde_json::json!({"w_bits": 8, "a_bits": 8}));
        }
    }
    assert!(log.contains("mean time per episode"), "{log}");
    assert!(log.contains("finetune") && log.contains("agent"), "{log}");
}

#[test]
fn finalists_are_scored_again_on_unseen_images_and_the_best_of_them_is_the_output() {
    let p = project();
    ok(&p.haq(&["run", "finalists"]));
    let summary = p.output("finalists", "search_summary");
    let episodes = p.output("finalists", "episodes");
    let finalists = summary["finalists"].as_array().unwrap();
    assert_eq!(finalists.len(), 3, "{summary}");
    let field = |v: &Value, k: &str| v[k].as_f64().unwrap();
    // Ranked by reward, the search's best first, each with its episode's own numbers.
    assert_eq!(finalists[0]["episode"], summary["best_episode"]);
    for pair in finalists.windows(2) {
        assert!(
            field(&pair[0], "reward") >= field(&pair[1], "reward"),
            "{summary}"
        );
    }
    for f in finalists {
        let e = &episodes[f["episode"].as_u64().unwrap() as usize];
        assert_eq!(f["reward"], e["reward"]);
        assert_eq!(f["search_accuracy"], e["accuracy"]);
        assert!((0.0..=100.0).contains(&field(f, "accuracy")));
    }
    // The output is the finalist with the best accuracy on the new images (first on ties).
    let best = finalists.iter().fold(&finalists[0], |w, f| {
        if field(f, "accuracy") > field(w, "accuracy") {
            f
        } else {
            w
        }
    });
    assert_eq!(summary["chosen_episode"], best["episode"]);
    let policy = p.output("finalists", "policy");
    assert_eq!(policy["episode"], best["episode"]);
    assert_eq!(policy["finalist_accuracy"], best["accuracy"]);
    let chosen = &episodes[best["episode"].as_u64().unwrap() as usize];
    assert_eq!(policy["layers"], chosen["policy"]["layers"]);
    assert!(
        field(&summary, "finalist_float_accuracy") > 50.0,
        "{summary}"
    );
}

#[test]
fn an_objective_the_cost_model_lacks_or_an_unreachable_budget_fails_with_the_reason() {
    let p = project();
    let out = p.haq(&["run", "energy_on_bismo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bismo-edge") && err.contains("energy on bitfusion"),
        "{err}"
    );

    let out = p.haq(&["run", "unreachable"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be met") && err.contains("least achievable cost"),
        "{err}"
    );
    assert!(p.metrics("unreachable").is_empty(), "an episode ran");
}
