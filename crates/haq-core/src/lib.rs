//! The science of HAQ that needs libtorch: data, models, quantized training, calibration,
//! export, and the RL search.
//!
//! The libtorch-free part (architectures, policies, cost models, budgets, the search
//! environment, param checks and the error type) is the `haq-cost` crate, re-exported
//! here under the same paths, so `haq_core::hw` and `haq_core::quant::Policy` name the same
//! items as `haq_cost::hw` and `haq_cost::policy::Policy`.

pub use haq_cost::{arch, check, error, hw, stats};

pub mod config;
pub mod data;
pub mod models;
pub mod quant;
pub mod rng;
pub mod search;
pub mod stage;
pub mod train;

/// `?` on a libtorch result: haq's error type lives in haq-cost, which has no libtorch to
/// implement `From<TchError>` for.
pub(crate) trait OrTorch<T> {
    fn or_torch(self) -> error::Result<T>;
}

impl<T> OrTorch<T> for Result<T, tch::TchError> {
    fn or_torch(self) -> error::Result<T> {
        self.map_err(|e| error::Error::Torch(Box::new(e)))
    }
}
