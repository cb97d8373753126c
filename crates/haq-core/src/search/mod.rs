//! The search for a mixed-precision policy under a hardware budget (docs/search.md): a
//! method proposes policies, the budget repair and fill keep them within budget, and each
//! is scored by the quantized model's accuracy ([`EpisodeAccuracy`]).
//!
//! Every method sees the same [`Space`] (environment, budget, repair, fill, bit range,
//! pinning) and the same scoring, through one interface, [`SearchMethod`]; the driver
//! ([`Search`]) does the rest: the budget, the best policy so far, checkpoints. A method
//! is one file here plus its line in [`build`] and in [`haq_cost::method::Method`].
//!
//! The environment and the budget need no libtorch and live in haq-cost.

pub use haq_cost::method::Method;
pub use haq_cost::{budget, env};

mod adam;
pub mod agent;
mod checkpoint;
pub mod ddpg;
pub mod driver;
pub mod episode_accuracy;
pub mod greedy;
pub mod hawq;
pub mod hessian;
pub mod ilp;
pub mod random;
mod replay;

use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use agent::{Agent, DdpgConfig};
pub use budget::{Budget, Constraint, CostFunction, Repair, Resource};
pub use driver::{finalists, Best, EpisodeReport, Search, SearchConfig};
pub use env::{BitRange, Env, Mode, Observation, N_FEATURES};
pub use episode_accuracy::{EpisodeAccuracy, FinetuneConfig, Measurement, Scoring};
pub use hawq::HawqConfig;
pub use random::RandomConfig;
pub use replay::Transition;

use crate::error::Result;
use crate::quant::Policy;

/// What every method searches: the environment (layers, mode, bit range, pinning) and the
/// budget with its repair and fill.
pub struct Space<'a> {
    pub env: Env,
    pub constraint: Constraint<'a>,
    pub repair: Repair,
    pub fill: bool,
}

/// A policy a method asks the search to score.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// A candidate: the search brings it within budget ([`Space::repair`]), fills what
    /// budget is left ([`Space::fill`]), and scores it.
    Candidate(Policy),
    /// Within budget already: the search fills and scores it.
    Fitted(Policy),
    /// A measurement, scored as it is, over budget or not (a sensitivity probe): never
    /// the search's result.
    Probe(Policy),
}

/// A policy the search scored.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'p> {
    pub policy: &'p Policy,
    /// Top-1 in percent.
    pub accuracy: f64,
    /// HAQ's reward, `0.1 * (accuracy - float accuracy)`.
    pub reward: f64,
    pub cost: f64,
}

/// A search method; see the module's documentation.
pub trait SearchMethod {
    /// Measures what the method needs of the model before its first proposal (HAWQ: the
    /// Hessian traces); deterministic, so a resumed search measures it again.
    fn prepare(&mut self, _space: &Space, _accuracy: &EpisodeAccuracy) -> Result<()> {
        Ok(())
    }

    /// The next policy to score (`episode` counts the policies scored before it), or None
    /// once the method has nothing more to score.
    fn propose(&mut self, space: &Space, episode: usize) -> Result<Option<Proposal>>;

    /// The score of the policy just proposed, as the search made and scored it (after
    /// its repair and fill).
    fn observe(&mut self, scored: &Scored, episode: usize);

    /// The exploration sigma of `episode`, for methods that explore with noise.
    fn sigma(&self, _episode: usize) -> Option<f64> {
        None
    }

    /// What the method found besides its policy, for the search's summary (greedy: the
    /// front it walked).
    fn details(&self, _space: &Space) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// How many policies the method scores in all.
    fn planned(&self) -> usize;

    /// The method's state, to continue exactly where it stands.
    fn save(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)>;

    /// Continues from [`SearchMethod::save`]'s state, into a method built from the same
    /// config.
    fn restore(&mut self, state: serde_json::Value, tensors: &[(String, Tensor)]) -> Result<()>;
}

/// A method and its settings, as a search's config holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum MethodConfig {
    Ddpg(DdpgConfig),
    Random(RandomConfig),
    Greedy,
    Hawq(HawqConfig),
}

impl MethodConfig {
    pub fn method(&self) -> Method {
        match self {
            MethodConfig::Ddpg(_) => Method::Ddpg,
            MethodConfig::Random(_) => Method::Random,
            MethodConfig::Greedy => Method::Greedy,
            MethodConfig::Hawq(_) => Method::Hawq,
        }
    }
}

/// The registry: the method a config names, for a search of `env` seeded by `seed`.
pub fn build(config: &MethodConfig, env: &Env, seed: u64) -> Result<Box<dyn SearchMethod>> {
    Ok(match config {
        MethodConfig::Ddpg(c) => Box::new(ddpg::Ddpg::new(c.clone(), env, seed)?),
        MethodConfig::Random(c) => Box::new(random::Random::new(*c, seed)),
        MethodConfig::Greedy => Box::new(greedy::Greedy::new(env)),
        MethodConfig::Hawq(c) => Box::new(hawq::Hawq::new(*c, seed)),
    })
}
