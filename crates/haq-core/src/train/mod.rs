//! Training utilities shared by the pretrain and finetune stages: an SGD optimiser whose
//! state can be saved and restored exactly, the cosine learning-rate schedule, a training
//! epoch, top-1/top-5 evaluation, and weights as safetensors bytes.

mod epoch;
mod eval;
mod fit;
mod schedule;
mod sgd;
mod weights;

pub use epoch::{train_epoch, EpochSpec, EpochStats, StepStats};
pub use eval::{evaluate, Accuracy};
pub use fit::{EpochReport, Recipe, Trainer};
pub use schedule::CosineSchedule;
pub use sgd::{Sgd, SgdConfig};
pub use weights::{from_safetensors, load_var_store, to_safetensors, var_store_tensors};

use tch::nn::ModuleT;
use tch::Tensor;

/// A network to train or evaluate: images `[B, C, H, W]` to logits `[B, classes]`;
/// `train` selects batch statistics and dropout. Every tch `ModuleT` is one; so is a
/// model seen through a quantizer, which cannot be a `ModuleT` (that requires `Send`).
pub trait Network {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor;
}

impl<M: ModuleT + ?Sized> Network for M {
    fn logits(&self, images: &Tensor, train: bool) -> Tensor {
        self.forward_t(images, train)
    }
}
