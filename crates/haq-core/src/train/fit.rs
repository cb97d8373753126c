//! A whole training run by epochs — the recipe the pretrain and finetune stages share —
//! and its resumable state.

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{
    evaluate, from_safetensors, load_var_store, to_safetensors, train_epoch, var_store_tensors,
};
use super::{Accuracy, CosineSchedule, EpochSpec, EpochStats, Network, Sgd, SgdConfig, StepStats};
use crate::data::{Augment, Dataset};
use crate::error::{Error, Result};

/// How to train: SGD with momentum and weight decay, a cosine learning rate after a
/// linear warm-up, by epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate, reached after the warm-up.
    pub lr: f64,
    #[serde(default)]
    pub final_lr: f64,
    #[serde(default)]
    pub warmup_epochs: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default)]
    pub augment: Augment,
    /// Train on a seeded subset of this many examples (for quick experiments and tests).
    #[serde(default)]
    pub train_subset: Option<usize>,
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
}

fn default_momentum() -> f64 {
    0.9
}

/// The paper's weight decay (HAQ §4).
fn default_weight_decay() -> f64 {
    4e-5
}

fn default_eval_batch() -> usize {
    500
}

impl Recipe {
    /// The optimiser the recipe starts with.
    pub fn sgd(&self, vs: &VarStore) -> Sgd {
        let config = SgdConfig {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: false,
        };
        Sgd::new(vs, config)
    }

    /// The ranges of every number; crops are bounded by the image side where it is known.
    pub fn check(&self, image_size: Option<usize>) -> Result<()> {
        use crate::check::{finite, range, MAX_BATCH, MAX_EPOCHS, MAX_IMAGES};
        range("epochs", self.epochs, 0, MAX_EPOCHS)?;
        range("batch_size", self.batch_size, 1, MAX_BATCH)?;
        range("eval_batch", self.eval_batch, 1, MAX_BATCH)?;
        finite("lr", self.lr, 0.0, 100.0)?;
        finite("final_lr", self.final_lr, 0.0, 100.0)?;
        finite(
            "warmup_epochs",
            self.warmup_epochs,
            0.0,
            self.epochs.max(1) as f64,
        )?;
        finite("momentum", self.momentum, 0.0, 0.9999)?;
        finite("weight_decay", self.weight_decay, 0.0, 1.0)?;
        if let Some(n) = self.train_subset {
            range("train_subset", n, 1, MAX_IMAGES)?;
        }
        // Padding by half the side already crops some images to black; more is a typo.
        let max_padding = image_size.map_or(64, |side| side / 2);
        range(
            "augment.crop_padding",
            self.augment.crop_padding,
            0,
            max_padding,
        )
    }

    /// The seeded subset of `train` to train on, if the recipe asks for one.
    pub fn train_subset(&self, train: &Dataset, seed: u64) -> Result<Option<Dataset>> {
        self.train_subset.map(|n| train.subset(n, seed)).transpose()
    }

    fn schedule(&self, steps_per_epoch: usize) -> CosineSchedule {
        CosineSchedule {
            base_lr: self.lr,
            final_lr: self.final_lr,
            warmup_steps: (self.warmup_epochs * steps_per_epoch as f64).round() as usize,
            total_steps: self.epochs * steps_per_epoch,
        }
    }
}

/// What one epoch did: its number (from 1), training statistics, validation accuracy and
/// the learning rate at its last step.
#[derive(Debug, Clone, Copy)]
pub struct EpochReport {
    pub epoch: usize,
    /// The recipe's number of epochs.
    pub epochs: usize,
    pub train: EpochStats,
    pub val: Accuracy,
    pub lr: f64,
}

impl EpochReport {
    /// The metrics a training stage logs for the epoch, at step `epoch`.
    pub fn metrics(&self) -> [(&'static str, f64); 7] {
        [
            ("train_loss", self.train.loss),
            ("train_top1", self.train.top1),
            ("val_top1", self.val.top1),
            ("val_top5", self.val.top5),
            ("lr", self.lr),
            ("epoch_seconds", self.train.seconds),
            ("skipped_steps", self.train.skipped as f64),
        ]
    }
}

impl std::fmt::Display for EpochReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {}/{}: loss {:.4}, train top-1 {:.2}%, val top-1 {:.2}% top-5 {:.2}%, lr {:.5}, {:.1}s",
            self.epoch, self.epochs, self.train.loss, self.train.top1, self.val.top1, self.val.top5, self.lr,
            self.train.seconds
        )?;
        if self.train.skipped > 0 {
            write!(
                f,
                ", {} steps skipped (non-finite loss or gradients)",
                self.train.skipped
            )?;
        }
        Ok(())
    }
}

/// Trains `net` (whose variables are `vs`) from epoch `first_epoch + 1` to the recipe's
/// last. `on_step` runs after every optimiser step (k-means weight sharing hooks in there),
/// `on_epoch` after each epoch with the optimiser — the caller logs and checkpoints there.
/// Returns the last epoch's report, None when no epoch was left to train: its validation
/// accuracy is the trained network's, so callers need not evaluate it again.
#[allow(clippy::too_many_arguments)]
pub fn fit<E: From<Error>>(
    net: &(impl Network + ?Sized),
    opt: &mut Sgd,
    recipe: &Recipe,
    train: &Dataset,
    val: &Dataset,
    seed: u64,
    device: Device,
    first_epoch: usize,
    on_step: &mut dyn FnMut(&StepStats),
    on_epoch: &mut dyn FnMut(&EpochReport, &Sgd) -> std::result::Result<(), E>,
) -> std::result::Result<Option<EpochReport>, E> {
    let steps = train.len().div_ceil(recipe.batch_size.max(1));
    let schedule = recipe.schedule(steps);
    let mut last = None;
    for epoch in first_epoch..recipe.epochs {
        let spec = EpochSpec {
            epoch,
            seed,
            batch_size: recipe.batch_size,
            augment: recipe.augment.clone(),
        };
        let lr = |step: usize| schedule.lr(epoch * steps + step);
        let stats = train_epoch(net, opt, train, &spec, device, lr, &mut *on_step)?;
        let report = EpochReport {
            epoch: epoch + 1,
            epochs: recipe.epochs,
            train: stats,
            val: evaluate(net, val, recipe.eval_batch, device)?,
            lr: lr(steps.saturating_sub(1)),
        };
        on_epoch(&report, opt)?;
        last = Some(report);
    }
    Ok(last)
}

/// Everything needed to continue training exactly: epochs done, every variable, and the
/// optimiser's momentum buffers.
pub struct TrainState;

const EPOCH_KEY: &str = "state.epochs_done";
const VAR_PREFIX: &str = "var.";

impl TrainState {
    pub fn save(vs: &VarStore, opt: &Sgd, epochs_done: usize) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Tensor)> = var_store_tensors(vs)
            .into_iter()
            .map(|(n, t)| (format!("{VAR_PREFIX}{n}"), t))
            .collect();
        tensors.extend(opt.state());
        tensors.push((EPOCH_KEY.to_string(), Tensor::from(epochs_done as i64)));
        to_safetensors(&tensors)
    }

    /// Restores what [`TrainState::save`] wrote and returns the number of epochs done.
    pub fn restore(bytes: &[u8], vs: &VarStore, opt: &mut Sgd) -> Result<usize> {
        let mut vars = Vec::new();
        let mut opt_state = Vec::new();
        let mut epochs = None;
        for (name, tensor) in from_safetensors(bytes)? {
            if name == EPOCH_KEY {
                epochs = Some(tensor.int64_value(&[]) as usize);
            } else if let Some(var) = name.strip_prefix(VAR_PREFIX) {
                vars.push((var.to_string(), tensor));
            } else {
                opt_state.push((name, tensor));
            }
        }
        let epochs =
            epochs.ok_or_else(|| Error::Weights("checkpoint has no epoch count".into()))?;
        load_var_store(vs, &vars)?;
        opt.load_state(&opt_state)?;
        Ok(epochs)
    }
}
