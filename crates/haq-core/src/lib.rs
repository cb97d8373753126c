//! The science of HAQ that needs libtorch: data, models, quantized training, calibration,
//! export, and the RL search.
//!
//! The libtorch-free part (architectures, policies, cost models, budgets, the search
//! environment, param checks) is the `haq-cost` crate, re-exported here under the same
//! paths (its errors wrapped in [`error::Error`]), so `haq_core::hw` and `haq_core::quant::Policy` name the same
//! items as `haq_cost::hw` and `haq_cost::policy::Policy`.

pub use haq_cost::{arch, check, hw, stats};

pub mod config;
pub mod data;
pub mod error;
pub mod models;
pub mod quant;
pub mod rng;
pub mod search;
pub mod stage;
pub mod train;
