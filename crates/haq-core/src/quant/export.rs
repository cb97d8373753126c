//! Writing the quantized model file (layout: [`haq_export`]) from a finetuned model, and
//! integer inference from it.

use std::borrow::Cow;
use std::collections::HashMap;

use haq_export::{
    layer_codes, linear_grid, linear_levels, not_quantized, pack, read_header, Header, LayerEntry,
    METADATA,
};
use safetensors::tensor::{Dtype, View};
use tch::{Device, Kind, Tensor};

use super::linear::fake_quantize;
use super::{ClipTable, Policy};
use crate::error::{Error, Result};
use crate::models::{LayerQuantizer, Model};
use crate::train::{from_safetensors, Network};

/// Where the linear quantizer keeps the trained activation clips (see `quant::apply`).
const INPUT_CLIP: &str = "quant.input_clip_";

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
        let values = Vec::<f32>::try_from(t.flatten(0, -1))?;
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

/// Exports `model` under `policy` as the bytes of a quantized model file ([`haq_export`]).
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
        let w = Vec::<f32>::try_from(weight.detach().to_kind(Kind::Float).flatten(0, -1))?;
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
                            Error::weights(format!(
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
                    return Err(Error::weights(format!(
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
        .map_err(|e| Error::weights(format!("cannot write the metadata: {e}")))?;
    let metadata = HashMap::from([(METADATA.to_string(), header)]);
    safetensors::tensor::serialize(
        tensors.iter().map(|(name, raw)| (name.as_str(), raw)),
        &Some(metadata),
    )
    .map_err(|e| Error::weights(format!("cannot serialise the quantized model: {e}")))
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
        let Header {
            policy,
            arch,
            layers: entries,
        } = read_header(bytes)?;

        // Every weight is overwritten below, so the initialisation seed does not matter.
        let model = Model::new(&arch, device, 0)?;
        policy.check(model.layers().len())?;
        let mut tensors: HashMap<String, Tensor> = from_safetensors(bytes)?.into_iter().collect();
        let mut take = |name: String| {
            tensors
                .remove(&name)
                .ok_or_else(|| not_quantized(format!("tensor `{name}` is missing")))
        };
        let mut floats = Vec::new();
        let mut grids = Vec::new();
        for (layer, entry) in model.layers().iter().zip(&entries) {
            let weight = model.layer_weight(layer.index);
            let packed = Vec::<u8>::try_from(take(format!("{}.weight_codes", entry.name))?)?;
            let codes = layer_codes(&packed, entry, weight.numel())?;
            let values = match entry.a_bits {
                Some(_) => {
                    let scale = take(format!("{}.weight_scale", entry.name))?.double_value(&[]);
                    let (levels, step) = linear_levels(&codes, entry.w_bits, scale as f32)?;
                    // A small integer in f32 times the f32 step.
                    Tensor::from_slice(&levels).to_kind(Kind::Float) * f64::from(step)
                }
                None => take(format!("{}.weight_codebook", entry.name))?
                    .index_select(0, &Tensor::from_slice(&codes).to_kind(Kind::Int64)),
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
