//! Measuring a model's [`ClipTable`]: weight clips from its weights, activation clips from
//! the inputs its quantizable layers see on one forward pass over a calibration batch.

use std::cell::RefCell;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::clip::{ClipTable, LayerClips};
use crate::error::{Error, Result};
use crate::models::{LayerQuantizer, Model};

/// Passes everything through unchanged, keeping a copy of each layer's input.
struct InputRecorder {
    inputs: RefCell<Vec<Option<Tensor>>>,
}

impl LayerQuantizer for InputRecorder {
    fn weight(&self, _layer: usize, w: &Tensor) -> Tensor {
        w.shallow_clone()
    }

    fn input(&self, layer: usize, x: &Tensor) -> Tensor {
        self.inputs.borrow_mut()[layer] = Some(x.copy());
        x.shallow_clone()
    }
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.flatten(0, -1).to_kind(Kind::Float))?)
}

/// The clips of every quantizable layer of `model` at every bit width, from its current
/// weights and its inputs on `images` (normalised, `[B, C, H, W]`; evaluation mode, so
/// batch norm uses its running statistics). Layers are measured in parallel.
pub fn measure_clips(model: &Model, images: &Tensor) -> Result<ClipTable> {
    let layers = model.layers();
    let recorder = InputRecorder {
        inputs: RefCell::new((0..layers.len()).map(|_| None).collect()),
    };
    // Only the recorded inputs are wanted, not the logits.
    let _ = tch::no_grad(|| model.forward_quantized(images, false, &recorder));
    let samples = recorder
        .inputs
        .into_inner()
        .into_iter()
        .zip(layers)
        .map(|(input, info)| {
            let input = input.ok_or_else(|| Error::Config {
                field: "model".into(),
                problem: format!(
                    "layer {} ({}) saw no input on a forward pass; its quantizer hook \
                         is not called",
                    info.index, info.name
                ),
            })?;
            Ok((
                values(&model.layer_weight(info.index))?,
                values(&input)?,
                info.signed_input,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let layers = samples
        .par_iter()
        .map(|(weights, inputs, signed)| LayerClips::measure(weights, inputs, *signed))
        .collect();
    Ok(ClipTable { layers })
}
