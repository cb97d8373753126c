//! A whole training run by epochs — the recipe the pretrain and finetune stages share —
//! and the trainer that runs it, resumably.

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
            // Refused rather than trained on a smaller batch: a batch other than the
            // recipe's would change its results without a word.
            if n < self.batch_size {
                return Err(Error::Config {
                    field: "train_subset".into(),
                    problem: format!(
                        "{n} images are fewer than one batch (batch_size {}): epochs train on \
                         full batches only, so none would run; raise train_subset or lower batch_size",
                        self.batch_size
                    ),
                });
            }
        }
        // Padding by half the side already crops some images to black; more is a typo.
        let max_padding = image_size.map_or(64, |side| side / 2);
        Ok(range(
            "augment.crop_padding",
            self.augment.crop_padding,
            0,
            max_padding,
        )?)
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

/// A training run by epochs: a network and its variables, the optimiser the recipe
/// starts, the data, and how many epochs are done. The pretrain and finetune stages train
/// through it (`crate::stage::train` adds resume, progress and checkpoints); the search's
/// short per-episode finetune counts steps, not epochs, and keeps its own loop.
pub struct Trainer<'a> {
    net: &'a dyn Network,
    vs: &'a VarStore,
    opt: Sgd,
    recipe: &'a Recipe,
    train: &'a Dataset,
    val: &'a Dataset,
    seed: u64,
    device: Device,
    epochs_done: usize,
}

const EPOCH_KEY: &str = "state.epochs_done";
const VAR_PREFIX: &str = "var.";

impl<'a> Trainer<'a> {
    /// A run from epoch 0. `vs` holds every variable `net` trains (linear quantization's
    /// clips included, so build the trainer after applying a policy).
    pub fn new(
        net: &'a dyn Network,
        vs: &'a VarStore,
        recipe: &'a Recipe,
        data: (&'a Dataset, &'a Dataset),
        seed: u64,
        device: Device,
    ) -> Trainer<'a> {
        let (train, val) = data;
        Trainer {
            net,
            vs,
            opt: recipe.sgd(vs),
            recipe,
            train,
            val,
            seed,
            device,
            epochs_done: 0,
        }
    }

    pub fn recipe(&self) -> &Recipe {
        self.recipe
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.train_steps(self.recipe.batch_size)
    }

    /// Everything needed to continue exactly: epochs done, every variable, and the
    /// optimiser's momentum buffers.
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Tensor)> = var_store_tensors(self.vs)
            .into_iter()
            .map(|(n, t)| (format!("{VAR_PREFIX}{n}"), t))
            .collect();
        tensors.extend(self.opt.state());
        tensors.push((EPOCH_KEY.to_string(), Tensor::from(self.epochs_done as i64)));
        to_safetensors(&tensors)
    }

    /// Continues from what [`Trainer::checkpoint`] wrote after epoch `epochs`.
    pub fn resume(&mut self, epochs: usize, checkpoint: &[u8]) -> Result<()> {
        let mut vars = Vec::new();
        let mut opt_state = Vec::new();
        let mut done = None;
        for (name, tensor) in from_safetensors(checkpoint)? {
            if name == EPOCH_KEY {
                done = Some(tensor.int64_value(&[]) as usize);
            } else if let Some(var) = name.strip_prefix(VAR_PREFIX) {
                vars.push((var.to_string(), tensor));
            } else {
                opt_state.push((name, tensor));
            }
        }
        let done = done.ok_or_else(|| Error::weights("checkpoint has no epoch count".into()))?;
        if done != epochs {
            return Err(Error::Checkpoint(format!(
                "the checkpoint of epoch {epochs} holds {done} epochs"
            )));
        }
        load_var_store(self.vs, &vars)?;
        self.opt.load_state(&opt_state)?;
        self.epochs_done = done;
        Ok(())
    }

    /// The network's accuracy on the validation data.
    pub fn evaluate_val(&self) -> Result<Accuracy> {
        evaluate(self.net, self.val, self.recipe.eval_batch, self.device)
    }

    /// Trains the epochs left. `on_step` runs after every optimiser step (k-means weight
    /// sharing hooks in there), `on_epoch` after each epoch — the caller logs and
    /// checkpoints there. Returns the last epoch's report, None when no epoch was left: its
    /// validation accuracy is the trained network's, so callers need not evaluate it again.
    pub fn fit<E: From<Error>>(
        &mut self,
        on_step: &mut dyn FnMut(&StepStats),
        on_epoch: &mut dyn FnMut(&EpochReport, &Trainer) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<EpochReport>, E> {
        let steps = self.steps_per_epoch();
        let schedule = self.recipe.schedule(steps);
        let mut last = None;
        while self.epochs_done < self.recipe.epochs {
            let epoch = self.epochs_done;
            let spec = EpochSpec {
                epoch,
                seed: self.seed,
                batch_size: self.recipe.batch_size,
                augment: self.recipe.augment.clone(),
            };
            let lr = |step: usize| schedule.lr(epoch * steps + step);
            let stats = train_epoch(
                self.net,
                &mut self.opt,
                self.train,
                &spec,
                self.device,
                lr,
                &mut *on_step,
            )?;
            let report = EpochReport {
                epoch: epoch + 1,
                epochs: self.recipe.epochs,
                train: stats,
                val: self.evaluate_val()?,
                lr: lr(steps.saturating_sub(1)),
            };
            self.epochs_done = epoch + 1;
            on_epoch(&report, self)?;
            last = Some(report);
        }
        Ok(last)
    }
}
