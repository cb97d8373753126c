//! `haq-example`: a small stage that shows the stage protocol end to end, without
//! libtorch. It folds a number over `steps` steps, logging a metric and a checkpoint at
//! each, and resumes from its latest checkpoint. docs/stages.md walks through it; the
//! engine's end-to-end tests use it.

use haq_stage::{from_params, ParamError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    steps: i64,
    #[serde(default)]
    offset: i64,
    /// Pause per step, so tests can interrupt it mid-way.
    #[serde(default)]
    sleep_ms: u64,
    /// Padding added to each checkpoint, so tests can interrupt large writes.
    #[serde(default)]
    state_bytes: usize,
    /// Fail (exit 1) at this step.
    #[serde(default)]
    fail_at: Option<i64>,
    /// Write the process id here on start.
    #[serde(default)]
    pid_file: Option<std::path::PathBuf>,
    /// Also write the result to this workspace file (relative to where `haq run` works).
    #[serde(default)]
    workspace_file: Option<String>,
    // Shared workflow settings every stage receives; this stage ignores them.
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    device: String,
}

/// What a checkpoint holds: the step reached and the value so far (then padding).
fn encode(step: i64, acc: u64, padding: usize) -> Vec<u8> {
    let mut bytes = format!("{step} {acc}\n").into_bytes();
    bytes.resize(bytes.len() + padding, b'.');
    bytes
}

fn decode(bytes: &[u8]) -> anyhow::Result<(i64, u64)> {
    let text = std::str::from_utf8(bytes)?;
    let line = text.lines().next().unwrap_or_default();
    let (step, acc) = line
        .split_once(' ')
        .ok_or_else(|| anyhow::anyhow!("bad checkpoint {line:?}"))?;
    Ok((step.parse()?, acc.parse()?))
}

fn check(params: &serde_json::Value) -> Result<(), ParamError> {
    let p: Params = from_params(params)?;
    if p.steps < 0 {
        return Err(ParamError::new(
            "steps",
            format!("{} is negative; use 0 or more", p.steps),
        ));
    }
    Ok(())
}

fn main() {
    haq_stage::main(
        env!("HAQ_BUILD_IDENTITY"),
        check,
        |ctx| -> anyhow::Result<()> {
            let p: Params = ctx.params_as()?;
            if let Some(path) = &p.pid_file {
                std::fs::write(path, std::process::id().to_string())?;
            }
            // Upstream results feed in, so a changed upstream changes this stage's output.
            let mut acc: u64 = p.seed.wrapping_add(p.offset as u64);
            for digest in ctx.inputs().values() {
                acc = acc
                    .wrapping_mul(1_000_003)
                    .wrapping_add(u64::from_str_radix(&digest.0[..16], 16)?);
            }
            let mut start = 0;
            if let Some((step, state)) = ctx.resume()? {
                (start, acc) = decode(&state)?;
                anyhow::ensure!(
                    start == step,
                    "checkpoint at step {step} holds step {start}"
                );
                eprintln!("resuming at step {start}");
            }
            let bar = ctx.progress(p.steps as u64, "steps");
            bar.set_position(start as u64);
            for step in start + 1..=p.steps {
                if p.fail_at == Some(step) {
                    anyhow::bail!("failing at step {step} as asked (fail_at)");
                }
                std::thread::sleep(std::time::Duration::from_millis(p.sleep_ms));
                acc = acc.wrapping_mul(31).wrapping_add(step as u64);
                ctx.log_metrics(
                    step,
                    &[("acc_mod_1000", (acc % 1000) as f64), ("step", step as f64)],
                )?;
                ctx.save_checkpoint(step, &encode(step, acc, p.state_bytes))?;
                println!("step {step}: acc {acc}");
                bar.inc(1);
            }
            bar.finish();
            let result = format!("{{\"acc\": {acc}, \"device\": {:?}}}", p.device);
            ctx.put_output("result", result.as_bytes(), "application/json")?;
            if let Some(path) = &p.workspace_file {
                let path_buf = std::path::Path::new(path);
                if let Some(dir) = path_buf.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path_buf, &result)
                    .map_err(|e| anyhow::anyhow!("writing {path}: {e}"))?;
                ctx.put_workspace_output(path, result.as_bytes(), "application/json")?;
            }
            Ok(())
        },
    )
}
