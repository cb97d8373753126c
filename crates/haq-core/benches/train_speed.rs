//! Training and evaluation speed of the default model, MobileNet-V2 (small-input variant)
//! on Fashion-MNIST 28x28, batch 128, two threads, at widths 0.5 and 1.0.
//!
//! `cargo bench -p haq-core --bench train_speed`; `HAQ_BENCH_STEPS` sets the number of
//! timed training steps per width (default 20; evaluation times the same number of
//! batches). On a busy machine run it with `OMP_WAIT_POLICY=PASSIVE`: libtorch's OpenMP
//! threads otherwise spin waiting for each other while the OS runs someone else.

use std::time::Instant;

use haq_core::arch::{Arch, ArchConfig};
use haq_core::data::{Augment, DatasetName, DatasetSpec, Split};
use haq_core::models::Model;
use haq_core::train::{evaluate, train_epoch, EpochSpec, Sgd, SgdConfig};
use tch::Device;

const BATCH: usize = 128;
const THREADS: i32 = 2;
const TRAIN_IMAGES: f64 = 60_000.0;

fn main() -> Result<(), haq_core::error::Error> {
    tch::set_num_threads(THREADS);
    let steps: usize = std::env::var("HAQ_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let spec = DatasetSpec::new(DatasetName::FashionMnist);
    let train = spec.load(Split::Train)?.subset(steps * BATCH, 0)?;
    let test = spec.load(Split::Test)?.subset(steps * BATCH, 0)?;
    let warmup = train.subset(2 * BATCH, 1)?;

    println!(
        "MobileNet-V2, Fashion-MNIST 28x28, batch {BATCH}, {THREADS} threads, {steps} timed steps"
    );
    for width in [0.5, 1.0] {
        let config = ArchConfig {
            width,
            in_channels: 1,
            ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
        };
        let model = Model::new(&config, Device::Cpu, 0)?;
        let macs: usize = model.layers().iter().map(|l| l.shape.macs()).sum();
        let params: usize = model.layers().iter().map(|l| l.shape.params).sum();
        let mut opt = Sgd::new(
            model.var_store(),
            SgdConfig {
                lr: 0.05,
                ..SgdConfig::default()
            },
        );
        let epoch = |epoch| EpochSpec {
            epoch,
            seed: 0,
            batch_size: BATCH,
            augment: Augment::default(),
        };

        train_epoch(
            &model,
            &mut opt,
            &warmup,
            &epoch(0),
            Device::Cpu,
            |_| 0.05,
            |_| {},
        );
        let stats = train_epoch(
            &model,
            &mut opt,
            &train,
            &epoch(1),
            Device::Cpu,
            |_| 0.05,
            |_| {},
        );
        let train_rate = stats.images as f64 / stats.seconds;

        let start = Instant::now();
        evaluate(&model, &test, BATCH, Device::Cpu);
        let eval_rate = test.len() as f64 / start.elapsed().as_secs_f64();

        println!(
            "width {width}: {:.2} M weights, {:.1} M MACs/image | train {train_rate:.0} images/s \
             ({:.0} s per 60k-image epoch) | eval {eval_rate:.0} images/s",
            params as f64 / 1e6,
            macs as f64 / 1e6,
            TRAIN_IMAGES / train_rate,
        );
    }
    Ok(())
}
