//! Quantization: the per-layer bit-width [`Policy`] (from haq-cost), clip selection,
//! measuring a model's clips, the fake quantizers a model applies in linear mode, the
//! weight sharing of k-means mode, and the quantized model as a file with integer
//! inference from it.

pub mod apply;
pub mod calibrate;
pub mod clip;
pub mod export;
mod kernel;
pub mod kmeans;
pub mod linear;

pub use haq_cost::policy;

pub use apply::Quantization;
pub use calibrate::measure_clips;
pub use clip::{ClipTable, LayerClips};
pub use export::{export, IntegerModel};
pub use kmeans::KmeansQuantizer;
pub use linear::LinearQuantizer;
pub use policy::{LayerBits, Policy};
