//! The replay buffer: explicit (s, a, R, s', done) transitions, the oldest dropped first,
//! sampled uniformly with replacement.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::env::{Observation, N_FEATURES};
use crate::error::{Error, Result};

/// One step of one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: Observation,
    pub action: f32,
    /// The episode's reward, shared by all its steps.
    pub reward: f32,
    /// The next observation; on the last step (done) it is not used.
    pub next_state: Observation,
    pub done: bool,
}

/// A sampled batch, as `[n, features]` and `[n, 1]` tensors.
pub struct Batch {
    pub state: Tensor,
    pub action: Tensor,
    pub reward: Vec<f32>,
    pub next_state: Tensor,
    /// 1 where the episode goes on after the step, 0 on its last step.
    pub not_done: Tensor,
}

pub struct Replay {
    capacity: usize,
    items: VecDeque<Transition>,
}

impl Replay {
    pub fn new(capacity: usize) -> Replay {
        Replay {
            capacity,
            items: VecDeque::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, transition: Transition) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(transition);
    }

    /// `n` transitions drawn uniformly with replacement.
    ///
    /// # Panics
    /// If the buffer is empty.
    pub fn sample(&self, rng: &mut ChaCha8Rng, n: usize) -> Batch {
        let picked: Vec<&Transition> = (0..n)
            .map(|_| &self.items[rng.gen_range(0..self.items.len())])
            .collect();
        let column = |f: &dyn Fn(&Transition) -> f32| {
            let values: Vec<f32> = picked.iter().map(|t| f(t)).collect();
            Tensor::from_slice(&values).view([n as i64, 1])
        };
        let states = |f: &dyn Fn(&Transition) -> &Observation| {
            let values: Vec<f32> = picked.iter().flat_map(|t| *f(t)).collect();
            Tensor::from_slice(&values).view([n as i64, N_FEATURES as i64])
        };
        Batch {
            state: states(&|t| &t.state),
            action: column(&|t| t.action),
            reward: picked.iter().map(|t| t.reward).collect(),
            next_state: states(&|t| &t.next_state),
            not_done: column(&|t| if t.done { 0.0 } else { 1.0 }),
        }
    }

    /// The buffer as named tensors, oldest transition first.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let n = self.items.len() as i64;
        let f = N_FEATURES as i64;
        let flat = |f: &dyn Fn(&Transition) -> Vec<f32>| {
            Tensor::from_slice(&self.items.iter().flat_map(f).collect::<Vec<f32>>())
        };
        vec![
            ("state".into(), flat(&|t| t.state.to_vec()).view([n, f])),
            ("action".into(), flat(&|t| vec![t.action])),
            ("reward".into(), flat(&|t| vec![t.reward])),
            (
                "next_state".into(),
                flat(&|t| t.next_state.to_vec()).view([n, f]),
            ),
            ("done".into(), flat(&|t| vec![f32::from(u8::from(t.done))])),
        ]
    }

    /// Replaces the contents with tensors saved by [`Replay::tensors`].
    pub fn load(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let get = |name: &str, width: usize| -> Result<Vec<f32>> {
            let t = tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| Error::Checkpoint(format!("replay buffer lacks `{name}`")))?;
            if t.kind() != Kind::Float || t.numel() % width != 0 {
                return Err(Error::Checkpoint(format!(
                    "replay buffer `{name}` has kind {:?} and shape {:?}; expected f32 with \
                     {width} values per transition",
                    t.kind(),
                    t.size()
                )));
            }
            Ok(Vec::<f32>::try_from(t.flatten(0, -1))?)
        };
        let state = get("state", N_FEATURES)?;
        let action = get("action", 1)?;
        let reward = get("reward", 1)?;
        let next_state = get("next_state", N_FEATURES)?;
        let done = get("done", 1)?;
        let n = action.len();
        if [
            state.len() / N_FEATURES,
            reward.len(),
            next_state.len() / N_FEATURES,
            done.len(),
        ]
        .iter()
        .any(|&len| len != n)
            || n > self.capacity
        {
            return Err(Error::Checkpoint(format!(
                "replay buffer columns disagree or exceed its capacity of {} transitions",
                self.capacity
            )));
        }
        let obs = |v: &[f32], i: usize| -> Observation {
            v[i * N_FEATURES..(i + 1) * N_FEATURES].try_into().unwrap()
        };
        self.items = (0..n)
            .map(|i| Transition {
                state: obs(&state, i),
                action: action[i],
                reward: reward[i],
                next_state: obs(&next_state, i),
                done: done[i] != 0.0,
            })
            .collect();
        Ok(())
    }
}
