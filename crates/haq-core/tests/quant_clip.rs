//! Clip choice: KL below 5 bits beats max-clipping on a Gaussian, max |x| from 5 bits up.

use haq_core::quant::clip::{choose_clip, kl_clip, max_abs, mean_abs};
use haq_core::quant::linear::fake_quantize;
use tch::{Device, Kind, Tensor};

fn gaussian(n: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([n], (Kind::Float, Device::Cpu))
}

fn mse(x: &Tensor, bits: u8, clip: f64, signed: bool) -> f64 {
    let q = fake_quantize(x, bits, &Tensor::from(clip as f32), signed);
    (q - x).square().mean(Kind::Double).double_value(&[])
}

#[test]
fn kl_clip_is_below_max_and_beats_max_clipping_at_2_to_4_bits() {
    let _torch = crate::torch_lock();
    // Weights (signed) on a Gaussian; activations (unsigned) on a rectified Gaussian.
    for (signed, sample) in [
        (true, gaussian(100_000, 1)),
        (false, gaussian(100_000, 2).relu()),
    ] {
        let values = Vec::<f32>::try_from(&sample).unwrap();
        let max = max_abs(&values);
        for bits in 2..=4u8 {
            let kl = choose_clip(&values, bits, signed);
            let (kl_mse, max_mse) = (
                mse(&sample, bits, kl, signed),
                mse(&sample, bits, max, signed),
            );
            println!(
                "signed {signed} bits {bits}: KL clip {kl:.3} (MSE {kl_mse:.5}), \
                 max {max:.3} (MSE {max_mse:.5})"
            );
            assert!(kl > 0.0 && kl < max, "KL clip {kl} not in (0, {max})");
            assert!(
                kl_mse < max_mse,
                "KL MSE {kl_mse} >= max-clip MSE {max_mse}"
            );
        }
    }
}

#[test]
fn five_bits_and_above_clip_at_max_abs() {
    let _torch = crate::torch_lock();
    let values = Vec::<f32>::try_from(gaussian(10_000, 3)).unwrap();
    let max = max_abs(&values);
    for bits in 5..=8u8 {
        assert_eq!(choose_clip(&values, bits, true), max);
        assert_eq!(choose_clip(&values, bits, false), max);
    }
    assert!(choose_clip(&values, 4, true) < max);
}

#[test]
fn kl_clip_keeps_the_whole_range_when_it_is_already_on_the_levels() {
    let _torch = crate::torch_lock();
    // Values on exactly four levels 0, 1, 2, 3 quantize losslessly with T = 3.
    let values: Vec<f32> = (0..4000).map(|i| (i % 4) as f32).collect();
    let t = kl_clip(&values, 4);
    assert!((t - 3.0).abs() < 1e-9, "KL clip {t}, expected 3");
}

#[test]
fn degenerate_inputs_give_a_zero_clip() {
    let _torch = crate::torch_lock();
    assert_eq!(max_abs(&[]), 0.0);
    assert_eq!(kl_clip(&[0.0; 10], 4), 0.0);
    assert_eq!(max_abs(&[f32::NAN, -2.0, f32::INFINITY]), 2.0);
}

#[test]
fn one_bit_weights_clip_at_the_squared_error_optimum() {
    let _torch = crate::torch_lock();
    let sample = gaussian(50_000, 4);
    let values = Vec::<f32>::try_from(&sample).unwrap();
    let c = choose_clip(&values, 1, true);
    assert_eq!(c, mean_abs(&values));
    let best = mse(&sample, 1, c, true);
    for other in [0.8 * c, 1.25 * c, max_abs(&values)] {
        assert!(best < mse(&sample, 1, other, true), "clip {c} vs {other}");
    }
}

#[test]
fn a_single_occupied_bin_is_no_candidate() {
    let _torch = crate::torch_lock();
    // Half the values at 1, half over (1.5, 3], denser near 1.5. T just above the 1s would
    // score KL 0 (one occupied bin: P and Q the same point mass) yet clip half the values.
    let values: Vec<f32> = (0..2000)
        .map(|i| match i {
            0..1000 => 1.0,
            _ => 1.5 + 1.5 * ((i - 999) as f32 / 1000.0).powi(2),
        })
        .collect();
    let t = kl_clip(&values, 4);
    assert!(t > 1.5, "KL clip {t} clips everything above the 1s");
}

#[test]
fn small_weight_tensors_still_get_a_kl_clip() {
    let _torch = crate::torch_lock();
    // A depthwise layer has only a few hundred weights: the histogram must not be so sparse
    // that every candidate looks alike and the search falls back to max |x|. Single samples
    // vary, so the MSE is summed over eight.
    for bits in 2..=4u8 {
        let (mut kl_mse, mut max_mse) = (0.0, 0.0);
        for seed in 10..18 {
            let sample = gaussian(1000, seed);
            let values = Vec::<f32>::try_from(&sample).unwrap();
            let (kl, max) = (choose_clip(&values, bits, true), max_abs(&values));
            assert!(
                kl <= max,
                "seed {seed}, {bits} bits: KL clip {kl} > max {max}"
            );
            kl_mse += mse(&sample, bits, kl, true);
            max_mse += mse(&sample, bits, max, true);
        }
        println!(
            "{bits} bits: KL clip MSE / max-clip MSE = {:.3}",
            kl_mse / max_mse
        );
        assert!(kl_mse < 0.9 * max_mse, "{bits} bits: {kl_mse} vs {max_mse}");
    }
}
