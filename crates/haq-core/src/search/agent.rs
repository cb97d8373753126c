//! The DDPG agent (Lillicrap et al. 2016) as HAQ configures it (docs/search.md): an actor and
//! a critic with target copies, Adam, soft target updates, a replay buffer, truncated
//! normal exploration with decaying sigma and a moving-average reward baseline.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use super::adam::Adam;
use super::checkpoint::{exact_f64_option, prefixed, strip};
use super::env::{Observation, N_FEATURES};
use super::replay::{Replay, Transition};
use crate::error::{Error, Result};
use crate::rng::{seeded_rng, stream};
use crate::train::{load_var_store, var_store_tensors};

/// Hyper-parameters; the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdpgConfig {
    /// Width of both hidden layers of the actor and the critic.
    pub hidden: usize,
    pub actor_lr: f64,
    pub critic_lr: f64,
    /// Soft target update rate: `target = (1 - tau) target + tau online`.
    pub tau: f64,
    pub batch_size: usize,
    pub discount: f64,
    /// Replay capacity in episodes: the buffer holds this many times the steps of one.
    pub replay_episodes: usize,
    /// Episodes of uniformly random actions, without updates, before the actor acts.
    pub warmup: usize,
    /// Exploration sigma of the first episode after the warm-up ...
    pub sigma: f64,
    /// ... multiplied every episode by this (the paper's 0.99, for 600 episodes) or by
    /// less, so that it reaches `final_sigma` by the last of `episodes`.
    pub sigma_decay: f64,
    pub final_sigma: f64,
    /// The search's length, which the exploration schedule follows.
    pub episodes: usize,
    /// Step size of the reward baseline's moving average.
    pub baseline_rate: f64,
    /// None (the paper's): one update per transition stored. Some(k): k updates when an
    /// episode's last transition is stored instead, as the updates cost most of an
    /// episode's agent time and dominate a short episode (docs/performance.md).
    pub updates_per_episode: Option<usize>,
}

impl Default for DdpgConfig {
    fn default() -> Self {
        DdpgConfig {
            hidden: 300,
            actor_lr: 1e-4,
            critic_lr: 1e-3,
            tau: 0.01,
            batch_size: 64,
            discount: 1.0,
            replay_episodes: 128,
            warmup: 20,
            sigma: 0.5,
            sigma_decay: 0.99,
            // NNCF's AutoQ also scales its decay to the episode count so that the last
            // episodes barely explore; 0.05 is a tenth of the initial sigma.
            final_sigma: 0.05,
            episodes: 600,
            baseline_rate: 0.5,
            updates_per_episode: None,
        }
    }
}

/// A linear layer with weights and biases drawn uniformly from (-bound, bound) by our
/// own generator, so libtorch's global one is never touched.
fn linear(
    path: nn::Path,
    c_in: usize,
    c_out: usize,
    bound: f64,
    rng: &mut ChaCha8Rng,
) -> nn::Linear {
    let zero = nn::LinearConfig {
        ws_init: Init::Const(0.0),
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    let mut layer = nn::linear(path, c_in as i64, c_out as i64, zero);
    let mut fill = |t: &mut Tensor| {
        let values: Vec<f32> = (0..t.numel())
            .map(|_| ((rng.gen::<f64>() * 2.0 - 1.0) * bound) as f32)
            .collect();
        tch::no_grad(|| t.copy_(&Tensor::from_slice(&values).view(t.size().as_slice())));
    };
    fill(&mut layer.ws);
    if let Some(bs) = layer.bs.as_mut() {
        fill(bs);
    }
    layer
}

/// The DDPG paper's initialisation: hidden layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
/// output layer U(-3e-3, 3e-3) so initial outputs are near zero.
fn hidden_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in as f64).sqrt()
}
const OUTPUT_BOUND: f64 = 3e-3;

/// Linear(n_s, h) - ReLU - Linear(h, h) - ReLU - Linear(h, 1) - Sigmoid.
struct Actor {
    vs: VarStore,
    net: nn::Sequential,
}

impl Actor {
    fn new(hidden: usize, rng: &mut ChaCha8Rng) -> Actor {
        let vs = VarStore::new(Device::Cpu);
        let p = vs.root();
        let net = nn::seq()
            .add(linear(
                &p / "l1",
                N_FEATURES,
                hidden,
                hidden_bound(N_FEATURES),
                rng,
            ))
            .add_fn(|x| x.relu())
            .add(linear(&p / "l2", hidden, hidden, hidden_bound(hidden), rng))
            .add_fn(|x| x.relu())
            .add(linear(&p / "l3", hidden, 1, OUTPUT_BOUND, rng))
            .add_fn(|x| x.sigmoid());
        Actor { vs, net }
    }

    fn forward(&self, state: &Tensor) -> Tensor {
        self.net.forward(state)
    }
}

/// Linear(n_s, h) on the state plus Linear(1, h) on the action, summed - ReLU -
/// Linear(h, h) - ReLU - Linear(h, 1).
struct Critic {
    vs: VarStore,
    state: nn::Linear,
    action: nn::Linear,
    rest: nn::Sequential,
}

impl Critic {
    fn new(hidden: usize, rng: &mut ChaCha8Rng) -> Critic {
        let vs = VarStore::new(Device::Cpu);
        let p = vs.root();
        let state = linear(
            &p / "state",
            N_FEATURES,
            hidden,
            hidden_bound(N_FEATURES),
            rng,
        );
        let action = linear(&p / "action", 1, hidden, hidden_bound(1), rng);
        let rest = nn::seq()
            .add_fn(|x| x.relu())
            .add(linear(&p / "l2", hidden, hidden, hidden_bound(hidden), rng))
            .add_fn(|x| x.relu())
            .add(linear(&p / "l3", hidden, 1, OUTPUT_BOUND, rng));
        Critic {
            vs,
            state,
            action,
            rest,
        }
    }

    fn forward(&self, state: &Tensor, action: &Tensor) -> Tensor {
        self.rest
            .forward(&(self.state.forward(state) + self.action.forward(action)))
    }
}

/// `target = (1 - tau) target + tau online`, variable by variable.
fn soft_update(target: &VarStore, online: &VarStore, tau: f64) {
    tch::no_grad(|| {
        for ((_, mut t), (_, o)) in var_store_tensors(target)
            .into_iter()
            .zip(var_store_tensors(online))
        {
            let _ = t.lerp_(&o, tau);
        }
    });
}

/// A draw from the normal distribution N(mu, sigma^2) truncated to [0, 1], by rejection
/// (Box-Muller normals): at most about two tries on average, as at least half the mass of
/// a normal centred in [0, 1] lies inside it.
fn truncated_normal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64) -> f64 {
    loop {
        let u1 = 1.0 - rng.gen::<f64>();
        let u2 = rng.gen::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let x = mu + sigma * z;
        if (0.0..=1.0).contains(&x) {
            return x;
        }
    }
}

/// The agent.
pub struct Agent {
    config: DdpgConfig,
    actor: Actor,
    critic: Critic,
    actor_target: Actor,
    critic_target: Critic,
    actor_adam: Adam,
    critic_adam: Adam,
    replay: Replay,
    /// Moving average of the sampled rewards; the first batch's mean starts it, as in the
    /// authors' code.
    baseline: Option<f64>,
    rng: ChaCha8Rng,
    /// The warm-up's uniform actions, random search's stream.
    warmup_rng: ChaCha8Rng,
}

/// What a checkpoint holds of the agent besides tensors.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AgentHeader {
    actor_steps: u64,
    critic_steps: u64,
    #[serde(with = "exact_f64_option")]
    baseline: Option<f64>,
    rng_seed: [u8; 32],
    rng_stream: u64,
    /// ChaCha's 68-bit word position, as a decimal string (JSON numbers stop at 64 bits).
    rng_word_pos: String,
    warmup_rng_word_pos: String,
}

impl Agent {
    /// A fresh agent for episodes of `steps` steps; everything random follows from `seed`.
    pub fn new(config: DdpgConfig, steps: usize, seed: u64) -> Agent {
        let mut rng = seeded_rng(seed, stream::SEARCH_AGENT);
        // Each target starts equal to its network: built from the same random draws.
        let actor_target = Actor::new(config.hidden, &mut rng.clone());
        let actor = Actor::new(config.hidden, &mut rng);
        let critic_target = Critic::new(config.hidden, &mut rng.clone());
        let critic = Critic::new(config.hidden, &mut rng);
        Agent {
            actor_adam: Adam::new(&actor.vs, config.actor_lr),
            critic_adam: Adam::new(&critic.vs, config.critic_lr),
            replay: Replay::new(config.replay_episodes * steps),
            actor,
            critic,
            actor_target,
            critic_target,
            baseline: None,
            rng,
            warmup_rng: seeded_rng(seed, stream::SEARCH_RANDOM),
            config,
        }
    }

    /// The exploration sigma of `episode` (counted from 0), or None when it acts at
    /// random (the warm-up). It decays geometrically
    /// from `sigma` after the warm-up, by `sigma_decay` per episode or faster, so that the
    /// last episode's is at most `final_sigma`; 600 episodes with 20 of warm-up are the
    /// paper's schedule, 0.5 x 0.99^k, unchanged.
    pub fn sigma(&self, episode: usize) -> Option<f64> {
        let c = &self.config;
        let since = episode.checked_sub(c.warmup)?;
        let last = c.episodes.saturating_sub(c.warmup + 1);
        if last == 0 {
            return Some(c.sigma.min(c.final_sigma));
        }
        let needed = (c.final_sigma / c.sigma).powf(1.0 / last as f64);
        Some(c.sigma * c.sigma_decay.min(needed).powi(since as i32))
    }

    /// The action for `state`: uniform in [0, 1) during the warm-up, afterwards the
    /// actor's action perturbed by truncated normal noise.
    pub fn act(&mut self, state: &Observation, episode: usize) -> f32 {
        match self.sigma(episode) {
            None => self.warmup_rng.gen::<f32>(),
            Some(sigma) => {
                let state = Tensor::from_slice(state).view([1, N_FEATURES as i64]);
                let mu = tch::no_grad(|| self.actor.forward(&state)).double_value(&[0, 0]);
                truncated_normal(&mut self.rng, mu, sigma) as f32
            }
        }
    }

    /// Stores a transition of `episode`; after the warm-up, also takes its updates: one, or with `updates_per_episode` all of the episode's
    /// on its last transition, so that no update state spans a checkpoint.
    pub fn observe(&mut self, transition: Transition, episode: usize) {
        let done = transition.done;
        self.replay.push(transition);
        if self.sigma(episode).is_none() {
            return;
        }
        let updates = match self.config.updates_per_episode {
            None => 1,
            Some(k) if done => k,
            Some(_) => 0,
        };
        for _ in 0..updates {
            self.update();
        }
    }

    /// One DDPG update on a uniformly sampled batch.
    fn update(&mut self) {
        let n = self.config.batch_size;
        let batch = self.replay.sample(&mut self.rng, n);
        let mean = batch.reward.iter().map(|&r| f64::from(r)).sum::<f64>() / n as f64;
        let m = match self.baseline {
            None => mean,
            Some(m) => m + self.config.baseline_rate * (mean - m),
        };
        self.baseline = Some(m);
        let centred: Vec<f32> = batch
            .reward
            .iter()
            .map(|&r| (f64::from(r) - m) as f32)
            .collect();
        let reward = Tensor::from_slice(&centred).view([n as i64, 1]);
        let target = tch::no_grad(|| {
            let next_action = self.actor_target.forward(&batch.next_state);
            let next_q = self.critic_target.forward(&batch.next_state, &next_action);
            reward + batch.not_done * next_q * self.config.discount
        });
        let q = self.critic.forward(&batch.state, &batch.action);
        self.critic_adam
            .backward_step(&q.mse_loss(&target, Reduction::Mean));
        // The actor follows the critic's gradient; the critic's own weights need none.
        self.critic.vs.freeze();
        let policy_q = self
            .critic
            .forward(&batch.state, &self.actor.forward(&batch.state));
        self.actor_adam.backward_step(&-policy_q.mean(Kind::Float));
        self.critic.vs.unfreeze();
        soft_update(&self.actor_target.vs, &self.actor.vs, self.config.tau);
        soft_update(&self.critic_target.vs, &self.critic.vs, self.config.tau);
    }

    /// Everything needed to continue exactly: the header and named tensors.
    pub(crate) fn save(&self) -> (AgentHeader, Vec<(String, Tensor)>) {
        let header = AgentHeader {
            actor_steps: self.actor_adam.steps(),
            critic_steps: self.critic_adam.steps(),
            baseline: self.baseline,
            rng_seed: self.rng.get_seed(),
            rng_stream: self.rng.get_stream(),
            rng_word_pos: self.rng.get_word_pos().to_string(),
            warmup_rng_word_pos: self.warmup_rng.get_word_pos().to_string(),
        };
        let mut tensors = Vec::new();
        for (prefix, part) in [
            ("actor", var_store_tensors(&self.actor.vs)),
            ("critic", var_store_tensors(&self.critic.vs)),
            ("actor_target", var_store_tensors(&self.actor_target.vs)),
            ("critic_target", var_store_tensors(&self.critic_target.vs)),
            ("actor_adam", self.actor_adam.state()),
            ("critic_adam", self.critic_adam.state()),
            ("replay", self.replay.tensors()),
        ] {
            tensors.extend(prefixed(prefix, part));
        }
        (header, tensors)
    }

    /// Restores what [`Agent::save`] returned, into an agent built with the same config.
    pub(crate) fn restore(
        &mut self,
        header: AgentHeader,
        tensors: &[(String, Tensor)],
    ) -> Result<()> {
        for (prefix, vs) in [
            ("actor", &self.actor.vs),
            ("critic", &self.critic.vs),
            ("actor_target", &self.actor_target.vs),
            ("critic_target", &self.critic_target.vs),
        ] {
            load_var_store(vs, &strip(tensors, prefix))?;
        }
        self.actor_adam
            .load_state(header.actor_steps, &strip(tensors, "actor_adam"))?;
        self.critic_adam
            .load_state(header.critic_steps, &strip(tensors, "critic_adam"))?;
        self.replay.load(&strip(tensors, "replay"))?;
        self.baseline = header.baseline;
        let word_pos = |pos: &str| {
            pos.parse().map_err(|_| {
                Error::Checkpoint(format!(
                    "a generator's word position `{pos}` is not a number"
                ))
            })
        };
        self.rng = rand::SeedableRng::from_seed(header.rng_seed);
        self.rng.set_stream(header.rng_stream);
        self.rng.set_word_pos(word_pos(&header.rng_word_pos)?);
        self.warmup_rng
            .set_word_pos(word_pos(&header.warmup_rng_word_pos)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam steps of the critic after each transition of three 4-step episodes, the first
    /// of them the warm-up.
    fn critic_steps(updates_per_episode: Option<usize>) -> Vec<u64> {
        let config = DdpgConfig {
            warmup: 1,
            episodes: 3,
            batch_size: 8,
            hidden: 16,
            updates_per_episode,
            ..DdpgConfig::default()
        };
        let mut agent = Agent::new(config, 4, 3);
        let mut steps = Vec::new();
        for episode in 0..3 {
            for step in 0..4 {
                let state = [step as f32 / 4.0; N_FEATURES];
                let action = agent.act(&state, episode);
                let transition = Transition {
                    state,
                    action,
                    reward: 0.1 * episode as f32,
                    next_state: [(step + 1) as f32 / 4.0; N_FEATURES],
                    done: step == 3,
                };
                agent.observe(transition, episode);
                steps.push(agent.critic_adam.steps());
            }
        }
        steps
    }

    #[test]
    fn updates_follow_each_transition_or_come_k_at_the_end_of_an_episode() {
        // None of them in the warm-up; then one per transition, or k on the last one.
        assert_eq!(critic_steps(None), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(critic_steps(Some(3)), [0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 6]);
    }
}
