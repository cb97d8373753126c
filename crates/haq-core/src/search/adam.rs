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
    /// Per parameter, room for intermediate results, so that a step allocates nothing:
    /// allocating tensors this size costs more than the arithmetic.
    scratch: Vec<Tensor>,
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
            scratch: zeros(),
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
            let moments = self.m.iter_mut().zip(&mut self.v).zip(&mut self.scratch);
            for ((_, p), ((m, v), x)) in self.params.iter_mut().zip(moments) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - BETA1);
                let _ = g.mul_out(x, &g);
                let _ = v.lerp_(x, 1.0 - BETA2);
                // x = -(sqrt(v) / bias2 + eps) / step_size, so that w += m / x.
                let _ = v.sqrt_out(x);
                let _ = x
                    .g_mul_scalar_(-1.0 / (bias2 * step_size))
                    .g_add_scalar_(-EPS / step_size);
                let _ = p.addcdiv_(m, x);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Under a constant gradient Adam's bias-corrected moments are exactly g and g^2, so
    /// every step moves each weight by lr against the gradient's sign, whatever its size.
    #[test]
    fn constant_gradients_move_each_weight_by_the_learning_rate() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[3]);
        let slopes = Tensor::from_slice(&[2.0f32, -0.001, 50.0]);
        let mut adam = Adam::new(&vs, 0.01);
        for _ in 0..20 {
            adam.backward_step(&(&w * &slopes).sum(Kind::Float));
        }
        let got = Vec::<f32>::try_from(&w).unwrap();
        for (g, want) in got.iter().zip([-0.2, 0.2, -0.2]) {
            assert!((g - want).abs() < 1e-4, "{got:?}");
        }
        assert_eq!(adam.steps(), 20);
    }
}
