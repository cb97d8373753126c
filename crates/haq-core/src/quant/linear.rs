//! Linear fake quantization: values are clipped and rounded onto an evenly spaced grid but
//! stay float tensors, so a float network trains as it will run quantized.
//!
//! Gradients pass the rounding straight through (STE, `y + (round(y) - y).detach()`), and
//! the clip follows PACT (Choi et al., 2018): inside the clip range dq/dx = 1; outside it
//! dq/dx = 0 and dq/dclip = 1 (for x <= -clip, dq/dclip = -1 when signed).

use tch::{nn, Kind, Tensor};

use super::clip::ClipTable;
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
pub fn fake_quantize(x: &Tensor, bits: u8, clip: &Tensor, signed: bool) -> Tensor {
    assert!(
        (1..=8).contains(&bits),
        "fake_quantize: bits {bits} not in 1..=8"
    );
    let lower = if signed { -clip } else { clip.zeros_like() };
    let y = x.clamp_tensor(Some(&lower), Some(clip));
    // Rounded in place without autograd: fewer passes over the activations than
    // differentiable ops (and libtorch's fused fake-quant op is slower still on CPU).
    let q = tch::no_grad(|| {
        if signed && bits == 1 {
            return clip * (y.ge(0.0).to_kind(y.kind()) * 2.0 - 1.0);
        }
        let steps: i64 = if signed {
            (1 << (bits - 1)) - 1
        } else {
            (1 << bits) - 1
        };
        // Guarded so that a zero clip gives zeros rather than 0/0.
        let step = clip.clamp_min(f64::from(f32::MIN_POSITIVE)) / steps as f64;
        let mut q = &y / &step;
        let _ = q.round_();
        let _ = q.g_mul_(&step);
        q
    });
    if !y.requires_grad() {
        return q;
    }
    // y + (q - y) with the difference detached: dq/dy = 1.
    let mut offset = q;
    let _ = tch::no_grad(|| offset.g_sub_(&y));
    y + offset
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
            return Err(Error::Policy(
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
