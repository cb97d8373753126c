//! Training utilities shared by the pretrain and finetune stages: an SGD optimiser whose
//! state can be saved and restored exactly, the cosine learning-rate schedule, a training
//! epoch, top-1/top-5 evaluation, and weights as safetensors bytes.

mod epoch;
mod eval;
mod schedule;
mod sgd;
mod weights;

pub use epoch::{train_epoch, EpochSpec, EpochStats, StepStats};
pub use eval::{evaluate, Accuracy};
pub use schedule::CosineSchedule;
pub use sgd::{Sgd, SgdConfig};
pub use weights::{from_safetensors, load_var_store, to_safetensors, var_store_tensors};
