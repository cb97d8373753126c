//! A quantization policy: the bit widths of every quantizable layer, in execution order.
//!
//! JSON shape: `{"layers":[{"w_bits":8,"a_bits":8},{"w_bits":4,"a_bits":6},...]}`; other
//! top-level fields are ignored. A policy is in one of two modes:
//! - linear (latency and energy): every layer has `a_bits`, and layer 0 is pinned to w8 a8
//!   (the paper's PACT setup: 8-bit activations leave an 8-bit input image unchanged);
//! - k-means (model size): weights only, so no layer has `a_bits` (absent or `null`) and
//!   nothing is pinned, as in Deep Compression, which clusters every layer.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The smallest and largest bit width a layer may take.
pub const MIN_BITS: u8 = 1;
pub const MAX_BITS: u8 = 8;

/// The largest policy file read: a few hundred layers take a few kilobytes.
const POLICY_FILE_LIMIT: u64 = 16 << 20;

/// Bit widths of one layer: its weights and, in linear mode, its input activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBits {
    pub w_bits: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_bits: Option<u8>,
}

impl fmt::Display for LayerBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.a_bits {
            Some(a) => write!(f, "w{} a{}", self.w_bits, a),
            None => write!(f, "w{}", self.w_bits),
        }
    }
}

/// Per-layer bit widths of a whole model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub layers: Vec<LayerBits>,
}

/// The pinned first layer of a linear-mode policy.
const PINNED: LayerBits = LayerBits {
    w_bits: 8,
    a_bits: Some(8),
};

impl Policy {
    /// Fixed-bit PACT, `uniform:k`: layer 0 w8 a8, every other layer wk ak.
    pub fn uniform(n_layers: usize, k: u8) -> Policy {
        Policy::uniform_wa(n_layers, k, k)
    }

    /// `uniform-wWaA`: layer 0 w8 a8, every other layer wW aA.
    pub fn uniform_wa(n_layers: usize, w_bits: u8, a_bits: u8) -> Policy {
        let rest = LayerBits {
            w_bits,
            a_bits: Some(a_bits),
        };
        let layers = (0..n_layers)
            .map(|i| if i == 0 { PINNED } else { rest })
            .collect();
        Policy { layers }
    }

    /// `uniform-wW`: k-means mode, every layer clustered to 2^W centroids, activations in float.
    pub fn uniform_weights(n_layers: usize, w_bits: u8) -> Policy {
        let layer = LayerBits {
            w_bits,
            a_bits: None,
        };
        Policy {
            layers: vec![layer; n_layers],
        }
    }

    /// Reads a policy from `uniform:K`, `uniform-wWaA`, `uniform-wW` or the path of a policy
    /// JSON file, and checks it against a model with `n_layers` quantizable layers.
    pub fn parse(spec: &str, n_layers: usize) -> Result<Policy> {
        let policy = Policy::from_spec_for(spec, n_layers)?;
        // Name the spec, so a user with several policy files knows which one is at fault.
        policy.check(n_layers).map_err(|e| match e {
            Error::Policy(problem) => Error::Policy(format!("{spec}: {problem}")),
            other => other,
        })?;
        Ok(policy)
    }

    /// Checks a policy spec's form without a model: a `uniform` spec must parse, and a
    /// path must name a readable policy file.
    pub fn check_spec(spec: &str) -> Result<()> {
        match parse_uniform(spec) {
            // Two layers: the first is pinned, the second takes the spec's bits.
            Some(_) => Policy::parse(spec, 2).map(drop),
            None => Policy::from_spec_for(spec, 1).map(drop),
        }
    }

    /// The policy a spec names, not yet checked against a model (a uniform spec is built
    /// for `n_layers`; see [`Policy::parse`]).
    fn from_spec_for(spec: &str, n_layers: usize) -> Result<Policy> {
        match parse_uniform(spec) {
            Some((w, Some(a))) => Ok(Policy::uniform_wa(n_layers, w, a)),
            Some((w, None)) => Ok(Policy::uniform_weights(n_layers, w)),
            None if spec.starts_with("uniform") => Err(Error::Policy(format!(
                "cannot parse `{spec}`: write uniform:K, uniform-wWaA or uniform-wW with bit \
                 widths {MIN_BITS}..={MAX_BITS}, e.g. uniform:4 or uniform-w6a4"
            ))),
            None => Policy::read(Path::new(spec)),
        }
    }

    /// Reads a policy JSON file (not checked against a model: see [`Policy::check`]).
    pub fn read(path: &Path) -> Result<Policy> {
        let text = crate::check::read_file(path, POLICY_FILE_LIMIT).map_err(|e| {
            Error::Policy(format!(
                "cannot read {}: {e}; give uniform:K, uniform-wWaA, uniform-wW or the path \
                 of a policy JSON file",
                path.display()
            ))
        })?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::Policy(format!(
                "{}: {e}; expected {{\"layers\":[{{\"w_bits\":8,\"a_bits\":8}},...]}}",
                path.display()
            ))
        })
    }

    /// Whether the policy quantizes activations (linear mode) rather than weights only.
    pub fn is_linear(&self) -> bool {
        self.layers.first().is_some_and(|l| l.a_bits.is_some())
    }

    /// (w_bits, a_bits) per layer, as `hw::CostTable::total` takes them. A k-means policy
    /// keeps activations in float; cost models only know 1..=8 bits, so its activations are
    /// costed at 8 bits, the same for every cost model. (The `size` model ignores a_bits,
    /// and it is the one k-means policies are searched against.)
    pub fn bits(&self) -> Vec<(u8, u8)> {
        self.layers
            .iter()
            .map(|l| (l.w_bits, l.a_bits.unwrap_or(MAX_BITS)))
            .collect()
    }

    /// Checks that the policy fits a model with `n_layers` quantizable layers: one entry
    /// per layer, every bit width in 1..=8, one mode throughout, layer 0 w8 a8 in linear mode.
    pub fn check(&self, n_layers: usize) -> Result<()> {
        if self.layers.len() != n_layers {
            return Err(Error::Policy(format!(
                "{} layers given but the model has {n_layers} quantizable layers; give one \
                 {{\"w_bits\",\"a_bits\"}} entry per layer in execution order",
                self.layers.len()
            )));
        }
        let linear = self.is_linear();
        for (i, layer) in self.layers.iter().enumerate() {
            let bits = [("w_bits", Some(layer.w_bits)), ("a_bits", layer.a_bits)];
            for (field, value) in bits {
                if let Some(b) = value.filter(|b| !(MIN_BITS..=MAX_BITS).contains(b)) {
                    return Err(Error::Policy(format!(
                        "layer {i} has {field} = {b}, outside the allowed range \
                         {MIN_BITS}..={MAX_BITS}"
                    )));
                }
            }
            if layer.a_bits.is_some() != linear {
                return Err(Error::Policy(format!(
                    "layer {i} {} a_bits but layer 0 {}; give a_bits on every layer \
                     (linear mode) or on none (k-means mode)",
                    if linear { "lacks" } else { "has" },
                    if linear { "has them" } else { "does not" },
                )));
            }
        }
        if linear && self.layers[0] != PINNED {
            return Err(Error::Policy(format!(
                "layer 0 is pinned to {PINNED} (the first layer, as in the paper's PACT setup) \
                 but has {}; set it to w8 a8",
                self.layers[0]
            )));
        }
        Ok(())
    }
}

/// `uniform:K` -> (K, Some(K)); `uniform-wWaA` -> (W, Some(A)); `uniform-wW` -> (W, None).
fn parse_uniform(spec: &str) -> Option<(u8, Option<u8>)> {
    if let Some(k) = spec.strip_prefix("uniform:") {
        let k = k.parse().ok()?;
        return Some((k, Some(k)));
    }
    let bits = spec.strip_prefix("uniform-w")?;
    match bits.split_once('a') {
        Some((w, a)) => Some((w.parse().ok()?, Some(a.parse().ok()?))),
        None => Some((bits.parse().ok()?, None)),
    }
}
