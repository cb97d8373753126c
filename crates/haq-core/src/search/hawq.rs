//! Hessian + ILP, as HAWQ-V3 (Yao, Dong et al., ICML 2021): each layer's sensitivity at
//! each bit width is the loss's second-order increase under that width's quantization
//! noise, and an integer linear program picks one (weight, activation) pair per layer
//! that minimises the total sensitivity within the budget, exactly under the cost table.
//!
//! Sensitivity of layer i at w bits for weights, a bits for inputs (HAWQ-V2/V3's average
//! Hessian trace times the perturbation's squared norm, Dong et al., NeurIPS 2020):
//! `tr(H_w)/n_w * ||Q_w(W) - W||^2 + tr(H_x)/n_x * ||Q_a(X) - X||^2`, with the traces
//! of [`super::hessian`] on the first `images` search-train images and `X` those images'
//! inputs to the layer, quantized with the calibrate stage's clips at each width (k-means
//! mode: the weights' k-means error, no activation term). The pinned layer keeps its
//! bits. The ILP's costs are each layer's share of the search's cost function (every cost
//! model here sums over layers), so its solution is within budget without a repair; the
//! search's fill then spends what the ILP's integrality left.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::env::Mode;
use super::hessian::layer_traces;
use super::ilp::{choose, Choice};
use super::{EpisodeAccuracy, Proposal, Scored, SearchMethod, Space};
use crate::error::{Error, Result};
use crate::quant::kmeans::kmeans;
use crate::quant::linear::{fake_quantize, quantize_weight};
use crate::quant::{LayerBits, Policy};
use crate::rng::{seeded_rng, stream};
use haq_cost::stats::spearman;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HawqConfig {
    /// Hutchinson probes per trace.
    pub probes: usize,
    /// Search-train images the traces and the activation noise are measured on.
    pub images: usize,
}

pub struct Hawq {
    config: HawqConfig,
    seed: u64,
    measured: Option<Measured>,
    /// Whether the ILP's policy has been scored.
    done: bool,
}

/// Per layer, its bit-width options with their (cost, sensitivity).
type Options = Vec<Vec<(LayerBits, Choice)>>;

/// What [`Hawq::prepare`] measured.
struct Measured {
    weight_traces: Vec<f64>,
    input_traces: Vec<f64>,
    /// `weight_noise[i][b - 1]`: tr/n x squared quantization error of layer i's weights at
    /// b bits; `input_noise` likewise for its inputs (zero in k-means mode).
    weight_noise: Vec<[f64; 8]>,
    input_noise: Vec<[f64; 8]>,
    /// Spearman correlation over layers of the weight traces from the first and the second
    /// half of the probes: how stable the ranking is.
    trace_stability: f64,
}

#[derive(Serialize)]
struct Details<'a> {
    probes: usize,
    images: usize,
    weight_traces: &'a [f64],
    input_traces: &'a [f64],
    trace_stability: f64,
    /// The ILP's size: binary variables.
    variables: usize,
}

impl Hawq {
    pub fn new(config: HawqConfig, seed: u64) -> Hawq {
        Hawq {
            config,
            seed,
            measured: None,
            done: false,
        }
    }

    /// Per layer, the options and their (cost, sensitivity), the pinned layer's only its
    /// pinned bits; costs are shifted so each layer's cheapest is 0, and the budget with
    /// them.
    fn problem(&self, space: &Space) -> Result<(Options, f64)> {
        let m = self.measured.as_ref().ok_or_else(|| Error::Config {
            field: "method".into(),
            problem: "hawq measures the model first: call Search::prepare".into(),
        })?;
        let env = &space.env;
        let range = env.bit_range();
        let widest = env.max_policy();
        let base = space.constraint.cost(&widest);
        let mut options = Vec::with_capacity(env.layers());
        let mut budget = space.constraint.budget() - base;
        for (i, pinned) in widest.layers.iter().enumerate() {
            let pairs: Vec<LayerBits> = if env.mode().is_pinned(i) {
                vec![*pinned]
            } else {
                (range.min..=range.max)
                    .flat_map(|w| {
                        let activations: Vec<Option<u8>> = match env.mode() {
                            Mode::Linear => (range.min..=range.max).map(Some).collect(),
                            Mode::Kmeans => vec![None],
                        };
                        activations.into_iter().map(move |a| LayerBits {
                            w_bits: w,
                            a_bits: a,
                        })
                    })
                    .collect()
            };
            let mut layer: Vec<(LayerBits, Choice)> = pairs
                .into_iter()
                .map(|bits| {
                    let mut policy = widest.clone();
                    policy.layers[i] = bits;
                    let sensitivity = m.weight_noise[i][usize::from(bits.w_bits - 1)]
                        + bits
                            .a_bits
                            .map_or(0.0, |a| m.input_noise[i][usize::from(a - 1)]);
                    let cost = space.constraint.cost(&policy) - base;
                    (bits, Choice { cost, sensitivity })
                })
                .collect();
            let cheapest = layer
                .iter()
                .map(|(_, c)| c.cost)
                .fold(f64::INFINITY, f64::min);
            for (_, c) in &mut layer {
                c.cost -= cheapest;
            }
            budget -= cheapest;
            options.push(layer);
        }
        Ok((options, budget.max(0.0)))
    }
}

impl SearchMethod for Hawq {
    fn prepare(&mut self, space: &Space, accuracy: &EpisodeAccuracy) -> Result<()> {
        let (images, labels) = accuracy.train_images(self.config.images)?;
        let model = accuracy.model();
        let traces = layer_traces(model, &images, &labels, self.config.probes, self.seed)?;
        let clips = accuracy.clips();
        let n = model.layers().len();
        let mut rng = seeded_rng(self.seed, stream::HESSIAN_PROBES);
        let mut weight_noise = Vec::with_capacity(n);
        let mut input_noise = Vec::with_capacity(n);
        let kmeans_mode = space.env.mode() == Mode::Kmeans;
        tch::no_grad(|| {
            for i in 0..n {
                let w = model.layer_weight(i).detach();
                let x = &traces.inputs_seen[i];
                let (per_w, per_x) = (
                    traces.weights[i] / w.numel() as f64,
                    traces.inputs[i] / x.numel() as f64,
                );
                let squared =
                    |q: Tensor, of: &Tensor| (q - of).square().sum(Kind::Double).double_value(&[]);
                let values: Vec<f32> = if kmeans_mode {
                    Vec::<f32>::try_from(w.flatten(0, -1)).unwrap_or_default()
                } else {
                    Vec::new()
                };
                weight_noise.push(std::array::from_fn(|k| {
                    let bits = k as u8 + 1;
                    let error = if kmeans_mode {
                        let c = kmeans(&values, 1 << bits, &mut rng);
                        values
                            .iter()
                            .zip(&c.assignment)
                            .map(|(v, &a)| f64::from(v - c.centroids[usize::from(a)]).powi(2))
                            .sum()
                    } else {
                        let clip = clips.layers[i].weight_clip(bits);
                        squared(quantize_weight(&w, bits, clip), &w)
                    };
                    per_w * error
                }));
                input_noise.push(std::array::from_fn(|k| {
                    if kmeans_mode {
                        return 0.0;
                    }
                    let bits = k as u8 + 1;
                    let layer = &clips.layers[i];
                    let clip =
                        Tensor::scalar_tensor(layer.input_clip(bits), (x.kind(), x.device()));
                    per_x * squared(fake_quantize(x, bits, &clip, layer.signed_input), x)
                }));
            }
        });
        let half = traces.per_probe.len() / 2;
        let mean = |probes: &[Vec<f64>]| -> Vec<f64> {
            (0..n)
                .map(|i| probes.iter().map(|p| p[i]).sum::<f64>() / probes.len() as f64)
                .collect()
        };
        let trace_stability = if half == 0 {
            f64::NAN
        } else {
            spearman(
                &mean(&traces.per_probe[..half]),
                &mean(&traces.per_probe[half..]),
            )
        };
        self.measured = Some(Measured {
            weight_traces: traces.weights,
            input_traces: traces.inputs,
            weight_noise,
            input_noise,
            trace_stability,
        });
        Ok(())
    }

    fn propose(&mut self, space: &Space, _episode: usize) -> Result<Option<Proposal>> {
        if self.done {
            return Ok(None);
        }
        let (options, budget) = self.problem(space)?;
        let start = Instant::now();
        let choices: Vec<Vec<Choice>> = options
            .iter()
            .map(|layer| layer.iter().map(|(_, c)| *c).collect())
            .collect();
        let chosen = choose(&choices, budget)?;
        println!(
            "hawq: the ILP over {} binary variables solved in {:.3} s",
            choices.iter().map(Vec::len).sum::<usize>(),
            start.elapsed().as_secs_f64()
        );
        let policy = Policy {
            layers: options
                .iter()
                .zip(chosen)
                .map(|(layer, j)| layer[j].0)
                .collect(),
        };
        // A candidate: the repair is a no-op within budget, and guards the ILP's round-off.
        Ok(Some(Proposal::Candidate(policy)))
    }

    fn observe(&mut self, _scored: &Scored, _episode: usize) {
        self.done = true;
    }

    fn planned(&self) -> usize {
        1
    }

    fn details(&self, space: &Space) -> Result<serde_json::Value> {
        let Some(m) = &self.measured else {
            return Ok(serde_json::Value::Null);
        };
        let (options, _) = self.problem(space)?;
        let details = Details {
            probes: self.config.probes,
            images: self.config.images,
            weight_traces: &m.weight_traces,
            input_traces: &m.input_traces,
            trace_stability: m.trace_stability,
            variables: options.iter().map(Vec::len).sum(),
        };
        serde_json::to_value(details).map_err(|e| Error::Checkpoint(e.to_string()))
    }

    fn save(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        Ok((serde_json::json!({ "done": self.done }), Vec::new()))
    }

    fn restore(&mut self, state: serde_json::Value, _tensors: &[(String, Tensor)]) -> Result<()> {
        self.done = state["done"]
            .as_bool()
            .ok_or_else(|| Error::Checkpoint(format!("hawq's state {state} has no `done`")))?;
        Ok(())
    }
}
