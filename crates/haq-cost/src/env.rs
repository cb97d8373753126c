//! The search environment: what the agent observes at each step and how its actions
//! become a bit-width policy.
//!
//! One episode decides every layer. In linear mode each layer takes two steps, its weight
//! bits then its activation bits; in k-means mode only weight steps. The first layer of a
//! linear policy is pinned to w8 a8 (see [`crate::policy`]); the agent still takes
//! its two steps, as the paper's agent does, so every episode has the same length and the
//! observations keep their meaning, but those two actions do not change the policy.

use serde::{Deserialize, Serialize};

use crate::arch::{LayerInfo, LayerKind};
use crate::error::{Error, Result};
use crate::policy::{LayerBits, Policy};
use crate::policy::{MAX_BITS, MIN_BITS};

/// Features of one observation (docs/search.md, "The agent and its environment"): layer
/// index, c_in, c_out, stride, kernel, is-depthwise, input feature-map size (H*W),
/// parameter count, is-weight-step, previous action.
pub const N_FEATURES: usize = 10;

/// The per-layer features, the first eight of an observation.
const N_STATIC: usize = 8;

/// An observation: [`N_FEATURES`] numbers, each in [0, 1].
pub type Observation = [f32; N_FEATURES];

/// Which quantization the search decides bits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Weights and activations, linear quantization (latency and energy objectives).
    Linear,
    /// Weights only, k-means weight sharing (model size).
    Kmeans,
}

impl Mode {
    /// Whether layer `index` keeps its bits whatever the agent does: linear mode's first
    /// layer, w8 a8.
    pub fn is_pinned(self, index: usize) -> bool {
        self == Mode::Linear && index == 0
    }

    /// The mode a policy is in.
    pub fn of(policy: &Policy) -> Mode {
        if policy.is_linear() {
            Mode::Linear
        } else {
            Mode::Kmeans
        }
    }
}

/// The bit widths a searched layer may take, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitRange {
    pub min: u8,
    pub max: u8,
}

impl BitRange {
    /// A range within 1..=8.
    pub fn new(min: u8, max: u8) -> Result<BitRange> {
        if !(MIN_BITS <= min && min <= max && max <= MAX_BITS) {
            return Err(Error::Config {
                field: "bits".into(),
                problem: format!(
                    "min {min}, max {max}: need {MIN_BITS} <= min <= max <= {MAX_BITS}"
                ),
            });
        }
        Ok(BitRange { min, max })
    }

    /// The paper's ranges: 2..=8 in linear mode, 1..=8 in k-means mode.
    pub fn default_for(mode: Mode) -> BitRange {
        match mode {
            Mode::Linear => BitRange { min: 2, max: 8 },
            Mode::Kmeans => BitRange { min: 1, max: 8 },
        }
    }

    /// The bit width of action `a` in [0, 1]:
    /// `clamp(round(min - 0.5 + a * (max - min + 1)), min, max)`. Rounding is half away
    /// from zero, so each width gets an equal share of [0, 1] and a bin edge belongs to
    /// the wider width (the released code's numpy rounds half to even, giving unequal bins).
    pub fn bits(self, a: f32) -> u8 {
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        let bits = (min - 0.5 + f64::from(a) * (max - min + 1.0)).round();
        bits.clamp(min, max) as u8
    }
}

/// The observations and the action-to-policy mapping for one network.
#[derive(Debug, Clone)]
pub struct Env {
    mode: Mode,
    bits: BitRange,
    /// Per layer, the static features min-max scaled over the layers.
    features: Vec<[f32; N_STATIC]>,
}

impl Env {
    pub fn new(layers: &[LayerInfo], mode: Mode, bits: BitRange) -> Result<Env> {
        if layers.is_empty() {
            return Err(Error::Config {
                field: "layers".into(),
                problem: "the model has no quantizable layers to search".into(),
            });
        }
        let raw: Vec<[f64; N_STATIC]> = layers.iter().map(static_features).collect();
        let features = raw
            .iter()
            .map(|f| {
                std::array::from_fn(|j| {
                    let lo = raw.iter().map(|r| r[j]).fold(f64::INFINITY, f64::min);
                    let hi = raw.iter().map(|r| r[j]).fold(f64::NEG_INFINITY, f64::max);
                    // A feature equal on every layer carries no information: 0.
                    if hi > lo {
                        ((f[j] - lo) / (hi - lo)) as f32
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        Ok(Env {
            mode,
            bits,
            features,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn bit_range(&self) -> BitRange {
        self.bits
    }

    pub fn layers(&self) -> usize {
        self.features.len()
    }

    /// Steps per episode: two per layer in linear mode, one in k-means mode.
    pub fn steps(&self) -> usize {
        self.layers() * self.steps_per_layer()
    }

    fn steps_per_layer(&self) -> usize {
        match self.mode {
            Mode::Linear => 2,
            Mode::Kmeans => 1,
        }
    }

    /// The observation at `step`, given the action taken at the step before (0 at step 0).
    pub fn observation(&self, step: usize, previous_action: f32) -> Observation {
        let layer = step / self.steps_per_layer();
        let is_weight_step = step.is_multiple_of(self.steps_per_layer());
        let mut obs = [0.0; N_FEATURES];
        obs[..N_STATIC].copy_from_slice(&self.features[layer]);
        obs[N_STATIC] = if is_weight_step { 1.0 } else { 0.0 };
        obs[N_STATIC + 1] = previous_action;
        obs
    }

    /// The policy one episode's actions (one per step) choose, pinned layer included,
    /// before any budget is enforced.
    ///
    /// # Panics
    /// If there is not one action per step.
    pub fn policy(&self, actions: &[f32]) -> Policy {
        assert_eq!(actions.len(), self.steps(), "one action per step");
        let n = self.layers();
        let mut policy = match self.mode {
            Mode::Linear => Policy::uniform(n, self.bits.min),
            Mode::Kmeans => Policy::uniform_weights(n, self.bits.min),
        };
        for (index, (layer, step)) in policy
            .layers
            .iter_mut()
            .zip(actions.chunks(self.steps_per_layer()))
            .enumerate()
        {
            if self.mode.is_pinned(index) {
                continue;
            }
            *layer = LayerBits {
                w_bits: self.bits.bits(step[0]),
                a_bits: step.get(1).map(|&a| self.bits.bits(a)),
            };
        }
        policy
    }

    /// The cheapest policy the search can reach: every searched layer at the minimum
    /// width.
    pub fn min_policy(&self) -> Policy {
        let lowest = vec![0.0; self.steps()];
        self.policy(&lowest)
    }

    /// The widest policy the search can reach: every searched layer at the maximum width.
    pub fn max_policy(&self) -> Policy {
        let highest = vec![1.0; self.steps()];
        self.policy(&highest)
    }
}

fn static_features(layer: &LayerInfo) -> [f64; N_STATIC] {
    let s = &layer.shape;
    [
        layer.index as f64,
        s.c_in as f64,
        s.c_out as f64,
        s.stride as f64,
        s.kernel as f64,
        if s.kind == LayerKind::Depthwise {
            1.0
        } else {
            0.0
        },
        (s.in_h * s.in_w) as f64,
        s.params as f64,
    ]
}
