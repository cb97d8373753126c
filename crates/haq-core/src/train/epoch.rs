//! One epoch of training: the loop the pretrain and finetune stages share.

use std::time::Instant;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use super::{Network, Sgd};
use crate::data::{Augment, Dataset};
use crate::error::{Error, Result};
use crate::rng::{seeded_rng, stream};

/// What an epoch iterates: everything random in it follows from `(seed, epoch)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSpec {
    pub epoch: usize,
    pub seed: u64,
    pub batch_size: usize,
    pub augment: Augment,
}

/// Progress after one optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Step within the epoch, from 0, and the epoch's number of steps.
    pub step: usize,
    pub steps: usize,
    pub lr: f64,
    pub loss: f64,
    /// Top-1 accuracy on the batch, in percent.
    pub top1: f64,
}

/// Totals of an epoch: mean training loss and running top-1 accuracy (percent) over its
/// batches, images seen and wall time, and the steps skipped for a non-finite loss or
/// gradients.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub loss: f64,
    pub top1: f64,
    pub images: usize,
    pub seconds: f64,
    pub skipped: usize,
}

/// Trains `model` for one epoch of `data`. Before step `i` of the epoch the learning rate
/// is set to `lr(i)` (the caller maps it to its global step); after it `on_step` hears
/// how it went. Libtorch's generator is seeded from `(seed, epoch)` first, so dropout is
/// as reproducible as the batches. A batch that cannot be read ends the epoch with its error;
/// so does data too small for one full batch (the epoch would train nothing).
///
/// A step whose loss or gradients are not finite numbers is skipped, weights untouched
/// (see [`Sgd::backward_step`]): one bad batch of an aggressive low-bit policy must not
/// poison the weights or end the run. An epoch that skips every step has diverged, an
/// error.
pub fn train_epoch(
    model: &(impl Network + ?Sized),
    opt: &mut Sgd,
    data: &Dataset,
    spec: &EpochSpec,
    device: Device,
    lr: impl Fn(usize) -> f64,
    mut on_step: impl FnMut(&StepStats),
) -> Result<EpochStats> {
    let start = Instant::now();
    tch::manual_seed(seeded_rng(spec.seed, stream::TORCH + spec.epoch as u64).next_u64() as i64);
    let batches = data.train_batches(spec.batch_size, &spec.augment, spec.seed, spec.epoch);
    let steps = batches.len();
    if steps == 0 {
        return Err(Error::Config {
            field: "batch_size".into(),
            problem: format!(
                "{} exceeds the {} training images: an epoch trains on full batches only, so \
                 none would run; lower batch_size",
                spec.batch_size,
                data.len()
            ),
        });
    }
    let (mut loss_sum, mut correct, mut images, mut skipped) = (0.0, 0i64, 0usize, 0usize);
    for (step, batch) in batches.enumerate() {
        let batch = batch?;
        let labels = batch.labels.to_device(device);
        let n = labels.size()[0];
        opt.set_lr(lr(step));
        let logits = model.logits(&batch.images.to_device(device), true);
        let loss_tensor = logits.cross_entropy_for_logits(&labels);
        let loss = loss_tensor.double_value(&[]);
        if !loss.is_finite() || !opt.backward_step(&loss_tensor) {
            skipped += 1;
            continue;
        }

        let hits = logits
            .argmax(1, false)
            .eq_tensor(&labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
        loss_sum += loss * n as f64;
        correct += hits;
        images += n as usize;
        on_step(&StepStats {
            step,
            steps,
            lr: opt.config().lr,
            loss,
            top1: 100.0 * hits as f64 / n as f64,
        });
    }
    if skipped > 0 && skipped == steps {
        return Err(Error::Diverged {
            epoch: spec.epoch + 1,
            steps,
        });
    }
    let seen = images.max(1) as f64;
    Ok(EpochStats {
        loss: loss_sum / seen,
        top1: 100.0 * correct as f64 / seen,
        images,
        seconds: start.elapsed().as_secs_f64(),
        skipped,
    })
}
