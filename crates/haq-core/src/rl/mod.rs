//! The RL search of HAQ (DESIGN §4): a DDPG agent picks each layer's bit widths, a budget
//! sweep keeps the policy within a hardware budget, and the reward is the quantized
//! model's accuracy after a short finetune.
//!
//! The environment and the budget need no libtorch; the agent, the search driver and the
//! per-episode accuracy do.

pub mod budget;
pub mod env;

#[cfg(feature = "torch")]
mod adam;
#[cfg(feature = "torch")]
mod checkpoint;
#[cfg(feature = "torch")]
pub mod ddpg;
#[cfg(feature = "torch")]
pub mod episode_accuracy;
#[cfg(feature = "torch")]
mod replay;
#[cfg(feature = "torch")]
pub mod search;

pub use budget::{Budget, Constraint, Objective, Resource};
pub use env::{BitRange, Env, Mode, Observation, N_FEATURES};

#[cfg(feature = "torch")]
pub use ddpg::{Agent, DdpgConfig};
#[cfg(feature = "torch")]
pub use episode_accuracy::{EpisodeAccuracy, FinetuneConfig, Measurement, Scoring};
#[cfg(feature = "torch")]
pub use replay::Transition;
#[cfg(feature = "torch")]
pub use search::{finalists, Best, EpisodeReport, Search, SearchConfig};
