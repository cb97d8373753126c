//! HAQ's method (Wang et al., CVPR 2019): each episode the DDPG agent ([`Agent`]) picks
//! every layer's bits one step at a time, and learns from the reward of the policy the
//! search made of them.

use tch::Tensor;

use super::agent::{Agent, AgentHeader, DdpgConfig};
use super::env::{Env, Observation};
use super::replay::Transition;
use super::{Proposal, Scored, SearchMethod, Space};
use crate::error::{Error, Result};

pub struct Ddpg {
    config: DdpgConfig,
    seed: u64,
    steps: usize,
    agent: Agent,
    /// The episode being scored: its observations and actions, one per step.
    states: Vec<Observation>,
    actions: Vec<f32>,
}

impl Ddpg {
    pub fn new(config: DdpgConfig, env: &Env, seed: u64) -> Result<Ddpg> {
        if config.batch_size == 0
            || config.replay_episodes == 0
            || config.hidden == 0
            || config.updates_per_episode == Some(0)
        {
            return Err(Error::Config {
                field: "agent".into(),
                problem:
                    "hidden, batch_size, replay_episodes and updates_per_episode must be at least 1"
                        .into(),
            });
        }
        let steps = env.steps();
        Ok(Ddpg {
            agent: Agent::new(config.clone(), steps, seed),
            config,
            seed,
            steps,
            states: Vec::new(),
            actions: Vec::new(),
        })
    }
}

impl SearchMethod for Ddpg {
    fn propose(&mut self, space: &Space, episode: usize) -> Result<Option<Proposal>> {
        if episode >= self.config.episodes {
            return Ok(None);
        }
        self.states.clear();
        self.actions.clear();
        let mut previous = 0.0;
        for step in 0..self.steps {
            let state = space.env.observation(step, previous);
            previous = self.agent.act(&state, episode);
            self.states.push(state);
            self.actions.push(previous);
        }
        Ok(Some(Proposal::Candidate(space.env.policy(&self.actions))))
    }

    /// Every step of the episode is stored with the episode's reward.
    fn observe(&mut self, scored: &Scored, episode: usize) {
        let reward = scored.reward;
        let (states, steps) = (&self.states, self.steps);
        for (step, (&state, &action)) in states.iter().zip(&self.actions).enumerate() {
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
    }

    fn sigma(&self, episode: usize) -> Option<f64> {
        self.agent.sigma(episode)
    }

    fn planned(&self) -> usize {
        self.config.episodes
    }

    fn save(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        let (header, tensors) = self.agent.save();
        let header =
            serde_json::to_value(header).map_err(|e| Error::Checkpoint(format!("agent: {e}")))?;
        Ok((header, tensors))
    }

    fn restore(&mut self, state: serde_json::Value, tensors: &[(String, Tensor)]) -> Result<()> {
        let header: AgentHeader =
            serde_json::from_value(state).map_err(|e| Error::Checkpoint(format!("agent: {e}")))?;
        // Into a fresh agent, so that a failure leaves this one as it was.
        let mut agent = Agent::new(self.config.clone(), self.steps, self.seed);
        agent.restore(header, tensors)?;
        self.agent = agent;
        Ok(())
    }
}
