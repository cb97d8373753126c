//! `haq export` and `haq export-model` on the store of a real tiny workflow (pretrain,
//! calibrate, a mixed-precision linear and a k-means finetune on Fashion-MNIST): the models
//! come out byte for byte and load for integer inference; as ONNX, onnxruntime gives the
//! integer model's logits (also for untrained models of the other architectures); the runs
//! table holds every run's params and final metrics, as CSV and as Parquet.
//!
//! The stage executables must sit beside `haq`: `cargo build --release --workspace` first;
//! onnxruntime must be in `.venv` (`scripts/setup`).

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use common::{ok, Project, HAQ};
use haq_core::arch::{self, Arch, ArchConfig};
use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::models::Model;
use haq_core::quant::{export, ClipTable, IntegerModel, LayerBits, Policy, Quantization};
use haq_core::train::Network;
use haq_export::onnx::to_onnx;
use haq_store::{Run, Store};
use polars::prelude::{CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// Toy sizes: the numbers mean nothing, the runs are real. The shared settings hold nested
/// maps, so the table has dotted param names; the linear finetune (policy: [`mixed_policy`] of it)
/// logs two epochs, so its final metrics are not its first.
const WORKFLOW: &str = "
seed: 4
settings:
  dataset: {name: fashion-mnist, val_size: 200, test_size: 500}
  model: {arch: mobilenetv2, width: 0.25}
stages:
  pretrain:
    run: pretrain
    params: {epochs: 1, batch_size: 64, lr: 0.05, warmup_epochs: 0.1, train_subset: 4096}
  calibrate:
    run: calibrate
    needs: [pretrain]
    params: {hardware: [size], calib_batch: 64}
  linear:
    run: finetune
    needs: [pretrain, calibrate]
    params: {policy: mixed.json, epochs: 2, batch_size: 64, lr: 0.01, train_subset: 128}
  kmeans:
    run: finetune
    needs: [pretrain, calibrate]
    params: {policy: uniform-w3, epochs: 1, batch_size: 64, lr: 0.01, train_subset: 128}
";

fn failure(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "haq succeeded where it should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_finetune_workflow_exports_its_quantized_models_and_its_runs_table() {
    let haq = Path::new(HAQ);
    for stage in ["haq-pretrain", "haq-calibrate", "haq-finetune"] {
        assert!(
            haq.with_file_name(stage).is_file(),
            "{stage} is not beside {HAQ}: run `cargo build --release --workspace` first"
        );
    }
    assert!(arch::layers(&workflow_arch())[3].signed_input);
    let p = Project::new(WORKFLOW);
    std::fs::write(
        p.path("mixed.json"),
        serde_json::to_vec(&mixed_policy(&workflow_arch())).unwrap(),
    )
    .unwrap();
    ok(&p.haq(&["run"]));
    let store = p.store();
    let mut runs = store.runs(None).unwrap();
    runs.sort_by_key(|r| r.id);
    assert_eq!(runs.len(), 4);

    export_model_writes_the_stored_model(&p, &store, &runs);
    onnx_export_computes_the_integer_models_logits(&p, &store, &runs);
    export_writes_one_row_per_run(&p, &store, &runs);
}

/// The MobileNet-V2 of [`WORKFLOW`].
fn workflow_arch() -> ArchConfig {
    ArchConfig {
        width: 0.25,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    }
}

/// A linear policy for `config`: layer 0 w8 a8 (pinned), then weights cycling through
/// 2..=8 bits and activations through 2..=8, and layer 3 at w1 a1, so that every k-bit
/// grid and the 1-bit cases (±c weights; in MobileNet-V2, where layer 3's input is signed,
/// ±a activations) reach the ONNX export.
fn mixed_policy(config: &ArchConfig) -> Policy {
    Policy {
        layers: (0..arch::layers(config).len())
            .map(|i| {
                let (w, a) = match i {
                    0 => (8, 8),
                    3 => (1, 1),
                    _ => (2 + i % 7, 2 + (i + 3) % 7),
                };
                LayerBits {
                    w_bits: w as u8,
                    a_bits: Some(a as u8),
                }
            })
            .collect(),
    }
}

/// Test images the ONNX models run on.
const ONNX_IMAGES: i64 = 2000;

/// The largest |logit difference| allowed between onnxruntime and the integer model (on
/// logits of a few units). Both sum the same f32 products in different orders, which alone
/// differs by about 1e-5; such noise now and then pushes an activation across a rounding
/// boundary, which moves logits by up to about 1e-3 (measured: 8.2e-4 with the 2-bit
/// activations of [`mixed_policy`]). A wrong scale, clip, layer or op moves them by tenths.
const LOGIT_TOLERANCE: f64 = 1e-2;

/// `export-model --format onnx` of each finetune run, run by onnxruntime on Fashion-MNIST
/// test images, against `IntegerModel` on the same normalised images: the same top-1 on
/// every image and logits within [`LOGIT_TOLERANCE`].
fn onnx_export_computes_the_integer_models_logits(p: &Project, store: &Store, runs: &[Run]) {
    let test = DatasetSpec::new(DatasetName::FashionMnist)
        .load(Split::Test)
        .unwrap();
    let images = test.normalize(&test.images().unwrap().narrow(0, 0, ONNX_IMAGES));
    let labels = test.labels.narrow(0, 0, ONNX_IMAGES);
    let top1 = |logits: &Tensor| {
        let right = logits.argmax(1, false).eq_tensor(&labels);
        100.0
            * right
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[])
    };
    for run in runs.iter().filter(|r| r.kind == "finetune") {
        let stage = run.stage.as_str();
        let stored = store
            .get_bytes(&store.outputs(run.id).unwrap()["quantized_model"])
            .unwrap();
        let onnx = p.path(&format!("{stage}.onnx"));
        ok(&p.haq(&[
            "export-model",
            stage,
            "--format",
            "onnx",
            "--out",
            onnx.to_str().unwrap(),
        ]));
        let integer = IntegerModel::load(&stored, Device::Cpu).unwrap();
        let expected = tch::no_grad(|| integer.logits(&images, false));
        let got = onnxruntime_logits(&onnx, &images);
        let (max_diff, disagree) = differences(&expected, &got);
        println!(
            "{stage}: safetensors {} bytes, ONNX {} bytes; on {ONNX_IMAGES} test images top-1 \
             {:.2}% (integer model) vs {:.2}% (onnxruntime), {disagree} top-1 disagreements, \
             max |logit difference| {max_diff:.3e}",
            stored.len(),
            std::fs::metadata(&onnx).unwrap().len(),
            top1(&expected),
            top1(&got),
        );
        // A model that predicts one class whatever the image would make this check vacuous.
        let classes = expected
            .argmax(1, false)
            .unique_dim(0, false, false, false)
            .0;
        assert!(
            classes.size()[0] >= 5,
            "{stage}: the fixture's model barely works"
        );
        assert_eq!(disagree, 0, "{stage}: top-1 differs");
        assert!(
            max_diff <= LOGIT_TOLERANCE,
            "{stage}: logits differ by {max_diff}"
        );
    }
}

/// The graph structure of the other architectures (MobileNet-V1, and ResNet-18 and -50 at
/// 72 px, which keeps their max-pool): untrained, batch-norm statistics measured on random
/// images, k-means at 4 bits, so that no activation is rounded and onnxruntime must match
/// `IntegerModel` to float noise. (Quantized activations are the MobileNet-V2 fixture's
/// to check: in an untrained network a rounding flip grows layer by layer, to 9e-2 on
/// logits of 0.4 in ResNet-50 at w6 a6, though top-1 still agreed on every image.)
#[test]
fn every_architecture_exports_to_onnx_like_its_integer_model() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(5);
    for (arch, size) in [
        (Arch::MobileNetV1, 28),
        (Arch::ResNet18, 72),
        (Arch::ResNet50, 72),
    ] {
        let config = ArchConfig {
            width: 0.25,
            ..ArchConfig::new(arch, size, 10)
        };
        let model = Model::new(&config, Device::Cpu, 5).unwrap();
        let size = size as i64;
        let images = Tensor::randn([64, 3, size, size], (Kind::Float, Device::Cpu));
        // Running statistics that normalise each layer's output, so that no layer's
        // activations vanish or explode (batch-norm momentum 0.1).
        tch::no_grad(|| (0..30).for_each(|_| drop(model.forward_t(&images, true))));
        // k-means mode uses no clips.
        let clips = ClipTable { layers: Vec::new() };
        let policy = Policy::uniform_weights(model.layers().len(), 4);
        let _quantization = Quantization::apply(&model, &policy, &clips, 5).unwrap();
        let bytes = export(&model, &policy, &clips).unwrap();
        let onnx = dir.path().join(format!("{arch}.onnx"));
        std::fs::write(&onnx, to_onnx(&bytes).unwrap()).unwrap();
        let integer = IntegerModel::load(&bytes, Device::Cpu).unwrap();
        let expected = tch::no_grad(|| integer.logits(&images, false));
        let (max_diff, disagree) = differences(&expected, &onnxruntime_logits(&onnx, &images));
        let largest = expected.abs().max().double_value(&[]);
        println!(
            "{arch}: {disagree} top-1 disagreements, max |logit difference| {max_diff:.3e} \
             (largest |logit| {largest:.3})"
        );
        assert_eq!(disagree, 0, "{arch}: top-1 differs");
        assert!(
            max_diff <= 1e-4 * largest.max(1.0),
            "{arch}: logits differ by {max_diff}"
        );
    }
}

/// The logits of `images` from the ONNX model `onnx`, run by onnxruntime in .venv
/// (`scripts/onnx_logits.py`), whose input must have a symbolic batch dimension.
fn onnxruntime_logits(onnx: &Path, images: &Tensor) -> Tensor {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let [n, c, h, w] = images.size()[..] else {
        panic!("images are [N, C, H, W]")
    };
    let (image_file, logits_file) = (onnx.with_extension("images"), onnx.with_extension("logits"));
    let floats = Vec::<f32>::try_from(images.flatten(0, -1)).unwrap();
    std::fs::write(&image_file, le_bytes(&floats)).unwrap();
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/onnx_logits.py"))
        .args([onnx, &image_file, &logits_file])
        .args([c, h, w].map(|d| d.to_string()))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup", python.display()));
    assert!(
        out.status.success(),
        "onnxruntime failed (run scripts/setup to install it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("['batch', {c}, {h}, {w}]"),
        "the batch is the one dynamic dimension"
    );
    let logits: Vec<f32> = std::fs::read(&logits_file)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Tensor::from_slice(&logits).view([n, -1])
}

/// The largest |difference| of two sets of logits and the number of rows whose top-1
/// differs.
fn differences(a: &Tensor, b: &Tensor) -> (f64, i64) {
    let max_diff = (a - b).abs().max().double_value(&[]);
    let disagree = a.argmax(1, false).ne_tensor(&b.argmax(1, false));
    (max_diff, disagree.sum(Kind::Int64).int64_value(&[]))
}

/// Little-endian bytes of `values`.
fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Each finetune run's `quantized_model`, asked for by stage name and by run id.
fn export_model_writes_the_stored_model(p: &Project, store: &Store, runs: &[Run]) {
    for run in runs.iter().filter(|r| r.kind == "finetune") {
        let outputs = store.outputs(run.id).unwrap();
        let stored = store.get_bytes(&outputs["quantized_model"]).unwrap();
        let policy: Policy =
            serde_json::from_slice(&store.get_bytes(&outputs["policy"]).unwrap()).unwrap();
        let id = run.id.to_string();
        for spec in [run.stage.as_str(), id.as_str()] {
            let file = p.path(&format!("{spec}.safetensors"));
            ok(&p.haq(&["export-model", spec, "--out", file.to_str().unwrap()]));
            let written = std::fs::read(&file).unwrap();
            assert!(
                written == stored,
                "{spec}: the file differs from the artifact"
            );
            let model = IntegerModel::load(&written, Device::Cpu).unwrap();
            assert_eq!(model.policy(), &policy, "{spec}");
        }
    }

    let pretrain = &runs[0];
    let stderr = failure(&p.haq(&["export-model", "pretrain", "--out", "x"]));
    assert!(
        stderr.contains(&format!(
            "run {} (stage pretrain, kind pretrain, done) has no output quantized_model: only \
             completed runs of kind finetune write one",
            pretrain.id
        )),
        "{stderr}"
    );
    assert!(!p.path("x").exists(), "nothing written on failure");
}

/// The CSV on stdout and the Parquet file: one row per run, oldest first, the run's record,
/// each param under its dotted path and each metric's value at its last step.
fn export_writes_one_row_per_run(p: &Project, store: &Store, runs: &[Run]) {
    let csv = p.haq(&["export"]);
    ok(&csv);
    let csv = CsvReadOptions::default()
        .with_infer_schema_length(None)
        .into_reader_with_file_handle(Cursor::new(csv.stdout))
        .finish()
        .unwrap();
    ok(&p.haq(&["export", "--format", "parquet", "--out", "runs.parquet"]));
    let parquet = ParquetReader::new(std::fs::File::open(p.path("runs.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(parquet.shape(), csv.shape());
    assert_eq!(parquet.get_column_names(), csv.get_column_names());
    for table in [&csv, &parquet] {
        assert_table_holds(table, store, runs);
    }
    // Typed by what the params hold; lists are JSON text.
    for (column, dtype) in [
        ("param.epochs", DataType::Int64),
        ("param.model.width", DataType::Float64),
        ("param.dataset.name", DataType::String),
        ("param.hardware", DataType::String),
    ] {
        assert_eq!(parquet.column(column).unwrap().dtype(), &dtype, "{column}");
    }
    let text = |table: &DataFrame, column: &str| -> Vec<Option<String>> {
        let values = table.column(column).unwrap().str().unwrap();
        values.iter().map(|v| v.map(str::to_string)).collect()
    };
    let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        text(&parquet, "param.policy"),
        [
            None,
            None,
            Some("mixed.json".into()),
            Some("uniform-w3".into())
        ]
    );
    assert_eq!(
        text(&parquet, "param.hardware"),
        [None, Some(r#"["size"]"#.into()), None, None]
    );
    assert_eq!(
        text(&parquet, "param.dataset.name"),
        some(&["fashion-mnist"; 4])
    );
    assert_eq!(text(&csv, "status"), some(&["done"; 4]));

    // --stage keeps only the named stages' runs.
    let only = p.haq(&["export", "--stage", "linear", "--stage", "kmeans"]);
    ok(&only);
    let only = CsvReadOptions::default()
        .into_reader_with_file_handle(Cursor::new(only.stdout))
        .finish()
        .unwrap();
    assert_eq!(text(&only, "stage"), some(&["linear", "kmeans"]));
}

fn assert_table_holds(table: &DataFrame, store: &Store, runs: &[Run]) {
    let ids: Vec<_> = table.column("id").unwrap().i64().unwrap().iter().collect();
    assert_eq!(ids, runs.iter().map(|r| Some(r.id)).collect::<Vec<_>>());
    let float = |column: &str, row: usize| {
        let values = table.column(column).unwrap_or_else(|_| panic!("{column}"));
        values.f64().unwrap().get(row)
    };
    for (row, run) in runs.iter().enumerate() {
        assert_eq!(float("started_at", row), Some(run.started_at));
        assert_eq!(float("ended_at", row), run.ended_at);
        assert_eq!(
            float("duration_s", row),
            Some(run.ended_at.unwrap() - run.started_at)
        );
        let metrics = store.metrics(run.id, None).unwrap();
        if run.stage == "linear" {
            assert_eq!(metrics.iter().map(|m| m.step).max(), Some(2), "two epochs");
        }
        let mut last = BTreeMap::new();
        for m in metrics {
            last.insert(m.key, (m.step, m.value));
        }
        let mut logged = 0;
        for (key, (step, value)) in last {
            let column = format!("metric.{key}");
            assert_eq!(float(&column, row), Some(value), "{column} @ {step}");
            logged += 1;
        }
        // Every other metric column is null in this run's row.
        let metric_columns = table
            .get_column_names()
            .into_iter()
            .filter(|name| name.starts_with("metric."))
            .filter(|name| float(name, row).is_some())
            .count();
        assert_eq!(metric_columns, logged, "{}", run.stage);
    }
    let batch_sizes: Vec<_> = table
        .column("param.batch_size")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(batch_sizes, [Some(64), None, Some(64), Some(64)]);
    assert_eq!(
        float("param.model.width", 2),
        Some(0.25),
        "shared settings flattened"
    );
}

#[test]
fn export_errors_say_what_to_do() {
    let p = Project::new("stages:\n  a:\n    run: example\n    params: {steps: 1}\n");
    let stderr = failure(&p.haq(&["export"]));
    assert!(
        stderr.contains("nothing has run yet (try `haq run`)"),
        "{stderr}"
    );
    let stderr = failure(&p.haq(&["export-model", "a", "--out", "m.safetensors"]));
    assert!(
        stderr.contains("nothing has run yet (try `haq run`)"),
        "{stderr}"
    );
    let stderr = failure(&p.haq(&["export", "--format", "xlsx"]));
    assert!(stderr.contains("possible values: csv, parquet"), "{stderr}");
    let stderr = failure(&p.haq(&["export", "--format", "parquet"]));
    assert!(
        stderr.contains("required arguments were not provided") && stderr.contains("--out"),
        "{stderr}"
    );

    ok(&p.haq(&["run"]));
    let stderr = failure(&p.haq(&["export", "--stage", "b"]));
    assert!(
        stderr.contains("no run of stage \"b\"") && stderr.contains("(see `haq runs`)"),
        "{stderr}"
    );
}
