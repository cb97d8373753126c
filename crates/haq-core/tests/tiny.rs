//! What several tests share: Fashion-MNIST splits, one epoch of brief training, and clips
//! measured as the calibrate stage measures them.

use haq_core::config::{DatasetSettings, Splits};
use haq_core::data::{Augment, Dataset, DatasetName};
use haq_core::models::Model;
use haq_core::quant::{measure_clips, ClipTable};
use haq_core::train::{train_epoch, CosineSchedule, EpochSpec, Network, Sgd, SgdConfig};
use tch::Device;

/// Images per training batch.
pub const BATCH: usize = 64;

/// Fashion-MNIST with `val_size` validation images, split by `seed`.
pub fn fashion_mnist(val_size: usize, seed: u64) -> Splits {
    DatasetSettings {
        name: DatasetName::FashionMnist,
        root: None,
        image_size: None,
        val_size,
        test_size: None,
    }
    .load(seed)
    .unwrap()
}

/// One pass over `data` in batches of [`BATCH`], training `network` (whose variables are
/// `model`'s) with the default SGD and a cosine learning rate from `lr` after `warmup`
/// steps; `after_step` follows every optimiser step.
pub fn train(
    model: &Model,
    network: &(impl Network + ?Sized),
    data: &Dataset,
    (lr, warmup): (f64, usize),
    seed: u64,
    mut after_step: impl FnMut(),
) {
    let schedule = CosineSchedule {
        base_lr: lr,
        final_lr: 0.0,
        warmup_steps: warmup,
        total_steps: data.len() / BATCH,
    };
    let mut opt = Sgd::new(model.var_store(), SgdConfig::default());
    let spec = EpochSpec {
        epoch: 0,
        seed,
        batch_size: BATCH,
        augment: Augment::none(),
    };
    train_epoch(
        network,
        &mut opt,
        data,
        &spec,
        Device::Cpu,
        |i| schedule.lr(i),
        |_| after_step(),
    )
    .unwrap();
}

/// Clips from `images` images of a subset of the training split seeded by `seed`.
pub fn clips(model: &Model, splits: &Splits, images: usize, seed: u64) -> ClipTable {
    let calibration = splits.train.subset(images, seed).unwrap();
    let batch = calibration.eval_batches(images).next().unwrap().unwrap();
    measure_clips(model, &batch.images).unwrap()
}
