//! The quantized model as a file, and integer inference from it.
//!
//! A safetensors file in which each quantizable layer `<name>` (see [`crate::arch::layers`])
//! keeps its weights as integer codes packed at `w_bits` bits each (LSB first), in
//! `<name>.weight_codes` (u8), with
//! - linear mode: `<name>.weight_scale` (f32 scalar `s`; weight = (code - offset) * s with
//!   offset 2^(b-1) - 1, or at 1 bit weight = s * (2 code - 1)) and `<name>.input_clip`
//!   (f32 scalar, the trained PACT clip of the layer's input);
//! - k-means mode: `<name>.weight_codebook` (f32 `[2^b]`; weight = codebook[code]).
//!
//! Every other variable (batch-norm parameters and statistics, biases) is stored in f32
//! under its own name. The metadata's one entry, `haq` (one entry, as safetensors writes
//! metadata in hash order and the file must be byte-for-byte reproducible), is a JSON
//! object: `policy` (the policy), `arch` (the [`ArchConfig`]) and `layers` (per layer:
//! name, bits, input signedness).

use crate::OrTorch;
use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::linear::fake_quantize;
use super::{ClipTable, Policy};
use crate::arch::ArchConfig;
use crate::error::{Error, Result};
use crate::models::{LayerQuantizer, Model};
use crate::train::{from_safetensors, Network};

/// Where the linear quantizer keeps the trained activation clips (see `quant::apply`).
const INPUT_CLIP: &str = "quant.input_clip_";

/// The metadata entry's key.
const METADATA: &str = "haq";

/// The metadata: what the file holds besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    policy: Policy,
    arch: ArchConfig,
    layers: Vec<LayerEntry>,
}

/// One quantizable layer as the metadata records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerEntry {
    name: String,
    w_bits: u8,
    a_bits: Option<u8>,
    signed_input: bool,
}

/// Raw little-endian bytes with their safetensors dtype and shape.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn f32s(values: &[f32], shape: Vec<usize>) -> Raw {
        Raw {
            dtype: Dtype::F32,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn tensor(t: &Tensor) -> Result<Raw> {
        let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float);
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).or_torch()?;
        Ok(Raw::f32s(
            &values,
            t.size().iter().map(|&d| d as usize).collect(),
        ))
    }
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Packs `codes` (each below 2^bits) at `bits` bits each, LSB first.
fn pack(codes: &[u8], bits: u8) -> Vec<u8> {
    let mut out = vec![0u8; (codes.len() * usize::from(bits)).div_ceil(8)];
    for (i, &c) in codes.iter().enumerate() {
        for j in 0..usize::from(bits) {
            let p = i * usize::from(bits) + j;
            out[p / 8] |= ((c >> j) & 1) << (p % 8);
        }
    }
    out
}

/// The inverse of [`pack`] for `n` codes.
fn unpack(bytes: &[u8], bits: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (0..usize::from(bits)).fold(0u8, |c, j| {
                let p = i * usize::from(bits) + j;
                c | (((bytes[p / 8] >> (p % 8)) & 1) << j)
            })
        })
        .collect()
}

/// The code offset and step of a linear weight quantizer with clip `c` at `bits`: the same
/// grid as [`fake_quantize`] (signed), s = c / (2^(b-1) - 1); at 1 bit the weights are
/// ±c, stored as offset 1/2 and step 2c so that (code - 1/2) * 2c = ±c.
fn linear_grid(bits: u8, clip: f32) -> (f32, f32) {
    if bits == 1 {
        (0.5, 2.0 * clip)
    } else {
        let steps = ((1u32 << (bits - 1)) - 1) as f32;
        (steps, clip / steps)
    }
}

/// Exports `model` under `policy` as the safetensors bytes described in the module docs.
///
/// Linear mode (the policy has `a_bits`): weight clips come from `clips` at each layer's
/// bits, activation clips from the model's trained `quant.input_clip_<i>` variables (apply
/// [`super::Quantization`] first). k-means mode: the model's weights must already be
/// clustered (at most 2^w_bits distinct values per layer); `clips` is not used.
pub fn export(model: &Model, policy: &Policy, clips: &ClipTable) -> Result<Vec<u8>> {
    let layers = model.layers();
    policy.check(layers.len())?;
    let mut variables = model.var_store().variables();
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    let mut entries = Vec::new();
    for (i, (layer, bits)) in layers.iter().zip(&policy.layers).enumerate() {
        let weight = variables
            .remove(&format!("{}.weight", layer.name))
            .expect("every layer's weight is a variable");
        let w =
            Vec::<f32>::try_from(weight.detach().to_kind(Kind::Float).flatten(0, -1)).or_torch()?;
        let b = bits.w_bits;
        let codes = match bits.a_bits {
            Some(_) => {
                let layer_clips = clips.layers.get(i).ok_or_else(|| Error::Config {
                    field: "clips".into(),
                    problem: format!(
                        "{} layers of clips for a model of {} quantizable layers; rerun the \
                         calibrate stage on this model",
                        clips.layers.len(),
                        layers.len()
                    ),
                })?;
                let c = layer_clips.weight_clip(b) as f32;
                let (offset, scale) = linear_grid(b, c);
                let input_clip =
                    variables
                        .remove(&format!("{INPUT_CLIP}{i}"))
                        .ok_or_else(|| {
                            Error::Weights(format!(
                                "`{INPUT_CLIP}{i}` is missing: apply the linear quantization \
                             to the model before exporting it"
                            ))
                        })?;
                tensors.push((
                    format!("{}.weight_scale", layer.name),
                    Raw::f32s(&[scale], vec![]),
                ));
                tensors.push((
                    format!("{}.input_clip", layer.name),
                    Raw::tensor(&input_clip)?,
                ));
                w.iter()
                    .map(|&x| {
                        if b == 1 {
                            u8::from(x >= 0.0)
                        } else {
                            // The same f32 arithmetic as fake_quantize: round(clamp(x) / s).
                            ((x.clamp(-c, c) / scale).round() + offset) as u8
                        }
                    })
                    .collect::<Vec<u8>>()
            }
            None => {
                let mut codebook = w.clone();
                codebook.sort_by(f32::total_cmp);
                codebook.dedup();
                if codebook.len() > 1 << b {
                    return Err(Error::Weights(format!(
                        "layer {i} (`{}`) has {} distinct weights, more than the 2^{b} of \
                         its k-means policy; export the weights of a k-means finetune",
                        layer.name,
                        codebook.len()
                    )));
                }
                let codes = w
                    .iter()
                    .map(|x| codebook.partition_point(|c| c < x) as u8)
                    .collect();
                // The size model counts a full codebook of 2^b entries; unused ones are 0.
                codebook.resize(1 << b, 0.0);
                tensors.push((
                    format!("{}.weight_codebook", layer.name),
                    Raw::f32s(&codebook, vec![1 << b]),
                ));
                codes
            }
        };
        let packed = pack(&codes, b);
        tensors.push((
            format!("{}.weight_codes", layer.name),
            Raw {
                dtype: Dtype::U8,
                shape: vec![packed.len()],
                bytes: packed,
            },
        ));
        entries.push(LayerEntry {
            name: layer.name.clone(),
            w_bits: b,
            a_bits: bits.a_bits,
            signed_input: layer.signed_input,
        });
    }
    // What remains besides the clips of other layers: batch norms and biases, in float.
    for (name, t) in variables {
        if !name.starts_with(INPUT_CLIP) {
            tensors.push((name, Raw::tensor(&t)?));
        }
    }
    let header = Header {
        policy: policy.clone(),
        arch: model.config().clone(),
        layers: entries,
    };
    let header = serde_json::to_string(&header)
        .map_err(|e| Error::Weights(format!("cannot write the metadata: {e}")))?;
    let metadata = HashMap::from([(METADATA.to_string(), header)]);
    safetensors::tensor::serialize(
        tensors.iter().map(|(name, raw)| (name.as_str(), raw)),
        &Some(metadata),
    )
    .map_err(|e| Error::Weights(format!("cannot serialise the quantized model: {e}")))
}

/// One layer's activation quantizer in the integer model.
struct ActivationGrid {
    bits: Option<u8>,
    clip: Tensor,
    signed: bool,
}

/// An exported model loaded for integer inference: each quantizable layer's weights are
/// its integer codes dequantized exactly in f32 (code * scale, or the codebook entry), and
/// in linear mode each layer's input is quantized to its integer grid (stored clip and bits).
pub struct IntegerModel {
    model: Model,
    policy: Policy,
    grids: Vec<ActivationGrid>,
}

impl IntegerModel {
    /// Loads safetensors bytes written by [`export`] onto `device`.
    pub fn load(bytes: &[u8], device: Device) -> Result<IntegerModel> {
        let bad = |what: String| {
            Error::Weights(format!(
                "not a quantized model ({what}); write one with `haq export-model`"
            ))
        };
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
        let header = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA))
            .ok_or_else(|| bad(format!("no `{METADATA}` entry in its metadata")))?;
        let Header {
            policy,
            arch,
            layers: entries,
        } = serde_json::from_str(header).map_err(|e| bad(format!("metadata `{METADATA}`: {e}")))?;

        // Every weight is overwritten below, so the initialisation seed does not matter.
        let model = Model::new(&arch, device, 0)?;
        policy.check(model.layers().len())?;
        let mut tensors: HashMap<String, Tensor> = from_safetensors(bytes)?.into_iter().collect();
        let mut take = |name: String| {
            tensors
                .remove(&name)
                .ok_or_else(|| bad(format!("tensor `{name}` is missing")))
        };
        let mut floats = Vec::new();
        let mut grids = Vec::new();
        for (layer, entry) in model.layers().iter().zip(&entries) {
            let weight = model.layer_weight(layer.index);
            let n = weight.numel();
            let codes_bytes =
                Vec::<u8>::try_from(take(format!("{}.weight_codes", entry.name))?).or_torch()?;
            if codes_bytes.len() != (n * usize::from(entry.w_bits)).div_ceil(8) {
                return Err(bad(format!(
                    "`{}.weight_codes` has {} bytes for {n} weights at {} bits",
                    entry.name,
                    codes_bytes.len(),
                    entry.w_bits
                )));
            }
            let codes = Tensor::from_slice(&unpack(&codes_bytes, entry.w_bits, n));
            let values = match entry.a_bits {
                Some(_) => {
                    let scale = take(format!("{}.weight_scale", entry.name))?.double_value(&[]);
                    let (offset, _) = linear_grid(entry.w_bits, 0.0);
                    // (code - offset) is an exact small integer in f32, times the f32 scale.
                    (codes.to_kind(Kind::Float) - f64::from(offset)) * (scale as f32) as f64
                }
                None => take(format!("{}.weight_codebook", entry.name))?
                    .index_select(0, &codes.to_kind(Kind::Int64)),
            };
            floats.push((
                format!("{}.weight", entry.name),
                values.to_kind(Kind::Float).view_as(&weight),
            ));
            let clip = match entry.a_bits {
                Some(_) => take(format!("{}.input_clip", entry.name))?,
                None => Tensor::from(0.0f32),
            };
            grids.push(ActivationGrid {
                bits: entry.a_bits,
                clip: clip.to_kind(Kind::Float).to_device(device),
                signed: entry.signed_input,
            });
        }
        floats.extend(tensors);
        model.load_weights(&floats)?;
        Ok(IntegerModel {
            model,
            policy,
            grids,
        })
    }

    /// The policy the model was exported under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
}

impl LayerQuantizer for IntegerModel {
    /// The weights are already their dequantized codes.
    fn weight(&self, _layer: usize, w: &Tensor) -> Tensor {
        w.shallow_clone()
    }

    fn input(&self, layer: usize, x: &Tensor) -> Tensor {
        let g = &self.grids[layer];
        match g.bits {
            Some(bits) => fake_quantize(x, bits, &g.clip, g.signed),
            None => x.shallow_clone(),
        }
    }
}

impl Network for IntegerModel {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        self.model.forward_quantized(images, train, self)
    }
}
