//! The networks of [`crate::arch`] as libtorch models.
//!
//! A [`Model`] is built from an [`ArchConfig`] by instantiating the blocks of
//! [`arch::blocks`]; it does not restate any architecture. Variable names are the blocks'
//! (torchvision's), so a torchvision state dict converted to safetensors loads by name.
//! Batch norm stays in float and unfolded.
//!
//! Quantization enters through [`LayerQuantizer`]: every quantizable layer (index as in
//! [`arch::layers`]) passes its weight and its input through the quantizer before use.

mod blocks;

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

use crate::arch::{self, ArchConfig, LayerInfo};
use crate::error::Result;
use crate::rng::{seeded_rng, stream};
use crate::train::{load_var_store, var_store_tensors, Network};
use blocks::{Builder, Stage};

/// Transforms the weight and the input of each quantizable layer; `layer` is the index
/// in execution order, as in [`arch::layers`]. Both are called on every forward pass,
/// input first.
pub trait LayerQuantizer {
    fn weight(&self, layer: usize, w: &Tensor) -> Tensor;
    fn input(&self, layer: usize, x: &Tensor) -> Tensor;
}

/// The float model: weights and inputs pass unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullPrecision;

impl LayerQuantizer for FullPrecision {
    fn weight(&self, _layer: usize, w: &Tensor) -> Tensor {
        w.shallow_clone()
    }

    fn input(&self, _layer: usize, x: &Tensor) -> Tensor {
        x.shallow_clone()
    }
}

/// A network with its variables.
pub struct Model {
    vs: VarStore,
    config: ArchConfig,
    stages: Vec<Stage>,
    layers: Vec<LayerInfo>,
}

impl Model {
    /// Builds the network on `device` with fresh weights drawn from `seed` (see
    /// [`crate::rng`]): convs He-normal (fan-out), batch norms 1 and 0, the classifier
    /// normal(0, 0.01) with zero bias, as torchvision initialises MobileNet-V2.
    pub fn new(config: &ArchConfig, device: Device, seed: u64) -> Result<Model> {
        config.validate()?;
        let vs = VarStore::new(device);
        let mut builder = Builder {
            root: vs.root(),
            rng: seeded_rng(seed, stream::INITIAL_WEIGHTS),
            next_layer: 0,
        };
        let stages = arch::blocks(config)
            .iter()
            .map(|block| Stage::new(&mut builder, block))
            .collect();
        let layers = arch::layers(config);
        debug_assert_eq!(
            builder.next_layer,
            layers.len(),
            "every quantizable layer of arch::layers is built"
        );
        Ok(Model {
            vs,
            config: config.clone(),
            stages,
            layers,
        })
    }

    pub fn config(&self) -> &ArchConfig {
        &self.config
    }

    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The quantizable layers in execution order.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// The weight variable of quantizable layer `layer` (shared with the model: updating
    /// it in place under `no_grad` changes the model).
    pub fn layer_weight(&self, layer: usize) -> Tensor {
        let name = format!("{}.weight", self.layers[layer].name);
        self.vs
            .variables()
            .remove(&name)
            .expect("every layer's weight is a variable")
    }

    /// Logits `[B, classes]` of images `[B, C, H, W]` with every quantizable layer passed
    /// through `quantizer`; `train` selects batch statistics and dropout.
    pub fn forward_quantized(
        &self,
        x: &Tensor,
        train: bool,
        quantizer: &dyn LayerQuantizer,
    ) -> Tensor {
        self.stages.iter().fold(x.shallow_clone(), |x, stage| {
            stage.forward(&x, train, quantizer)
        })
    }

    /// This model with `quantizer` applied, as a module to train or evaluate.
    pub fn quantized<'a>(&'a self, quantizer: &'a dyn LayerQuantizer) -> Quantized<'a> {
        Quantized {
            model: self,
            quantizer,
        }
    }

    /// Every variable (weights, biases, batch-norm statistics), sorted by name.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        var_store_tensors(&self.vs)
    }

    /// Loads weights by name; see [`crate::train::load_var_store`] for the checks.
    pub fn load_weights(&self, tensors: &[(String, Tensor)]) -> Result<()> {
        load_var_store(&self.vs, tensors)
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl ModuleT for Model {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_quantized(x, train, &FullPrecision)
    }
}

/// A model seen through a quantizer, to train or evaluate; see [`Model::quantized`].
pub struct Quantized<'a> {
    model: &'a Model,
    quantizer: &'a dyn LayerQuantizer,
}

impl std::fmt::Debug for Quantized<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quantized")
            .field("model", self.model)
            .finish_non_exhaustive()
    }
}

impl Network for Quantized<'_> {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        self.model.forward_quantized(images, train, self.quantizer)
    }
}
