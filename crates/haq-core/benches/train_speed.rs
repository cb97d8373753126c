//! Training and evaluation speed of the default model, MobileNet-V2 (small-input variant)
//! on Fashion-MNIST 28x28, batch 128, at widths 0.5 and 1.0, and of the paper's, width 1.0
//! at 224x224 on 3 channels and 1,000 classes, batch 32 (random images: the speed is the
//! network's): in float, and with every layer fake-quantized at 4 bits (`uniform-w4a4`,
//! clips measured on a batch) as the finetune stage and the search's per-episode finetune
//! run it.
//!
//! `cargo bench -p haq-core --bench train_speed`; `HAQ_BENCH_STEPS` sets the number of
//! timed training steps per line (default 20; 5 at 224; evaluation times the same number
//! of batches), `HAQ_BENCH_THREADS` libtorch's threads (default 2, this machine's cores). On
//! a busy machine run it with `OMP_WAIT_POLICY=PASSIVE`: libtorch's OpenMP threads
//! otherwise spin waiting for each other while the OS runs someone else.

use std::time::Instant;

use haq_core::arch::{Arch, ArchConfig};
use haq_core::data::{Augment, Dataset, DatasetName, DatasetSpec, Split};
use haq_core::error::Error;
use haq_core::models::Model;
use haq_core::quant::{measure_clips, Policy, Quantization};
use haq_core::train::{evaluate, train_epoch, EpochSpec, Network, Sgd, SgdConfig};
use tch::{Device, Kind, Tensor};

const TRAIN_IMAGES: f64 = 60_000.0;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Training and evaluation images per second of `net`, whose variables are `model`'s,
/// trained at learning rate `lr`.
fn rates(
    net: &dyn Network,
    model: &Model,
    lr: f64,
    train: &Dataset,
    test: &Dataset,
    batch: usize,
) -> Result<(f64, f64), Error> {
    let mut opt = Sgd::new(
        model.var_store(),
        SgdConfig {
            lr,
            ..SgdConfig::default()
        },
    );
    let epoch = |epoch| EpochSpec {
        epoch,
        seed: 0,
        batch_size: batch,
        augment: Augment::default(),
    };
    let warmup = train.subset(2 * batch, 1).expect("the bench's subset");
    let lr = |_| lr;
    train_epoch(net, &mut opt, &warmup, &epoch(0), Device::Cpu, lr, |_| {})?;
    let stats = train_epoch(net, &mut opt, train, &epoch(1), Device::Cpu, lr, |_| {})?;
    let start = Instant::now();
    evaluate(net, test, batch, Device::Cpu)?;
    let eval_rate = test.len() as f64 / start.elapsed().as_secs_f64();
    Ok((stats.images as f64 / stats.seconds, eval_rate))
}

/// One network's float and w4a4 lines, `label` naming it (`width 0.5`).
fn measure(
    label: &str,
    config: &ArchConfig,
    train: &Dataset,
    test: &Dataset,
    batch: usize,
) -> Result<(), Error> {
    let model = Model::new(config, Device::Cpu, 0)?;
    let macs: usize = model.layers().iter().map(|l| l.shape.macs()).sum();
    let params: usize = model.layers().iter().map(|l| l.shape.params).sum();
    println!(
        "{label}: {:.2} M weights, {:.1} M MACs/image",
        params as f64 / 1e6,
        macs as f64 / 1e6
    );
    let float = rates(&model, &model, 0.05, train, test, batch)?;

    let calibration = train.subset(batch, 2)?;
    let calibration = calibration
        .eval_batches(batch)
        .next()
        .expect("a batch")?
        .images;
    let clips = measure_clips(&model, &calibration)?;
    let policy = Policy::uniform_wa(model.layers().len(), 4, 4);
    let mut quantization = Quantization::apply(&model, &policy, &clips, 0)?;
    let net = model.quantized(quantization.parts().0);
    // A barely trained network at 4 bits has exploding straight-through gradients (1e7 at
    // the stem), so its first step would wreck it and later steps would be skipped as
    // non-finite: it trains at learning rate 0, the same work.
    let quantized = rates(&net, &model, 0.0, train, test, batch)?;

    for (name, (train_rate, eval_rate)) in [("float", float), ("w4a4 fake-quant", quantized)] {
        println!(
            "{label} haq {name}: train {train_rate:.0} images/s | eval {eval_rate:.0} \
             images/s ({:.0} s per 60k-image epoch)",
            TRAIN_IMAGES / train_rate,
        );
    }
    println!(
        "  fake-quant / float: train {:.2}x, eval {:.2}x",
        quantized.0 / float.0,
        quantized.1 / float.1
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let threads = env_or("HAQ_BENCH_THREADS", 2);
    let steps = env_or("HAQ_BENCH_STEPS", 20);
    tch::set_num_threads(threads as i32);
    // As every stage runs (Settings::apply_runtime).
    haq_core::config::keep_freed_buffers();
    let batch = 128;
    let spec = DatasetSpec::new(DatasetName::FashionMnist);
    let train = spec.load(Split::Train)?.subset(steps * batch, 0)?;
    let test = spec.load(Split::Test)?.subset(steps * batch, 0)?;
    println!(
        "MobileNet-V2, Fashion-MNIST 28x28, batch {batch}, {threads} threads, {steps} timed steps"
    );
    for width in [0.5, 1.0] {
        let config = ArchConfig {
            width,
            in_channels: 1,
            ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
        };
        measure(&format!("width {width}"), &config, &train, &test, batch)?;
    }

    let (batch, steps) = (32, env_or("HAQ_BENCH_STEPS", 5));
    let images = |n: usize, seed: i64| {
        tch::manual_seed(seed);
        let pixels = Tensor::randint(256, [n as i64, 3, 224, 224], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(1000, [n as i64], (Kind::Int64, Device::Cpu));
        let (mean, std) = (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]);
        Dataset::in_memory(pixels, labels, 1000, mean, std)
    };
    // The timed epoch, and its warm-up of two batches drawn from it.
    let (train, test) = (images(steps * batch, 0), images(steps * batch, 1));
    println!("MobileNet-V2, 224x224 (random images), batch {batch}, {threads} threads, {steps} timed steps");
    let config = ArchConfig::new(Arch::MobileNetV2, 224, 1000);
    measure("width 1.0 224x224", &config, &train, &test, batch)?;
    Ok(())
}
