//! What the stages that train share, on top of the stage harness: the pretrained model
//! from settings and the `weights` input, and a training run that resumes from the run's
//! latest checkpoint, shows a progress bar, and logs and checkpoints every epoch.

use std::collections::BTreeMap;

use anyhow::Context;
use haq_stage::StageContext;
use tch::Device;

use crate::config::Settings;
use crate::data::Dataset;
use crate::hw::{by_name, CostModel, MeasuredCosts};
use crate::models::Model;
use crate::train::{from_safetensors, Accuracy, StepStats, Trainer};

/// The model of `settings.model` for images like `train`'s, with the pretrain stage's
/// `weights` input loaded.
pub fn pretrained_model(
    ctx: &StageContext,
    settings: &Settings,
    train: &Dataset,
    device: Device,
) -> anyhow::Result<Model> {
    let model = Model::new(&settings.model.arch_config(train), device, settings.seed)?;
    model
        .load_weights(&from_safetensors(&ctx.read_input("weights")?)?)
        .context("loading the pretrain stage's weights into the model of settings.model")?;
    Ok(model)
}

/// The cost model called `name`: one of `measured` (the workflow's `hardware:` entries,
/// name -> table file, which `haq run` gives the stage as its param `hardware_tables` and
/// stores as its input `file:<file>`), read from the run's copy of the file; else the
/// built-in model of that name.
pub fn cost_model(
    ctx: &StageContext,
    name: &str,
    measured: &BTreeMap<String, String>,
) -> anyhow::Result<Box<dyn CostModel>> {
    let Some(file) = measured.get(name) else {
        return Ok(by_name(name)?);
    };
    let input = format!("file:{file}");
    let digest = ctx.inputs().get(&input).with_context(|| {
        format!("hardware {name}: the run has no input {input}; run it with `haq run`, which stores the table file")
    })?;
    let bytes = ctx.store().get_bytes(digest)?;
    Ok(Box::new(MeasuredCosts::read(name, file, bytes)?))
}

/// Runs `trainer` to its last epoch as the stage's run: from the latest checkpoint when
/// the run is resumed, with a progress bar, each epoch's metrics logged and its state
/// checkpointed. `on_step` follows every optimiser step. Returns the trained network's
/// validation accuracy.
pub fn train(
    ctx: &StageContext,
    trainer: &mut Trainer,
    mut on_step: impl FnMut(&StepStats),
) -> anyhow::Result<Accuracy> {
    let epochs = trainer.recipe().epochs;
    if let Some((step, state)) = ctx.resume()? {
        let epoch = usize::try_from(step).context("a checkpoint's step is an epoch count")?;
        trainer
            .resume(epoch, &state)
            .context("restoring the checkpoint")?;
        eprintln!("resuming after epoch {epoch} of {epochs}");
    }
    let label = |done: usize| format!("epoch {}/{epochs}", done + 1);
    let bar = ctx.progress(
        trainer.steps_per_epoch() as u64,
        &label(trainer.epochs_done()),
    );
    let last = trainer.fit::<anyhow::Error>(
        &mut |s| {
            on_step(s);
            bar.set_position(s.step as u64 + 1);
            bar.set_message(format!("loss {:.3}", s.loss));
        },
        &mut |r, trainer| {
            bar.restart(label(r.epoch));
            eprintln!("{r}");
            let step = r.epoch as i64;
            ctx.log_metrics(step, &r.metrics())?;
            ctx.save_checkpoint(step, &trainer.checkpoint()?)?;
            Ok(())
        },
    )?;
    bar.finish();
    match last {
        Some(epoch) => Ok(epoch.val),
        None => Ok(trainer.evaluate_val()?),
    }
}
