//! `haq export` and `haq export-model` on the store of a real tiny workflow (pretrain,
//! calibrate, a linear and a k-means finetune on Fashion-MNIST): the models come out byte
//! for byte and load for integer inference; the runs table holds every run's params and
//! final metrics, as CSV and as Parquet.
//!
//! The stage executables must sit beside `haq`: `cargo build --release --workspace` first.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use common::{ok, Project, HAQ};
use haq_core::quant::{IntegerModel, Policy};
use haq_store::{Run, Store};
use polars::prelude::{CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader};
use tch::Device;

/// Toy sizes: the numbers mean nothing, the runs are real. The shared settings hold nested
/// maps, so the table has dotted param names; the linear finetune logs two epochs, so its
/// final metrics are not its first.
const WORKFLOW: &str = "
seed: 4
settings:
  dataset: {name: fashion-mnist, val_size: 200, test_size: 500}
  model: {arch: mobilenetv2, width: 0.25}
stages:
  pretrain:
    run: pretrain
    params: {epochs: 1, batch_size: 64, lr: 0.05, warmup_epochs: 0.1, train_subset: 1024}
  calibrate:
    run: calibrate
    needs: [pretrain]
    params: {hardware: [size], calib_batch: 64}
  linear:
    run: finetune
    needs: [pretrain, calibrate]
    params: {policy: uniform-w6a5, epochs: 2, batch_size: 64, lr: 0.01, train_subset: 128}
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
    let p = Project::new(WORKFLOW);
    ok(&p.haq(&["run"]));
    let store = p.store();
    let mut runs = store.runs(None).unwrap();
    runs.sort_by_key(|r| r.id);
    assert_eq!(runs.len(), 4);

    export_model_writes_the_stored_model(&p, &store, &runs);
    export_writes_one_row_per_run(&p, &store, &runs);
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
            Some("uniform-w6a5".into()),
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
