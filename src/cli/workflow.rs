//! Commands that read the workflow file: run, status, dag.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use haq_flow::binaries::Binaries;
use haq_flow::fingerprint::explain;
use haq_flow::plan::State;
use haq_flow::scheduler::Options;
use haq_flow::terminal::Terminal;
use haq_flow::{executor, param_check, slurm, Dag, ExecutorKind, Override, Workflow};
use haq_store::Store;

use super::WorkflowArgs;

#[derive(Args)]
pub struct RunArgs {
    /// Stages to run (base or expanded names); default: all. Their upstream stages run too.
    stages: Vec<String>,
    #[command(flatten)]
    workflow: WorkflowArgs,
    /// Stages to run at once (default: the workflow's `jobs:`, else 1).
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    jobs: Option<u16>,
    /// Show what would run and why, without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Rerun this stage even if it is up to date (repeatable).
    #[arg(long, value_name = "STAGE")]
    force: Vec<String>,
    /// Do not copy stage output to the terminal (it is always in `haq log RUN`).
    #[arg(short, long)]
    quiet: bool,
    /// Where stale stages run: `local` (child processes) or `slurm` (one sbatch job
    /// each; docs/slurm.md). Default: the workflow's `executor.kind`, else local.
    #[arg(long, value_parser = parse_executor)]
    executor: Option<ExecutorKind>,
}

fn parse_executor(s: &str) -> Result<ExecutorKind, String> {
    s.parse()
}

#[derive(Args)]
pub struct SlurmJobArgs {
    /// The job's directory, which `haq run` prepared.
    dir: std::path::PathBuf,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    workflow: WorkflowArgs,
}

#[derive(Args)]
pub struct DagArgs {
    #[command(flatten)]
    workflow: WorkflowArgs,
    /// Graphviz instead of text.
    #[arg(long)]
    dot: bool,
}

/// Loads and validates the workflow with its overrides.
pub fn load(args: &WorkflowArgs, binaries: &Binaries) -> anyhow::Result<Workflow> {
    let overrides = args
        .set
        .iter()
        .map(|s| s.parse::<Override>())
        .collect::<Result<Vec<_>, _>>()?;
    let kinds = binaries.kinds();
    Ok(Workflow::load(&args.file, &overrides, &kinds, &|k| {
        binaries.find(k).is_some()
    })?)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // From the start: hashing a large deps: file must stop on Ctrl-C too.
    executor::install_interrupt_handler();
    let binaries = Binaries::from_env();
    let wf = load(&args.workflow, &binaries)?;
    let dag = Dag::new(&wf);
    let selection = if args.stages.is_empty() {
        dag.topo_order()
    } else {
        dag.select(&args.stages)?
    };
    let mut force = BTreeSet::new();
    for name in &args.force {
        let matched: Vec<String> = wf
            .stages
            .iter()
            .filter(|s| &s.name == name || &s.base == name)
            .map(|s| s.name.clone())
            .collect();
        anyhow::ensure!(
            !matched.is_empty(),
            "--force {name}: no such stage in {}",
            wf.path.display()
        );
        force.extend(matched);
    }
    let store = Store::open(&wf.store)?;
    param_check::check(
        &wf,
        &param_check::unchecked(&wf, &selection, &store)?,
        &binaries,
    )?;
    if args.dry_run {
        let states = haq_flow::plan::status(&wf, &dag, &selection, &store, &binaries)?;
        for (i, state) in selection.iter().zip(&states) {
            let name = &wf.stages[*i].name;
            match state {
                State::Fresh(run) if !force.contains(name) => {
                    println!("{name}: up to date (run {})", run.id)
                }
                State::Fresh(_) => println!("{name}: would run (forced)"),
                State::Stale(why) => println!("{name}: would run: {}", explain(why)),
                State::Running(run) => println!(
                    "{name}: being run by another haq (run {}); would wait",
                    run.id
                ),
                State::Interrupted(run) | State::Failed(run) => {
                    println!("{name}: would resume run {}", run.id)
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let terminal = Terminal::new(std::io::stderr().is_terminal());
    let opts = Options {
        jobs: args.jobs.map_or(wf.jobs, usize::from),
        force,
        terminal: terminal.clone(),
        echo: !args.quiet,
        executor: args.executor.unwrap_or(wf.executor.kind),
    };
    let summary = haq_flow::run(&wf, &dag, &selection, &binaries, &opts, &|event| {
        terminal.println(&format!("haq: {event}"))
    })?;
    eprintln!(
        "haq: {} ran, {} up to date{}{}{}",
        summary.executed.len(),
        summary.cached.len(),
        list(", failed: ", &summary.failed),
        list(", interrupted: ", &summary.interrupted),
        list(", not run: ", &summary.skipped),
    );
    if summary.ok() {
        Ok(ExitCode::SUCCESS)
    } else if executor::interrupted() {
        Ok(ExitCode::from(130))
    } else {
        anyhow::bail!("not every stage completed; see `haq status` and `haq log RUN`")
    }
}

fn list(label: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("{label}{}", names.join(" "))
    }
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let binaries = Binaries::from_env();
    let wf = load(&args.workflow, &binaries)?;
    let dag = Dag::new(&wf);
    let order = dag.topo_order();
    let store = Store::open(&wf.store)
        .with_context(|| format!("opening the store of {}", wf.path.display()))?;
    let states = haq_flow::plan::status(&wf, &dag, &order, &store, &binaries)?;
    let jobs = store.batch_jobs()?;
    let live = if jobs.is_empty() {
        Default::default()
    } else {
        slurm::live_states(&jobs)
    };
    let width = order
        .iter()
        .map(|i| wf.stages[*i].name.len())
        .max()
        .unwrap_or(0);
    for (i, state) in order.iter().zip(&states) {
        let name = &wf.stages[*i].name;
        let detail = match state {
            State::Fresh(run) => {
                let missing = haq_store::workspace::differing(&store.outputs(run.id)?)?;
                match missing.len() {
                    0 => format!("run {}", run.id),
                    n => format!(
                        "run {}; {n} workspace file{} missing or changed, e.g. {} (haq run \
                         writes {} back)",
                        run.id,
                        if n == 1 { "" } else { "s" },
                        missing[0].0.display(),
                        if n == 1 { "it" } else { "them" }
                    ),
                }
            }
            State::Stale(why) => explain(why),
            State::Running(run) => format!("run {} (attempt {})", run.id, run.attempts),
            State::Interrupted(run) => match store.latest_checkpoint(run.id)? {
                Some(c) => format!("run {}: resumes from step {}", run.id, c.step),
                None => format!("run {}: restarts (no checkpoint yet)", run.id),
            },
            State::Failed(run) => format!(
                "run {}: {}",
                run.id,
                run.error.as_deref().unwrap_or("failed")
            ),
        };
        // A stage's Slurm job, live from squeue where it answers.
        let job = jobs.iter().find(|j| &j.stage == name).map(|j| {
            let state = live.get(&j.job_id).map_or_else(
                || format!("{} {}", j.state, j.reason).trim().to_string(),
                |s| s.describe(),
            );
            format!("; slurm job {}: {state}", j.job_id)
        });
        println!(
            "{name:<width$}  {:<11}  {detail}{}",
            state.label(),
            job.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs inside a Slurm job: executes the stage `haq run` prepared in the job's directory.
pub fn slurm_job(args: SlurmJobArgs) -> anyhow::Result<ExitCode> {
    let code = slurm::job::main(&args.dir)?;
    Ok(ExitCode::from(code as u8))
}

pub fn dag(args: DagArgs) -> anyhow::Result<ExitCode> {
    let binaries = Binaries::from_env();
    let wf = load(&args.workflow, &binaries)?;
    let dag = Dag::new(&wf);
    print!(
        "{}",
        if args.dot {
            dag.render_dot(&wf)
        } else {
            dag.render_text(&wf)
        }
    );
    Ok(ExitCode::SUCCESS)
}
