//! Quantization: the per-layer bit-width [`Policy`], clip selection, and (with the `torch`
//! feature) measuring a model's clips, the fake quantizers a model applies in linear mode,
//! the weight sharing of k-means mode, and the quantized model as a file with integer
//! inference from it.

pub mod clip;
pub mod policy;

#[cfg(feature = "torch")]
pub mod apply;
#[cfg(feature = "torch")]
pub mod calibrate;
#[cfg(feature = "torch")]
pub mod export;
#[cfg(feature = "torch")]
pub mod kmeans;
#[cfg(feature = "torch")]
pub mod linear;

pub use clip::{ClipTable, LayerClips};
pub use policy::{LayerBits, Policy};

#[cfg(feature = "torch")]
pub use apply::Quantization;
#[cfg(feature = "torch")]
pub use calibrate::measure_clips;
#[cfg(feature = "torch")]
pub use export::{export, IntegerModel};
#[cfg(feature = "torch")]
pub use kmeans::KmeansQuantizer;
#[cfg(feature = "torch")]
pub use linear::LinearQuantizer;
