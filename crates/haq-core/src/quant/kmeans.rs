//! k-means weight quantization (Deep Compression, Han et al., 2016): each layer's weights
//! share 2^b values, a per-layer codebook; activations stay in float.
//!
//! During finetuning the assignment of weights to clusters is kept and, after every
//! optimiser step, each cluster's weights are reset to their mean ("trained quantization":
//! the shared value moves by the cluster's mean update).

use rand::Rng;
use tch::{Kind, Tensor};

use super::policy::Policy;
use crate::error::{Error, Result};
use crate::rng::seeded_rng;

/// Layer `l` seeds k-means++ from stream `KMEANS_STREAM + l` of the seed, apart from the
/// streams of `crate::rng::stream`.
const KMEANS_STREAM: u64 = 1 << 61;

/// Lloyd iterations stop at a fixed assignment or after this many.
const MAX_LLOYD_ITERATIONS: usize = 300;

/// A 1-D clustering: `assignment[i]` indexes the centroid of value i.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// Ascending; each is the mean of the values assigned to it (an empty cluster keeps
    /// its last value).
    pub centroids: Vec<f32>,
    pub assignment: Vec<u8>,
}

/// Clusters `values` into at most `k` (1..=256) centroids: k-means++ seeding (Arthur and
/// Vassilvitskii, 2007), then Lloyd iterations. Fewer than `k` centroids come back only
/// when `values` has fewer than `k` distinct values. Deterministic for a given `rng` state.
pub fn kmeans(values: &[f32], k: usize, rng: &mut impl Rng) -> Clusters {
    assert!((1..=256).contains(&k), "kmeans: k = {k} not in 1..=256");
    // In 1-D every cluster is a run of the sorted values, found by binary search on the
    // midpoints between centroids; prefix sums give each run's mean in O(1).
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let sorted: Vec<f64> = order.iter().map(|&i| f64::from(values[i])).collect();
    let mut prefix = vec![0.0; sorted.len() + 1];
    for (i, v) in sorted.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }

    let mut centroids = plus_plus_seeds(&sorted, k, rng);
    let mut ends = run_ends(&sorted, &centroids);
    for _ in 0..MAX_LLOYD_ITERATIONS {
        let mut start = 0;
        for (c, &end) in centroids.iter_mut().zip(&ends) {
            if end > start {
                *c = (prefix[end] - prefix[start]) / (end - start) as f64;
            }
            start = end;
        }
        let next = run_ends(&sorted, &centroids);
        if next == ends {
            break;
        }
        ends = next;
    }

    let mut assignment = vec![0u8; values.len()];
    let mut start = 0;
    for (cluster, &end) in ends.iter().enumerate() {
        for &i in &order[start..end] {
            assignment[i] = cluster as u8;
        }
        start = end;
    }
    Clusters {
        centroids: centroids.iter().map(|&c| c as f32).collect(),
        assignment,
    }
}

/// k-means++: the first centre uniformly, each next one with probability proportional to
/// the squared distance to the nearest centre chosen so far. Returned ascending.
fn plus_plus_seeds(sorted: &[f64], k: usize, rng: &mut impl Rng) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let mut centres = vec![sorted[rng.gen_range(0..sorted.len())]];
    let mut nearest = vec![f64::INFINITY; sorted.len()];
    while centres.len() < k {
        let newest = centres[centres.len() - 1];
        for (d, v) in nearest.iter_mut().zip(sorted) {
            *d = d.min((v - newest).powi(2));
        }
        let total: f64 = nearest.iter().sum();
        if total == 0.0 {
            break; // every distinct value is already a centre
        }
        let mut target = rng.gen::<f64>() * total;
        // The last value with positive distance, should rounding leave `target` unspent.
        let mut pick = nearest.iter().rposition(|&d| d > 0.0).unwrap_or(0);
        for (i, &d) in nearest.iter().enumerate() {
            if d > 0.0 && target < d {
                pick = i;
                break;
            }
            target -= d;
        }
        centres.push(sorted[pick]);
    }
    centres.sort_by(f64::total_cmp);
    centres
}

/// The end (exclusive index into `sorted`) of each centroid's run: values below the
/// midpoint to the next centroid belong to it, values at or above to the next.
fn run_ends(sorted: &[f64], centroids: &[f64]) -> Vec<usize> {
    let mut ends: Vec<usize> = centroids
        .windows(2)
        .map(|pair| sorted.partition_point(|&v| v < (pair[0] + pair[1]) / 2.0))
        .collect();
    ends.push(sorted.len());
    ends
}

/// One layer's weight variable and its fixed cluster assignment.
struct ClusteredLayer {
    weight: Tensor,
    /// Flat int64 cluster index per weight.
    assignment: Tensor,
    clusters: i64,
}

/// The k-means state of a model: every quantizable layer's weights clustered to 2^w_bits
/// values, kept clustered through finetuning by [`KmeansQuantizer::update`].
///
/// Nothing needs saving with a checkpoint: clustering weights that already hold at most
/// 2^b values gives back the same clusters, so a resumed run rebuilds this state.
pub struct KmeansQuantizer {
    layers: Vec<ClusteredLayer>,
}

impl KmeansQuantizer {
    /// Clusters each layer's weights and snaps them to their cluster means.
    ///
    /// `weights`: the weight variables of the quantizable layers in execution order (shallow
    /// clones, which share storage with the model); `policy`: weight-only (no `a_bits`);
    /// `seed`: the k-means++ seed.
    pub fn new(weights: Vec<Tensor>, policy: &Policy, seed: u64) -> Result<KmeansQuantizer> {
        policy.check(weights.len())?;
        if policy.is_linear() {
            return Err(Error::policy(
                "k-means quantization is weight-only but the policy gives a_bits; \
                 use a policy without a_bits, e.g. uniform-w4"
                    .into(),
            ));
        }
        let layers = weights
            .into_iter()
            .zip(&policy.layers)
            .enumerate()
            .map(|(i, (weight, bits))| {
                let values = Vec::<f32>::try_from(weight.flatten(0, -1).to_kind(Kind::Float))?;
                let clusters = kmeans(
                    &values,
                    1 << bits.w_bits,
                    &mut seeded_rng(seed, KMEANS_STREAM + i as u64),
                );
                let assignment = Tensor::from_slice(&clusters.assignment)
                    .to_kind(Kind::Int64)
                    .to_device(weight.device());
                Ok(ClusteredLayer {
                    weight,
                    assignment,
                    clusters: clusters.centroids.len() as i64,
                })
            })
            .collect::<Result<_>>()?;
        let mut quantizer = KmeansQuantizer { layers };
        quantizer.update();
        Ok(quantizer)
    }

    /// Resets every cluster's weights to their mean, keeping the assignment. Call after
    /// every optimiser step.
    pub fn update(&mut self) {
        tch::no_grad(|| {
            for layer in &mut self.layers {
                // Summed in f64, so a cluster whose weights are all equal keeps that exact
                // value (f32 sums of many equal values drift).
                let flat = layer.weight.flatten(0, -1).to_kind(Kind::Double);
                let sums = Tensor::zeros([layer.clusters], (Kind::Double, flat.device()))
                    .scatter_add(0, &layer.assignment, &flat);
                let counts = layer
                    .assignment
                    .bincount(None::<Tensor>, layer.clusters)
                    .clamp_min(1);
                let means = (sums / counts).gather(0, &layer.assignment, false);
                layer.weight.copy_(&means.view_as(&layer.weight));
            }
        });
    }
}
