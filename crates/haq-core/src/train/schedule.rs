//! The learning-rate schedule: linear warm-up, then cosine decay.

use serde::{Deserialize, Serialize};

/// Cosine annealing (Loshchilov & Hutter, SGDR, 2017) after a linear warm-up, by step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineSchedule {
    pub base_lr: f64,
    /// The rate reached at the last step.
    #[serde(default)]
    pub final_lr: f64,
    #[serde(default)]
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl CosineSchedule {
    /// The rate of step `step` (from 0): `base * (step + 1) / warmup` during warm-up, then
    /// `final + (base - final) * (1 + cos(pi * t)) / 2` with `t` going from 0 at the first
    /// step after warm-up to 1 at the last step (`total_steps - 1`).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self
            .total_steps
            .saturating_sub(self.warmup_steps + 1)
            .max(1);
        let t = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        self.final_lr
            + (self.base_lr - self.final_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}
