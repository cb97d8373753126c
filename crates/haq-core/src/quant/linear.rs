//! Linear fake quantization: values are clipped and rounded onto an evenly spaced grid but
//! stay float tensors, so a float network trains as it will run quantized.
//!
//! Gradients pass the rounding straight through (STE, `y + (round(y) - y).detach()`), and
//! the clip follows PACT (Choi et al., 2018): inside the clip range dq/dx = 1; outside it
//! dq/dx = 0 and dq/dclip = 1 (for x <= -clip, dq/dclip = -1 when signed).

use tch::{nn, Device, Kind, Tensor};

use super::clip::ClipTable;
use super::kernel;
use super::policy::Policy;
use crate::error::{Error, Result};
use crate::models::LayerQuantizer;

/// Fake-quantizes `x` to `bits` bits (1..=8) with the clip `clip`, a scalar tensor that may
/// require grad (the trainable PACT clip of an activation) or not (a weight clip).
///
/// - signed: `q = round(clamp(x, -c, c) / s) * s`, `s = c / (2^(b-1) - 1)`, which has 2^b - 1
///   levels; at 1 bit, where that step is undefined, `q = c * sign(x)` with sign(0) = +1
///   (binary weights, as in BinaryConnect/XNOR-Net);
/// - unsigned: `q = round(clamp(x, 0, a) / s) * s`, `s = a / (2^b - 1)`, 2^b levels.
///
/// A clip of 0 (an all-zero tensor) quantizes everything to 0.
///
/// On CPU a float tensor goes through one fused kernel (`fake_quant.cpp`: one pass forward,
/// one backward). Elsewhere libtorch ops do it: under autograd the clamp is ReLU6 or
/// hardtanh on `x` scaled to their range (a fused backward, where a clamp's takes several
/// passes), and the rounding happens in place, without autograd, on a tensor no backward
/// function reads, which is the straight-through estimator without the `y + (round(y) -
/// y).detach()` passes.
pub fn fake_quantize(x: &Tensor, bits: u8, clip: &Tensor, signed: bool) -> Tensor {
    assert!(
        (1..=8).contains(&bits),
        "fake_quantize: bits {bits} not in 1..=8"
    );
    let c = clip.double_value(&[]);
    if c < f64::from(f32::MIN_POSITIVE) {
        return with_clip_gradient(x * 0.0, x, clip, 0.0, signed);
    }
    let levels = if signed && bits == 1 {
        1.0
    } else if signed {
        f64::from((1 << (bits - 1)) - 1)
    } else {
        f64::from((1 << bits) - 1)
    };
    let binary = signed && bits == 1;
    if x.device() == Device::Cpu && x.kind() == Kind::Float {
        kernel::fake_quantize(x, clip, c, levels, signed, binary)
    } else {
        by_ops(x, clip, c, levels, signed, binary)
    }
}

/// [`fake_quantize`] by libtorch ops, for any device and kind.
fn by_ops(x: &Tensor, clip: &Tensor, c: f64, levels: f64, signed: bool, binary: bool) -> Tensor {
    // An op's result requires grad only when autograd is on (tch has no getter for it).
    let q = if !x.alias().requires_grad() {
        // Inference and recalibration: no gradient to carry, so one new buffer (the
        // clamp) and the rest in place, as allocating costs more than a pass.
        // (libtorch's quantize-dequantize is faster, but deprecated.)
        let mut grid = x.clamp(if signed { -c } else { 0.0 }, c);
        let _ = grid.g_mul_scalar_(levels / c);
        round_to_grid(&mut grid, binary);
        let _ = grid.g_mul_scalar_(c / levels);
        grid
    } else {
        // Grid units: the clip range [-c or 0, c] maps to [-levels or 0, levels].
        let mut grid = if signed {
            let mut u = x * (1.0 / c);
            let _ = u.hardtanh_();
            u * levels
        } else {
            let mut u = x * (6.0 / c);
            let _ = u.relu6_();
            u * (levels / 6.0)
        };
        tch::no_grad(|| round_to_grid(&mut grid, binary));
        // In place too: no backward function reads `grid`.
        let _ = grid.g_mul_scalar_(c / levels);
        grid
    };
    with_clip_gradient(q, x, clip, c, signed)
}

/// Rounds grid units in place: to the nearest level, or for binary weights to the sign
/// (sign(0) = +1).
fn round_to_grid(grid: &mut Tensor, binary: bool) {
    if binary {
        let _ = grid.ge_(0.0).g_mul_scalar_(2.0).g_sub_scalar_(1.0);
    } else {
        let _ = grid.round_();
    }
}

/// `q`, plus PACT's gradient for a trainable clip: dq/dc is 1 where x >= c, -1 where
/// x <= -c when signed, 0 inside (added as `(c - c.detach()) * outside`, zero in value,
/// in place: every pass over the activations costs as much as a float layer's).
fn with_clip_gradient(mut q: Tensor, x: &Tensor, clip: &Tensor, c: f64, signed: bool) -> Tensor {
    if !clip.alias().requires_grad() {
        return q;
    }
    let outside = tch::no_grad(|| {
        if signed && c > 0.0 {
            // trunc(clamp(x / c, -1, 1)): -1, 0 or 1 in three passes.
            let mut o = x * (1.0 / c);
            let _ = o.clamp_(-1.0, 1.0).trunc_();
            o
        } else {
            x.ge(c).to_kind(x.kind())
        }
    });
    let _ = q.addcmul_(&(clip - clip.detach()), &outside);
    q
}

/// Fake-quantizes weights symmetrically per tensor with a fixed clip `c`.
pub fn quantize_weight(w: &Tensor, bits: u8, clip: f64) -> Tensor {
    let clip = Tensor::scalar_tensor(clip, (w.kind(), w.device()));
    fake_quantize(w, bits, &clip, true)
}

/// One layer's linear quantization settings.
struct LinearLayer {
    w_bits: u8,
    a_bits: u8,
    weight_clip: Tensor,
    /// Trainable PACT clip, a scalar variable of the VarStore.
    input_clip: Tensor,
    signed_input: bool,
}

/// Linear-mode quantization of a model: each quantizable layer's weights and input
/// activations pass through [`fake_quantize`] with the layer's bits and clips.
pub struct LinearQuantizer {
    layers: Vec<LinearLayer>,
}

impl LinearQuantizer {
    /// Sets up `policy`'s bit widths with the weight clips and initial activation clips of
    /// `clips` at those widths. The activation clips are trainable scalars named
    /// `input_clip_<layer>` under `path`, so they train, save and load with the model; a
    /// variable already there is reused and reset to the table's value (load a checkpoint
    /// after this call, not before).
    pub fn new(path: &nn::Path, policy: &Policy, clips: &ClipTable) -> Result<LinearQuantizer> {
        policy.check(clips.layers.len())?;
        if !policy.is_linear() {
            return Err(Error::policy(
                "linear quantization needs a_bits on every layer; give a policy with \
                 w_bits and a_bits, e.g. uniform:4"
                    .into(),
            ));
        }
        let layers = policy
            .layers
            .iter()
            .zip(&clips.layers)
            .enumerate()
            .map(|(i, (bits, clip))| {
                let a_bits = bits.a_bits.expect("checked: linear policies have a_bits");
                let mut input_clip = path.entry(&format!("input_clip_{i}")).or_zeros(&[]);
                tch::no_grad(|| input_clip.copy_(&Tensor::from(clip.input_clip(a_bits))));
                LinearLayer {
                    w_bits: bits.w_bits,
                    a_bits,
                    weight_clip: Tensor::scalar_tensor(
                        clip.weight_clip(bits.w_bits),
                        (Kind::Float, path.device()),
                    ),
                    input_clip,
                    signed_input: clip.signed_input,
                }
            })
            .collect();
        Ok(LinearQuantizer { layers })
    }
}

impl LayerQuantizer for LinearQuantizer {
    fn weight(&self, layer: usize, w: &Tensor) -> Tensor {
        let l = &self.layers[layer];
        fake_quantize(w, l.w_bits, &l.weight_clip, true)
    }

    fn input(&self, layer: usize, x: &Tensor) -> Tensor {
        let l = &self.layers[layer];
        fake_quantize(x, l.a_bits, &l.input_clip, l.signed_input)
    }
}
