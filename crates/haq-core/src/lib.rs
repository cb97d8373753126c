//! The science of HAQ: network architectures and their quantizable layers, hardware cost
//! models, and (with the `torch` feature) data, models, quantization and the RL search.

pub mod arch;
pub mod check;
pub mod error;
pub mod hw;
pub mod quant;
pub mod rl;

#[cfg(feature = "torch")]
pub mod config;
#[cfg(feature = "torch")]
pub mod data;
#[cfg(feature = "torch")]
pub mod models;
#[cfg(feature = "torch")]
pub mod rng;
#[cfg(feature = "torch")]
pub mod train;
