//! The paper's claims, each checked on this run's numbers: *holds*, *does not hold*, or
//! *not tested* when the workflow lacks the experiment. docs/report.md states the rules.
//!
//! Pointwise layers are 1x1 convs (kind conv, kernel 1) and depthwise layers are kind
//! depthwise ([`Role`]); means are over the layers of a role, unweighted.

use std::collections::BTreeMap;

use serde::Serialize;

use haq_cost::budget::{Budget, Resource};
use haq_cost::method::Method;
use haq_cost::policy::Policy;

use crate::collect::{pair_by, replicates_label, Experiments, Search};
use crate::formats::{html_escape, significant};
use crate::roles::{mean_bits, Bits, Role};
use crate::stats::{self, Side, Stat, Verdict};
use crate::tables::{method_name, PaperTable, Row, RowKind, Width, COST_TOLERANCE, HAQ};

/// Top-1 points HAQ may lose against fixed 8-bit and still count as "negligible" (d, e).
pub const NEGLIGIBLE_LOSS: f64 = 1.0;

/// The abstract's reductions against fixed 8-bit: latency 1.4x (at the least) to 1.95x,
/// energy 1.9x.
pub const LATENCY_SPEEDUP: f64 = 1.4;
pub const ENERGY_SAVING: f64 = 1.9;

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub id: &'static str,
    pub statement: &'static str,
    /// How the verdict is decided.
    pub rule: &'static str,
    /// The checks' verdicts combined by [`Verdict::all`].
    pub verdict: Verdict,
    pub checks: Vec<Check>,
}

/// One comparison behind a claim.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub subject: String,
    pub verdict: Verdict,
    pub detail: String,
    pub values: BTreeMap<String, f64>,
    /// The differences the verdict was tested on, against noise.
    pub tests: Vec<Tested>,
}

/// A difference over replicates paired by seed, tested against a threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Tested {
    /// What was differenced, e.g. `top-1, HAQ - baseline (points)`.
    pub what: String,
    #[serde(flatten)]
    pub difference: Stat,
    /// `>= threshold` or `<= threshold`: the side the claim puts the difference on.
    pub claimed: String,
    pub seeds: Vec<u64>,
    pub verdict: Verdict,
}

impl Tested {
    /// Tests the differences `(seed, value)` against `threshold`.
    fn new(what: &str, diffs: &[(u64, f64)], threshold: f64, side: Side) -> Option<Tested> {
        let values: Vec<f64> = diffs.iter().map(|d| d.1).collect();
        let difference = Stat::of(&values)?;
        let op = match side {
            Side::AtLeast => ">=",
            Side::AtMost => "<=",
        };
        Some(Tested {
            what: what.into(),
            difference,
            claimed: format!("{op} {threshold}"),
            seeds: diffs.iter().map(|d| d.0).collect(),
            verdict: stats::test(&difference, threshold, side),
        })
    }

    /// `top-1, HAQ - baseline (points) 0.31, 95% CI [-0.10, 0.72], n=3, claimed >= 0:
    /// undecided`; one sample is called so.
    fn text(&self) -> String {
        let d = &self.difference;
        let spread = match (d.ci_low, d.ci_high) {
            (Some(l), Some(h)) => format!(
                "{}, 95% CI [{}, {}], n={}",
                significant(d.mean),
                significant(l),
                significant(h),
                d.n
            ),
            _ => format!("{} (a single sample, n=1)", significant(d.mean)),
        };
        format!(
            "{} {spread}, claimed {}: {}",
            self.what,
            self.claimed,
            self.verdict.name()
        )
    }
}

/// `a - b` of the samples of equal seeds, by seed in `a`'s order.
fn paired(a: &[(u64, f64)], b: &[(u64, f64)]) -> Vec<(u64, f64)> {
    a.iter()
        .filter_map(|(seed, x)| Some((*seed, x - b.iter().find(|(s, _)| s == seed)?.1)))
        .collect()
}

fn top1s(row: &Row) -> Vec<(u64, f64)> {
    row.samples.iter().map(|s| (s.seed, s.top1)).collect()
}

impl Claim {
    fn new(
        id: &'static str,
        statement: &'static str,
        rule: &'static str,
        checks: Vec<Check>,
    ) -> Claim {
        Claim {
            id,
            statement,
            rule,
            verdict: Verdict::all(checks.iter().map(|c| c.verdict)),
            checks,
        }
    }
}

impl Check {
    /// A check decided by `tests` (all of them), their texts before `detail`.
    fn tested(
        subject: String,
        detail: String,
        values: BTreeMap<String, f64>,
        tests: Vec<Tested>,
    ) -> Check {
        let texts: Vec<String> = tests.iter().map(Tested::text).collect();
        Check {
            subject,
            verdict: Verdict::all(tests.iter().map(|t| t.verdict)),
            detail: format!("{}. {detail}", texts.join("; ")),
            values,
            tests,
        }
    }

    fn decided(
        subject: String,
        verdict: Verdict,
        detail: String,
        values: BTreeMap<String, f64>,
    ) -> Check {
        Check {
            subject,
            verdict,
            detail,
            values,
            tests: Vec::new(),
        }
    }

    fn not_tested(subject: String, detail: String) -> Check {
        Check::decided(subject, Verdict::NotTested, detail, BTreeMap::new())
    }
}

pub fn decide(exp: &Experiments, tables: &[PaperTable]) -> Vec<Claim> {
    let roles: Vec<Role> = exp.layers.iter().map(|l| Role::of(&l.shape)).collect();
    vec![
        same_cost_accuracy(tables),
        edge_cloud_activations(exp, &roles),
        size_weights(exp, &roles),
        against_8_bit(tables, Resource::Latency),
        against_8_bit(tables, Resource::Energy),
        which_method_wins(exp),
    ]
}

fn values<const N: usize>(pairs: [(&str, f64); N]) -> BTreeMap<String, f64> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn describe(row: &Row) -> String {
    let bits = match &row.activations {
        Some(a) => format!("w{} a{}", row.weights, a),
        None => format!("w{}", row.weights),
    };
    format!("{} {bits} ({})", row.method.name(), row.stage)
}

/// (a) Per HAQ row of every table: no costlier than its baseline, and its top-1 minus
/// the baseline's, paired by seed, at least 0.
fn same_cost_accuracy(tables: &[PaperTable]) -> Claim {
    let mut checks = Vec::new();
    for t in tables {
        let unit = t.unit_label();
        for h in t.rows.iter().filter(|r| r.method == HAQ) {
            let subject = format!("{}: {}", t.title, h.stage);
            let (Some(b), Some(h_cost)) = (h.baseline.map(|i| &t.rows[i]), h.cost) else {
                checks.push(Check::not_tested(
                    subject,
                    "no fixed-bit row costs exactly the search's budget".into(),
                ));
                continue;
            };
            let b_cost = b.cost.expect("fixed-bit rows have a cost").mean;
            let detail = format!(
                "HAQ top-1 {}% at {} {unit} vs {} top-1 {}% at {} {unit}",
                h.top1.text(),
                significant(h_cost.mean),
                describe(b),
                b.top1.text(),
                significant(b_cost)
            );
            let values = values([
                ("haq_top1", h.top1.mean),
                ("haq_cost", h_cost.mean),
                ("baseline_top1", b.top1.mean),
                ("baseline_cost", b_cost),
            ]);
            // Costs come from the cost tables, exactly: no noise to test against.
            let costlier = h
                .samples
                .iter()
                .filter(|s| s.cost.is_none_or(|c| c > b_cost * (1.0 + COST_TOLERANCE)))
                .map(|s| s.stage.as_str())
                .collect::<Vec<_>>();
            if !costlier.is_empty() {
                let detail = format!(
                    "{detail}; over the baseline's cost: {}",
                    costlier.join(", ")
                );
                checks.push(Check::decided(
                    subject,
                    Verdict::DoesNotHold,
                    detail,
                    values,
                ));
                continue;
            }
            let diffs = paired(&top1s(h), &top1s(b));
            match Tested::new("top-1, HAQ - baseline (points)", &diffs, 0.0, Side::AtLeast) {
                Some(test) => checks.push(Check::tested(subject, detail, values, vec![test])),
                None => checks.push(Check::not_tested(
                    subject,
                    format!("{detail}; no seed in common with the baseline"),
                )),
            }
        }
    }
    Claim::new(
        "a",
        "At the same or lower cost, HAQ's top-1 is at least the fixed-bit baseline's.",
        "For every HAQ row of every table whose budget is a fixed-bit row's cost (`match` \
         budgets): does not hold when a replicate costs more than that row; otherwise the \
         differences of test top-1, HAQ minus baseline, paired by seed, are tested against \
         0: holds when their 95% confidence interval lies at or above 0, does not hold when \
         it lies below, undecided when it contains 0 (one pair: decided on its sign). Rows \
         at other budgets (the abstract's ratios) are not tested here.",
        checks,
    )
}

/// Mean bits of the depthwise and pointwise layers.
fn dw_pw(policy: &Policy, roles: &[Role], bits: Bits) -> Option<(f64, f64)> {
    Some((
        mean_bits(policy, roles, Role::Depthwise, bits)?,
        mean_bits(policy, roles, Role::Pointwise, bits)?,
    ))
}

fn latency_searches<'a>(
    exp: &'a Experiments,
    hardware: &'a str,
) -> impl Iterator<Item = &'a Search> {
    exp.searches.iter().filter(move |s| {
        s.method() == Method::Ddpg
            && s.summary.hardware == hardware
            && s.summary.objective == Resource::Latency
    })
}

/// (b) Edge policies give depthwise layers fewer activation bits than pointwise ones; cloud
/// policies (same budget) less so or the reverse.
fn edge_cloud_activations(exp: &Experiments, roles: &[Role]) -> Claim {
    let mut checks = Vec::new();
    for edge in latency_searches(exp, "bismo-edge") {
        let Some((e_dw, e_pw)) = dw_pw(&edge.policy, roles, Bits::Activations) else {
            continue;
        };
        let edge_text = format!(
            "edge ({}): depthwise a{} vs pointwise a{} (gap {})",
            edge.stage,
            significant(e_dw),
            significant(e_pw),
            significant(e_pw - e_dw)
        );
        let cloud = latency_searches(exp, "bismo-cloud")
            .find(|c| {
                c.summary.budget == edge.summary.budget && c.replicate.seed == edge.replicate.seed
            })
            .and_then(|c| Some((c, dw_pw(&c.policy, roles, Bits::Activations)?)));
        let check = match cloud {
            None => Check::decided(
                format!("{} (budget {})", edge.stage, edge.summary.budget),
                Verdict::NotTested,
                format!("{edge_text}; no bismo-cloud latency search at this budget and seed"),
                values([("edge_depthwise_a", e_dw), ("edge_pointwise_a", e_pw)]),
            ),
            Some((cloud, (c_dw, c_pw))) => {
                let (e_gap, c_gap) = (e_pw - e_dw, c_pw - c_dw);
                Check::decided(
                    format!(
                        "{} vs {} (budget {})",
                        edge.stage, cloud.stage, edge.summary.budget
                    ),
                    Verdict::from(e_gap > 0.0 && c_gap < e_gap),
                    format!(
                        "{edge_text}; cloud ({}): depthwise a{} vs pointwise a{} (gap {})",
                        cloud.stage,
                        significant(c_dw),
                        significant(c_pw),
                        significant(c_gap)
                    ),
                    values([
                        ("edge_depthwise_a", e_dw),
                        ("edge_pointwise_a", e_pw),
                        ("cloud_depthwise_a", c_dw),
                        ("cloud_pointwise_a", c_pw),
                    ]),
                )
            }
        };
        checks.push(check);
    }
    Claim::new(
        "b",
        "On bismo-edge, depthwise layers get fewer activation bits than pointwise layers; on \
         bismo-cloud the gap is smaller or reversed.",
        "For every latency search on bismo-edge and the latency search on bismo-cloud with \
         the same budget and seed: gap = mean a_bits of pointwise (1x1 conv) layers - mean a_bits of \
         depthwise layers, in each best policy. Holds when the edge gap is positive and the \
         cloud gap is smaller.",
        checks,
    )
}

/// (c) Under the size objective depthwise layers get more weight bits than pointwise ones.
fn size_weights(exp: &Experiments, roles: &[Role]) -> Claim {
    let checks = exp
        .searches
        .iter()
        .filter(|s| s.method() == Method::Ddpg && s.summary.objective == Resource::Size)
        .filter_map(|s| {
            let (dw, pw) = dw_pw(&s.policy, roles, Bits::Weights)?;
            Some(Check::decided(
                format!("{} (budget {})", s.stage, s.summary.budget),
                Verdict::from(dw > pw),
                format!(
                    "depthwise w{} vs pointwise w{}",
                    significant(dw),
                    significant(pw)
                ),
                values([("depthwise_w", dw), ("pointwise_w", pw)]),
            ))
        })
        .collect();
    Claim::new(
        "c",
        "Under the model-size objective, depthwise layers get more weight bits than pointwise \
         layers.",
        "For every size search: the mean w_bits of depthwise layers exceeds that of pointwise \
         (1x1 conv) layers in its best policy.",
        checks,
    )
}

/// (d) Per latency table, (e) per energy table: some HAQ row searched at a ratio budget
/// (the abstract's, against fixed 8-bit) is at least the abstract's factor cheaper than
/// fixed 8-bit, within 1 point of top-1, paired by seed. Rows at other budgets are listed,
/// not tested.
fn against_8_bit(tables: &[PaperTable], objective: Resource) -> Claim {
    let (factor, verb) = match objective {
        Resource::Energy => (ENERGY_SAVING, "less energy"),
        _ => (LATENCY_SPEEDUP, "faster"),
    };
    let mut checks = Vec::new();
    for t in tables.iter().filter(|t| t.objective == objective) {
        let unit = t.unit_label();
        let eight = t.rows.iter().find(|r| {
            let eight = Width::Bits(8);
            r.method == RowKind::Pact && r.weights == eight && r.activations == Some(eight)
        });
        let haq: Vec<&Row> = t
            .rows
            .iter()
            .filter(|r| r.method == HAQ && r.cost.is_some())
            .collect();
        if haq.is_empty() {
            continue;
        }
        let Some(eight) = eight else {
            checks.push(Check::not_tested(
                t.hardware.clone(),
                "no fixed 8-bit (w8 a8) row in this table".into(),
            ));
            continue;
        };
        let eight_cost = eight.cost.expect("fixed-bit rows have a cost").mean;
        let mean_factor = |h: &Row| eight_cost / h.cost.unwrap().mean;
        let mut rows = haq;
        rows.sort_by(|a, b| mean_factor(b).total_cmp(&mean_factor(a)));
        let (ratio, other): (Vec<&Row>, Vec<&Row>) = rows
            .into_iter()
            .partition(|h| matches!(h.budget, Some(Budget::Ratio(_))));
        let list = |rows: &[&Row]| {
            rows.iter()
                .map(|h| {
                    format!(
                        "{}: {}x {verb}, top-1 {}% ({} points lost)",
                        h.stage,
                        significant(mean_factor(h)),
                        h.top1.text(),
                        significant(eight.top1.mean - h.top1.mean)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let others = if other.is_empty() {
            String::new()
        } else {
            format!(" Not tested, at other budgets: {}.", list(&other))
        };
        let eight_text = format!(
            "fixed 8-bit: {} {unit}, top-1 {}%",
            significant(eight_cost),
            eight.top1.text()
        );
        if ratio.is_empty() {
            checks.push(Check::not_tested(
                t.hardware.clone(),
                format!("no search at a ratio budget; {eight_text}.{others}"),
            ));
            continue;
        }
        // Per row: the factor and the top-1 lost, per seed paired with fixed 8-bit's.
        let tests = |h: &Row| -> Vec<Tested> {
            let factors: Vec<(u64, f64)> = h
                .samples
                .iter()
                .filter(|s| eight.samples.iter().any(|e| e.seed == s.seed))
                .filter_map(|s| Some((s.seed, eight_cost / s.cost?)))
                .collect();
            let lost = paired(&top1s(eight), &top1s(h));
            let factor_what = format!("{} ({verb} than fixed 8-bit, x)", h.stage);
            [
                Tested::new(&factor_what, &factors, factor, Side::AtLeast),
                Tested::new(
                    "top-1 lost, 8-bit - HAQ (points)",
                    &lost,
                    NEGLIGIBLE_LOSS,
                    Side::AtMost,
                ),
            ]
            .into_iter()
            .flatten()
            .collect()
        };
        let verdict = |h: &Row| Verdict::all(tests(h).iter().map(|t| t.verdict));
        // The first row that holds, else the first undecided, else the cheapest.
        let best = [Verdict::Holds, Verdict::Undecided]
            .iter()
            .find_map(|v| ratio.iter().find(|h| verdict(h) == *v))
            .unwrap_or(&ratio[0]);
        let values = values([
            ("factor", mean_factor(best)),
            ("top1_loss", eight.top1.mean - best.top1.mean),
            ("eight_bit_top1", eight.top1.mean),
            ("eight_bit_cost", eight_cost),
        ]);
        let detail = format!("{eight_text}; {}.{others}", list(&ratio));
        let check = match tests(best) {
            found if found.len() == 2 => Check::tested(t.hardware.clone(), detail, values, found),
            _ => Check::not_tested(
                t.hardware.clone(),
                format!("{detail} No seed in common with fixed 8-bit."),
            ),
        };
        checks.push(check);
    }
    match objective {
        Resource::Energy => Claim::new(
            "e",
            "HAQ reduces energy 1.9x against fixed 8-bit with a negligible (at most 1 point) \
             loss of top-1.",
            "Per energy table (hardware), on the HAQ rows searched at a `ratio` budget: holds \
             when for one of them, paired by seed with the fixed w8 a8 row, the factor (8-bit's \
             energy / HAQ's) is at least 1.9 and the top-1 lost (8-bit's - HAQ's) at most 1 \
             point, each by its 95% confidence interval (one pair: by its value); does not \
             hold when for every row one of them lies on the other side; undecided otherwise. \
             The values are the first row that holds, else the first undecided, else the most \
             frugal. Rows at other budgets are listed only.",
            checks,
        ),
        _ => Claim::new(
            "d",
            "HAQ reduces latency 1.4x-1.95x against fixed 8-bit with a negligible (at most 1 \
             point) loss of top-1.",
            "Per latency table (hardware), on the HAQ rows searched at a `ratio` budget: holds \
             when for one of them, paired by seed with the fixed w8 a8 row, the speedup (8-bit's \
             latency / HAQ's) is at least 1.4 and the top-1 lost (8-bit's - HAQ's) at most 1 \
             point, each by its 95% confidence interval (one pair: by its value); does not \
             hold when for every row one of them lies on the other side; undecided otherwise. \
             The values are the first row that holds, else the first undecided, else the \
             fastest. Rows at other budgets are listed only.",
            checks,
        ),
    }
}

/// (f) Per DDPG experiment and every other method's experiment at its hardware, objective
/// and budget: DDPG's final top-1 minus the other's, paired by seed, at least 0 (the best
/// rewards' difference where either policy was not finetuned).
fn which_method_wins(exp: &Experiments) -> Claim {
    let (comparisons, refused) = exp.comparisons();
    let mut checks = Vec::new();
    let seed = |i: &usize| exp.searches[*i].replicate.seed;
    let stages = |g: &[usize]| {
        let names: Vec<&str> = g.iter().map(|i| exp.searches[*i].stage.as_str()).collect();
        replicates_label(&names)
    };
    for c in &comparisons {
        let other = c.method.as_str();
        let pairs = pair_by(&c.ddpg, &c.other, seed);
        let rewards: Vec<(u64, f64, f64)> = pairs
            .iter()
            .filter_map(|(d, o)| {
                let (d_best, o_best) = (
                    exp.searches[*d].best_reward()?,
                    exp.searches[*o].best_reward()?,
                );
                Some((seed(d), d_best, o_best))
            })
            .collect();
        let top1: Option<Vec<(u64, f64, f64)>> = pairs
            .iter()
            .map(|(d, o)| {
                let (f, g) = (exp.finetune_of(*d)?, exp.finetune_of(*o)?);
                Some((seed(d), f.accuracy.test_top1, g.accuracy.test_top1))
            })
            .collect();
        let diffs =
            |v: &[(u64, f64, f64)]| v.iter().map(|(s, a, b)| (*s, a - b)).collect::<Vec<_>>();
        let mean = |v: &[(u64, f64, f64)], k: usize| {
            v.iter()
                .map(|t| if k == 1 { t.1 } else { t.2 })
                .sum::<f64>()
                / v.len() as f64
        };
        let subject = format!(
            "{} vs {} ({})",
            stages(&c.ddpg),
            stages(&c.other),
            method_name(c.method)
        );
        if rewards.is_empty() {
            checks.push(Check::not_tested(
                subject,
                "no replicates of equal seeds".into(),
            ));
            continue;
        }
        let policies = |g: &[usize]| exp.searches[g[0]].policies_scored();
        let mut detail = format!(
            "best reward: DDPG {} vs {other} {} ({} vs {} policies scored)",
            significant(mean(&rewards, 1)),
            significant(mean(&rewards, 2)),
            policies(&c.ddpg),
            policies(&c.other)
        );
        let mut values = vec![
            ("ddpg_reward".to_string(), mean(&rewards, 1)),
            (format!("{other}_reward"), mean(&rewards, 2)),
        ];
        let reward_test = Tested::new(
            &format!("best reward, DDPG - {other}"),
            &diffs(&rewards),
            0.0,
            Side::AtLeast,
        );
        let test = match top1.filter(|t| !t.is_empty()) {
            Some(top1) => {
                values.extend([
                    ("ddpg_top1".to_string(), mean(&top1, 1)),
                    (format!("{other}_top1"), mean(&top1, 2)),
                ]);
                detail += &format!(
                    "; {}; after the final finetune: DDPG {}% vs {other} {}%",
                    reward_test.as_ref().map_or(String::new(), Tested::text),
                    significant(mean(&top1, 1)),
                    significant(mean(&top1, 2))
                );
                Tested::new(
                    &format!("final top-1, DDPG - {other} (points)"),
                    &diffs(&top1),
                    0.0,
                    Side::AtLeast,
                )
            }
            None => reward_test,
        };
        let winner = match test.as_ref().map(|t| t.verdict) {
            Some(Verdict::Holds) => "DDPG wins (or ties)".to_string(),
            Some(Verdict::DoesNotHold) => format!("{} wins", method_name(c.method)),
            _ => "no winner within the noise".to_string(),
        };
        let budget = &exp.searches[c.ddpg[0]].summary;
        detail += &format!(
            ". At {} {} budget {}: {winner}",
            budget.hardware, budget.objective, budget.budget
        );
        checks.push(Check::tested(
            subject,
            detail,
            values.into_iter().collect(),
            test.into_iter().collect(),
        ));
    }
    for r in refused {
        checks.push(Check::not_tested(
            format!("{} vs {}", r.ddpg, r.other),
            format!(
                "not paired, as their settings differ: {}",
                r.differences.join("; ")
            ),
        ));
    }
    Claim::new(
        "f",
        "At each budget, the DDPG agent finds policies at least as good as the other search \
         methods': random search with the same episodes, greedy sensitivity (AIMET-style) \
         and Hessian + ILP (HAWQ-V3-style).",
        "For every DDPG search and every other method's search of the same hardware, \
         objective and budget whose other params are equal (but the seed, the method and \
         hawq's trace settings, and against greedy and hawq the episodic methods' \
         episodes, warmup, updates_per_episode, finalists and finalist_val_subset), replicates paired by seed: the differences of \
         final test top-1, DDPG minus the other method, where both policies were finetuned \
         (else of the best rewards) are tested against 0: holds (DDPG wins or ties) when \
         their 95% confidence interval lies at or above 0, does not hold (the other method \
         wins) when below, undecided when it contains 0 (one pair: its sign). Other \
         methods' searches of the same hardware, objective and budget whose other params \
         differ are listed as not paired, with the params they differ in.",
        checks,
    )
}

pub fn json(claims: &[Claim]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&serde_json::json!({ "claims": claims }))?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub fn markdown(claims: &[Claim]) -> String {
    let mut md = String::from(
        "# The paper's claims, checked on this run\n\nPointwise layers are 1x1 convolutions \
         (kind conv, kernel 1); depthwise layers are depthwise convolutions.\n",
    );
    for c in claims {
        md += &format!(
            "\n## ({}) {}\n\n**{}.** {}\n\n",
            c.id,
            c.statement,
            c.verdict.name(),
            c.rule
        );
        for check in &c.checks {
            md += &format!(
                "- {}: **{}**. {}\n",
                check.subject,
                check.verdict.name(),
                check.detail
            );
        }
        if c.checks.is_empty() {
            md += "- no experiment of this kind in the workflow\n";
        }
    }
    md
}

pub fn html(claims: &[Claim]) -> String {
    let mut out = String::from(
        "<p>Pointwise layers are 1x1 convolutions (kind conv, kernel 1); depthwise layers \
         are depthwise convolutions.</p>\n",
    );
    for c in claims {
        let class = c.verdict.name().replace(' ', "-");
        out += &format!(
            "<div class=\"claim\"><h3>({}) {} <span class=\"{class}\">{}</span></h3>\n<p class=\"rule\">{}</p>\n<ul>\n",
            c.id,
            html_escape(c.statement),
            c.verdict.name(),
            html_escape(c.rule)
        );
        for check in &c.checks {
            out += &format!(
                "<li>{}: <b>{}</b>. {}</li>\n",
                html_escape(&check.subject),
                check.verdict.name(),
                html_escape(&check.detail)
            );
        }
        if c.checks.is_empty() {
            out += "<li>no experiment of this kind in the workflow</li>\n";
        }
        out += "</ul></div>\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Experiments;
    use crate::tables::paper_tables;
    use crate::testdata::{experiments, kmeans, linear, other_method, replicated};

    fn claims(exp: &Experiments) -> Vec<Claim> {
        decide(exp, &paper_tables(exp))
    }

    fn verdicts(claims: &[Claim]) -> Vec<(&str, Verdict, Vec<Verdict>)> {
        claims
            .iter()
            .map(|c| {
                (
                    c.id,
                    c.verdict,
                    c.checks.iter().map(|k| k.verdict).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn each_claim_is_decided_on_the_numbers() {
        use Verdict::*;
        let exp = experiments();
        let claims = claims(&exp);
        assert_eq!(
            verdicts(&claims),
            [
                // HAQ on the cloud: 87.5% against PACT 4-bit's 88% at the same latency.
                ("a", DoesNotHold, vec![Holds, DoesNotHold, Holds]),
                ("b", Holds, vec![Holds]),
                ("c", Holds, vec![Holds]),
                // Both HAQ rows match PACT 4-bit's cost: no search at the abstract's ratios.
                ("d", NotTested, vec![NotTested, NotTested]),
                ("e", NotTested, vec![]),
                ("f", NotTested, vec![]),
            ]
        );
        let b = &claims[1].checks[0].values;
        assert_eq!(
            [
                b["edge_depthwise_a"],
                b["edge_pointwise_a"],
                b["cloud_depthwise_a"],
                b["cloud_pointwise_a"]
            ],
            [2.5, 6.0, 5.0, 4.0]
        );
        let c = &claims[2].checks[0].values;
        assert_eq!([c["depthwise_w"], c["pointwise_w"]], [4.0, 2.0]);
        let d = &claims[3].checks[0].detail;
        assert!(d.contains("no search at a ratio budget"), "{d}");
        assert!(d.contains("haq-edge: 2.105x faster"), "{d}");
        let json: serde_json::Value = serde_json::from_slice(&json(&claims).unwrap()).unwrap();
        assert_eq!(json["claims"][0]["verdict"], "does not hold");
        assert_eq!(
            json["claims"][0]["checks"][1]["values"]["baseline_top1"],
            88.0
        );
        let md = markdown(&claims);
        assert!(md.contains("## (b) On bismo-edge"), "{md}");
        assert!(md.contains("**holds.**"), "{md}");
    }

    #[test]
    fn claims_turn_with_the_numbers_and_are_untested_without_their_experiment() {
        use Verdict::*;
        let mut exp = experiments();
        exp.finetunes[1].accuracy.test_top1 = 88.0;
        // The cloud gap (pointwise - depthwise activation bits) now exceeds the edge's.
        exp.searches[0].policy = linear(&[(8, 8), (6, 2), (4, 8), (6, 2), (3, 8), (4, 4)]);
        exp.searches[2].policy = kmeans(&[3, 2, 4, 2, 4, 3]);
        let v: Vec<Verdict> = claims(&exp).iter().map(|c| c.verdict).collect();
        assert_eq!(
            v,
            [
                Holds,
                DoesNotHold,
                DoesNotHold,
                NotTested,
                NotTested,
                NotTested
            ]
        );

        // No cloud search, no size search, no 8-bit baseline.
        exp.finetunes
            .retain(|f| !["haq-cloud", "haq-size", "pact@8"].contains(&f.stage.as_str()));
        exp.searches.retain(|s| s.stage == "s-edge");
        exp.finetunes
            .iter_mut()
            .for_each(|f| f.search = f.search.map(|_| 0));
        let claims = claims(&exp);
        assert_eq!(
            verdicts(&claims),
            [
                ("a", Holds, vec![Holds]),
                ("b", NotTested, vec![NotTested]),
                ("c", NotTested, vec![]),
                ("d", NotTested, vec![NotTested]),
                ("e", NotTested, vec![]),
                ("f", NotTested, vec![]),
            ]
        );
        assert!(markdown(&claims).contains("no experiment of this kind"));
    }

    #[test]
    fn ddpg_is_checked_against_its_random_control() {
        use Verdict::*;
        let mut exp = experiments();
        // A random search beside the edge search, with the same setting.
        exp.searches.push(other_method(
            &exp.searches[1],
            "s-edge-random",
            Method::Random,
        ));
        let f = |exp: &Experiments| claims(exp).pop().unwrap();
        let tie = f(&exp);
        assert_eq!((tie.verdict, tie.checks.len()), (Holds, 1));
        assert_eq!(
            tie.checks[0].subject,
            "s-edge vs s-edge-random (random search)"
        );

        // Random search finds a better reward: DDPG loses.
        let last = exp.searches[3].episodes.len() - 1;
        exp.searches[3].episodes[last].best_reward = Some(0.5);
        let lost = f(&exp);
        assert_eq!(lost.verdict, DoesNotHold);
        assert_eq!(lost.checks[0].values["random_reward"], 0.5);

        // Both best policies finetuned: the accuracies are reported beside.
        let mut control = exp.finetunes[2].clone();
        control.stage = "haq-edge-random".into();
        control.search = Some(3);
        control.accuracy.test_top1 = 85.0;
        exp.finetunes.push(control);
        let shown = f(&exp);
        assert_eq!(shown.checks[0].values["random_top1"], 85.0);
        assert_eq!(shown.checks[0].values["ddpg_top1"], 89.0);
        // The control is not a HAQ row: (a) is unchanged.
        let all = claims(&exp);
        assert_eq!(all[0].checks.len(), 3);
    }

    #[test]
    fn speedups_against_8_bit_are_tested_on_the_rows_searched_at_a_ratio_budget() {
        use Verdict::*;
        let mut exp = experiments();
        // The edge search at half of fixed 8-bit's latency: 2.1x faster, 1 point lost.
        exp.searches[1].summary.budget = Budget::Ratio(0.5);
        let d = claims(&exp).swap_remove(3);
        assert_eq!(
            (d.verdict, d.checks[0].verdict, d.checks[1].verdict),
            (Holds, Holds, NotTested)
        );
        let v = &d.checks[0].values;
        assert_eq!([v["factor"], v["top1_loss"]], [2.0 / 0.95, 1.0]);
        // The cloud's row, at PACT 4-bit's cost, is listed but not tested.
        assert!(
            d.checks[1].detail.contains("haq-cloud: 2.000x faster"),
            "{d:?}"
        );

        // 1.3x faster than 8-bit is not the abstract's 1.4x.
        let edge_ms = exp.finetunes[2].costs.get_mut("bismo-edge").unwrap();
        edge_ms.insert("latency_ms".into(), 2.0 / 1.3);
        assert_eq!(claims(&exp)[3].checks[0].verdict, DoesNotHold);
        // Nor is losing more than a point.
        exp.finetunes[2]
            .costs
            .get_mut("bismo-edge")
            .unwrap()
            .insert("latency_ms".into(), 0.95);
        exp.finetunes[2].accuracy.test_top1 = 88.9;
        assert_eq!(claims(&exp)[3].checks[0].verdict, DoesNotHold);
    }

    /// Three seeds: HAQ on the edge beats PACT 4-bit by 1.0-1.1 points in every pair,
    /// on the cloud it wins and loses (differences 0.3, -0.6, 0.3), and the size search
    /// loses 0.9-1.0 to Deep Compression in every pair.
    fn three_seeds() -> Experiments {
        let noisy = |stage: &str, seed: u64| {
            let by_seed: [f64; 3] = match stage {
                "haq-edge" => [89.0, 89.3, 88.9],
                "pact@4" => [88.0, 88.2, 87.8],
                "haq-cloud" => [88.3, 87.6, 88.1],
                "haq-size" => [79.0, 79.2, 79.1],
                "dc@2" => [80.0, 80.1, 80.0],
                _ => [90.0, 90.1, 89.9],
            };
            by_seed[seed as usize]
        };
        replicated(&experiments(), &[0, 1, 2], noisy)
    }

    #[test]
    fn replicates_are_compared_in_pairs_of_equal_seeds_against_noise() {
        use Verdict::*;
        let exp = three_seeds();
        let a = claims(&exp).swap_remove(0);
        let subjects: Vec<(&str, Verdict)> = a
            .checks
            .iter()
            .map(|c| (c.subject.as_str(), c.verdict))
            .collect();
        assert_eq!(
            subjects,
            [
                (
                    "Latency-constrained quantization on bismo-edge (batch 1): haq-edge-{0,1,2}",
                    Holds
                ),
                (
                    "Latency-constrained quantization on bismo-cloud (batch 1): haq-cloud-{0,1,2}",
                    Undecided
                ),
                (
                    "Model size against Deep Compression: haq-size-{0,1,2}",
                    DoesNotHold
                ),
            ]
        );
        assert_eq!(a.verdict, DoesNotHold);
        // Edge: differences 1.0, 1.1, 1.1; mean 1.0667, s = 0.057735, t(2) = 4.3027.
        let t = &a.checks[0].tests[0];
        assert_eq!((t.difference.n, t.seeds.clone()), (3, vec![0, 1, 2]));
        assert!((t.difference.mean - 3.2 / 3.0).abs() < 1e-9);
        let half = 4.3027 * 0.057_735_03 / 3f64.sqrt();
        assert!(
            (t.difference.ci_low.unwrap() - (3.2 / 3.0 - half)).abs() < 1e-6,
            "{t:?}"
        );
        assert!(
            a.checks[0].detail.contains("n=3, claimed >= 0: holds"),
            "{}",
            a.checks[0].detail
        );
        // claims.json carries mean, ci_low, ci_high and n of every tested difference.
        let json: serde_json::Value = serde_json::from_slice(&json(&[a]).unwrap()).unwrap();
        let test = &json["claims"][0]["checks"][1]["tests"][0];
        assert_eq!(test["n"], 3);
        assert_eq!(test["verdict"], "undecided");
        assert!(test["ci_low"].as_f64().unwrap() < 0.0 && test["ci_high"].as_f64().unwrap() > 0.0);
        assert!((test["mean"].as_f64().unwrap()).abs() < 1e-9, "{test}");
    }

    /// `exp` (of [`three_seeds`]) with the edge search run by `method` too at each seed,
    /// its policy finetuned to `top1[seed]`.
    fn with_method(exp: &mut Experiments, method: Method, top1: [f64; 3]) {
        for (seed, top1) in top1.into_iter().enumerate() {
            // The edge search is searches[3 * seed + 1], its finetune finetunes[6 * seed + 2].
            let stage = format!("s-edge-{method}-{seed}");
            let search = other_method(&exp.searches[3 * seed + 1], &stage, method);
            exp.searches.push(search);
            let mut finetune = exp.finetunes[6 * seed + 2].clone();
            finetune.stage = format!("haq-edge-{method}-{seed}");
            finetune.search = Some(exp.searches.len() - 1);
            finetune.accuracy.test_top1 = top1;
            exp.finetunes.push(finetune);
        }
    }

    #[test]
    fn each_method_at_ddpgs_budget_wins_loses_or_is_undecided_against_it_by_seed() {
        use Verdict::*;
        let mut exp = three_seeds();
        // DDPG's edge top-1 is 89.0, 89.3, 88.9 at seeds 0, 1, 2.
        with_method(&mut exp, Method::Random, [88.7, 89.6, 88.6]);
        with_method(&mut exp, Method::Greedy, [88.5, 88.9, 88.2]);
        with_method(&mut exp, Method::Hawq, [89.5, 89.9, 89.4]);
        let f = claims(&exp).pop().unwrap();
        let checks: Vec<(&str, Verdict)> = f
            .checks
            .iter()
            .map(|c| (c.subject.as_str(), c.verdict))
            .collect();
        assert_eq!(
            checks,
            [
                // 0.3, -0.3, 0.3: the interval contains 0.
                (
                    "s-edge-{0,1,2} vs s-edge-random-{0,1,2} (random search)",
                    Undecided
                ),
                // 0.5, 0.4, 0.7; greedy takes no episodes param, and is compared all the
                // same.
                (
                    "s-edge-{0,1,2} vs s-edge-greedy-{0,1,2} (greedy sensitivity (AIMET-style))",
                    Holds
                ),
                // -0.5, -0.6, -0.5.
                (
                    "s-edge-{0,1,2} vs s-edge-hawq-{0,1,2} (Hessian + ILP (HAWQ-V3-style))",
                    DoesNotHold
                ),
            ]
        );
        assert_eq!(f.verdict, DoesNotHold);
        let [random, greedy, hawq] = &f.checks[..] else {
            panic!("{f:?}")
        };
        assert!(
            random.detail.contains("no winner within the noise"),
            "{random:?}"
        );
        assert!(greedy.detail.contains("DDPG wins"), "{greedy:?}");
        assert!(
            hawq.detail.contains(
                "At bismo-edge latency budget the cost of uniform:4: Hessian + ILP \
                 (HAWQ-V3-style) wins"
            ),
            "{hawq:?}"
        );
        assert_eq!(greedy.tests[0].what, "final top-1, DDPG - greedy (points)");
        assert!((greedy.values["greedy_top1"] - 88.533_333).abs() < 1e-5);
        // Two probes and four episodes.
        assert!(
            greedy.detail.contains("(4 vs 6 policies scored)"),
            "{greedy:?}"
        );

        // Hawq at seed 0 only (the last searches: no index shifts): one pair, decided on
        // its sign and called a single sample.
        exp.searches
            .retain(|s| !["s-edge-hawq-1", "s-edge-hawq-2"].contains(&s.stage.as_str()));
        exp.finetunes
            .retain(|f| !["haq-edge-hawq-1", "haq-edge-hawq-2"].contains(&f.stage.as_str()));
        let hawq = claims(&exp).pop().unwrap().checks.pop().unwrap();
        assert_eq!(hawq.verdict, DoesNotHold);
        assert!(hawq.detail.contains("(a single sample, n=1)"), "{hawq:?}");
    }

    #[test]
    fn ddpg_and_random_replicates_pair_by_seed_and_other_settings_are_refused() {
        use Verdict::*;
        let mut exp = three_seeds();
        let random_top1 = [88.5, 88.9, 88.2];
        for seed in 0..3u64 {
            // The edge search is searches[3 * seed + 1].
            let edge = &exp.searches[3 * seed as usize + 1];
            let random = other_method(edge, &format!("s-edge-random-{seed}"), Method::Random);
            exp.searches.push(random);
            let mut finetune = exp.finetunes[6 * seed as usize + 2].clone();
            finetune.stage = format!("haq-edge-random-{seed}");
            finetune.search = Some(exp.searches.len() - 1);
            finetune.accuracy.test_top1 = random_top1[seed as usize];
            exp.finetunes.push(finetune);
        }
        // A random search whose episodes differ is no control.
        let mut other = exp.searches[9].clone();
        other.stage = "s-edge-random-long".into();
        other.replicate.params["episodes"] = 600.into();
        exp.searches.push(other);

        let f = claims(&exp).pop().unwrap();
        assert_eq!(f.checks.len(), 2, "{f:?}");
        let check = &f.checks[0];
        assert_eq!(
            check.subject,
            "s-edge-{0,1,2} vs s-edge-random-{0,1,2} (random search)"
        );
        // DDPG 89.0, 89.3, 88.9 against 88.5, 88.9, 88.2: 0.5, 0.4, 0.7 -> [0.15, 0.91].
        let t = &check.tests[0];
        assert_eq!(
            (t.what.as_str(), t.difference.n),
            ("final top-1, DDPG - random (points)", 3)
        );
        assert!(t.difference.ci_low.unwrap() > 0.0, "{t:?}");
        assert_eq!((check.verdict, f.verdict), (Holds, Holds));
        assert_eq!(f.checks[1].verdict, NotTested);
        assert!(
            f.checks[1].detail.contains("episodes: 4 vs 600"),
            "{:?}",
            f.checks[1]
        );

        // Seed 2's control missing: two pairs remain, and the interval is over two.
        exp.searches.retain(|s| s.stage != "s-edge-random-2");
        exp.finetunes.retain(|f| f.stage != "haq-edge-random-2");
        let f = claims(&exp).pop().unwrap();
        assert_eq!(f.checks[0].tests[0].seeds, [0, 1]);
    }
}
