//! Linear fake quantizers: levels, rounding error, straight-through and PACT gradients,
//! and the per-model LinearQuantizer.

use haq_core::models::LayerQuantizer;
use haq_core::quant::clip::{choose_clip, max_abs};
use haq_core::quant::linear::{fake_quantize, quantize_weight};
use haq_core::quant::{ClipTable, LayerClips, LinearQuantizer, Policy};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn distinct(t: &Tensor) -> i64 {
    t.flatten(0, -1).internal_unique(true, false).0.size()[0]
}

fn max_of(t: &Tensor) -> f64 {
    t.max().double_value(&[])
}

/// Evenly spaced values over [lo, hi], dense enough to hit every level.
fn ramp(lo: f64, hi: f64) -> Tensor {
    Tensor::linspace(lo, hi, 10_001, (Kind::Float, Device::Cpu))
}

fn scalar(v: f64) -> Tensor {
    Tensor::from(v as f32)
}

#[test]
fn at_most_2_pow_b_distinct_values() {
    let _torch = crate::torch_lock();
    for bits in 1..=8u8 {
        let n = 1i64 << bits;
        let w = quantize_weight(&ramp(-3.0, 3.0), bits, 2.0);
        let signed_levels = if bits == 1 { 2 } else { n - 1 };
        assert_eq!(distinct(&w), signed_levels, "weights at {bits} bits");
        let x = fake_quantize(&ramp(-1.0, 3.0), bits, &scalar(2.0), false);
        assert_eq!(distinct(&x), n, "unsigned activations at {bits} bits");
        let x = fake_quantize(&ramp(-3.0, 3.0), bits, &scalar(2.0), true);
        assert_eq!(
            distinct(&x),
            signed_levels,
            "signed activations at {bits} bits"
        );
    }
}

#[test]
fn one_bit_weights_are_plus_or_minus_the_clip() {
    let _torch = crate::torch_lock();
    let w = Tensor::from_slice(&[-3.0f32, -0.1, 0.0, 0.2, 5.0]);
    let q = quantize_weight(&w, 1, 0.5);
    assert_eq!(
        Vec::<f32>::try_from(q).unwrap(),
        [-0.5, -0.5, 0.5, 0.5, 0.5]
    );
}

#[test]
fn error_is_at_most_half_a_step_inside_the_clip() {
    let _torch = crate::torch_lock();
    let clip = 1.7;
    for bits in 1..=8u8 {
        let slack = 1e-6;
        if bits > 1 {
            let s = clip / f64::from((1 << (bits - 1)) - 1);
            let w = ramp(-clip, clip);
            let err = max_of(&(quantize_weight(&w, bits, clip) - &w).abs());
            assert!(
                err <= s / 2.0 + slack,
                "signed {bits} bits: {err} > {}",
                s / 2.0
            );
        }
        let s = clip / f64::from((1 << bits) - 1);
        let x = ramp(0.0, clip);
        let err = max_of(&(fake_quantize(&x, bits, &scalar(clip), false) - &x).abs());
        assert!(
            err <= s / 2.0 + slack,
            "unsigned {bits} bits: {err} > {}",
            s / 2.0
        );
    }
}

#[test]
fn clipped_values_land_on_the_clip() {
    let _torch = crate::torch_lock();
    let x = Tensor::from_slice(&[-9.0f32, 9.0]);
    let q = fake_quantize(&x, 3, &scalar(1.5), true);
    assert_eq!(Vec::<f32>::try_from(q).unwrap(), [-1.5, 1.5]);
    let q = fake_quantize(&x, 3, &scalar(1.5), false);
    assert_eq!(Vec::<f32>::try_from(q).unwrap(), [0.0, 1.5]);
}

/// x's gradient is 1 inside the clip range and 0 outside; the clip's is the count of
/// values above it (minus, when signed, the count below -clip).
#[test]
fn straight_through_and_pact_gradients() {
    let _torch = crate::torch_lock();
    let values = [-2.5f32, -1.2, -0.4, 0.1, 0.33, 0.9, 1.4, 3.0, 4.0];
    for (signed, inside, clip_grad) in [
        (false, [0., 0., 0., 1., 1., 1., 0., 0., 0.], 3.0),
        (true, [0., 0., 1., 1., 1., 1., 0., 0., 0.], 3.0 - 2.0),
    ] {
        for bits in [1u8, 2, 4, 8] {
            let x = Tensor::from_slice(&values).set_requires_grad(true);
            let clip = scalar(1.0).set_requires_grad(true);
            fake_quantize(&x, bits, &clip, signed)
                .sum(Kind::Float)
                .backward();
            let dx = Vec::<f32>::try_from(x.grad()).unwrap();
            assert_eq!(dx, inside, "dq/dx, signed {signed}, {bits} bits");
            let dclip = clip.grad().double_value(&[]);
            assert_eq!(dclip, clip_grad, "dq/dclip, signed {signed}, {bits} bits");
        }
    }

    // No value beyond the clip: the clip gets no gradient.
    let x = Tensor::from_slice(&[0.1f32, 0.5, 0.9]).set_requires_grad(true);
    let clip = scalar(1.0).set_requires_grad(true);
    fake_quantize(&x, 4, &clip, false)
        .sum(Kind::Float)
        .backward();
    assert_eq!(clip.grad().double_value(&[]), 0.0);

    // Weights: the same straight-through rule with a fixed clip.
    let w = Tensor::from_slice(&[-2.0f32, -0.3, 0.7, 1.9]).set_requires_grad(true);
    quantize_weight(&w, 3, 1.0).sum(Kind::Float).backward();
    assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), [0., 1., 1., 0.]);
}

/// Float CPU tensors take the fused kernel (fake_quant.cpp), double ones libtorch's ops:
/// both give the same values and gradients (up to values a float rounding away from a
/// level's edge), with and without autograd, for a clip given as a variable or not.
#[test]
fn fused_kernel_agrees_with_libtorch_ops() {
    let _torch = crate::torch_lock();
    tch::manual_seed(3);
    let x = Tensor::randn([64, 8, 13, 13], (Kind::Float, Device::Cpu)) * 1.5;
    let upstream = Tensor::randn([64, 8, 13, 13], (Kind::Float, Device::Cpu));
    for (bits, signed) in [
        (1u8, true),
        (2, true),
        (3, false),
        (4, true),
        (4, false),
        (8, false),
    ] {
        let run = |kind: Kind, train: bool| {
            // Copies: a same-kind to_kind is the tensor itself, and grads would accumulate.
            let x = x.to_kind(kind).copy().set_requires_grad(train);
            let clip = Tensor::from(1.25).to_kind(kind).set_requires_grad(train);
            let q = fake_quantize(&x, bits, &clip, signed);
            if train {
                (&q * upstream.to_kind(kind)).sum(kind).backward();
                let grads = (
                    x.grad().to_kind(Kind::Double),
                    clip.grad().double_value(&[]),
                );
                (q.detach().to_kind(Kind::Double), Some(grads))
            } else {
                (q.to_kind(Kind::Double), None)
            }
        };
        for train in [false, true] {
            let (fused, fused_grads) = run(Kind::Float, train);
            let (ops, ops_grads) = run(Kind::Double, train);
            let differ = (&fused - &ops)
                .abs()
                .gt(1e-5)
                .sum(Kind::Int64)
                .int64_value(&[]);
            assert!(
                differ <= 2,
                "{differ} values differ, {bits} bits, signed {signed}, train {train}"
            );
            if let (Some((fx, fc)), Some((ox, oc))) = (fused_grads, ops_grads) {
                let differ = (&fx - &ox).abs().gt(1e-5).sum(Kind::Int64).int64_value(&[]);
                assert!(
                    differ <= 2,
                    "{differ} dq/dx differ, {bits} bits, signed {signed}"
                );
                // Each value on a level's edge moves one upstream gradient (|g| < 4).
                assert!((fc - oc).abs() < 8.0, "dq/dclip {fc} vs {oc}");
            }
        }
    }
}

/// The fused kernel splits a tensor into blocks of 16,384 elements across libtorch's
/// threads and adds the blocks' clip-gradient sums in block order: values and gradients
/// are the same bytes at one thread and at two. (A tensor of several blocks and a ragged
/// tail, so that two threads do split it.)
#[test]
fn fused_kernel_gives_the_same_bytes_at_any_thread_count() {
    let _torch = crate::torch_lock();
    tch::manual_seed(5);
    let n = 5 * 16_384 + 13;
    let x = Tensor::randn([n], (Kind::Float, Device::Cpu)) * 1.5;
    let upstream = Tensor::randn([n], (Kind::Float, Device::Cpu));
    let threads = tch::get_num_threads();
    let run = |threads: i32, signed: bool| {
        tch::set_num_threads(threads);
        let x = x.copy().set_requires_grad(true);
        let clip = scalar(1.25).set_requires_grad(true);
        let q = fake_quantize(&x, 4, &clip, signed);
        (&q * &upstream).sum(Kind::Float).backward();
        let bytes = |t: &Tensor| -> Vec<u32> {
            Vec::<f32>::try_from(t)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        (
            bytes(&q.detach()),
            bytes(&x.grad()),
            clip.grad().double_value(&[]),
        )
    };
    for signed in [false, true] {
        let one = run(1, signed);
        let two = run(2, signed);
        assert!(one.0 == two.0, "values differ, signed {signed}");
        assert!(one.1 == two.1, "dq/dx differs, signed {signed}");
        assert_eq!(
            one.2.to_bits(),
            two.2.to_bits(),
            "dq/dclip, signed {signed}"
        );
    }
    tch::set_num_threads(threads);
}

#[test]
fn a_zero_clip_quantizes_to_zero() {
    let _torch = crate::torch_lock();
    let w = Tensor::zeros([16], (Kind::Float, Device::Cpu));
    for bits in 1..=8u8 {
        let q = quantize_weight(&w, bits, max_abs(&[0.0; 16]));
        assert_eq!(max_of(&q.abs()), 0.0, "{bits} bits");
    }
}

fn clip_table(n_layers: usize) -> ClipTable {
    tch::manual_seed(7);
    let layers = (0..n_layers)
        .map(|i| {
            let w = Vec::<f32>::try_from(Tensor::randn([500], (Kind::Float, Device::Cpu))).unwrap();
            let x = Tensor::randn([2000], (Kind::Float, Device::Cpu)) * (i + 1) as f64;
            let signed = i % 2 == 1;
            let x = if signed { x } else { x.relu() };
            LayerClips::measure(&w, &Vec::<f32>::try_from(x).unwrap(), signed)
        })
        .collect();
    ClipTable { layers }
}

#[test]
fn layer_clips_follow_choose_clip_at_every_width() {
    let _torch = crate::torch_lock();
    let table = clip_table(2);
    let layer = &table.layers[1];
    let x = Vec::<f32>::try_from(Tensor::randn([2000], (Kind::Float, Device::Cpu))).unwrap();
    let measured = LayerClips::measure(&x, &x, true);
    for bits in 1..=8u8 {
        assert_eq!(measured.weight_clip(bits), choose_clip(&x, bits, true));
        assert_eq!(measured.input_clip(bits), choose_clip(&x, bits, true));
        assert!(layer.input_clip(bits) > 0.0 && layer.weight_clip(bits) > 0.0);
    }
    let json = serde_json::to_string(&table).unwrap();
    assert_eq!(serde_json::from_str::<ClipTable>(&json).unwrap(), table);
}

#[test]
fn linear_quantizer_keeps_trainable_clips_in_the_var_store() {
    let _torch = crate::torch_lock();
    let n = 3;
    let table = clip_table(n);
    let policy = Policy::uniform_wa(n, 3, 4);
    let vs = nn::VarStore::new(Device::Cpu);
    let quant = LinearQuantizer::new(&(vs.root() / "quant"), &policy, &table).unwrap();

    let vars = vs.variables();
    for (i, layer) in table.layers.iter().enumerate() {
        let a_bits = policy.layers[i].a_bits.unwrap();
        let clip = &vars[&format!("quant.input_clip_{i}")];
        assert!(clip.requires_grad());
        assert_eq!(
            clip.double_value(&[]),
            layer.input_clip(a_bits) as f32 as f64
        );
    }
    assert_eq!(vs.trainable_variables().len(), n);

    // The layer's own bits and clips are applied: layer 1 takes signed inputs at 4 bits.
    let x = ramp(-10.0, 10.0);
    let a = table.layers[1].input_clip(4);
    let expected = fake_quantize(&x, 4, &scalar(a), true);
    assert!(quant.input(1, &x).equal(&expected));
    let w = ramp(-1.0, 1.0);
    let c = table.layers[2].weight_clip(3);
    assert!(quant.weight(2, &w).equal(&quantize_weight(&w, 3, c)));

    // One SGD step moves a clip that values exceed.
    let mut opt = nn::Sgd::default().build(&vs, 0.1).unwrap();
    let before = vars["quant.input_clip_0"].double_value(&[]);
    opt.backward_step(&quant.input(0, &(x.abs() * 100.0)).sum(Kind::Float));
    assert_ne!(vars["quant.input_clip_0"].double_value(&[]), before);

    // A second quantizer on the same path reuses and resets the variables.
    LinearQuantizer::new(&(vs.root() / "quant"), &policy, &table).unwrap();
    assert_eq!(vs.variables().len(), n);
    assert_eq!(vars["quant.input_clip_0"].double_value(&[]), before);
}

#[test]
fn linear_quantizer_rejects_unfit_policies() {
    let _torch = crate::torch_lock();
    let table = clip_table(3);
    let vs = nn::VarStore::new(Device::Cpu);
    for policy in [Policy::uniform(4, 4), Policy::uniform_weights(3, 4)] {
        let err = LinearQuantizer::new(&vs.root(), &policy, &table)
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("policy: "), "{err}");
    }
}
