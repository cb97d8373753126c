//! The paper's tables (HAQ, Tables 2, 4 and 6): one per (objective, hardware) that a
//! finetuned search covers. Rows: the float model, then every fixed-bit baseline of the
//! same quantization mode by rising cost, each followed by the HAQ rows searched at its
//! cost; columns: bits, test top-1, top-5 and the cost the search was constrained on.

use anyhow::Context;
use polars::prelude::{Column, DataFrame};

use haq_cost::budget::{Budget, Resource};
use haq_cost::hw::{Unit, MODEL_NAMES};
use haq_cost::method::Method;

use crate::collect::{replicates_label, Experiments, Finetune};
use crate::stats::Stat;

/// Relative slack when comparing a cost with a budget computed from the same tables.
pub const COST_TOLERANCE: f64 = 1e-9;

/// What a row is: the float model, a fixed-bit baseline or a searched policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Float,
    /// A fixed-bit baseline in linear mode (the paper's PACT rows).
    Pact,
    /// A fixed-bit baseline in k-means mode (the paper's Deep Compression rows).
    DeepCompression,
    /// A policy searched by the method under the table's cost.
    Searched(Method),
    /// HAQ under a budget of bit operations, a proxy, in a table of another cost.
    HaqBops,
}

/// HAQ's row: DDPG's search.
pub const HAQ: RowKind = RowKind::Searched(Method::Ddpg);

impl RowKind {
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Float => "Float",
            RowKind::Pact => "PACT",
            RowKind::DeepCompression => "Deep Compression",
            RowKind::Searched(m) => method_name(m),
            RowKind::HaqBops => "HAQ (BOPs budget)",
        }
    }
}

/// A search method for people, naming the work it follows.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Ddpg => "HAQ (DDPG)",
        Method::Random => "random search",
        Method::Greedy => "greedy sensitivity (AIMET-style)",
        Method::Hawq => "Hessian + ILP (HAWQ-V3-style)",
    }
}

/// The bit width a row shows for its weights or activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Every layer but a linear policy's pinned first one at these bits; 32 is float.
    Bits(u8),
    /// A fixed policy whose layers differ (a policy file).
    Mixed,
    /// Chosen layer by layer by a search.
    Flexible,
}

impl std::fmt::Display for Width {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Width::Bits(b) => write!(f, "{b}"),
            Width::Mixed => f.write_str("mixed"),
            Width::Flexible => f.write_str("flexible"),
        }
    }
}

/// One row: a fixed-bit baseline, a searched policy or the float model, over its
/// replicates (finetunes equal but for the seed, of replicates of one search).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub method: RowKind,
    pub weights: Width,
    /// `None` in k-means mode, which leaves activations in float.
    pub activations: Option<Width>,
    pub top1: Stat,
    pub top5: Stat,
    /// In the table's [`PaperTable::unit`]; `None` where the cost model cannot cost the
    /// row (the float model on latency and energy models, whose tables stop at 8 bits).
    pub cost: Option<Stat>,
    /// One per replicate, by seed; empty for the float model, which is not finetuned.
    pub samples: Vec<Sample>,
    /// A searched row's search cost: policies its search scored (probes included), the
    /// mean over its replicates rounded.
    pub policies_scored: Option<u32>,
    /// The HAQ search's budget.
    pub budget: Option<Budget>,
    /// The stages the row's numbers come from: one name, or the replicates' names with
    /// what differs in braces (`haq@edge-{0,1,2}`).
    pub stage: String,
    /// For a HAQ row, the index (in the table's rows) of the fixed-bit row it is compared
    /// with: the one costing the search's budget (a `match` budget's baseline), if any.
    /// The row is listed under the cheapest fixed-bit row costing at least its budget.
    pub baseline: Option<usize>,
}

/// One replicate of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub seed: u64,
    pub stage: String,
    pub top1: f64,
    pub cost: Option<f64>,
}

impl Row {
    /// The replicates, `None` for the float model.
    pub fn n(&self) -> Option<usize> {
        (!self.samples.is_empty()).then_some(self.samples.len())
    }
}

#[derive(Debug, Clone)]
pub struct PaperTable {
    /// The file stem, e.g. `table-latency-bismo-edge`.
    pub name: String,
    pub title: String,
    pub objective: Resource,
    pub hardware: String,
    pub unit: Unit,
    /// Whether the policies quantize activations (latency, energy) or only weights (size).
    pub linear: bool,
    /// A table of [`proxy_tables`]: a BOPs-constrained search beside the direct one.
    pub proxy: bool,
    pub rows: Vec<Row>,
}

/// Every table the experiments support, latency before energy before size, hardware in
/// `haq hw list` order.
pub fn paper_tables(exp: &Experiments) -> Vec<PaperTable> {
    let mut keys: Vec<(Resource, &str)> = exp
        .finetunes
        .iter()
        .filter_map(|f| f.search)
        .map(|i| {
            let s = &exp.searches[i].summary;
            (s.objective, s.hardware.as_str())
        })
        .collect();
    keys.sort_by_key(|&(objective, hardware)| {
        let hw_rank = MODEL_NAMES.iter().position(|n| *n == hardware);
        (
            objective_rank(objective),
            hw_rank.unwrap_or(MODEL_NAMES.len()),
            hardware,
        )
    });
    keys.dedup();
    keys.into_iter()
        .map(|(objective, hardware)| table(exp, objective, hardware))
        .collect()
}

fn objective_rank(objective: Resource) -> u8 {
    match objective {
        Resource::Latency => 0,
        Resource::Energy => 1,
        Resource::Size => 2,
        Resource::Bops => 3,
    }
}

fn table(exp: &Experiments, objective: Resource, hardware: &str) -> PaperTable {
    let unit = objective.unit();
    let groups = exp.finetune_groups();
    let first = |g: &[usize]| &exp.finetunes[g[0]];
    let search_of = |g: &[usize]| first(g).search.map(|i| &exp.searches[i]);
    let mut haq: Vec<(&[usize], f64)> = groups
        .iter()
        .filter_map(|g| {
            let s = search_of(g)?;
            (s.summary.objective == objective && s.summary.hardware == hardware)
                .then_some((g.as_slice(), s.summary.budget_value))
        })
        .collect();
    // At each budget, one row per method in `Method::ALL` order.
    let method = |g: &[usize]| search_of(g).map(|s| s.method());
    haq.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then_with(|| method(a.0).cmp(&method(b.0)))
    });
    let linear = first(haq[0].0).policy.is_linear();
    let mut fixed: Vec<(&[usize], f64)> = groups
        .iter()
        .filter(|g| first(g).search.is_none() && first(g).policy.is_linear() == linear)
        .filter_map(|g| Some((g.as_slice(), first(g).cost(hardware, unit)?)))
        .collect();
    fixed.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then_with(|| first(a.0).stage.cmp(&first(b.0).stage))
    });
    // Each HAQ row goes under the cheapest baseline its budget does not undercut.
    let baseline_of = |budget: f64| {
        fixed
            .iter()
            .position(|(_, cost)| *cost >= budget * (1.0 - COST_TOLERANCE))
    };

    let display = |cost: f64| match unit {
        Unit::Bytes => cost / MIB,
        Unit::Bops => cost / 1e9,
        _ => cost,
    };
    let float_weights: usize = exp.layers.iter().map(|l| l.shape.params).sum();
    let single = |v: f64| Stat::of(&[v]).expect("one sample");
    let mut rows = vec![Row {
        method: RowKind::Float,
        weights: Width::Bits(32),
        activations: linear.then_some(Width::Bits(32)),
        top1: single(exp.float.test_top1),
        top5: single(exp.float.test_top5),
        cost: (unit == Unit::Bytes).then(|| single(display(4.0 * float_weights as f64))),
        samples: Vec::new(),
        policies_scored: None,
        budget: None,
        stage: String::new(),
        baseline: None,
    }];
    let cost = |f: &Finetune| f.cost(hardware, unit).map(display);
    let haq_row = |g: &[usize], baseline: Option<usize>| {
        let search = search_of(g).expect("a searched row");
        let method = RowKind::Searched(search.method());
        let flexible = linear.then_some(Width::Flexible);
        let budget = Some(search.summary.budget.clone());
        replicates_row(
            exp,
            g,
            &cost,
            method,
            (Width::Flexible, flexible),
            budget,
            baseline,
        )
    };
    for (i, (g, fixed_cost)) in fixed.iter().enumerate() {
        let method = if linear {
            RowKind::Pact
        } else {
            RowKind::DeepCompression
        };
        let at = rows.len();
        let bits = uniform_bits(first(g));
        rows.push(replicates_row(exp, g, &cost, method, bits, None, None));
        // Compared with it only when it costs the budget: a search below a baseline's
        // cost (the abstract's ratio budgets) has no same-cost baseline.
        let same_cost = |budget: f64| *fixed_cost <= budget * (1.0 + COST_TOLERANCE);
        for (h, budget) in &haq {
            if baseline_of(*budget) == Some(i) {
                rows.push(haq_row(h, same_cost(*budget).then_some(at)));
            }
        }
    }
    for (h, budget) in &haq {
        if baseline_of(*budget).is_none() {
            rows.push(haq_row(h, None));
        }
    }

    let (what, name) = match objective {
        Resource::Latency => ("Latency-constrained quantization", "latency"),
        Resource::Energy => ("Energy-constrained quantization", "energy"),
        Resource::Size => ("Model size against Deep Compression", "size"),
        Resource::Bops => ("BOPs-constrained quantization", "bops"),
    };
    let batch = first(haq[0].0).batch(hardware).unwrap_or(1.0);
    // The size model is named like its objective: `table-size`, not `table-size-size`.
    let (name, title) = if hardware == name {
        (format!("table-{name}"), what.to_string())
    } else {
        (
            format!("table-{name}-{hardware}"),
            format!("{what} on {hardware} (batch {batch})"),
        )
    };
    PaperTable {
        name,
        title,
        objective,
        hardware: hardware.to_string(),
        unit,
        linear,
        proxy: false,
        rows,
    }
}

/// The row of the replicates `g` (indices into the finetunes), each costed by `cost`.
fn replicates_row(
    exp: &Experiments,
    g: &[usize],
    cost: &dyn Fn(&Finetune) -> Option<f64>,
    method: RowKind,
    (weights, activations): (Width, Option<Width>),
    budget: Option<Budget>,
    baseline: Option<usize>,
) -> Row {
    let members: Vec<&Finetune> = g.iter().map(|i| &exp.finetunes[*i]).collect();
    let samples: Vec<Sample> = members
        .iter()
        .map(|f| Sample {
            seed: f.replicate.seed,
            stage: f.stage.clone(),
            top1: f.accuracy.test_top1,
            cost: cost(f),
        })
        .collect();
    let stat = |v: &dyn Fn(&Finetune) -> f64| {
        Stat::of(&members.iter().map(|f| v(f)).collect::<Vec<_>>()).expect("a member")
    };
    let costs: Option<Vec<f64>> = samples.iter().map(|s| s.cost).collect();
    let policies: Option<Vec<f64>> = members
        .iter()
        .map(|f| Some(exp.searches[f.search?].policies_scored() as f64))
        .collect();
    let names: Vec<&str> = members.iter().map(|f| f.stage.as_str()).collect();
    Row {
        method,
        weights,
        activations,
        top1: stat(&|f| f.accuracy.test_top1),
        top5: stat(&|f| f.accuracy.test_top5),
        cost: costs.and_then(|c| Stat::of(&c)),
        samples,
        policies_scored: policies
            .and_then(|p| Stat::of(&p))
            .map(|p| p.mean.round() as u32),
        budget,
        stage: replicates_label(&names),
        baseline,
    }
}

/// The paper's case against proxies (its Section 1): for every latency search matched to
/// a fixed-bit baseline, the search matched to the same baseline in bit operations, its
/// policy's latency looked up on the same hardware. Rows: the baseline, HAQ under the
/// latency budget, HAQ under the BOPs budget; named `table-proxy-<hardware>`.
pub fn proxy_tables(exp: &Experiments) -> Vec<PaperTable> {
    let groups = exp.finetune_groups();
    let search_of = |g: &[usize]| &exp.searches[exp.finetunes[g[0]].search.expect("searched")];
    let searched = |objective: Resource| {
        groups.iter().filter(move |g| {
            exp.finetunes[g[0]].search.is_some_and(|i| {
                let s = &exp.searches[i];
                s.method() == Method::Ddpg && s.summary.objective == objective
            })
        })
    };
    let mut tables = Vec::new();
    for bops in searched(Resource::Bops) {
        let bops_budget = &search_of(bops).summary.budget;
        for direct in searched(Resource::Latency) {
            let summary = &search_of(direct).summary;
            if !matches!(summary.budget, Budget::Match(_)) || summary.budget != *bops_budget {
                continue;
            }
            let hardware = summary.hardware.as_str();
            let paper = table(exp, Resource::Latency, hardware);
            let direct_stage = &exp.finetunes[direct[0]].stage;
            let Some(haq) = paper
                .rows
                .iter()
                .find(|r| r.samples.iter().any(|s| s.stage == *direct_stage))
            else {
                continue;
            };
            let Some(baseline) = haq.baseline.map(|i| paper.rows[i].clone()) else {
                continue;
            };
            let cost = |f: &Finetune| f.cost(hardware, Unit::Ms);
            let bits = (haq.weights, haq.activations);
            let budget = Some(bops_budget.clone());
            let bops_row =
                replicates_row(exp, bops, &cost, RowKind::HaqBops, bits, budget, Some(0));
            let rows = vec![
                baseline,
                Row {
                    baseline: Some(0),
                    ..haq.clone()
                },
                bops_row,
            ];
            tables.push(PaperTable {
                name: format!("table-proxy-{hardware}"),
                title: format!(
                    "A BOPs budget against the latency budget on {hardware} (batch {})",
                    exp.finetunes[direct[0]].batch(hardware).unwrap_or(1.0)
                ),
                proxy: true,
                rows,
                ..paper
            });
        }
    }
    tables
}

/// Bytes per MiB: the paper's "MB" of model size (its Table 6: MobileNet-V1 at 32 bits is
/// 16.14 MB, i.e. MiB of conv and FC weights).
const MIB: f64 = (1 << 20) as f64;

/// The bits of a fixed-bit policy: those of every layer but a linear policy's pinned first
/// one, or mixed if they differ (a policy file).
fn uniform_bits(f: &Finetune) -> (Width, Option<Width>) {
    let linear = f.policy.is_linear();
    let rest = &f.policy.layers[usize::from(linear)..];
    let width = |bits: Vec<Option<u8>>| {
        let first = bits[0];
        if bits.iter().all(|b| *b == first) {
            Width::Bits(first.unwrap_or(32))
        } else {
            Width::Mixed
        }
    };
    let weights = width(rest.iter().map(|l| Some(l.w_bits)).collect());
    let activations = linear.then(|| width(rest.iter().map(|l| l.a_bits).collect()));
    (weights, activations)
}

impl PaperTable {
    /// The cost column's name.
    pub fn cost_column(&self) -> &'static str {
        match self.unit {
            Unit::Ms => "latency_ms",
            Unit::Mj => "energy_mj",
            Unit::Bytes => "size_mib",
            Unit::Cycles => "cycles",
            Unit::Bops => "gbops",
        }
    }

    /// The cost column's unit, for people.
    pub fn unit_label(&self) -> &'static str {
        match self.unit {
            Unit::Ms => "ms",
            Unit::Mj => "mJ",
            Unit::Bytes => "MiB",
            Unit::Cycles => "cycles",
            Unit::Bops => "GBOPs",
        }
    }

    /// A note on how to read the table, for every format.
    pub fn note(&self) -> String {
        if self.proxy {
            return format!(
                "Both searches were given the cost of the first row's fixed-bit policy: one as \
                 latency on {}, the other as bit operations (MACs x weight bits x activation \
                 bits), a hardware-agnostic proxy. Latency is looked up on {} for all three \
                 rows: a BOPs-constrained policy above the first row's breaks the budget the \
                 proxy stood for; below it, it leaves latency unspent. Top-1 and top-5 on the \
                 test split, in percent.",
                self.hardware, self.hardware
            );
        }
        let first = if self.linear {
            "Fixed-bit rows quantize every layer to the bits shown except the first, which \
             stays at w8 a8 (as in PACT). "
        } else {
            "Fixed-bit rows cluster every layer's weights to 2^bits values (k-means). "
        };
        format!(
            "{first}Each searched row (HAQ's DDPG and the other search methods) follows the \
             cheapest fixed-bit row costing at least the search's budget, its baseline when \
             it costs exactly the budget; its policies scored are its search's cost. Top-1 \
             and top-5 on the test split, in percent; the float row's cost is shown only \
             where the cost model covers 32 bits."
        )
    }

    /// The table as a DataFrame with snake_case columns (see [`pretty_column`]).
    pub fn frame(&self) -> anyhow::Result<DataFrame> {
        let text = |name: &str, f: &dyn Fn(&Row) -> Option<String>| {
            Column::new(name.into(), self.rows.iter().map(f).collect::<Vec<_>>())
        };
        let number = |name: &str, f: &dyn Fn(&Row) -> Option<f64>| {
            Column::new(name.into(), self.rows.iter().map(f).collect::<Vec<_>>())
        };
        let mut columns = vec![
            text("method", &|r| Some(r.method.name().into())),
            text("weights", &|r| Some(r.weights.to_string())),
        ];
        if self.linear {
            columns.push(text("activations", &|r| {
                r.activations.map(|a| a.to_string())
            }));
        }
        // Each statistic as its mean and, for people's formats to fold in, its interval.
        let stat = |name: &str, f: &dyn Fn(&Row) -> Option<Stat>| {
            [
                number(name, &|r| f(r).map(|s| s.mean)),
                number(&format!("{name}_ci_low"), &|r| f(r)?.ci_low),
                number(&format!("{name}_ci_high"), &|r| f(r)?.ci_high),
            ]
        };
        columns.extend(stat("top1", &|r| Some(r.top1)));
        columns.extend(stat("top5", &|r| Some(r.top5)));
        columns.extend(stat(self.cost_column(), &|r| r.cost));
        columns.extend([
            Column::new(
                "policies_scored".into(),
                self.rows
                    .iter()
                    .map(|r| r.policies_scored)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "n".into(),
                self.rows
                    .iter()
                    .map(|r| r.n().map(|n| n as u32))
                    .collect::<Vec<_>>(),
            ),
            text("budget", &|r| r.budget.as_ref().map(ToString::to_string)),
            text("stage", &|r| (!r.stage.is_empty()).then(|| r.stage.clone())),
        ]);
        DataFrame::new_infer_height(columns).with_context(|| format!("building {}", self.name))
    }
}

/// A column's header for people.
pub fn pretty_column(name: &str) -> &str {
    match name {
        "method" => "Method",
        "weights" => "Weights (bits)",
        "activations" => "Activations (bits)",
        "top1" => "Top-1 (%)",
        "top5" => "Top-5 (%)",
        "latency_ms" => "Latency (ms)",
        "energy_mj" => "Energy (mJ)",
        "size_mib" => "Size (MiB)",
        "gbops" => "BOPs (G)",
        "policies_scored" => "Policies scored",
        "budget" => "Budget",
        "stage" => "Stage",
        "hardware" => "Hardware",
        "objective" => "Objective",
        "seconds" => "Seconds",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats;
    use crate::testdata::experiments;

    /// (method, stage, cost, baseline) of every row.
    fn shape(t: &PaperTable) -> Vec<(RowKind, &str, Option<f64>, Option<usize>)> {
        t.rows
            .iter()
            .map(|r| {
                (
                    r.method,
                    r.stage.as_str(),
                    r.cost.map(|c| c.mean),
                    r.baseline,
                )
            })
            .collect()
    }

    #[test]
    fn one_table_per_searched_setting_with_each_haq_row_under_its_baseline() {
        let tables = paper_tables(&experiments());
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "table-latency-bismo-edge",
                "table-latency-bismo-cloud",
                "table-size"
            ]
        );
        use RowKind::*;
        assert_eq!(
            shape(&tables[0]),
            [
                (Float, "", None, None),
                (Pact, "pact@4", Some(1.0), None),
                (HAQ, "haq-edge", Some(0.95), Some(1)),
                (Pact, "pact@8", Some(2.0), None),
            ]
        );
        assert_eq!(
            tables[0].title,
            "Latency-constrained quantization on bismo-edge (batch 1)"
        );
        assert_eq!(
            shape(&tables[1]),
            [
                (Float, "", None, None),
                (Pact, "pact@4", Some(2.0), None),
                (HAQ, "haq-cloud", Some(2.0), Some(1)),
                (Pact, "pact@8", Some(4.0), None),
            ]
        );
        // 832 float weights of 4 bytes each.
        assert_eq!(
            shape(&tables[2]),
            [
                (Float, "", Some(3328.0 / MIB), None),
                (DeepCompression, "dc@2", Some(300.0 / MIB), None),
                (HAQ, "haq-size", Some(290.0 / MIB), Some(1)),
            ]
        );
        assert!(!tables[2].linear);
        let fixed = &tables[0].rows[1];
        assert_eq!(
            (fixed.weights, fixed.activations),
            (Width::Bits(4), Some(Width::Bits(4)))
        );
        let dc = &tables[2].rows[1];
        assert_eq!((dc.weights, dc.activations), (Width::Bits(2), None));
    }

    #[test]
    fn a_haq_row_over_every_baseline_comes_last_without_one() {
        let mut exp = experiments();
        exp.searches[1].summary.budget_value = 2.5;
        let edge = &paper_tables(&exp)[0];
        assert_eq!(
            shape(edge).last(),
            Some(&(HAQ, "haq-edge", Some(0.95), None))
        );
    }

    #[test]
    fn a_bops_search_sits_beside_each_latency_search_at_its_baseline() {
        use crate::testdata::{finetune, linear, search};
        let mut exp = experiments();
        let policy = linear(&[(8, 8), (5, 5), (5, 5), (5, 5), (4, 4), (4, 4)]);
        exp.searches.push(search(
            "s-bops",
            "bops",
            Resource::Bops,
            "uniform:4",
            5e8,
            policy.clone(),
        ));
        let edge_ms = 1.3;
        exp.finetunes.push(finetune(
            "haq-bops",
            Some(3),
            88.5,
            policy,
            &[
                ("bismo-edge", Unit::Ms, edge_ms),
                ("bismo-cloud", Unit::Ms, 1.9),
                ("bops", Unit::Bops, 5e8),
            ],
        ));
        let tables = proxy_tables(&exp);
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["table-proxy-bismo-cloud", "table-proxy-bismo-edge"]);
        use RowKind::*;
        assert_eq!(
            shape(&tables[1]),
            [
                (Pact, "pact@4", Some(1.0), None),
                (HAQ, "haq-edge", Some(0.95), Some(0)),
                (HaqBops, "haq-bops", Some(edge_ms), Some(0)),
            ]
        );
        assert!(tables[1].note().contains("bit operations"));
        let csv = String::from_utf8(formats::csv(&tables[1].frame().unwrap()).unwrap()).unwrap();
        assert_eq!(
            csv.lines().nth(3),
            Some(
                "HAQ (BOPs budget),flexible,flexible,88.5,,,99.0,,,1.3,,,4,1,the cost of uniform:4,haq-bops"
            )
        );
        // The BOPs search has its own paper table, in GBOPs; no baseline costs BOPs here.
        let bops = paper_tables(&exp).pop().unwrap();
        assert_eq!(
            (bops.name.as_str(), bops.cost_column()),
            ("table-bops", "gbops")
        );
        assert_eq!(bops.rows[1].cost.map(|c| c.mean), Some(0.5));
        // Without a latency search at the same budget there is no comparison.
        exp.searches[3].summary.budget = Budget::Match("uniform:8".into());
        assert!(proxy_tables(&exp).is_empty());
    }

    #[test]
    fn every_method_searched_at_a_budget_has_its_row_with_its_policies_scored() {
        use crate::testdata::other_method;
        let mut exp = experiments();
        // Greedy and hawq on the edge at HAQ's budget; hawq's stage sorts before HAQ's.
        for (stage, method) in [("s-edge-greedy", Method::Greedy), ("a-hawq", Method::Hawq)] {
            exp.searches
                .push(other_method(&exp.searches[1], stage, method));
            let mut f = exp.finetunes[2].clone();
            f.stage = stage.replace("s-", "haq-");
            f.search = Some(exp.searches.len() - 1);
            f.replicate.params["stage"] = f.stage.clone().into();
            exp.finetunes.push(f);
        }
        let edge = &paper_tables(&exp)[0];
        use RowKind::*;
        let rows: Vec<(RowKind, &str, Option<u32>)> = edge
            .rows
            .iter()
            .map(|r| (r.method, r.stage.as_str(), r.policies_scored))
            .collect();
        assert_eq!(
            rows,
            [
                (Float, "", None),
                (Pact, "pact@4", None),
                (HAQ, "haq-edge", Some(4)),
                // Two probes before the four episodes.
                (Searched(Method::Greedy), "haq-edge-greedy", Some(6)),
                (Searched(Method::Hawq), "a-hawq", Some(4)),
                (Pact, "pact@8", None),
            ]
        );
        let md = formats::markdown(&edge.title, "", &edge.frame().unwrap());
        assert!(
            md.contains("| greedy sensitivity (AIMET-style) | flexible | flexible | 89.00 (n=1) |"),
            "{md}"
        );
        assert!(md.contains("| Hessian + ILP (HAWQ-V3-style) |"), "{md}");
    }

    #[test]
    fn frames_have_the_papers_columns() {
        let tables = paper_tables(&experiments());
        let csv =
            |t: &PaperTable| String::from_utf8(formats::csv(&t.frame().unwrap()).unwrap()).unwrap();
        let edge = csv(&tables[0]);
        let lines: Vec<&str> = edge.lines().collect();
        assert_eq!(
            lines,
            [
                "method,weights,activations,top1,top1_ci_low,top1_ci_high,top5,top5_ci_low,\
                 top5_ci_high,latency_ms,latency_ms_ci_low,latency_ms_ci_high,policies_scored,n,\
                 budget,stage",
                "Float,32,32,91.0,,,99.5,,,,,,,,,",
                "PACT,4,4,88.0,,,99.0,,,1.0,,,,1,,pact@4",
                "HAQ (DDPG),flexible,flexible,89.0,,,99.0,,,0.95,,,4,1,the cost of uniform:4,\
                 haq-edge",
                "PACT,8,8,90.0,,,99.0,,,2.0,,,,1,,pact@8",
            ]
        );
        let size = csv(&tables[2]);
        assert_eq!(
            size.lines().next(),
            Some(
                "method,weights,top1,top1_ci_low,top1_ci_high,top5,top5_ci_low,top5_ci_high,\
                 size_mib,size_mib_ci_low,size_mib_ci_high,policies_scored,n,budget,stage"
            )
        );
        assert_eq!(size.lines().count(), 4);
    }

    #[test]
    fn replicates_make_one_row_with_their_mean_interval_and_n() {
        use crate::testdata::replicated;
        let top1 = |stage: &str, seed: u64| {
            if stage == "haq-edge" {
                [89.0, 89.3, 88.9][seed as usize]
            } else {
                88.0
            }
        };
        let exp = replicated(&experiments(), &[0, 1, 2], top1);
        let edge = &paper_tables(&exp)[0];
        use RowKind::*;
        assert_eq!(
            shape(edge),
            [
                (Float, "", None, None),
                (Pact, "pact@4-{0,1,2}", Some(1.0), None),
                (HAQ, "haq-edge-{0,1,2}", Some(0.95), Some(1)),
                (Pact, "pact@8-{0,1,2}", Some(2.0), None),
            ]
        );
        let haq = &edge.rows[2];
        assert_eq!((haq.n(), haq.top1.n), (Some(3), 3));
        assert!((haq.top1.mean - 89.066_666_7).abs() < 1e-6);
        let seeds: Vec<u64> = haq.samples.iter().map(|s| s.seed).collect();
        assert_eq!(seeds, [0, 1, 2]);
        let md = formats::markdown(&edge.title, "", &edge.frame().unwrap());
        // s = 0.208167, t(2) = 4.3027: half-width 0.5171.
        assert!(
            md.contains(
                "| HAQ (DDPG) | flexible | flexible | 89.07 ± 0.52 (n=3) | 99.00 | 0.9500 | 4 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| PACT | 4 | 4 | 88.00 (n=3) | 99.00 | 1.000 |"),
            "{md}"
        );
        assert_eq!(edge.rows[0].n(), None);
    }
}
