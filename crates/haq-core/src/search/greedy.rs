//! Greedy sensitivity search, as AIMET's automatic mixed precision (Qualcomm, AIMET
//! docs, "Automatic Mixed Precision"): measure each layer alone at each lower width, then
//! walk down from the all-widest policy, each step lowering the layer that loses the least
//! accuracy per unit of cost saved, until the policy fits the budget.
//!
//! A layer's candidates are its widths from the range's top down to its bottom, weights
//! and activations together (`wb ab`, as AIMET's candidates pair them); the fill may
//! then split them. The probes are scored with the search's own reward: policy `i at b`
//! has every other searched layer at the widest width. Their number, `1 + layers x
//! (max - min)`, is the method's price; the walk itself costs no scoring.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::env::{BitRange, Env, Mode};
use super::{Proposal, Scored, SearchMethod, Space};
use crate::error::{Error, Result};
use crate::quant::{LayerBits, Policy};

pub struct Greedy {
    /// The searched layers, in probe order (the pinned one left out).
    layers: Vec<usize>,
    range: BitRange,
    mode: Mode,
    /// Top-1 of each probe scored so far: the all-widest policy first, then for each
    /// searched layer its widths from `max - 1` down to `min`.
    scores: Vec<f64>,
    /// Whether the walked policy has been scored.
    done: bool,
}

/// A point of the front the walk went down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    pub cost: f64,
    /// The walk's estimate of top-1: the all-widest policy's, less each lowered layer's
    /// loss as its probe measured it (losses taken as additive).
    pub predicted_accuracy: f64,
}

#[derive(Serialize, Deserialize)]
struct State {
    scores: Vec<f64>,
    done: bool,
}

#[derive(Serialize)]
struct Details {
    /// The searched layers.
    layers: Vec<usize>,
    /// Top-1 of the all-widest policy, percent.
    widest_accuracy: f64,
    /// `sensitivity[k][j]`: top-1 with searched layer `layers[k]` at width `max - 1 - j`
    /// (and every other at `max`), percent.
    sensitivity: Vec<Vec<f64>>,
    front: Vec<FrontPoint>,
}

impl Greedy {
    pub fn new(env: &Env) -> Greedy {
        Greedy {
            layers: (0..env.layers())
                .filter(|&i| !env.mode().is_pinned(i))
                .collect(),
            range: env.bit_range(),
            mode: env.mode(),
            scores: Vec::new(),
            done: false,
        }
    }

    fn per_layer(&self) -> usize {
        usize::from(self.range.max - self.range.min)
    }

    fn probes(&self) -> usize {
        1 + self.layers.len() * self.per_layer()
    }

    /// The probe scored `k`-th: the all-widest policy, then one layer lowered.
    fn probe(&self, env: &Env, k: usize) -> Policy {
        let mut policy = env.max_policy();
        if k > 0 {
            let (layer, step) = ((k - 1) / self.per_layer(), (k - 1) % self.per_layer());
            set(
                &mut policy,
                self.layers[layer],
                self.range.max - 1 - step as u8,
                self.mode,
            );
        }
        policy
    }

    /// Top-1 with searched layer `k` alone at `bits`, from the probes.
    fn score(&self, k: usize, bits: u8) -> f64 {
        if bits == self.range.max {
            return self.scores[0];
        }
        self.scores[1 + k * self.per_layer() + usize::from(self.range.max - 1 - bits)]
    }

    /// The walk down the front, from the all-widest policy to the first within budget;
    /// needs every probe scored.
    pub fn walk(&self, space: &Space) -> Result<(Policy, Vec<FrontPoint>)> {
        let (range, mode) = (self.range, self.mode);
        let mut policy = space.env.max_policy();
        let mut widths = vec![range.max; self.layers.len()];
        let mut cost = space.constraint.cost(&policy);
        let mut predicted = self.scores[0];
        let mut front = vec![FrontPoint {
            cost,
            predicted_accuracy: predicted,
        }];
        while cost > space.constraint.budget() {
            // (loss per unit of cost saved, saving, layer, its new width, lowered policy,
            // its cost): the smallest price goes first; ties go to the larger saving, then
            // the earlier layer.
            let mut best: Option<(f64, f64, usize, u8, Policy, f64)> = None;
            for (k, &layer) in self.layers.iter().enumerate() {
                let bits = widths[k];
                // The next lower width that saves cost: on hardware that pads widths
                // (BitFusion's 2-bit bricks) the one just below may cost the same.
                let Some((to, lowered, new_cost)) = (range.min..bits).rev().find_map(|to| {
                    let mut lowered = policy.clone();
                    set(&mut lowered, layer, to, mode);
                    let new_cost = space.constraint.cost(&lowered);
                    (new_cost < cost).then_some((to, lowered, new_cost))
                }) else {
                    continue;
                };
                let saving = cost - new_cost;
                let loss = self.score(k, bits) - self.score(k, to);
                let price = loss / saving;
                let better = best
                    .as_ref()
                    .is_none_or(|(p, s, ..)| price < *p || (price == *p && saving > *s));
                if better {
                    best = Some((price, saving, k, to, lowered, new_cost));
                }
            }
            let Some((_, _, k, to, lowered, new_cost)) = best else {
                // Every lowering left saves nothing: only a cost that falls as bits rise
                // gets here, as the budget admits the cheapest policy.
                return Err(Error::Config {
                    field: "budget".into(),
                    problem: format!(
                        "the greedy walk cannot lower the cost below {cost} {}: lowering \
                         a width saves nothing on this cost model",
                        space.constraint.unit()
                    ),
                });
            };
            predicted -= self.score(k, widths[k]) - self.score(k, to);
            widths[k] = to;
            policy = lowered;
            cost = new_cost;
            front.push(FrontPoint {
                cost,
                predicted_accuracy: predicted,
            });
        }
        Ok((policy, front))
    }
}

/// Layer `index` at `bits`: weights and, in linear mode, activations.
fn set(policy: &mut Policy, index: usize, bits: u8, mode: Mode) {
    policy.layers[index] = LayerBits {
        w_bits: bits,
        a_bits: (mode == Mode::Linear).then_some(bits),
    };
}

impl SearchMethod for Greedy {
    fn propose(&mut self, space: &Space, _episode: usize) -> Result<Option<Proposal>> {
        if self.scores.len() < self.probes() {
            return Ok(Some(Proposal::Probe(
                self.probe(&space.env, self.scores.len()),
            )));
        }
        if self.done {
            return Ok(None);
        }
        Ok(Some(Proposal::Fitted(self.walk(space)?.0)))
    }

    fn observe(&mut self, scored: &Scored, _episode: usize) {
        // The walked policy is scored after every probe; only the probes feed the walk.
        if self.scores.len() < self.probes() {
            self.scores.push(scored.accuracy);
        } else {
            self.done = true;
        }
    }

    fn planned(&self) -> usize {
        self.probes() + 1
    }

    fn details(&self, space: &Space) -> Result<serde_json::Value> {
        let sensitivity = (0..self.layers.len())
            .map(|k| {
                (self.range.min..self.range.max)
                    .rev()
                    .map(|b| self.score(k, b))
                    .collect()
            })
            .collect();
        let details = Details {
            layers: self.layers.clone(),
            widest_accuracy: self.scores[0],
            sensitivity,
            front: self.walk(space)?.1,
        };
        serde_json::to_value(details).map_err(|e| Error::Checkpoint(e.to_string()))
    }

    fn save(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        let state = State {
            scores: self.scores.clone(),
            done: self.done,
        };
        let state = serde_json::to_value(state).map_err(|e| Error::Checkpoint(e.to_string()))?;
        Ok((state, Vec::new()))
    }

    fn restore(&mut self, state: serde_json::Value, _tensors: &[(String, Tensor)]) -> Result<()> {
        let state: State =
            serde_json::from_value(state).map_err(|e| Error::Checkpoint(e.to_string()))?;
        self.scores = state.scores;
        self.done = state.done;
        Ok(())
    }
}
