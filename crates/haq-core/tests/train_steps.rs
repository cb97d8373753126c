//! The steps an epoch plans (for the learning-rate schedule and progress) are the steps
//! it runs.

use haq_core::data::{Augment, Dataset};
use haq_core::train::{Recipe, Trainer};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// `n` random 1x4x4 images with labels `i % 10`.
fn images(n: i64) -> Dataset {
    Dataset::in_memory(
        Tensor::randint(256, [n, 1, 4, 4], (Kind::Uint8, Device::Cpu)),
        Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10),
        10,
        vec![0.5],
        vec![0.25],
    )
}

/// A linear classifier of 1x4x4 images.
fn linear_net(vs: &nn::VarStore) -> nn::SequentialT {
    let linear = nn::linear(vs.root(), 16, 10, Default::default());
    nn::seq_t().add_fn(move |x| linear.forward(&x.flatten(1, -1)))
}

fn recipe() -> Recipe {
    Recipe {
        epochs: 1,
        batch_size: 32,
        lr: 0.1,
        final_lr: 0.0,
        warmup_epochs: 0.0,
        momentum: 0.9,
        weight_decay: 0.0,
        augment: Augment::default(),
        train_subset: None,
        eval_batch: 64,
    }
}

#[test]
fn an_epoch_runs_the_steps_it_plans() {
    let _torch = crate::torch_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = linear_net(&vs);
    let recipe = recipe();
    // 70 images in batches of 32: two full batches, the remaining 6 dropped.
    let (train, val) = (images(70), images(10));
    let mut trainer = Trainer::new(&net, &vs, &recipe, (&train, &val), 0, Device::Cpu);
    let planned = trainer.steps_per_epoch();
    let mut ran = Vec::new();
    trainer
        .fit::<haq_core::error::Error>(&mut |s| ran.push((s.step, s.steps)), &mut |_, _| Ok(()))
        .unwrap();
    assert_eq!(ran, [(0, 2), (1, 2)]);
    assert_eq!(planned, 2, "planned {planned} steps, ran {ran:?}");
}

#[test]
fn fewer_images_than_a_batch_is_an_error_not_an_empty_epoch() {
    let _torch = crate::torch_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = linear_net(&vs);
    let recipe = recipe();
    let (train, val) = (images(31), images(10));
    let mut trainer = Trainer::new(&net, &vs, &recipe, (&train, &val), 0, Device::Cpu);
    let err = trainer
        .fit::<haq_core::error::Error>(&mut |_| {}, &mut |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_size") && err.contains("32") && err.contains("31"),
        "{err}"
    );
}
