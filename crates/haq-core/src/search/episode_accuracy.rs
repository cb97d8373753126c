//! The accuracy behind each episode's reward (docs/search.md): the pretrained model with the
//! episode's policy applied, then either finetuned for a few steps on a search-train
//! subset (the paper's reward) or only recalibrated — batch-norm statistics re-estimated
//! on a few hundred search-train images, no SGD (as NNCF's AutoQ scores candidates) —
//! and evaluated on a search-val subset.
//!
//! One model serves every episode: its pretrained values are copied back in rather than
//! the model rebuilt, and both subsets stay normalised on the device, so an episode costs
//! its finetune and its evaluation and little else.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::env::Mode;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::{FullPrecision, LayerQuantizer, Model};
use crate::quant::{ClipTable, KmeansQuantizer, LinearQuantizer, Policy};
use crate::rng::{seeded_rng, stream};
use crate::train::{Network, Sgd, SgdConfig};

/// Images per evaluation batch: large batches are faster, and this one fits any device.
const EVAL_BATCH: i64 = 500;

/// How each episode finetunes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Optimiser steps per episode.
    pub steps: usize,
    pub batch_size: usize,
    pub sgd: SgdConfig,
}

impl FinetuneConfig {
    /// The short finetune of the paper's reward: SGD with lr 1e-3, momentum 0.9, weight
    /// decay 4e-5 (the released code's settings).
    pub fn new(steps: usize, batch_size: usize) -> FinetuneConfig {
        FinetuneConfig {
            steps,
            batch_size,
            sgd: SgdConfig {
                lr: 1e-3,
                ..SgdConfig::default()
            },
        }
    }
}

/// How an episode adapts the quantized model before evaluating it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// The paper's: a few SGD steps.
    Finetune(FinetuneConfig),
    /// Batch-norm statistics re-estimated, in one forward pass, on the first `images`
    /// images of the search-train subset; no SGD.
    Calibrate { images: usize },
}

impl Scoring {
    /// Fails unless what an episode draws from the `train` images of the search-train
    /// subset fits in it: at least 2 (batch norm needs more than one value per channel in
    /// training mode), and at least one finetune step. The search stage's params check and
    /// [`EpisodeAccuracy::new`] both ask.
    pub fn check(&self, train: usize) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(Error::Config {
                field: field.into(),
                problem,
            })
        };
        let (field, images) = match *self {
            Scoring::Finetune(config) => {
                if config.steps == 0 {
                    return bad("finetune_steps", "must be at least 1".into());
                }
                ("finetune_batch", config.batch_size)
            }
            Scoring::Calibrate { images } => ("calibrate_images", images),
        };
        if !(2..=train).contains(&images) {
            return bad(
                field,
                format!(
                    "{images} is not between 2 and the {train} images of the search-train subset"
                ),
            );
        }
        Ok(())
    }
}

/// One episode's accuracy and where its time went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Top-1 on the search-val subset, in percent.
    pub accuracy: f64,
    /// Applying the policy (k-means clustering included) and finetuning or recalibrating.
    pub finetune: Duration,
    /// Whether the finetune diverged (a loss that is not a finite number): the episode
    /// then scores 0%, a collapsed policy, and the search goes on.
    pub diverged: bool,
    pub eval: Duration,
}

/// Normalised images and their labels, on the model's device.
struct Subset {
    images: Tensor,
    labels: Tensor,
}

impl Subset {
    fn new(data: &Dataset, model: &Model) -> Result<Subset> {
        Ok(Subset {
            images: data.normalize(&data.images()?).to_device(model.device()),
            labels: data.labels.to_device(model.device()),
        })
    }

    fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }
}

/// Measures policies of one pretrained model; see the module's documentation.
pub struct EpisodeAccuracy {
    model: Model,
    /// Every variable of the model (batch-norm statistics included) beside a copy of its
    /// pretrained value.
    pretrained: Vec<(Tensor, Tensor)>,
    /// The batch-norm running means and variances, which recalibration re-estimates.
    bn_stats: Vec<Tensor>,
    clips: ClipTable,
    train: Subset,
    val: Subset,
    scoring: Scoring,
    seed: u64,
    float_accuracy: f64,
}

impl EpisodeAccuracy {
    /// `model` holds the pretrained weights; `clips` are the calibrate stage's (linear
    /// policies start from them); `train` and `val` are the search's subsets. Everything
    /// random in episode `e` follows from `(seed, e)` alone.
    pub fn new(
        model: Model,
        clips: ClipTable,
        train: &Dataset,
        val: &Dataset,
        scoring: Scoring,
        seed: u64,
    ) -> Result<EpisodeAccuracy> {
        let bad = |field: &str, problem: String| {
            Err(Error::Config {
                field: field.into(),
                problem,
            })
        };
        scoring.check(train.len())?;
        if clips.layers.len() != model.layers().len() {
            return bad(
                "clips",
                format!(
                    "{} layers of clips for a model of {} quantizable layers; rerun the \
                     calibrate stage on this model",
                    clips.layers.len(),
                    model.layers().len()
                ),
            );
        }
        let variables = model.var_store().variables();
        let bn_stats = variables
            .iter()
            .filter(|(name, _)| name.ends_with("running_mean") || name.ends_with("running_var"))
            .map(|(_, var)| var.shallow_clone())
            .collect();
        let pretrained = variables
            .into_values()
            .map(|var| {
                let value = var.detach().copy();
                (var, value)
            })
            .collect();
        let train = Subset::new(train, &model)?;
        let val = Subset::new(val, &model)?;
        let mut this = EpisodeAccuracy {
            model,
            pretrained,
            bn_stats,
            clips,
            train,
            val,
            scoring,
            seed,
            float_accuracy: 0.0,
        };
        this.float_accuracy = this.evaluate(&FullPrecision);
        Ok(this)
    }

    /// The unquantized model's top-1 on the search-val subset, in percent: the reward's
    /// reference, measured on the very images the episodes are.
    pub fn float_accuracy(&self) -> f64 {
        self.float_accuracy
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The calibrate stage's clips the linear policies start from.
    pub fn clips(&self) -> &ClipTable {
        &self.clips
    }

    /// The first `n` search-train images (normalised) and their labels.
    pub fn train_images(&self, n: usize) -> Result<(Tensor, Tensor)> {
        if n == 0 || n > self.train.len() {
            return Err(Error::Config {
                field: "images".into(),
                problem: format!(
                    "{n} search-train images asked for, of the {} there are; give 1 to {}",
                    self.train.len(),
                    self.train.len()
                ),
            });
        }
        Ok((
            self.train.images.narrow(0, 0, n as i64),
            self.train.labels.narrow(0, 0, n as i64),
        ))
    }

    /// Evaluates on `val` from now on, and re-measures the float accuracy on it (returned):
    /// to score a search's finalists on more images than its episodes.
    pub fn set_val(&mut self, val: &Dataset) -> Result<f64> {
        self.val = Subset::new(val, &self.model)?;
        self.reset();
        self.float_accuracy = self.evaluate(&FullPrecision);
        Ok(self.float_accuracy)
    }

    /// The accuracy of `policy` in episode `episode`: the pretrained model quantized by
    /// `policy` (linear or k-means, as the policy is), finetuned or recalibrated,
    /// evaluated.
    pub fn measure(&mut self, policy: &Policy, episode: usize) -> Result<Measurement> {
        let start = Instant::now();
        self.reset();
        let mut rng = seeded_rng(self.seed, stream::SEARCH_EPISODE + episode as u64);
        // Dropout draws from libtorch's generator.
        tch::manual_seed(rng.next_u64() as i64);
        let (diverged, finetune, accuracy) = match Mode::of(policy) {
            Mode::Linear => {
                let root = self.model.var_store().root();
                let quantizer = LinearQuantizer::new(&(root / "quant"), policy, &self.clips)?;
                let diverged = self.adapt(&quantizer, &mut rng, || {});
                let finetune = start.elapsed();
                (diverged, finetune, self.evaluate(&quantizer))
            }
            Mode::Kmeans => {
                let weights = (0..self.model.layers().len())
                    .map(|i| self.model.layer_weight(i))
                    .collect();
                let mut quantizer = KmeansQuantizer::new(weights, policy, rng.next_u64())?;
                let diverged = self.adapt(&FullPrecision, &mut rng, || quantizer.update());
                let finetune = start.elapsed();
                (diverged, finetune, self.evaluate(&FullPrecision))
            }
        };
        Ok(Measurement {
            accuracy: if diverged { 0.0 } else { accuracy },
            finetune,
            eval: start.elapsed() - finetune,
            diverged,
        })
    }

    /// Finetunes or recalibrates, as the scoring says; true when the finetune diverged.
    fn adapt(
        &self,
        quantizer: &dyn LayerQuantizer,
        rng: &mut ChaCha8Rng,
        after_step: impl FnMut(),
    ) -> bool {
        match self.scoring {
            Scoring::Finetune(config) => self.finetune(quantizer, config, rng, after_step),
            Scoring::Calibrate { images } => {
                self.recalibrate(quantizer, images);
                false
            }
        }
    }

    /// Re-estimates every batch norm's running statistics on the first `images` images
    /// of the search-train subset, seen through `quantizer`: with the running values
    /// zeroed, one training-mode pass leaves `momentum x` the batch's statistics in them
    /// (the models' batch norms use tch's default config).
    fn recalibrate(&self, quantizer: &dyn LayerQuantizer, images: usize) {
        let momentum = nn::BatchNormConfig::default().momentum;
        let net = self.model.quantized(quantizer);
        tch::no_grad(|| {
            for stat in &self.bn_stats {
                let _ = stat.shallow_clone().zero_();
            }
            let batch = self.train.images.narrow(0, 0, images as i64);
            let _ = net.logits(&batch, true);
            for stat in &self.bn_stats {
                let _ = stat.shallow_clone().g_div_scalar_(momentum);
            }
        });
    }

    /// Puts the pretrained values back.
    fn reset(&mut self) {
        tch::no_grad(|| {
            for (var, value) in &mut self.pretrained {
                var.copy_(value);
            }
        });
    }

    /// `config.steps` SGD steps from fresh optimiser state on batches of the search-train
    /// subset, reshuffled (by `rng`) each time it runs out; `after_step` follows each step.
    /// Stops and returns true at the first loss that is not a finite number.
    fn finetune(
        &self,
        quantizer: &dyn LayerQuantizer,
        config: FinetuneConfig,
        rng: &mut ChaCha8Rng,
        mut after_step: impl FnMut(),
    ) -> bool {
        let net = self.model.quantized(quantizer);
        // Built here rather than once, as the linear quantizer's clips join the variables.
        let mut opt = Sgd::new(self.model.var_store(), config.sgd);
        let batch = config.batch_size;
        let mut order: Vec<i64> = (0..self.train.len() as i64).collect();
        let mut next = order.len();
        for _ in 0..config.steps {
            // Like an epoch of `Dataset::train_batches`, the few left over are dropped.
            if next + batch > order.len() {
                order.shuffle(rng);
                next = 0;
            }
            let index =
                Tensor::from_slice(&order[next..next + batch]).to_device(self.model.device());
            next += batch;
            let images = self.train.images.index_select(0, &index);
            let labels = self.train.labels.index_select(0, &index);
            let loss = net.logits(&images, true).cross_entropy_for_logits(&labels);
            if !loss.double_value(&[]).is_finite() {
                return true;
            }
            // A step with non-finite gradients is skipped (`Sgd::backward_step`).
            if opt.backward_step(&loss) {
                after_step();
            }
        }
        false
    }

    /// Top-1 on the search-val subset, in percent.
    fn evaluate(&self, quantizer: &dyn LayerQuantizer) -> f64 {
        let net = self.model.quantized(quantizer);
        let hits: i64 = tch::no_grad(|| {
            self.val
                .images
                .split(EVAL_BATCH, 0)
                .iter()
                .zip(self.val.labels.split(EVAL_BATCH, 0))
                .map(|(images, labels)| {
                    net.logits(images, false)
                        .argmax(1, false)
                        .eq_tensor(&labels)
                        .sum(Kind::Int64)
                        .int64_value(&[])
                })
                .sum()
        });
        100.0 * hits as f64 / self.val.len() as f64
    }
}
