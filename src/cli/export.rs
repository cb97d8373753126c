//! Commands that carry results out of the store: `export`, every run as one table (CSV or
//! Parquet, for pandas, polars or a spreadsheet), and `export-model`, a finetune run's
//! quantized model as a file (safetensors as stored, or an ONNX graph).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use haq_store::{Run, Store};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use serde_json::Value;

use super::inspect::{open, resolve};
use super::StoreArgs;

/// The finetune stage's output holding the deployable model.
const QUANTIZED_MODEL: &str = "quantized_model";

#[derive(Clone, Copy, ValueEnum)]
pub enum TableFormat {
    Csv,
    Parquet,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The table's file format.
    #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
    format: TableFormat,
    /// Write the table here instead of stdout (required for Parquet).
    #[arg(short, long, value_name = "FILE", required_if_eq("format", "parquet"))]
    out: Option<PathBuf>,
    /// Only runs of this stage (repeat for several).
    #[arg(long)]
    stage: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModelFormat {
    /// Integer weight codes with their scales or codebooks, as the finetune stage stores it.
    Safetensors,
    /// An ONNX graph (opset 13) with QuantizeLinear/DequantizeLinear pairs, for onnxruntime.
    Onnx,
}

#[derive(Args)]
pub struct ExportModelArgs {
    /// A finetune run's id, or a finetune stage's name meaning its latest completed run.
    run: String,
    /// Where to write the model.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
    /// The model's file format.
    #[arg(long, value_enum, default_value_t = ModelFormat::Safetensors)]
    format: ModelFormat,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let mut runs = store.runs(None)?;
    for stage in &args.stage {
        anyhow::ensure!(
            runs.iter().any(|r| &r.stage == stage),
            "no run of stage {stage:?} in {} (see `haq runs`)",
            store.path().display()
        );
    }
    runs.retain(|r| args.stage.is_empty() || args.stage.contains(&r.stage));
    runs.sort_by_key(|r| r.id);
    let mut table = runs_table(&store, &runs)?;
    match &args.out {
        // clap requires --out for Parquet.
        None => CsvWriter::new(std::io::stdout().lock()).finish(&mut table)?,
        Some(path) => {
            let file = create(path)?;
            match args.format {
                TableFormat::Csv => CsvWriter::new(file).finish(&mut table),
                TableFormat::Parquet => ParquetWriter::new(file).finish(&mut table).map(drop),
            }
            .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export_model(args: ExportModelArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let run = resolve(&store, &args.run, true)?;
    let digest = store
        .outputs(run.id)?
        .remove(QUANTIZED_MODEL)
        .with_context(|| {
            format!(
                "run {} (stage {}, kind {}, {}) has no output {QUANTIZED_MODEL}: only completed \
                 runs of kind finetune write one (see `haq runs`)",
                run.id, run.stage, run.kind, run.status
            )
        })?;
    let stored = store.get_bytes(&digest)?;
    let bytes = match args.format {
        ModelFormat::Safetensors => stored,
        ModelFormat::Onnx => haq_export::onnx::to_onnx(&stored)
            .with_context(|| format!("converting run {}'s model to ONNX", run.id))?,
    };
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote the quantized model of run {} ({}) to {} ({} bytes)",
        run.id,
        run.stage,
        args.out.display(),
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// One row per run: its record, then a `param.<dotted.path>` column for every param of any
/// run and a `metric.<key>` column for every metric, holding the value at its last step.
/// Runs without a param or metric have nulls there.
fn runs_table(store: &Store, runs: &[Run]) -> anyhow::Result<DataFrame> {
    let mut params: BTreeMap<String, Vec<Option<Value>>> = BTreeMap::new();
    let mut metrics: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for (row, run) in runs.iter().enumerate() {
        for (name, value) in run.flat_params() {
            params
                .entry(format!("param.{name}"))
                .or_insert_with(|| vec![None; runs.len()])[row] = Some(value);
        }
        // Ordered by key then step, so the last value written per key is its last step's.
        for m in store.metrics(run.id, None)? {
            metrics
                .entry(format!("metric.{}", m.key))
                .or_insert_with(|| vec![None; runs.len()])[row] = Some(m.value);
        }
    }
    let text = |f: fn(&Run) -> &str| runs.iter().map(f).collect::<Vec<_>>();
    let mut columns = vec![
        Column::new("id".into(), runs.iter().map(|r| r.id).collect::<Vec<_>>()),
        Column::new("stage".into(), text(|r| &r.stage)),
        Column::new("kind".into(), text(|r| &r.kind)),
        Column::new(
            "status".into(),
            runs.iter()
                .map(|r| r.status.to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "attempts".into(),
            runs.iter().map(|r| r.attempts).collect::<Vec<_>>(),
        ),
        Column::new("workflow".into(), text(|r| &r.workflow)),
        Column::new("fingerprint".into(), text(|r| &r.fingerprint)),
        // Seconds since the Unix epoch, as in `haq runs --format json`.
        Column::new(
            "started_at".into(),
            runs.iter().map(|r| r.started_at).collect::<Vec<_>>(),
        ),
        Column::new(
            "ended_at".into(),
            runs.iter().map(|r| r.ended_at).collect::<Vec<_>>(),
        ),
        Column::new(
            "duration_s".into(),
            runs.iter()
                .map(|r| r.ended_at.map(|end| end - r.started_at))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "error".into(),
            runs.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>(),
        ),
    ];
    columns.extend(
        params
            .into_iter()
            .map(|(name, values)| param_column(name, &values)),
    );
    columns.extend(
        metrics
            .into_iter()
            .map(|(name, values)| Column::new(name.into(), values)),
    );
    Ok(DataFrame::new(runs.len(), columns)?)
}

/// A param column typed by what its runs hold: booleans, integers, numbers, or else text
/// (strings as they are, lists and mixed types as JSON). JSON nulls are nulls.
fn param_column(name: String, values: &[Option<Value>]) -> Column {
    let present = || values.iter().flatten().filter(|v| !v.is_null());
    let name = name.into();
    if present().all(Value::is_boolean) {
        Column::new(name, each(values, Value::as_bool))
    } else if present().all(Value::is_i64) {
        Column::new(name, each(values, Value::as_i64))
    } else if present().all(Value::is_number) {
        Column::new(name, each(values, Value::as_f64))
    } else {
        Column::new(
            name,
            each(values, |v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }),
        )
    }
}

fn each<T>(values: &[Option<Value>], f: impl Fn(&Value) -> Option<T>) -> Vec<Option<T>> {
    values.iter().map(|v| v.as_ref().and_then(&f)).collect()
}
