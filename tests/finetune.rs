//! The real finetune stage through `haq run` on a tiny workflow (a narrow MobileNet-V2
//! pretrained briefly on real Fashion-MNIST): exact resume after `kill -9` mid-epoch in
//! both modes, 8-bit linear finetuning close to float, costs from the calibrate stage's
//! tables, k-means weight sharing in the output weights, and the policy-source errors.
//!
//! The tests share one store: the pretrain and calibrate stages run once, and each test
//! adds its finetune stages in a workflow file of its own beside the shared one (the
//! shared stages keep their fingerprints, so they are cache hits). The store is left under
//! the target directory's test scratch space for inspection (`haq log`, `haq metrics`).
//!
//! The stage executables must sit beside `haq`: `cargo build --release --workspace` first.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{kill9, ok, wait_until, HAQ};
use haq_core::arch::LayerInfo;
use haq_core::hw::{CostTable, Unit};
use haq_core::quant::{IntegerModel, LayerBits, Policy};
use haq_store::{RunStatus, Store};
use serde_json::Value;
use tch::Device;

/// One epoch of pretraining takes MobileNet-V2 at width 0.25 well above chance (about 58%
/// test top-1).
const SHARED: &str = "
seed: 4
settings:
  dataset: {name: fashion-mnist, val_size: 1000}
  model: {arch: mobilenetv2, width: 0.25}
stages:
  pretrain:
    run: pretrain
    params: {epochs: 1, batch_size: 64, lr: 0.05, warmup_epochs: 0.1, train_subset: 3840}
  calibrate:
    run: calibrate
    needs: [pretrain]
    params: {hardware: [bismo-edge, bitfusion, size], calib_batch: 128}
";

/// A finetune stage `name` with `policy` and the tiny recipe every test uses.
fn finetune(name: &str, policy: &str) -> String {
    format!(
        "  {name}:\n    run: finetune\n    needs: [pretrain, calibrate]\n    params: {{policy: \
         \"{policy}\", epochs: 2, batch_size: 64, lr: 0.01, train_subset: 1000}}\n"
    )
}

/// The shared project folder, with the pretrain and calibrate stages done.
fn project() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let haq = Path::new(HAQ);
        for stage in ["haq-pretrain", "haq-calibrate", "haq-finetune"] {
            assert!(
                haq.with_file_name(stage).is_file(),
                "{stage} is not beside {HAQ}: run `cargo build --release --workspace` first"
            );
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("finetune");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shared.yaml"), SHARED).unwrap();
        ok(&haq_in(&dir, &["run", "-f", "shared.yaml"]));
        dir
    })
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(HAQ);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    cmd
}

fn haq_in(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

/// Writes `file` (the shared stages plus `stages`) into the project; returns the project.
fn workflow(file: &str, stages: &str) -> &'static Path {
    let dir = project();
    std::fs::write(dir.join(file), format!("{SHARED}{stages}")).unwrap();
    dir
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join(".haq/store.db")).unwrap()
}

/// A done run's outputs and metrics (by key and step), `epoch_seconds` (wall time) left out.
struct Results {
    outputs: BTreeMap<String, Vec<u8>>,
    metrics: BTreeMap<(String, i64), f64>,
}

fn results(store: &Store, run_id: i64) -> Results {
    let run = store.run(run_id).unwrap();
    assert_eq!(run.status, RunStatus::Done, "run {run_id} of {}", run.stage);
    let outputs = store
        .outputs(run_id)
        .unwrap()
        .into_iter()
        .map(|(name, digest)| (name, store.get_bytes(&digest).unwrap()))
        .collect();
    let metrics = store
        .metrics(run_id, None)
        .unwrap()
        .into_iter()
        .filter(|m| m.key != "epoch_seconds")
        .map(|m| ((m.key, m.step), m.value))
        .collect();
    Results { outputs, metrics }
}

/// The one done run of `stage`'s results.
fn done(store: &Store, stage: &str) -> Results {
    let run = store.latest_done(stage).unwrap().expect("a done run");
    results(store, run.id)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let child = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so read after its `)`.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
}

/// Runs `stage` of `file`, kills its process with SIGKILL early in its second (last)
/// epoch, resumes it, then reruns it from scratch with `--force`; returns the resumed run's
/// results and the uninterrupted run's.
fn kill_resume_and_rerun(file: &str, stage: &str) -> (Results, Results) {
    let dir = project();
    let haq = command(dir, &["run", "-f", file, stage])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = || {
        let store = store(dir);
        let run = store.runs(Some(stage)).unwrap().into_iter().next()?;
        let step = store.latest_checkpoint(run.id).unwrap()?.step;
        Some((run.id, step))
    };
    wait_until(
        "the first epoch's checkpoint",
        Duration::from_secs(300),
        || checkpoint().is_some(),
    );
    // A little way into the second epoch (an epoch takes several seconds).
    std::thread::sleep(Duration::from_millis(1500));
    let stages = children(haq.id());
    assert_eq!(stages.len(), 1, "one stage process runs: {stages:?}");
    kill9(stages[0]);
    let out = haq.wait_with_output().unwrap();
    assert!(!out.status.success(), "haq reports the killed stage");
    let (run_id, step) = checkpoint().unwrap();
    assert_eq!(step, 1, "killed during the second epoch");
    assert_eq!(
        store(dir).run(run_id).unwrap().status,
        RunStatus::Interrupted
    );

    let resumed = ok(&haq_in(dir, &["run", "-f", file, stage]));
    assert!(
        resumed.contains(&format!(
            "{stage}: resuming run {run_id} from its checkpoint at step 1"
        )),
        "{resumed}"
    );
    ok(&haq_in(dir, &["run", "-f", file, stage, "--force", stage]));
    let store = store(dir);
    let runs = store.runs(Some(stage)).unwrap();
    assert_eq!(runs.len(), 2, "the resumed run and the forced rerun");
    assert_eq!(runs[1].id, run_id);
    assert_eq!(runs[1].attempts, 2);
    assert_eq!(runs[0].attempts, 1);
    (results(&store, run_id), results(&store, runs[0].id))
}

fn assert_same(resumed: &Results, reference: &Results) {
    assert_eq!(
        resumed.outputs.keys().collect::<Vec<_>>(),
        [
            "accuracy",
            "costs",
            "policy",
            "policy_source",
            "quantized_model",
            "replicate",
            "weights"
        ]
    );
    for (name, bytes) in &resumed.outputs {
        assert!(
            *bytes == reference.outputs[name],
            "output {name} differs between the resumed and the uninterrupted run"
        );
    }
    assert_eq!(resumed.metrics, reference.metrics);
}

/// Tensors of a safetensors file, as (dtype, shape, data bytes), by name.
fn safetensors(bytes: &[u8]) -> BTreeMap<String, (String, Vec<usize>, &[u8])> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = json(&bytes[8..8 + header_len]);
    let data = &bytes[8 + header_len..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            let range = &info["data_offsets"];
            let (begin, end) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
            let shape = serde_json::from_value(info["shape"].clone()).unwrap();
            let dtype = info["dtype"].as_str().unwrap().to_string();
            (
                name.clone(),
                (dtype, shape, &data[begin as usize..end as usize]),
            )
        })
        .collect()
}

fn f32_values(dtype: &str, data: &[u8]) -> Vec<f32> {
    assert_eq!(dtype, "F32");
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The calibrate stage's layer table.
fn layers() -> Vec<LayerInfo> {
    let outputs = done(&store(project()), "calibrate").outputs;
    serde_json::from_slice(&outputs["layers"]).unwrap()
}

#[test]
fn an_8_bit_linear_finetune_resumes_exactly_after_kill_9_and_stays_close_to_float() {
    let n = layers().len();
    workflow("w8.yaml", &finetune("w8", "uniform:8"));
    let (w8, reference) = kill_resume_and_rerun("w8.yaml", "w8");
    assert_same(&w8, &reference);

    let calibrate = done(&store(project()), "calibrate").outputs;
    let float = json(&calibrate["float_accuracy"])["test_top1"]
        .as_f64()
        .unwrap();
    let accuracy = json(&w8.outputs["accuracy"]);
    let top1 = accuracy["test_top1"].as_f64().unwrap();
    println!("test top-1: float {float:.2}%, uniform:8 finetuned {top1:.2}%; {accuracy}");
    assert!(float > 40.0, "pretraining fell short: {float}%");
    assert!(top1 >= float - 2.0, "w8 loses {:.2} points", float - top1);
    assert_eq!(w8.metrics[&("test_top1".to_string(), 2)], top1);

    let policy: Policy = serde_json::from_slice(&w8.outputs["policy"]).unwrap();
    assert_eq!(policy, Policy::uniform(n, 8));
    assert_eq!(
        json(&w8.outputs["policy_source"]),
        serde_json::json!({"param": "uniform:8"})
    );
    let exported = IntegerModel::load(&w8.outputs["quantized_model"], Device::Cpu).unwrap();
    assert_eq!(exported.policy(), &policy);
    // The trained activation clips are part of the weights, one per layer.
    let weights = safetensors(&w8.outputs["weights"]);
    for i in 0..n {
        let (dtype, shape, data) = &weights[&format!("quant.input_clip_{i}")];
        assert!(shape.is_empty(), "a scalar clip");
        let clip = f32_values(dtype, data)[0];
        assert!(clip > 0.0, "layer {i}: clip {clip}");
    }

    let tables: BTreeMap<String, CostTable> =
        serde_json::from_slice(&calibrate["cost_tables"]).unwrap();
    let costs = json(&w8.outputs["costs"]);
    let expected = [
        (
            "bismo-edge",
            vec![("latency_ms", Unit::Ms), ("cycles", Unit::Cycles)],
        ),
        (
            "bitfusion",
            vec![
                ("latency_ms", Unit::Ms),
                ("energy_mj", Unit::Mj),
                ("cycles", Unit::Cycles),
            ],
        ),
        ("size", vec![("size_bytes", Unit::Bytes)]),
    ];
    assert_eq!(costs.as_object().unwrap().len(), expected.len(), "{costs}");
    for (model, quantities) in expected {
        let total = tables[model].total(&policy.bits());
        let cost = &costs[model];
        assert_eq!(cost.as_object().unwrap().len(), quantities.len() + 1);
        assert_eq!(cost["batch"], tables[model].batch);
        for (key, unit) in quantities {
            assert_eq!(cost[key].as_f64(), Some(total.value(unit)), "{model} {key}");
            assert!(total.value(unit) > 0.0, "{model} {key}");
            assert_eq!(
                w8.metrics[&(format!("{model}.{key}"), 2)],
                total.value(unit)
            );
        }
    }
}

#[test]
fn a_kmeans_finetune_resumes_exactly_and_shares_2_to_the_b_values_per_layer() {
    let layers = layers();
    // Layers alternate 2 and 3 bits; the policy file is named relative to the folder haq
    // runs in.
    let policy = Policy {
        layers: (0..layers.len())
            .map(|i| LayerBits {
                w_bits: [2, 3][i % 2],
                a_bits: None,
            })
            .collect(),
    };
    let dir = workflow("kmeans.yaml", &finetune("kmeans", "kmeans.json"));
    std::fs::write(
        dir.join("kmeans.json"),
        serde_json::to_vec(&policy).unwrap(),
    )
    .unwrap();
    let (resumed, reference) = kill_resume_and_rerun("kmeans.yaml", "kmeans");
    assert_same(&resumed, &reference);
    let used: Policy = serde_json::from_slice(&resumed.outputs["policy"]).unwrap();
    assert_eq!(used, policy);
    let exported = IntegerModel::load(&resumed.outputs["quantized_model"], Device::Cpu).unwrap();
    assert_eq!(exported.policy(), &policy);

    let weights = safetensors(&resumed.outputs["weights"]);
    for (layer, bits) in layers.iter().zip(&policy.layers) {
        let (dtype, _, data) = &weights[&format!("{}.weight", layer.name)];
        let values = f32_values(dtype, data);
        let distinct: BTreeSet<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            distinct.len(),
            1 << bits.w_bits,
            "{} ({} weights) after a {}-bit k-means finetune",
            layer.name,
            values.len(),
            bits.w_bits
        );
    }
    println!(
        "k-means w2/w3 finetune: {}",
        json(&resumed.outputs["accuracy"])
    );
}

#[test]
fn a_finetune_without_a_readable_policy_fails_and_says_what_to_do() {
    let stages = "  nopolicy:\n    run: finetune\n    needs: [pretrain, calibrate]\n    \
                  params: {epochs: 1, batch_size: 64, lr: 0.01}\n";
    let dir = workflow("nopolicy.yaml", stages);
    let out = haq_in(dir, &["run", "-f", "nopolicy.yaml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no policy: give the param policy (e.g. policy: uniform:4)"),
        "{stderr}"
    );

    let dir = workflow("missing.yaml", &finetune("missing", "missing.json"));
    let out = haq_in(dir, &["run", "-f", "missing.yaml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Found by the params check, before anything runs, at the param's line.
    assert!(
        stderr.contains("missing.yaml:")
            && stderr.contains("stages.missing.params.policy: policy: cannot read missing.json"),
        "{stderr}"
    );
    let expected = format!(
        "(a relative path is read from {}, where haq run started)",
        dir.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
