//! Hardware cost models: what a layer costs at given weight and activation bit widths.
//!
//! Five built-in models, by name: `bismo-edge` and `bismo-cloud` (bit-serial FPGA overlay,
//! latency), `bitfusion` (bit-flexible ASIC, latency and energy), `size` (model size in
//! bytes) and `bops` (bit operations, a proxy). [`MeasuredCosts`] is a cost table measured
//! on a device and read from a file. The constants, their sources and how close each model
//! comes to the HAQ paper's numbers are in docs/hardware.md.

mod bismo;
mod bitfusion;
mod bops;
mod measured;
mod size;
mod table;
pub(crate) mod unit;

use std::collections::BTreeMap;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::arch::{LayerInfo, LayerShape};
use crate::error::{Error, Result};

pub use bismo::Bismo;
pub use bitfusion::{BitFusion, EnergyCosts};
pub use bops::Bops;
pub use measured::{write_csv, MeasuredCosts, CSV_COLUMNS};
pub use size::ModelSize;
pub use table::{build_table, policy_costs, CostTable, PolicyCost, BITS};
pub use unit::Unit;

/// The cost of one layer (or a whole network) on one hardware model. Quantities a model
/// does not describe are 0: the size model has no cycles, latency or energy, the latency
/// models have no bytes, BISMO has no energy, and only the `bops` model has bit operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerCost {
    pub cycles: f64,
    pub latency_s: f64,
    pub energy_j: f64,
    /// Bytes of the layer's parameters (size model).
    pub bytes: f64,
    /// Bit operations (`bops` model).
    pub bops: f64,
}

impl LayerCost {
    /// The cost expressed in `unit`.
    pub fn value(&self, unit: Unit) -> f64 {
        match unit {
            Unit::Cycles => self.cycles,
            Unit::Ms => self.latency_s * 1e3,
            Unit::Mj => self.energy_j * 1e3,
            Unit::Bytes => self.bytes,
            Unit::Bops => self.bops,
        }
    }
}

impl Add for LayerCost {
    type Output = LayerCost;

    fn add(self, o: LayerCost) -> LayerCost {
        LayerCost {
            cycles: self.cycles + o.cycles,
            latency_s: self.latency_s + o.latency_s,
            energy_j: self.energy_j + o.energy_j,
            bytes: self.bytes + o.bytes,
            bops: self.bops + o.bops,
        }
    }
}

impl Sum for LayerCost {
    fn sum<I: Iterator<Item = LayerCost>>(iter: I) -> LayerCost {
        iter.fold(LayerCost::default(), Add::add)
    }
}

// Here rather than in `unit`, which the crate's error type depends on.
impl FromStr for Unit {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Unit::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| Error::Config {
                field: "unit".into(),
                problem: format!(
                    "unknown unit `{s}`; expected one of {}",
                    Unit::ALL.map(Unit::as_str).join(", ")
                ),
            })
    }
}

/// A hardware cost model: the cost of running one layer on a batch of inputs with
/// `w_bits`-bit weights and `a_bits`-bit input activations.
pub trait CostModel: Send + Sync {
    /// The name `by_name` knows it by.
    fn name(&self) -> &str;

    /// The batch size the model is calibrated at (and the paper measured at).
    fn default_batch(&self) -> usize;

    /// The units this model reports, its main one first.
    fn units(&self) -> &'static [Unit];

    /// The cost of one layer for a whole batch.
    fn cost(&self, layer: &LayerShape, w_bits: u8, a_bits: u8, batch: usize) -> LayerCost;

    /// The cost of one layer with fp32 weights and activations, the reference of size
    /// budgets; none where the model knows only bits 1 to 8 (a measured table).
    fn fp32_cost(&self, layer: &LayerShape, batch: usize) -> Option<LayerCost> {
        Some(self.cost(layer, 32, 32, batch))
    }

    /// The model's parameters as (name, value) pairs, for `haq hw list`.
    fn describe(&self) -> Vec<(&'static str, String)>;

    /// Fails, naming what is missing, unless [`CostModel::cost`] knows every one of
    /// `layers` at every bit pair in 1..=8 (a measured table may not; a simulator does).
    fn covers(&self, _layers: &[LayerInfo]) -> Result<()> {
        Ok(())
    }
}

/// Makes a built-in cost model.
type Build = fn() -> Box<dyn CostModel>;

/// The built-in cost models, by name: the one list [`MODEL_NAMES`], [`check_name`] and
/// [`by_name`] read.
const MODELS: [(&str, Build); 5] = [
    ("bismo-edge", || Box::new(Bismo::edge())),
    ("bismo-cloud", || Box::new(Bismo::cloud())),
    ("bitfusion", || Box::new(BitFusion::eyeriss_matched())),
    ("size", || Box::new(ModelSize)),
    ("bops", || Box::new(Bops)),
];

/// The names `by_name` accepts, in the order models are listed and reported.
pub const MODEL_NAMES: [&str; MODELS.len()] = {
    let mut names = [""; MODELS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = MODELS[i].0;
        i += 1;
    }
    names
};

/// Checks that `name` is a built-in model or one of `measured` (a workflow's `hardware:`
/// entries, name -> table file), and that an entry it names does not hide a built-in one.
pub fn check_name(name: &str, measured: &BTreeMap<String, String>) -> Result<()> {
    match (measured.contains_key(name), MODEL_NAMES.contains(&name)) {
        (true, true) => Err(Error::Config {
            field: "hardware".into(),
            problem: format!(
                "the workflow's hardware entry `{name}` has a built-in cost model's name; \
                 rename the entry"
            ),
        }),
        (true, false) => Ok(()),
        (false, _) => by_name(name).map(drop),
    }
}

/// The cost model called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn CostModel>> {
    let (_, build) = MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::Config {
            field: "hardware".into(),
            problem: format!(
                "unknown cost model `{name}`; expected one of {}",
                MODEL_NAMES.join(", ")
            ),
        })?;
    Ok(build())
}
