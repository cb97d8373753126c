//! The command line: one module per group of commands.

mod export;
mod hw;
mod inspect;
mod ui;
mod workflow;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "haq",
    version,
    about = "HAQ mixed-precision quantization as a reproducible workflow"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which workflow (and so which store) a command works on.
#[derive(Args, Clone)]
pub struct WorkflowArgs {
    /// The workflow file.
    #[arg(short = 'f', long = "file", default_value = "workflow.yaml")]
    pub file: PathBuf,
    /// Override a workflow value, e.g. `--set search.episodes=50` or `--set seed=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Which store an inspection command reads: the workflow's, or one named directly.
#[derive(Args, Clone)]
pub struct StoreArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Read this store file instead of the workflow's.
    #[arg(long)]
    pub store: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workflow's stages (all, or the named ones and what they need).
    Run(workflow::RunArgs),
    /// Show for each stage whether it is fresh, stale (and why), running or interrupted.
    Status(workflow::StatusArgs),
    /// Print the stage graph.
    Dag(workflow::DagArgs),
    /// List runs.
    Runs(inspect::RunsArgs),
    /// Show one run: params, inputs, outputs, checkpoints, error.
    Show(inspect::ShowArgs),
    /// Print a run's metrics.
    Metrics(inspect::MetricsArgs),
    /// Print a run's log (its stage's stdout and stderr).
    Log(inspect::LogArgs),
    /// Write every run (params, final metrics) as one table, CSV or Parquet.
    Export(export::ExportArgs),
    /// Write a finetune run's quantized model (safetensors or ONNX) out of the store.
    ExportModel(export::ExportModelArgs),
    /// Serve the store read-only to a browser: the DAG live, runs, metrics, searches,
    /// comparisons and the report.
    Ui(ui::UiArgs),
    /// Delete artifacts no run refers to.
    Gc(inspect::GcArgs),
    /// Hardware cost models: list them, print lookup tables, cost a policy.
    Hw {
        #[command(subcommand)]
        cmd: hw::HwCommand,
    },
    /// Inside a Slurm job: run the stage `haq run --executor slurm` prepared in DIR.
    #[command(hide = true)]
    SlurmJob(workflow::SlurmJobArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => workflow::run(a),
        Command::Status(a) => workflow::status(a),
        Command::Dag(a) => workflow::dag(a),
        Command::Runs(a) => inspect::runs(a),
        Command::Show(a) => inspect::show(a),
        Command::Metrics(a) => inspect::metrics(a),
        Command::Log(a) => inspect::log(a),
        Command::Export(a) => export::export(a),
        Command::ExportModel(a) => export::export_model(a),
        Command::Ui(a) => ui::ui(a),
        Command::Gc(a) => inspect::gc(a),
        Command::Hw { cmd } => hw::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::SlurmJob(a) => workflow::slurm_job(a),
    }
}
