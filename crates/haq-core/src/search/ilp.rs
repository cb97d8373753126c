//! One option per layer (a pair of bit widths, say) at the least total sensitivity within
//! a cost budget: the integer linear program of HAWQ-V3 (Yao, Dong et al., ICML 2021,
//! section 3.3), with binary x_ij, sum_j x_ij = 1 for each layer i and
//! sum_ij c_ij x_ij <= budget, minimising sum_ij s_ij x_ij. good_lp's pure-Rust microlp
//! backend solves it by branch and bound.

use good_lp::{microlp, variable, Expression, ProblemVariables, Solution, SolverModel, Variable};

use crate::error::{Error, Result};

/// One option of one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub cost: f64,
    pub sensitivity: f64,
}

/// How far below the budget's slack the solver's right-hand side lies, relative to that
/// slack. microlp accepts a constraint violated by up to 1e-10 (its `EPS`), so a solution
/// at the right-hand side could exceed the budget once its options' costs are added up in
/// f64; options whose total lies within this margin of the budget are given up instead.
/// The binaries may also be off integral by up to microlp's integrality tolerance (1e-6),
/// so [`choose`] still checks the total of the options it rounds to.
const MARGIN: f64 = 1e-9;

/// The index of one option of each layer, minimising the total sensitivity subject to the
/// total cost being at most `budget`; fails if even the cheapest options exceed it.
pub fn choose(options: &[Vec<Choice>], budget: f64) -> Result<Vec<usize>> {
    let bad = |problem: String| Error::Config {
        field: "budget".into(),
        problem,
    };
    if !budget.is_finite() {
        return Err(bad(format!("{budget} is not a finite number")));
    }
    for (i, layer) in options.iter().enumerate() {
        if layer.is_empty() {
            return Err(bad(format!("layer {i} has no option to choose")));
        }
        if let Some(j) = layer
            .iter()
            .position(|c| !c.cost.is_finite() || !c.sensitivity.is_finite())
        {
            return Err(bad(format!(
                "option {j} of layer {i} has a cost or sensitivity that is not finite: {:?}",
                layer[j]
            )));
        }
    }
    let min_of =
        |layer: &[Choice], f: fn(&Choice) -> f64| layer.iter().map(f).fold(f64::INFINITY, f64::min);
    let cheapest: Vec<f64> = options.iter().map(|l| min_of(l, |c| c.cost)).collect();
    let least: f64 = cheapest.iter().sum();
    if least > budget {
        return Err(bad(format!(
            "{budget} cannot be met: the cheapest option of every layer costs {least} in all"
        )));
    }
    let slack = budget - least;

    // Costs counted above each layer's cheapest option and in units of the slack, and
    // sensitivities above each layer's least in units of the largest such excess, so that
    // the solver's absolute tolerances mean the same whatever the units. An option that
    // alone would use more than the slack can never be chosen and is left out.
    let cost_unit = slack.max(f64::MIN_POSITIVE);
    let least_sensitivity: Vec<f64> = options
        .iter()
        .map(|l| min_of(l, |c| c.sensitivity))
        .collect();
    let sensitivity_unit = options
        .iter()
        .zip(&least_sensitivity)
        .flat_map(|(l, &s0)| l.iter().map(move |c| c.sensitivity - s0))
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);

    let mut vars = ProblemVariables::new();
    let n_options = options.iter().map(Vec::len).sum();
    let mut objective = Expression::with_capacity(n_options);
    let mut spend = Expression::with_capacity(n_options);
    let mut layers: Vec<Vec<(usize, Variable)>> = Vec::with_capacity(options.len());
    let mut one_each = Vec::with_capacity(options.len());
    for ((layer, c0), s0) in options.iter().zip(&cheapest).zip(&least_sensitivity) {
        let mut picked = Expression::with_capacity(layer.len());
        let kept: Vec<(usize, Variable)> = layer
            .iter()
            .enumerate()
            .filter(|(_, c)| c.cost - c0 <= slack)
            .map(|(j, c)| {
                let x = vars.add(variable().binary());
                objective.add_mul((c.sensitivity - s0) / sensitivity_unit, x);
                spend.add_mul((c.cost - c0) / cost_unit, x);
                picked.add_mul(1.0, x);
                (j, x)
            })
            .collect();
        one_each.push(picked.eq(1.0));
        layers.push(kept);
    }
    let mut problem = vars
        .minimise(objective)
        .using(microlp)
        .with(spend.leq(1.0 - MARGIN));
    for constraint in one_each {
        problem = problem.with(constraint);
    }
    let solution = problem
        .solve()
        .map_err(|e| bad(format!("the integer program was not solved: {e}")))?;

    // The binaries come back within the solver's tolerance of 0 or 1: the largest is the one.
    let picks: Vec<usize> = layers
        .iter()
        .map(|kept| {
            kept.iter()
                .max_by(|a, b| solution.value(a.1).total_cmp(&solution.value(b.1)))
                .expect("every layer keeps its cheapest option")
                .0
        })
        .collect();
    let total: f64 = options.iter().zip(&picks).map(|(l, &j)| l[j].cost).sum();
    if total > budget {
        return Err(bad(format!(
            "the solver's choice costs {total} in all, over the budget {budget} by round-off \
             (the budget leaves {slack} above the cheapest options); raise the budget slightly"
        )));
    }
    Ok(picks)
}
