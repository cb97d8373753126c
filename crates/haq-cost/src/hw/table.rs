//! Lookup tables: every layer's cost at every (w, a) bit pair, computed once so the search
//! only looks numbers up.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CostModel, LayerCost, Unit};
use crate::arch::LayerInfo;
use crate::error::{Error, Result};

/// The largest bit width in a table; widths run from 1 to `BITS`.
pub const BITS: u8 = 8;

const PAIRS: usize = BITS as usize * BITS as usize;

/// Per layer, the cost at every (w_bits, a_bits) in 1..=8 x 1..=8, for one cost model at
/// one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    /// The cost model's name.
    pub model: String,
    /// The units the model reports, its main one first ([`CostModel::units`]), so that
    /// the table is read without the model (a measured one is a file).
    pub units: Vec<Unit>,
    pub batch: usize,
    /// `costs[layer][(w - 1) * 8 + (a - 1)]`.
    pub costs: Vec<Vec<LayerCost>>,
}

impl CostTable {
    pub fn layers(&self) -> usize {
        self.costs.len()
    }

    /// One layer's cost.
    ///
    /// # Panics
    /// If `layer` is out of range or a bit width is outside 1..=8.
    pub fn get(&self, layer: usize, w_bits: u8, a_bits: u8) -> LayerCost {
        self.costs[layer][pair_index(w_bits, a_bits)]
    }

    /// The network's cost with `bits[i] = (w_bits, a_bits)` for layer i.
    ///
    /// # Panics
    /// If `bits` does not have one entry per layer or a bit width is outside 1..=8.
    pub fn total(&self, bits: &[(u8, u8)]) -> LayerCost {
        assert_eq!(
            bits.len(),
            self.layers(),
            "a policy for {} layers against a {}-layer table",
            bits.len(),
            self.layers()
        );
        bits.iter()
            .enumerate()
            .map(|(layer, &(w, a))| self.get(layer, w, a))
            .sum()
    }
}

/// A policy's cost on one cost model: the table's batch and each quantity the model
/// describes, by [`super::Unit::quantity`] name (`latency_ms`, `energy_mj`, ...): how the
/// search and finetune stages write costs and the report reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCost {
    pub batch: usize,
    #[serde(flatten)]
    pub totals: BTreeMap<String, f64>,
}

/// The cost of `bits` (one `(w, a)` pair per layer) on every table's model, by the
/// model's name.
pub fn policy_costs(
    tables: &BTreeMap<String, CostTable>,
    bits: &[(u8, u8)],
) -> Result<BTreeMap<String, PolicyCost>> {
    tables
        .iter()
        .map(|(name, table)| {
            if table.layers() != bits.len() {
                return Err(Error::Policy(format!(
                    "{} layers, the cost table of {name} {}; rerun the calibrate stage",
                    bits.len(),
                    table.layers()
                )));
            }
            let total = table.total(bits);
            let totals = table
                .units
                .iter()
                .map(|&unit| (unit.quantity().to_string(), total.value(unit)))
                .collect();
            let cost = PolicyCost {
                batch: table.batch,
                totals,
            };
            Ok((name.clone(), cost))
        })
        .collect()
}

fn pair_index(w_bits: u8, a_bits: u8) -> usize {
    assert!(
        (1..=BITS).contains(&w_bits) && (1..=BITS).contains(&a_bits),
        "bit widths must lie in 1..={BITS}, got w{w_bits} a{a_bits}"
    );
    usize::from(w_bits - 1) * usize::from(BITS) + usize::from(a_bits - 1)
}

/// Evaluates `model` on every layer at every bit pair, in parallel.
pub fn build_table(model: &dyn CostModel, layers: &[LayerInfo], batch: usize) -> CostTable {
    let flat: Vec<LayerCost> = (0..layers.len() * PAIRS)
        .into_par_iter()
        .map(|i| {
            let (layer, pair) = (i / PAIRS, i % PAIRS);
            let w = (pair / usize::from(BITS)) as u8 + 1;
            let a = (pair % usize::from(BITS)) as u8 + 1;
            model.cost(&layers[layer].shape, w, a, batch)
        })
        .collect();
    CostTable {
        model: model.name().to_string(),
        units: model.units().to_vec(),
        batch,
        costs: flat.chunks(PAIRS).map(<[LayerCost]>::to_vec).collect(),
    }
}
