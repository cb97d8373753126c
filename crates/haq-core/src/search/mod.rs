//! The RL search of HAQ (docs/search.md): a DDPG agent picks each layer's bit widths, a budget
//! sweep keeps the policy within a hardware budget, and the reward is the quantized
//! model's accuracy after a short finetune.
//!
//! The environment and the budget need no libtorch and live in haq-cost; the agent, the
//! search driver and the per-episode accuracy are here.

pub use haq_cost::{budget, env};

mod adam;
mod checkpoint;
pub mod agent;
pub mod episode_accuracy;
mod replay;
pub mod driver;

pub use budget::{Budget, Constraint, CostFunction, Repair, Resource};
pub use env::{BitRange, Env, Mode, Observation, N_FEATURES};

pub use agent::{Agent, DdpgConfig};
pub use episode_accuracy::{EpisodeAccuracy, FinetuneConfig, Measurement, Scoring};
pub use replay::Transition;
pub use driver::{finalists, Best, EpisodeReport, Search, SearchConfig};
