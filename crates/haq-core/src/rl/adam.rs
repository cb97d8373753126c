//! Adam (Kingma & Ba 2015) with PyTorch's `torch.optim.Adam` semantics, written on top of a
//! `VarStore` because tch's optimisers hide their moments and a resumed search must
//! continue bit-exactly.

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Adam over the trainable variables of a `VarStore`.
pub struct Adam {
    lr: f64,
    /// Trainable variables sorted by name, so the state never depends on hash order.
    params: Vec<(String, Tensor)>,
    /// First and second moment estimates, one of each per parameter.
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken, for the bias correction.
    steps: u64,
}

impl Adam {
    pub fn new(vs: &VarStore, lr: f64) -> Adam {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = || params.iter().map(|(_, p)| p.zeros_like()).collect();
        Adam {
            lr,
            m: zeros(),
            v: zeros(),
            params,
            steps: 0,
        }
    }

    /// Clears the gradients, back-propagates `loss` and takes one step:
    /// `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
    pub fn backward_step(&mut self, loss: &Tensor) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
        loss.backward();
        self.steps += 1;
        let t = self.steps as i32;
        let step_size = self.lr / (1.0 - BETA1.powi(t));
        let bias2 = (1.0 - BETA2.powi(t)).sqrt();
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.g_mul_scalar_(BETA1).g_add_(&(&g * (1.0 - BETA1)));
                let _ = v.g_mul_scalar_(BETA2).g_add_(&(&g * &g * (1.0 - BETA2)));
                let denom = v.sqrt() / bias2 + EPS;
                let _ = p.g_sub_(&(&*m / denom * step_size));
            }
        });
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The moments, named `m.<variable>` and `v.<variable>`, as copies.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named = |prefix: &str, moments: &[Tensor]| {
            self.params
                .iter()
                .zip(moments)
                .map(|((name, _), t)| (format!("{prefix}.{name}"), t.copy()))
                .collect::<Vec<_>>()
        };
        let mut state = named("m", &self.m);
        state.extend(named("v", &self.v));
        state
    }

    /// Restores the step count and the moments saved by [`Adam::state`]; every moment
    /// must be present with its variable's shape.
    pub fn load_state(&mut self, steps: u64, state: &[(String, Tensor)]) -> Result<()> {
        if state.len() != 2 * self.params.len() {
            return Err(Error::Checkpoint(format!(
                "{} optimiser moments saved, {} expected; was it saved by another search?",
                state.len(),
                2 * self.params.len()
            )));
        }
        for (prefix, moments) in [("m", &mut self.m), ("v", &mut self.v)] {
            for ((name, p), moment) in self.params.iter().zip(moments.iter_mut()) {
                let key = format!("{prefix}.{name}");
                let saved = state
                    .iter()
                    .find(|(n, _)| *n == key)
                    .map(|(_, t)| t)
                    .filter(|t| t.size() == p.size())
                    .ok_or_else(|| {
                        Error::Checkpoint(format!(
                            "optimiser moment `{key}` is missing or has the wrong shape \
                             (expected {:?})",
                            p.size()
                        ))
                    })?;
                tch::no_grad(|| moment.copy_(saved));
            }
        }
        self.steps = steps;
        Ok(())
    }
}
