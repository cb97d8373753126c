//! Stochastic gradient descent with momentum and weight decay, written on top of a
//! `VarStore` because tch's built-in optimisers do not expose their momentum buffers,
//! and a resumed run must continue exactly as an uninterrupted one.

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

/// Hyper-parameters, with PyTorch's `torch.optim.SGD` semantics (dampening 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    /// Classic L2 weight decay, added to the gradient (`grad + weight_decay * w`), on
    /// every trainable variable as PyTorch's SGD applies it.
    pub weight_decay: f64,
    #[serde(default)]
    pub nesterov: bool,
}

impl Default for SgdConfig {
    /// The paper's finetuning recipe: momentum 0.9, weight decay 4e-5.
    fn default() -> Self {
        Self {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 4e-5,
            nesterov: false,
        }
    }
}

/// SGD over the trainable variables of a `VarStore`.
pub struct Sgd {
    config: SgdConfig,
    /// Trainable variables sorted by name, so the state never depends on hash order.
    params: Vec<(String, Tensor)>,
    /// One momentum buffer per parameter, starting at zero (which equals PyTorch's
    /// first-step `buf = grad` when dampening is 0).
    momentum: Vec<Tensor>,
}

const MOMENTUM_PREFIX: &str = "momentum.";

impl Sgd {
    pub fn new(vs: &VarStore, config: SgdConfig) -> Self {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let momentum = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            config,
            params,
            momentum,
        }
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the current gradients, as PyTorch's SGD:
    /// `d = grad + wd * w; buf = momentum * buf + d; d = nesterov ? d + momentum * buf : buf;
    /// w -= lr * d`. Variables without a gradient are left alone.
    pub fn step(&mut self) {
        let SgdConfig {
            lr,
            momentum,
            weight_decay,
            nesterov,
        } = self.config;
        tch::no_grad(|| {
            for ((_, p), buf) in self.params.iter_mut().zip(&mut self.momentum) {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let mut d = if weight_decay != 0.0 {
                    &grad + &*p * weight_decay
                } else {
                    grad
                };
                if momentum != 0.0 {
                    let _ = buf.g_mul_scalar_(momentum).g_add_(&d);
                    d = if nesterov {
                        d + &*buf * momentum
                    } else {
                        buf.shallow_clone()
                    };
                }
                let _ = p.g_add_(&(d * -lr));
            }
        });
    }

    /// Clears the gradients, back-propagates `loss` and takes a step, unless a gradient
    /// is not a finite number: then the weights stay as they were and it returns false,
    /// as PyTorch's GradScaler skips such steps. Low-bit quantization makes that happen:
    /// a channel it turns constant has zero variance, batch norm's backward pass
    /// multiplies its gradient by 1/sqrt(eps), about 316, and a chain of such channels
    /// overflows float32 (tests/quant_extremes.rs). Whether a nearly constant channel is
    /// exactly so depends on rounding, so this is also what keeps training from
    /// diverging on one CPU and not on another.
    pub fn backward_step(&mut self, loss: &Tensor) -> bool {
        self.zero_grad();
        loss.backward();
        if !self.gradients_finite() {
            return false;
        }
        self.step();
        true
    }

    /// Whether every gradient is a finite number (one reduction per variable).
    fn gradients_finite(&self) -> bool {
        let sums: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .map(|g| g.sum(tch::Kind::Float))
            .collect();
        sums.is_empty() || Tensor::stack(&sums, 0).isfinite().all().int64_value(&[]) == 1
    }

    /// The momentum buffers, named `momentum.<variable name>`, as copies.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.momentum)
            .map(|((name, _), buf)| (format!("{MOMENTUM_PREFIX}{name}"), buf.copy()))
            .collect()
    }

    /// Restores buffers saved by [`Sgd::state`]; every buffer must be present, with its
    /// variable's shape, and nothing else.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        if let Some((name, _)) = state.iter().find(|(name, _)| {
            !self
                .params
                .iter()
                .any(|(p, _)| *name == format!("{MOMENTUM_PREFIX}{p}"))
        }) {
            return Err(Error::weights(format!(
                "optimiser state has `{name}`, which names no trainable variable of this model; \
                 was it saved for another architecture?"
            )));
        }
        for ((name, p), buf) in self.params.iter().zip(&mut self.momentum) {
            let key = format!("{MOMENTUM_PREFIX}{name}");
            let (_, saved) = state.iter().find(|(n, _)| *n == key).ok_or_else(|| {
                Error::weights(format!(
                    "optimiser state lacks `{key}`; was it saved for another architecture?"
                ))
            })?;
            if saved.size() != p.size() {
                return Err(Error::weights(format!(
                    "optimiser state `{key}` has shape {:?}, the variable {:?}",
                    saved.size(),
                    p.size()
                )));
            }
            tch::no_grad(|| buf.copy_(saved));
        }
        Ok(())
    }
}
