//! `haq-pretrain`: trains the float model on the workflow's dataset, checkpointing every
//! epoch. Outputs `weights` (safetensors) and `accuracy` (JSON).
//!
//! Params: the training recipe (`haq_core::train::Recipe`) and optionally `init`, the path
//! of a safetensors file of float weights to start from instead of a random initialisation
//! (torchvision's parameter names; relative paths are read from where `haq run` started;
//! list the file in the stage's `deps:` too, so that a changed file reruns the stage).
//! With `epochs: 0` the stage only evaluates those weights — how the ImageNet workflows
//! start from torchvision's pretrained models, as the paper does.

use anyhow::Context;
use haq_core::config::Settings;
use haq_core::models::Model;
use haq_core::train::{evaluate, from_safetensors, to_safetensors, Recipe, Trainer};
use haq_stage::{ParamError, StageContext};
use serde_json::Value;

fn main() {
    haq_stage::main(env!("HAQ_BUILD_IDENTITY"), check, run)
}

/// The largest `init` file read: ResNet-50 in float is 100 MB.
const INIT_LIMIT: u64 = 4 << 30;

/// The params read and checked: settings, recipe and the optional `init` path.
fn parse(params: &Value) -> haq_core::error::Result<(Settings, Recipe, Option<String>)> {
    let bad = |problem: String| haq_core::error::Error::Config {
        field: "init".into(),
        problem,
    };
    let (settings, recipe, init) =
        Settings::split_training_params(params, "init", "a safetensors file's path")?;
    if let Some(path) = &init {
        let meta = std::fs::metadata(path).map_err(|e| bad(cannot_read(path, &e.to_string())))?;
        if !meta.is_file() {
            return Err(bad(cannot_read(path, "not a regular file")));
        }
    }
    Ok((settings, recipe, init))
}

fn cannot_read(path: &str, why: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    format!(
        "cannot read {path}: {why} (a relative path is read from {}, where haq run started)",
        cwd.display()
    )
}

fn check(params: &Value) -> Result<(), ParamError> {
    parse(params)
        .map(drop)
        .map_err(|e| ParamError::from_parts(e.field_and_message()))
}

fn run(ctx: &StageContext) -> anyhow::Result<()> {
    let (settings, recipe, init) = parse(ctx.params())?;
    settings.apply_runtime()?;
    let device = settings.device()?;
    let splits = settings.dataset.load(settings.seed)?;
    let subset = recipe.train_subset(&splits.train, settings.seed)?;
    let train = subset.as_ref().unwrap_or(&splits.train);
    let model = Model::new(&settings.model.arch_config(train), device, settings.seed)?;
    if let Some(path) = &init {
        let bytes = haq_core::check::read_file(path.as_ref(), INIT_LIMIT)
            .map_err(|e| anyhow::anyhow!("param init: {}", cannot_read(path, &e.to_string())))?;
        let weights = from_safetensors(&bytes)
            .with_context(|| format!("param init: {path} is not a safetensors file"))?;
        model.load_weights(&weights).with_context(|| {
            format!("param init: loading {path} into the model of settings.model")
        })?;
    }
    let mut trainer = Trainer::new(
        &model,
        model.var_store(),
        &recipe,
        (train, &splits.val),
        settings.seed,
        device,
    );
    let val = haq_core::stage::train(ctx, &mut trainer, |_| {})?;
    let test = evaluate(&model, &splits.test, recipe.eval_batch, device)?;
    eprintln!("test top-1 {:.2}% top-5 {:.2}%", test.top1, test.top5);
    ctx.log_metrics(
        recipe.epochs as i64,
        &[("test_top1", test.top1), ("test_top5", test.top5)],
    )?;
    ctx.put_output(
        "weights",
        &to_safetensors(&model.weights())?,
        "application/x-safetensors",
    )?;
    let accuracy =
        serde_json::json!({"test_top1": test.top1, "test_top5": test.top5, "val_top1": val.top1});
    ctx.put_output(
        "accuracy",
        accuracy.to_string().as_bytes(),
        "application/json",
    )?;
    Ok(())
}
