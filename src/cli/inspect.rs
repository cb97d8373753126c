//! Commands that read the store: runs, show, metrics, log, gc.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use haq_flow::binaries::Binaries;
use haq_store::{Run, RunStatus, Store};

use super::StoreArgs;

#[derive(Clone, Copy, ValueEnum)]
pub enum RunsFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MetricsFormat {
    Table,
    Csv,
    Json,
}

#[derive(Args)]
pub struct RunsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only runs of this stage.
    #[arg(long)]
    stage: Option<String>,
    #[arg(long, value_enum, default_value_t = RunsFormat::Table)]
    format: RunsFormat,
}

#[derive(Args)]
pub struct ShowArgs {
    /// A run id, or a stage name meaning its latest completed run.
    run: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct MetricsArgs {
    /// A run id, or a stage name meaning its latest completed run.
    run: String,
    /// Only this metric.
    key: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t = MetricsFormat::Table)]
    format: MetricsFormat,
}

#[derive(Args)]
pub struct LogArgs {
    /// A run id, or a stage name meaning its latest run.
    run: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Also drop the checkpoints of completed runs (only needed to resume).
    #[arg(long)]
    checkpoints: bool,
}

pub(super) fn open(args: &StoreArgs) -> anyhow::Result<Store> {
    let path = match &args.store {
        Some(path) => path.clone(),
        None => super::workflow::load(&args.workflow, &Binaries::from_env())?.store,
    };
    anyhow::ensure!(
        path.exists(),
        "no store at {}: nothing has run yet (try `haq run`)",
        path.display()
    );
    Store::open(&path).with_context(|| format!("opening store {}", path.display()))
}

/// A run id, or a stage's latest run (completed ones first when `done_only`).
pub(super) fn resolve(store: &Store, spec: &str, done_only: bool) -> anyhow::Result<Run> {
    if let Ok(id) = spec.parse::<i64>() {
        return Ok(store.run(id)?);
    }
    let runs = store.runs(Some(spec))?;
    let found = if done_only {
        let done = runs.iter().find(|r| r.status == RunStatus::Done).cloned();
        // As MLflow shows a live run: a stage being run has metrics before it completes.
        done.or_else(|| {
            let running = runs.into_iter().find(|r| r.status == RunStatus::Running)?;
            eprintln!(
                "haq: stage {spec} has no completed run; this is run {}, which is running \
                 (attempt {})",
                running.id, running.attempts
            );
            Some(running)
        })
    } else {
        runs.into_iter().next()
    };
    found.with_context(|| {
        format!(
            "no {}run of stage {spec:?} in {} (see `haq runs`)",
            if done_only { "completed " } else { "" },
            store.path().display()
        )
    })
}

fn time(t: f64) -> String {
    // Seconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS`, without a date crate.
    let secs = t as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn duration(run: &Run) -> String {
    run.ended_at
        .map(|e| format!("{:.1}s", e - run.started_at))
        .unwrap_or_else(|| "-".to_string())
}

pub fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let runs = store.runs(args.stage.as_deref())?;
    match args.format {
        RunsFormat::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
        RunsFormat::Table => {
            // Stage names (matrix expansions) can be long: the column fits the longest.
            let stage = runs.iter().map(|r| r.stage.len()).fold(28, usize::max);
            println!(
                "{:>5}  {:<stage$} {:<11} {:>3}  {:<19}  {:>9}  fingerprint",
                "id", "stage", "status", "try", "started", "took"
            );
            for r in &runs {
                println!(
                    "{:>5}  {:<stage$} {:<11} {:>3}  {:<19}  {:>9}  {}",
                    r.id,
                    r.stage,
                    r.status.to_string(),
                    r.attempts,
                    time(r.started_at),
                    duration(r),
                    &r.fingerprint[..r.fingerprint.len().min(12)]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let run = resolve(&store, &args.run, true)?;
    println!("run {}  stage {}  ({})", run.id, run.stage, run.kind);
    println!("status       {} (attempt {})", run.status, run.attempts);
    if let Some(error) = &run.error {
        println!("error        {error}");
    }
    println!(
        "started      {}  took {}",
        time(run.started_at),
        duration(&run)
    );
    println!("fingerprint  {}", run.fingerprint);
    println!("binary       {}", run.binary_id);
    println!("workflow     {}", run.workflow);
    println!(
        "params       {}",
        serde_json::to_string_pretty(&run.params)?.replace('\n', "\n             ")
    );
    for (label, named) in [
        ("inputs", store.inputs(run.id)?),
        ("outputs", store.outputs(run.id)?),
    ] {
        println!("{label}");
        for (name, digest) in named {
            println!(
                "  {name:<32} {}  {} bytes",
                digest.short(),
                store.artifact_size(&digest)?
            );
        }
    }
    let checkpoints = store.checkpoints(run.id)?;
    if let Some(last) = checkpoints.last() {
        println!(
            "checkpoints  {} (latest at step {})",
            checkpoints.len(),
            last.step
        );
    }
    let metrics = store.metrics(run.id, None)?;
    if !metrics.is_empty() {
        println!("metrics (latest step)");
        for (i, m) in metrics.iter().enumerate() {
            if metrics.get(i + 1).is_none_or(|next| next.key != m.key) {
                println!("  {:<32} {} @ step {}", m.key, m.value, m.step);
            }
        }
    }
    println!("log          {}", store.log_path(run.id).display());
    Ok(ExitCode::SUCCESS)
}

pub fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let run = resolve(&store, &args.run, true)?;
    let metrics = store.metrics(run.id, args.key.as_deref())?;
    if let (Some(key), true) = (&args.key, metrics.is_empty()) {
        let mut keys: Vec<String> = store
            .metrics(run.id, None)?
            .into_iter()
            .map(|m| m.key)
            .collect();
        keys.dedup();
        anyhow::bail!(
            "run {} ({}) has no metric {key:?}; its metrics: {}",
            run.id,
            run.stage,
            if keys.is_empty() {
                "none yet".to_string()
            } else {
                keys.join(", ")
            }
        );
    }
    match args.format {
        MetricsFormat::Json => println!("{}", serde_json::to_string_pretty(&metrics)?),
        MetricsFormat::Csv => {
            println!("run,key,step,value,time");
            for m in &metrics {
                println!("{},{},{},{},{}", run.id, m.key, m.step, m.value, m.time);
            }
        }
        MetricsFormat::Table => {
            println!("{:<32} {:>8}  value", "key", "step");
            for m in &metrics {
                println!("{:<32} {:>8}  {}", m.key, m.step, m.value);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    let run = resolve(&store, &args.run, false)?;
    let path = store.log_path(run.id);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the log of run {}: {}", run.id, path.display()))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store)?;
    if args.checkpoints {
        println!(
            "dropped {} checkpoints of completed runs",
            store.drop_finished_checkpoints()?
        );
    }
    let stats = store.gc()?;
    store.vacuum()?;
    println!(
        "removed {} artifacts ({} bytes)",
        stats.artifacts, stats.bytes
    );
    Ok(ExitCode::SUCCESS)
}
