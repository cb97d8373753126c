//! Bit-width policies as the cost tools read them: `uniform:k`, `uniform-wXaY`, or a JSON
//! file `{"layers": [{"w_bits": 8, "a_bits": 8}, ...]}` (the shape `haq_core::quant`'s
//! `Policy` writes; other fields are ignored).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BITS;
use crate::error::{Error, Result};

/// One layer's weight and activation bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBits {
    pub w_bits: u8,
    pub a_bits: u8,
}

/// Bits for every layer of a network, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitsPolicy {
    pub layers: Vec<LayerBits>,
}

/// The first layer is pinned to w8 a8 (DESIGN section 4).
const FIRST_LAYER: LayerBits = LayerBits {
    w_bits: 8,
    a_bits: 8,
};

impl BitsPolicy {
    /// The first layer w8 a8, every other layer `w_bits` / `a_bits`.
    pub fn uniform(layers: usize, w_bits: u8, a_bits: u8) -> Self {
        let rest = LayerBits { w_bits, a_bits };
        BitsPolicy {
            layers: (0..layers)
                .map(|i| if i == 0 { FIRST_LAYER } else { rest })
                .collect(),
        }
    }

    /// Parses `uniform:k`, `uniform-wXaY`, or else reads `spec` as a policy JSON file;
    /// the policy must have `layers` entries with bits in 1..=8.
    pub fn parse(spec: &str, layers: usize) -> Result<Self> {
        let policy = if let Some(k) = spec.strip_prefix("uniform:") {
            let k = parse_bits(spec, k)?;
            Self::uniform(layers, k, k)
        } else if let Some(wa) = spec.strip_prefix("uniform-w") {
            let (w, a) = wa.split_once('a').ok_or_else(|| bad_spec(spec))?;
            Self::uniform(layers, parse_bits(spec, w)?, parse_bits(spec, a)?)
        } else {
            Self::read(Path::new(spec))?
        };
        policy.check(spec, layers)?;
        Ok(policy)
    }

    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                bad_spec(&path.display().to_string())
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            field: "policy".into(),
            problem: format!(
                "{}: {e}; expected {{\"layers\": [{{\"w_bits\": 8, \"a_bits\": 8}}, ...]}}",
                path.display()
            ),
        })
    }

    fn check(&self, spec: &str, layers: usize) -> Result<()> {
        if self.layers.len() != layers {
            return Err(Error::Config {
                field: "policy".into(),
                problem: format!(
                    "{spec} has {} layers but the network has {layers}",
                    self.layers.len()
                ),
            });
        }
        let outside = |b: u8| !(1..=BITS).contains(&b);
        if let Some((i, l)) = self
            .layers
            .iter()
            .enumerate()
            .find(|(_, l)| outside(l.w_bits) || outside(l.a_bits))
        {
            return Err(Error::Config {
                field: "policy".into(),
                problem: format!(
                    "{spec}: layer {i} has w{} a{}; bits must lie in 1..={BITS}",
                    l.w_bits, l.a_bits
                ),
            });
        }
        Ok(())
    }

    /// (w_bits, a_bits) per layer, as `CostTable::total` takes them.
    pub fn bits(&self) -> Vec<(u8, u8)> {
        self.layers.iter().map(|l| (l.w_bits, l.a_bits)).collect()
    }
}

fn parse_bits(spec: &str, s: &str) -> Result<u8> {
    s.parse().map_err(|_| bad_spec(spec))
}

fn bad_spec(spec: &str) -> Error {
    Error::Config {
        field: "policy".into(),
        problem: format!(
            "`{spec}` is neither `uniform:K` (first layer w8a8, others K bits), \
             `uniform-wWaA` (e.g. uniform-w6a4) nor an existing policy JSON file"
        ),
    }
}
