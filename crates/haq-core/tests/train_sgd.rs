//! The SGD optimiser against hand-computed updates, and exact save/restore of its state.

use haq_core::train::{from_safetensors, to_safetensors, Sgd, SgdConfig};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// A store with one variable `w = [1, -2]`; the loss `sum(w * [0.5, 3])` has gradient
/// `[0.5, 3]`.
fn one_variable() -> (VarStore, Tensor) {
    let vs = VarStore::new(Device::Cpu);
    let w = vs
        .root()
        .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
    (vs, w)
}

fn loss(w: &Tensor) -> Tensor {
    (w * Tensor::from_slice(&[0.5f32, 3.0])).sum(Kind::Float)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert!(
        got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
        "got {got:?}, want {want:?}"
    );
}

#[test]
fn momentum_and_weight_decay_match_pytorch_by_hand() {
    let (vs, w) = one_variable();
    let mut opt = Sgd::new(
        &vs,
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov: false,
        },
    );
    // Step 1: d = g + 0.01 w = [0.51, 2.98] = buf; w = [1, -2] - 0.1 d.
    opt.backward_step(&loss(&w));
    assert_close(&values(&w), &[0.949, -2.298]);
    // Step 2: d = g + 0.01 w = [0.50949, 2.97702]; buf = 0.9 [0.51, 2.98] + d.
    opt.backward_step(&loss(&w));
    assert_close(
        &values(&w),
        &[0.949 - 0.1 * 0.96849, -2.298 - 0.1 * 5.65902],
    );
    assert_close(&values(&opt.state()[0].1), &[0.96849, 5.65902]);
    assert_eq!(opt.state()[0].0, "momentum.w");
}

#[test]
fn nesterov_looks_ahead() {
    let (vs, w) = one_variable();
    let mut opt = Sgd::new(
        &vs,
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: true,
        },
    );
    // d = g = buf; step with d + 0.9 buf = 1.9 g.
    opt.backward_step(&loss(&w));
    assert_close(
        &values(&w),
        &[1.0 - 0.1 * 1.9 * 0.5, -2.0 - 0.1 * 1.9 * 3.0],
    );
}

#[test]
fn plain_sgd_and_frozen_variables() {
    let vs = VarStore::new(Device::Cpu);
    let w = vs
        .root()
        .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
    let frozen = vs.root().zeros_no_train("running", &[2]);
    let mut opt = Sgd::new(
        &vs,
        SgdConfig {
            lr: 0.5,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        },
    );
    opt.backward_step(&loss(&w));
    assert_close(&values(&w), &[0.75, -3.5]);
    assert_close(&values(&frozen), &[0.0, 0.0]);
    // Only trainable variables have state.
    assert_eq!(opt.state().len(), 1);
}

#[test]
fn restored_state_continues_bitwise_identically() {
    let config = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
        nesterov: false,
    };
    let target = Tensor::from_slice(&[0.3f32, -0.7, 1.1]);
    let quadratic = |w: &Tensor| (w - &target).square().sum(Kind::Float) * 3.7;

    let vs = VarStore::new(Device::Cpu);
    let w = vs
        .root()
        .var_copy("w", &Tensor::from_slice(&[1.0f32, 2.0, -3.0]));
    let mut opt = Sgd::new(&vs, config);
    for _ in 0..5 {
        opt.backward_step(&quadratic(&w));
    }
    let saved_w = to_safetensors(&[("w".to_string(), w.shallow_clone())]).unwrap();
    let saved_state = to_safetensors(&opt.state()).unwrap();
    for _ in 0..5 {
        opt.backward_step(&quadratic(&w));
    }

    let resume = |with_state: bool| {
        let vs = VarStore::new(Device::Cpu);
        let w2 = vs
            .root()
            .var_copy("w", &Tensor::zeros([3], (Kind::Float, Device::Cpu)));
        haq_core::train::load_var_store(&vs, &from_safetensors(&saved_w).unwrap()).unwrap();
        let mut opt = Sgd::new(&vs, config);
        if with_state {
            opt.load_state(&from_safetensors(&saved_state).unwrap())
                .unwrap();
        }
        for _ in 0..5 {
            opt.backward_step(&quadratic(&w2));
        }
        w2
    };
    assert!(resume(true).equal(&w), "resumed run diverged");
    // Without the momentum buffers the continuation differs: the state matters.
    assert!(!resume(false).equal(&w));
}

#[test]
fn state_from_another_model_is_rejected() {
    let (vs, _) = one_variable();
    let mut opt = Sgd::new(&vs, SgdConfig::default());
    let err = opt
        .load_state(&[(
            "momentum.v".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        )])
        .unwrap_err();
    assert!(err.to_string().contains("`momentum.v`"), "{err}");
    let err = opt.load_state(&[]).unwrap_err();
    assert!(err.to_string().contains("lacks `momentum.w`"), "{err}");
    let err = opt
        .load_state(&[(
            "momentum.w".into(),
            Tensor::zeros([3], (Kind::Float, Device::Cpu)),
        )])
        .unwrap_err();
    assert!(err.to_string().contains("shape [3]"), "{err}");
}
