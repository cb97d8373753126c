//! Applying a policy to a model: the quantizer of its mode, built from the model's current
//! weights and the calibrated clips, ready to train or evaluate.

use super::{ClipTable, KmeansQuantizer, LinearQuantizer, Policy};
use crate::error::{Error, Result};
use crate::models::{FullPrecision, LayerQuantizer, Model};

/// Where a linear quantizer's trainable activation clips live in the model's variables:
/// `quant.input_clip_<layer>`.
const CLIP_PATH: &str = "quant";

/// A policy applied to a model, in the policy's mode.
pub enum Quantization {
    /// Fake-quantized weights and activations, trainable activation clips (PACT).
    Linear(LinearQuantizer),
    /// Weights shared within k-means clusters; activations in float.
    Kmeans(KmeansQuantizer),
}

impl Quantization {
    /// Applies `policy` to `model`, in linear mode when the policy has activation bits and
    /// in k-means mode otherwise.
    ///
    /// - Linear: the clips start from `clips` (the calibrate stage's table) and join the
    ///   model's variables under [`CLIP_PATH`], so create the optimiser and load a
    ///   checkpoint after this call.
    /// - k-means: the quantizable layers' weights are clustered now (k-means++ seeded from
    ///   `seed`) and snapped to their cluster means; `clips` is not used. Clustering is
    ///   deterministic, so applying the same policy with the same seed to the same (e.g.
    ///   pretrained) weights gives back the same clusters: a resumed finetune re-applies
    ///   it to the weights it started from and then loads its checkpoint, whose weights
    ///   hold those clusters' trained values.
    pub fn apply(
        model: &Model,
        policy: &Policy,
        clips: &ClipTable,
        seed: u64,
    ) -> Result<Quantization> {
        let layers = model.layers().len();
        policy.check(layers)?;
        if policy.is_linear() {
            if clips.layers.len() != layers {
                return Err(Error::Config {
                    field: "clips".into(),
                    problem: format!(
                        "{} layers of clips for a model of {layers} quantizable layers; \
                         rerun the calibrate stage on this model",
                        clips.layers.len()
                    ),
                });
            }
            let path = model.var_store().root() / CLIP_PATH;
            Ok(Quantization::Linear(LinearQuantizer::new(
                &path, policy, clips,
            )?))
        } else {
            let weights = (0..layers).map(|i| model.layer_weight(i)).collect();
            Ok(Quantization::Kmeans(KmeansQuantizer::new(
                weights, policy, seed,
            )?))
        }
    }

    /// What training needs, borrowed at once: the quantizer forward passes go through
    /// (k-means mode shares the weights themselves, so passes are float) and, in k-means
    /// mode, the state whose [`KmeansQuantizer::update`] must follow every optimiser step.
    pub fn parts(&mut self) -> (&dyn LayerQuantizer, Option<&mut KmeansQuantizer>) {
        match self {
            Quantization::Linear(q) => (q, None),
            Quantization::Kmeans(k) => (&FullPrecision, Some(k)),
        }
    }

    /// The mode's name, for logs: `linear` or `k-means`.
    pub fn mode(&self) -> &'static str {
        match self {
            Quantization::Linear(_) => "linear",
            Quantization::Kmeans(_) => "k-means",
        }
    }
}
