//! The search driver: one policy scored per call, checkpointable between calls.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::agent::DdpgConfig;
use super::budget::{Budget, Constraint, CostFunction, Repair};
use super::checkpoint::{self, exact_f64, prefixed, strip};
use super::env::{BitRange, Env, Mode};
use super::{build, EpisodeAccuracy, Method, MethodConfig, Proposal, Scored, SearchMethod, Space};
use crate::arch::LayerInfo;
use crate::error::{Error, Result};
use crate::hw::Unit;
use crate::quant::Policy;

/// What a search is asked to do, besides its model, objective and budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    pub mode: Mode,
    pub bits: BitRange,
    pub seed: u64,
    pub method: MethodConfig,
    /// After the budget repair, raise bits while the budget allows
    /// ([`Constraint::fill`](super::budget::Constraint::fill)).
    #[serde(default = "yes")]
    pub fill_budget: bool,
    /// How a policy over budget is brought within it (the paper's sweep by default).
    #[serde(default)]
    pub repair: Repair,
}

fn yes() -> bool {
    true
}

impl SearchConfig {
    /// The paper's settings for `mode`: its DDPG agent, bit range, sweep and fill.
    pub fn new(mode: Mode, seed: u64) -> SearchConfig {
        SearchConfig {
            mode,
            bits: BitRange::default_for(mode),
            seed,
            method: MethodConfig::Ddpg(DdpgConfig::default()),
            fill_budget: true,
            repair: Repair::Sweep,
        }
    }
}

/// The highest-reward policy within budget so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub episode: usize,
    #[serde(with = "exact_f64")]
    pub reward: f64,
    #[serde(with = "exact_f64")]
    pub accuracy: f64,
    #[serde(with = "exact_f64")]
    pub cost: f64,
    pub policy: Policy,
}

/// What one episode (one policy scored) did. Serialised without its agent time, which is
/// the caller's to account for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeReport {
    /// The episode's number, from 0.
    pub episode: usize,
    /// `0.1 * (accuracy - fp_accuracy)`.
    pub reward: f64,
    /// The quantized model's accuracy in percent, as the callback measured it.
    pub accuracy: f64,
    /// The policy's cost, in the objective's unit: within budget unless a probe.
    pub cost: f64,
    pub cost_ratio: f64,
    /// The exploration sigma; None where the method does not explore with noise (DDPG's
    /// warm-up, whose actions are uniformly random, and every other method).
    pub sigma: Option<f64>,
    /// The best reward within budget so far; None while only probes have been scored.
    pub best_reward: Option<f64>,
    /// A measurement the method asked for (a sensitivity probe), scored as it is,
    /// within budget or not, and never the search's result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// The policy evaluated, after the budget repair and fill.
    pub policy: Policy,
    /// Time spent choosing the policy, enforcing the budget, updating the method and
    /// bookkeeping: everything but the accuracy callback.
    #[serde(skip)]
    pub agent_time: Duration,
}

/// A search for a mixed-precision policy under a budget, by one method.
pub struct Search<'a> {
    config: SearchConfig,
    space: Space<'a>,
    /// Accuracy (percent) of the unquantized model, the reward's reference.
    fp_accuracy: f64,
    method: Box<dyn SearchMethod>,
    /// Episodes completed.
    episode: usize,
    best: Option<Best>,
}

/// A checkpoint's header.
#[derive(Serialize, Deserialize)]
struct Header {
    /// The config as JSON, compared textually on restore.
    config: String,
    layers: usize,
    #[serde(with = "exact_f64")]
    budget: f64,
    #[serde(with = "exact_f64")]
    fp_accuracy: f64,
    episode: usize,
    best: Option<Best>,
    method: serde_json::Value,
}

impl<'a> Search<'a> {
    /// A search over `layers`. Fails before any episode when the budget cannot be met.
    pub fn new(
        config: SearchConfig,
        layers: &[LayerInfo],
        objective: CostFunction<'a>,
        budget: &Budget,
        fp_accuracy: f64,
    ) -> Result<Search<'a>> {
        let bits = BitRange::new(config.bits.min, config.bits.max)?;
        let env = Env::new(layers, config.mode, bits)?;
        let method = build(&config.method, &env, config.seed)?;
        let constraint = Constraint::new(objective, budget, &env)?;
        Ok(Search {
            space: Space {
                env,
                constraint,
                repair: config.repair,
                fill: config.fill_budget,
            },
            config,
            fp_accuracy,
            method,
            episode: 0,
            best: None,
        })
    }

    pub fn env(&self) -> &Env {
        &self.space.env
    }

    /// The budget, in [`Search::unit`].
    pub fn budget(&self) -> f64 {
        self.space.constraint.budget()
    }

    pub fn unit(&self) -> Unit {
        self.space.constraint.unit()
    }

    pub fn method(&self) -> Method {
        self.config.method.method()
    }

    /// Episodes completed.
    pub fn episodes_done(&self) -> usize {
        self.episode
    }

    /// How many episodes the method runs in all.
    pub fn planned(&self) -> usize {
        self.method.planned()
    }

    pub fn best(&self) -> Option<&Best> {
        self.best.as_ref()
    }

    /// Lets the method measure the model before its first proposal
    /// ([`SearchMethod::prepare`]); before [`Search::restore`] too.
    pub fn prepare(&mut self, accuracy: &EpisodeAccuracy) -> Result<()> {
        self.method.prepare(&self.space, accuracy)
    }

    /// What the method found besides its policy, for the summary.
    pub fn details(&self) -> Result<serde_json::Value> {
        self.method.details(&self.space)
    }

    /// Plays one episode: the method proposes a policy, the budget repair and fill bring
    /// a candidate within budget, `accuracy` measures the quantized model (percent), and
    /// the method observes the reward `0.1 * (accuracy - fp_accuracy)`. None once the
    /// method has nothing more to score. After an error the method may have drawn random
    /// numbers for an episode it did not finish: continue from the last checkpoint, not
    /// from this state.
    pub fn run_episode(
        &mut self,
        accuracy: &mut dyn FnMut(&Policy) -> Result<f64>,
    ) -> Result<Option<EpisodeReport>> {
        let start = Instant::now();
        let episode = self.episode;
        let Some(proposal) = self.method.propose(&self.space, episode)? else {
            return Ok(None);
        };
        let space = &self.space;
        let fill = |policy: &mut Policy, cost: f64| {
            if space.fill {
                space.constraint.fill(policy, space.env.bit_range().max)
            } else {
                cost
            }
        };
        let (policy, cost, probe) = match proposal {
            Proposal::Candidate(mut policy) => {
                let cost = space.constraint.repair(&mut policy, space.repair)?;
                let cost = fill(&mut policy, cost);
                (policy, cost, false)
            }
            Proposal::Fitted(mut policy) => {
                let cost = space.constraint.cost(&policy);
                let cost = fill(&mut policy, cost);
                (policy, cost, false)
            }
            Proposal::Probe(policy) => {
                let cost = space.constraint.cost(&policy);
                (policy, cost, true)
            }
        };
        let within = cost <= self.budget();
        if !probe && !within {
            return Err(Error::Config {
                field: "method".into(),
                problem: format!(
                    "{} proposed a policy costing {cost} {}, over the budget {}",
                    self.method(),
                    self.unit(),
                    self.budget()
                ),
            });
        }
        let before_accuracy = start.elapsed();

        let accuracy = accuracy(&policy)?;

        let resumed = Instant::now();
        let reward = 0.1 * (accuracy - self.fp_accuracy);
        let scored = Scored {
            policy: &policy,
            accuracy,
            reward,
            cost,
        };
        self.method.observe(&scored, episode);
        if !probe && self.best.as_ref().is_none_or(|b| reward > b.reward) {
            self.best = Some(Best {
                episode,
                reward,
                accuracy,
                cost,
                policy: policy.clone(),
            });
        }
        self.episode += 1;
        Ok(Some(EpisodeReport {
            episode,
            reward,
            accuracy,
            cost,
            cost_ratio: cost / self.budget(),
            sigma: self.method.sigma(episode),
            best_reward: self.best.as_ref().map(|b| b.reward),
            probe,
            policy,
            agent_time: before_accuracy + resumed.elapsed(),
        }))
    }

    /// Everything needed to continue exactly where the search stands.
    pub fn save(&self) -> Result<Vec<u8>> {
        let (method, tensors) = self.method.save()?;
        let header = Header {
            config: config_json(&self.config)?,
            layers: self.env().layers(),
            budget: self.budget(),
            fp_accuracy: self.fp_accuracy,
            episode: self.episode,
            best: self.best.clone(),
            method,
        };
        checkpoint::pack(&header, &prefixed("method", tensors))
    }

    /// Continues from a checkpoint written by [`Search::save`] of a search with the same
    /// config, layers, budget and reference accuracy.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (header, tensors): (Header, _) = checkpoint::unpack(bytes)?;
        let ours = config_json(&self.config)?;
        let mismatch = if header.config != ours {
            Some(format!("config {} (this search: {ours})", header.config))
        } else if header.layers != self.env().layers() {
            Some(format!(
                "{} layers (this model: {})",
                header.layers,
                self.env().layers()
            ))
        } else if header.budget != self.budget() {
            Some(format!(
                "budget {} (this search: {})",
                header.budget,
                self.budget()
            ))
        } else if header.fp_accuracy != self.fp_accuracy {
            Some(format!(
                "reference accuracy {} (this search: {})",
                header.fp_accuracy, self.fp_accuracy
            ))
        } else {
            None
        };
        if let Some(what) = mismatch {
            return Err(Error::Checkpoint(format!(
                "written by another search, with {what}; start this search afresh"
            )));
        }
        self.method
            .restore(header.method, &strip(&tensors, "method"))?;
        self.episode = header.episode;
        self.best = header.best;
        Ok(())
    }
}

/// The episodes, of `(episode, reward, policy)`, with the `k` highest rewards among
/// distinct policies, best first (on equal rewards, the earlier episode). A search's best
/// reward is the maximum of many noisy measurements and so overstates its policy (the
/// winner's curse); scoring a few finalists again on more images picks more reliably.
pub fn finalists<'p>(
    episodes: impl IntoIterator<Item = (usize, f64, &'p Policy)>,
    k: usize,
) -> Vec<usize> {
    let mut ranked: Vec<_> = episodes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<(usize, &Policy)> = Vec::with_capacity(k);
    for (episode, _, policy) in ranked {
        if chosen.len() == k {
            break;
        }
        if chosen.iter().all(|(_, p)| *p != policy) {
            chosen.push((episode, policy));
        }
    }
    chosen.into_iter().map(|(episode, _)| episode).collect()
}

fn config_json(config: &SearchConfig) -> Result<String> {
    serde_json::to_string(config).map_err(|e| Error::Checkpoint(format!("config: {e}")))
}
