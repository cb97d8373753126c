//! The search driver: one call per episode, checkpointable between episodes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::budget::{Budget, Constraint, CostFunction, Repair};
use super::checkpoint::{self, exact_f64, prefixed, strip};
use super::agent::{Agent, AgentHeader, DdpgConfig};
use super::env::{BitRange, Env, Mode};
use super::replay::Transition;
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
    #[serde(default)]
    pub agent: DdpgConfig,
    /// After the budget sweep, raise bits while the budget allows
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
    /// The paper's settings for `mode`.
    pub fn new(mode: Mode, seed: u64) -> SearchConfig {
        SearchConfig {
            mode,
            bits: BitRange::default_for(mode),
            seed,
            agent: DdpgConfig::default(),
            fill_budget: true,
            repair: Repair::Sweep,
        }
    }
}

/// The highest-reward episode so far.
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

/// What one episode did. Serialised without its agent time, which is the caller's to
/// account for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeReport {
    /// The episode's number, from 0.
    pub episode: usize,
    /// `0.1 * (accuracy - fp_accuracy)`.
    pub reward: f64,
    /// The quantized model's accuracy in percent, as the callback measured it.
    pub accuracy: f64,
    /// The policy's cost, in the objective's unit, within budget.
    pub cost: f64,
    pub cost_ratio: f64,
    /// The exploration sigma; None in the warm-up, whose actions are uniformly random.
    pub sigma: Option<f64>,
    pub best_reward: f64,
    /// The policy evaluated, after the budget sweep.
    pub policy: Policy,
    /// Time spent choosing actions, enforcing the budget, updating the networks and
    /// bookkeeping: everything but the accuracy callback.
    #[serde(skip)]
    pub agent_time: Duration,
}

/// A DDPG search for a mixed-precision policy under a budget.
pub struct Search<'a> {
    config: SearchConfig,
    env: Env,
    constraint: Constraint<'a>,
    /// Accuracy (percent) of the unquantized model, the reward's reference.
    fp_accuracy: f64,
    agent: Agent,
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
    agent: AgentHeader,
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
        let agent_config = &config.agent;
        if agent_config.batch_size == 0
            || agent_config.replay_episodes == 0
            || agent_config.hidden == 0
            || agent_config.updates_per_episode == Some(0)
        {
            return Err(Error::Config {
                field: "agent".into(),
                problem:
                    "hidden, batch_size, replay_episodes and updates_per_episode must be at least 1"
                        .into(),
            });
        }
        let env = Env::new(layers, config.mode, bits)?;
        let constraint = Constraint::new(objective, budget, &env)?;
        let agent = Agent::new(config.agent.clone(), env.steps(), config.seed);
        Ok(Search {
            config,
            env,
            constraint,
            fp_accuracy,
            agent,
            episode: 0,
            best: None,
        })
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The budget, in [`Search::unit`].
    pub fn budget(&self) -> f64 {
        self.constraint.budget()
    }

    pub fn unit(&self) -> Unit {
        self.constraint.unit()
    }

    /// Episodes completed.
    pub fn episodes_done(&self) -> usize {
        self.episode
    }

    pub fn best(&self) -> Option<&Best> {
        self.best.as_ref()
    }

    /// Plays one episode: the agent picks every layer's bits, the budget sweep brings the
    /// policy within budget, `accuracy` measures the quantized model (percent), and every
    /// step of the episode is stored with the reward `0.1 * (accuracy - fp_accuracy)`.
    /// After an error the search has drawn random numbers for an episode it did not
    /// finish: continue from the last checkpoint, not from this state.
    pub fn run_episode(
        &mut self,
        accuracy: &mut dyn FnMut(&Policy) -> Result<f64>,
    ) -> Result<EpisodeReport> {
        let start = Instant::now();
        let episode = self.episode;
        let steps = self.env.steps();
        let mut states = Vec::with_capacity(steps);
        let mut actions = Vec::with_capacity(steps);
        let mut previous = 0.0;
        for step in 0..steps {
            let state = self.env.observation(step, previous);
            previous = self.agent.act(&state, episode);
            states.push(state);
            actions.push(previous);
        }
        let mut policy = self.env.policy(&actions);
        let mut cost = self.constraint.repair(&mut policy, self.config.repair)?;
        if self.config.fill_budget {
            cost = self.constraint.fill(&mut policy, self.env.bit_range().max);
        }
        let before_accuracy = start.elapsed();

        let accuracy = accuracy(&policy)?;

        let resumed = Instant::now();
        let reward = 0.1 * (accuracy - self.fp_accuracy);
        for (step, (&state, &action)) in states.iter().zip(&actions).enumerate() {
            let done = step + 1 == steps;
            let transition = Transition {
                state,
                action,
                reward: reward as f32,
                next_state: if done { state } else { states[step + 1] },
                done,
            };
            self.agent.observe(transition, episode);
        }
        if self.best.as_ref().is_none_or(|b| reward > b.reward) {
            self.best = Some(Best {
                episode,
                reward,
                accuracy,
                cost,
                policy: policy.clone(),
            });
        }
        self.episode += 1;
        Ok(EpisodeReport {
            episode,
            reward,
            accuracy,
            cost,
            cost_ratio: cost / self.budget(),
            sigma: self.agent.sigma(episode),
            best_reward: self.best.as_ref().map_or(reward, |b| b.reward),
            policy,
            agent_time: before_accuracy + resumed.elapsed(),
        })
    }

    /// Everything needed to continue exactly where the search stands.
    pub fn save(&self) -> Result<Vec<u8>> {
        let (agent, tensors) = self.agent.save();
        let header = Header {
            config: config_json(&self.config)?,
            layers: self.env.layers(),
            budget: self.budget(),
            fp_accuracy: self.fp_accuracy,
            episode: self.episode,
            best: self.best.clone(),
            agent,
        };
        checkpoint::pack(&header, &prefixed("agent", tensors))
    }

    /// Continues from a checkpoint written by [`Search::save`] of a search with the same
    /// config, layers, budget and reference accuracy.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (header, tensors): (Header, _) = checkpoint::unpack(bytes)?;
        let ours = config_json(&self.config)?;
        let mismatch = if header.config != ours {
            Some(format!("config {} (this search: {ours})", header.config))
        } else if header.layers != self.env.layers() {
            Some(format!(
                "{} layers (this model: {})",
                header.layers,
                self.env.layers()
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
        // Into a fresh agent, so that a failure leaves this search as it was.
        let mut agent = Agent::new(
            self.config.agent.clone(),
            self.env.steps(),
            self.config.seed,
        );
        agent.restore(header.agent, &strip(&tensors, "agent"))?;
        self.agent = agent;
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
