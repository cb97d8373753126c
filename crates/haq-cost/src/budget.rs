//! The resource budget of a search and the sweep that enforces it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arch::LayerInfo;
use crate::env::{Env, Mode};
use crate::error::{Error, Result};
use crate::hw::{CostModel, CostTable, Unit};
use crate::policy::Policy;

/// How a search brings a policy over budget within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repair {
    /// The paper's sweep ([`Constraint::enforce`]): from the last layer to the first.
    #[default]
    Sweep,
    /// The widest bit width first, so no layer is lowered while another is wider: the
    /// excess is not dumped on the last layers.
    Widest,
}

/// What a search keeps within budget, as a workflow names it (`objective: latency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Latency,
    Energy,
    Size,
    /// Bit operations, a proxy for latency (the `bops` cost model).
    Bops,
}

impl Resource {
    /// The unit budgets and costs of this resource are in.
    pub fn unit(self) -> Unit {
        match self {
            Resource::Latency => Unit::Ms,
            Resource::Energy => Unit::Mj,
            Resource::Size => Unit::Bytes,
            Resource::Bops => Unit::Bops,
        }
    }

    /// The paper's pairing: size with k-means weight sharing (as Deep Compression, its
    /// baseline), latency and energy with linear quantization of weights and activations.
    pub fn mode(self) -> Mode {
        match self {
            Resource::Size => Mode::Kmeans,
            Resource::Latency | Resource::Energy | Resource::Bops => Mode::Linear,
        }
    }

    /// The cost of this resource on `model`, looked up in `table` (`model`'s table for
    /// `layers`). Fails when `model` does not report the resource: energy is BitFusion's
    /// alone, size the `size` model's, latency any other model's.
    pub fn cost_function<'a>(
        self,
        model: &dyn CostModel,
        table: &'a CostTable,
        layers: &[LayerInfo],
    ) -> Result<CostFunction<'a>> {
        let unit = self.unit();
        if !model.units().contains(&unit) {
            return Err(Error::Config {
                field: "objective".into(),
                problem: format!(
                    "the `{}` cost model does not report {self} (it reports {}); use \
                     latency on bismo-edge, bismo-cloud or bitfusion, energy on bitfusion, \
                     size on size, bops on bops (or a measured table in that unit)",
                    model.name(),
                    model
                        .units()
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if table.model != model.name() || table.layers() != layers.len() {
            return Err(Error::Config {
                field: "cost table".into(),
                problem: format!(
                    "a `{}` table of {} layers given for `{}` on {} layers; rebuild it for \
                     this model and cost model",
                    table.model,
                    table.layers(),
                    model.name(),
                    layers.len()
                ),
            });
        }
        let cost = move |p: &Policy| table.total(&p.bits()).value(unit);
        let reference = match self.mode() {
            Mode::Linear => Some(cost(&Policy::uniform(layers.len(), 8))),
            // fp32 weights, beyond the table's 1..=8 bits.
            Mode::Kmeans => layers
                .iter()
                .map(|l| Some(model.fp32_cost(&l.shape, table.batch)?.value(unit)))
                .sum(),
        };
        Ok(CostFunction {
            cost: Box::new(cost),
            unit,
            reference,
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Latency => "latency",
            Resource::Energy => "energy",
            Resource::Size => "size",
            Resource::Bops => "bops",
        })
    }
}

/// What a search keeps under budget: a policy's cost, in one unit.
pub struct CostFunction<'a> {
    /// The cost of a policy of the searched model. It must not fall when a bit width
    /// rises (every cost model here is monotone), or the sweep may not reach the budget.
    pub cost: Box<dyn Fn(&Policy) -> f64 + 'a>,
    pub unit: Unit,
    /// The cost `ratio` budgets are fractions of: uniform 8-bit for latency and energy,
    /// 32-bit weights for size. A number rather than a policy because cost tables only
    /// cover 1..=8 bits; none for size on a measured table, which knows no 32-bit cost.
    pub reference: Option<f64>,
}

/// A budget as a user writes it (workflow params): `{ratio: 0.5}`, `{match: "uniform:4"}`
/// or `{absolute: {value: 12.5, unit: ms}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Budget {
    /// A fraction of the objective's reference cost.
    Ratio(f64),
    /// The cost of a fixed-bit policy, e.g. `uniform:4` (linear) or `uniform-w2` (k-means),
    /// to compare with that baseline at the same cost.
    Match(String),
    /// A cost in the objective's unit.
    Absolute { value: f64, unit: Unit },
}

impl Budget {
    /// Reads a budget from params, saying what to write when its form is wrong (serde's
    /// own message for an enum is "expected map with a single key").
    pub fn from_param(value: &serde_json::Value) -> Result<Budget> {
        let bad = |problem: String| Error::Config {
            field: "budget".into(),
            problem,
        };
        let forms = "write exactly one of {ratio: 0.5}, {match: \"uniform:4\"} or \
                     {absolute: {value: 12.5, unit: ms}}";
        match value.as_object() {
            Some(map) if map.len() == 1 => {}
            Some(map) => {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "{} forms given ({}): {forms}",
                    keys.len(),
                    keys.join(", ")
                )));
            }
            None => return Err(bad(format!("{value} is not a map: {forms}"))),
        }
        let budget: Budget =
            crate::check::deserialize(value.clone(), |problem| format!("{problem}; {forms}"))
                .map_err(|e| match e {
                    Error::Config { field, problem } if field.is_empty() => Error::Config {
                        field: "budget".into(),
                        problem,
                    },
                    Error::Config { field, problem } => Error::Config {
                        field: format!("budget.{field}"),
                        problem,
                    },
                    other => other,
                })?;
        budget.check()?;
        Ok(budget)
    }

    /// What can be checked before the model is known: a ratio or value that is a positive
    /// finite number, a matched policy spec that parses.
    pub fn check(&self) -> Result<()> {
        match self {
            Budget::Ratio(r) => crate::check::finite("budget.ratio", *r, 1e-6, 1e6),
            Budget::Absolute { value, .. } => {
                crate::check::finite("budget.absolute.value", *value, 1e-12, 1e18)
            }
            Budget::Match(spec) => Policy::check_spec(spec).map_err(|e| Error::Config {
                field: "budget.match".into(),
                problem: e.to_string(),
            }),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Ratio(r) => write!(f, "ratio {r}"),
            Budget::Match(spec) => write!(f, "the cost of {spec}"),
            Budget::Absolute { value, unit } => write!(f, "{value} {unit}"),
        }
    }
}

/// Why a `ratio` budget cannot be resolved on a cost model without an fp32 cost: the
/// search stage's params check says it before anything runs, [`Constraint::new`] after.
pub fn no_fp32_reference() -> Error {
    Error::Config {
        field: "budget".into(),
        problem: "a ratio budget for size is a fraction of the fp32 model's size, which a \
                  measured table (bits 1 to 8) does not give; write {match: \"uniform-w2\"} \
                  or {absolute: {value: ..., unit: bytes}}"
            .into(),
    }
}

/// An objective with its budget resolved to a number, checked to be reachable.
pub struct Constraint<'a> {
    objective: CostFunction<'a>,
    budget: f64,
    mode: Mode,
    min_bits: u8,
}

impl<'a> Constraint<'a> {
    /// Resolves `budget` for the model `env` searches, and fails, naming the least
    /// achievable cost, when even the cheapest policy exceeds it.
    pub fn new(objective: CostFunction<'a>, budget: &Budget, env: &Env) -> Result<Constraint<'a>> {
        let mode = env.mode();
        let bad = |problem: String| {
            Err(Error::Config {
                field: "budget".into(),
                problem,
            })
        };
        let value = match budget {
            Budget::Ratio(r) => r * objective.reference.ok_or_else(no_fp32_reference)?,
            Budget::Match(spec) => {
                let policy = Policy::parse(spec, env.layers())?;
                if Mode::of(&policy) != mode {
                    return bad(format!(
                        "`{spec}` is a {:?}-mode policy but the search is in {mode:?} mode; \
                         match a policy of the same mode",
                        Mode::of(&policy)
                    ));
                }
                (objective.cost)(&policy)
            }
            Budget::Absolute { value, unit } if *unit != objective.unit => {
                return bad(format!(
                    "{value} {unit} is not in the objective's unit; give it in {}",
                    objective.unit
                ))
            }
            Budget::Absolute { value, .. } => *value,
        };
        if !(value.is_finite() && value > 0.0) {
            return bad(format!(
                "{budget} gives {value} {}; it must be a positive cost",
                objective.unit
            ));
        }
        let constraint = Constraint {
            objective,
            budget: value,
            mode,
            min_bits: env.bit_range().min,
        };
        let minimum = constraint.cost(&env.min_policy());
        if minimum > value {
            return Err(constraint.infeasible(minimum));
        }
        Ok(constraint)
    }

    /// The budget, in [`Constraint::unit`].
    pub fn budget(&self) -> f64 {
        self.budget
    }

    pub fn unit(&self) -> Unit {
        self.objective.unit
    }

    pub fn cost(&self, policy: &Policy) -> f64 {
        (self.objective.cost)(policy)
    }

    /// Brings `policy` within budget and returns its cost. While it costs too much, sweeps
    /// the layers from last to first, lowering each one's activation bits and then its
    /// weight bits by one (never below the minimum width, never the pinned layer), and
    /// stops as soon as the cost fits.
    pub fn enforce(&self, policy: &mut Policy) -> Result<f64> {
        let mut cost = self.cost(policy);
        while cost > self.budget {
            let mut lowered = false;
            for index in (0..policy.layers.len()).rev() {
                if self.mode.is_pinned(index) {
                    continue;
                }
                let lowerable = |bits: u8| bits > self.min_bits;
                if policy.layers[index].a_bits.is_some_and(lowerable) {
                    policy.layers[index].a_bits = policy.layers[index].a_bits.map(|a| a - 1);
                    lowered = true;
                    cost = self.cost(policy);
                    if cost <= self.budget {
                        return Ok(cost);
                    }
                }
                if lowerable(policy.layers[index].w_bits) {
                    policy.layers[index].w_bits -= 1;
                    lowered = true;
                    cost = self.cost(policy);
                    if cost <= self.budget {
                        return Ok(cost);
                    }
                }
            }
            // Only a cost that falls as bits rise can leave every layer at the minimum
            // and still over budget, since `new` checked the cheapest policy fits.
            if !lowered {
                return Err(self.infeasible(cost));
            }
        }
        Ok(cost)
    }

    /// Brings `policy` within budget as `repair` says and returns its cost.
    pub fn repair(&self, policy: &mut Policy, repair: Repair) -> Result<f64> {
        match repair {
            Repair::Sweep => self.enforce(policy),
            Repair::Widest => self.enforce_widest(policy),
        }
    }

    /// [`Repair::Widest`]: while the policy costs too much, lowers by one the widest bit
    /// width whose lowering saves cost (ties: the larger saving, then the later layer,
    /// activations before weights). Where no lowering saves anything (a cost model whose
    /// cost can fall as bits rise), the sweep finishes the job.
    fn enforce_widest(&self, policy: &mut Policy) -> Result<f64> {
        let mut cost = self.cost(policy);
        while cost > self.budget {
            // (bits, saving, layer, is activation): the largest goes first.
            type Priority = (u8, f64, usize, bool);
            let mut best: Option<(Priority, Policy, f64)> = None;
            for (index, activation, bits) in self.widths(policy) {
                if bits <= self.min_bits {
                    continue;
                }
                let lowered = with_width(policy, index, activation, bits - 1);
                let new_cost = self.cost(&lowered);
                if new_cost >= cost {
                    continue;
                }
                let key = (bits, cost - new_cost, index, activation);
                if best.as_ref().is_none_or(|(k, _, _)| key > *k) {
                    best = Some((key, lowered, new_cost));
                }
            }
            match best {
                Some((_, lowered, new_cost)) => {
                    *policy = lowered;
                    cost = new_cost;
                }
                None => return self.enforce(policy),
            }
        }
        Ok(cost)
    }

    /// Spends what the budget has left after [`Constraint::repair`]: raises one bit width
    /// at a time while the policy stays within budget, and returns its cost. Increases that
    /// cost nothing come first (a layer whose cost depends on one operand only, such as a
    /// memory-bound layer on BISMO), narrowest first; then the one that costs least per
    /// unit of quantization noise removed (a width's noise step halves with each bit, so
    /// the price is `delta cost x 2^bits`); ties go to the earlier layer, activations
    /// before weights. A policy under budget leaves hardware unused: this turns the
    /// budget the sweep freed into accuracy rather than leave it idle.
    pub fn fill(&self, policy: &mut Policy, max_bits: u8) -> f64 {
        let mut cost = self.cost(policy);
        loop {
            // (not free, price, layer, is weights): the smallest goes first.
            type Priority = (bool, f64, usize, bool);
            let mut best: Option<(Priority, Policy, f64)> = None;
            for (index, activation, bits) in self.widths(policy) {
                if bits >= max_bits {
                    continue;
                }
                let raised = with_width(policy, index, activation, bits + 1);
                let new_cost = self.cost(&raised);
                if new_cost > self.budget {
                    continue;
                }
                let delta = (new_cost - cost).max(0.0);
                let price = if delta > 0.0 {
                    delta * f64::from(1u32 << bits)
                } else {
                    f64::from(bits)
                };
                let key = (delta > 0.0, price, index, !activation);
                if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                    best = Some((key, raised, new_cost));
                }
            }
            match best {
                Some((_, raised, new_cost)) => {
                    *policy = raised;
                    cost = new_cost;
                }
                None => return cost,
            }
        }
    }

    /// Every bit width the search decides, as (layer, is activation, bits): the pinned
    /// layer's are left out, and k-means policies have no activation widths.
    fn widths(&self, policy: &Policy) -> Vec<(usize, bool, u8)> {
        let mut out = Vec::new();
        for (index, layer) in policy.layers.iter().enumerate() {
            if self.mode.is_pinned(index) {
                continue;
            }
            if let Some(a) = layer.a_bits {
                out.push((index, true, a));
            }
            out.push((index, false, layer.w_bits));
        }
        out
    }

    fn infeasible(&self, minimum: f64) -> Error {
        Error::Budget {
            budget: self.budget,
            minimum,
            unit: self.objective.unit,
            min_bits: self.min_bits,
        }
    }
}

/// `policy` with one bit width set: layer `index`'s activations or weights.
fn with_width(policy: &Policy, index: usize, activation: bool, bits: u8) -> Policy {
    let mut changed = policy.clone();
    if activation {
        changed.layers[index].a_bits = Some(bits);
    } else {
        changed.layers[index].w_bits = bits;
    }
    changed
}
