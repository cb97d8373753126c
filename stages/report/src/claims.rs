//! The paper's claims, each checked on this run's numbers: *holds*, *does not hold*, or
//! *not tested* when the workflow lacks the experiment. docs/report.md states the rules.
//!
//! Pointwise layers are 1x1 convs (kind conv, kernel 1) and depthwise layers are kind
//! depthwise ([`Role`]); means are over the layers of a role, unweighted.

use std::collections::BTreeMap;

use serde::Serialize;

use haq_cost::budget::{Budget, Resource};
use haq_cost::policy::Policy;

use crate::collect::{Experiments, Search};
use crate::formats::{html_escape, significant};
use crate::roles::{mean_bits, Bits, Role};
use crate::tables::{Method, PaperTable, Row, Width, COST_TOLERANCE};

/// Top-1 points HAQ may lose against fixed 8-bit and still count as "negligible" (d, e).
pub const NEGLIGIBLE_LOSS: f64 = 1.0;

/// The abstract's reductions against fixed 8-bit: latency 1.4x (at the least) to 1.95x,
/// energy 1.9x.
pub const LATENCY_SPEEDUP: f64 = 1.4;
pub const ENERGY_SAVING: f64 = 1.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "holds")]
    Holds,
    #[serde(rename = "does not hold")]
    DoesNotHold,
    #[serde(rename = "not tested")]
    NotTested,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::NotTested => "not tested",
        }
    }

    fn from(holds: bool) -> Verdict {
        if holds {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub id: &'static str,
    pub statement: &'static str,
    /// How the verdict is decided.
    pub rule: &'static str,
    /// Holds when every tested check holds (and one was tested), not tested when none was.
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
}

impl Claim {
    fn new(
        id: &'static str,
        statement: &'static str,
        rule: &'static str,
        checks: Vec<Check>,
    ) -> Claim {
        let tested = checks.iter().filter(|c| c.verdict != Verdict::NotTested);
        let verdict = match tested.clone().count() {
            0 => Verdict::NotTested,
            _ => Verdict::from(tested.clone().all(|c| c.verdict == Verdict::Holds)),
        };
        Claim {
            id,
            statement,
            rule,
            verdict,
            checks,
        }
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
        ddpg_against_random(exp),
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

/// (a) Per HAQ row of every table: no costlier and at least as accurate as its baseline.
fn same_cost_accuracy(tables: &[PaperTable]) -> Claim {
    let mut checks = Vec::new();
    for t in tables {
        let unit = t.unit_label();
        for h in t.rows.iter().filter(|r| r.method == Method::Haq) {
            let subject = format!("{}: {}", t.title, h.stage);
            let (Some(b), Some(h_cost)) = (h.baseline.map(|i| &t.rows[i]), h.cost) else {
                checks.push(Check {
                    subject,
                    verdict: Verdict::NotTested,
                    detail: "no fixed-bit row costs exactly the search's budget".into(),
                    values: BTreeMap::new(),
                });
                continue;
            };
            let b_cost = b.cost.expect("fixed-bit rows have a cost");
            let cheaper = h_cost <= b_cost * (1.0 + COST_TOLERANCE);
            let verdict = Verdict::from(cheaper && h.top1 >= b.top1);
            checks.push(Check {
                subject,
                verdict,
                detail: format!(
                    "HAQ top-1 {}% at {} {unit} vs {} top-1 {}% at {} {unit}",
                    significant(h.top1),
                    significant(h_cost),
                    describe(b),
                    significant(b.top1),
                    significant(b_cost)
                ),
                values: values([
                    ("haq_top1", h.top1),
                    ("haq_cost", h_cost),
                    ("baseline_top1", b.top1),
                    ("baseline_cost", b_cost),
                ]),
            });
        }
    }
    Claim::new(
        "a",
        "At the same or lower cost, HAQ's top-1 is at least the fixed-bit baseline's.",
        "For every HAQ row of every table whose budget is a fixed-bit row's cost (`match` \
         budgets): its cost is at most that row's and its test top-1 at least the \
         baseline's. Rows at other budgets (the abstract's ratios) are not tested here.",
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
        !s.is_random() && s.summary.hardware == hardware && s.summary.objective == Resource::Latency
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
            .find(|c| c.summary.budget == edge.summary.budget)
            .and_then(|c| Some((c, dw_pw(&c.policy, roles, Bits::Activations)?)));
        let check = match cloud {
            None => Check {
                subject: format!("{} (budget {})", edge.stage, edge.summary.budget),
                verdict: Verdict::NotTested,
                detail: format!("{edge_text}; no bismo-cloud latency search at this budget"),
                values: values([("edge_depthwise_a", e_dw), ("edge_pointwise_a", e_pw)]),
            },
            Some((cloud, (c_dw, c_pw))) => {
                let (e_gap, c_gap) = (e_pw - e_dw, c_pw - c_dw);
                Check {
                    subject: format!(
                        "{} vs {} (budget {})",
                        edge.stage, cloud.stage, edge.summary.budget
                    ),
                    verdict: Verdict::from(e_gap > 0.0 && c_gap < e_gap),
                    detail: format!(
                        "{edge_text}; cloud ({}): depthwise a{} vs pointwise a{} (gap {})",
                        cloud.stage,
                        significant(c_dw),
                        significant(c_pw),
                        significant(c_gap)
                    ),
                    values: values([
                        ("edge_depthwise_a", e_dw),
                        ("edge_pointwise_a", e_pw),
                        ("cloud_depthwise_a", c_dw),
                        ("cloud_pointwise_a", c_pw),
                    ]),
                }
            }
        };
        checks.push(check);
    }
    Claim::new(
        "b",
        "On bismo-edge, depthwise layers get fewer activation bits than pointwise layers; on \
         bismo-cloud the gap is smaller or reversed.",
        "For every latency search on bismo-edge and the latency search on bismo-cloud with \
         the same budget: gap = mean a_bits of pointwise (1x1 conv) layers - mean a_bits of \
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
        .filter(|s| !s.is_random() && s.summary.objective == Resource::Size)
        .filter_map(|s| {
            let (dw, pw) = dw_pw(&s.policy, roles, Bits::Weights)?;
            Some(Check {
                subject: format!("{} (budget {})", s.stage, s.summary.budget),
                verdict: Verdict::from(dw > pw),
                detail: format!(
                    "depthwise w{} vs pointwise w{}",
                    significant(dw),
                    significant(pw)
                ),
                values: values([("depthwise_w", dw), ("pointwise_w", pw)]),
            })
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
/// fixed 8-bit, within 1 point of top-1. Rows at other budgets are listed, not tested.
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
            r.method == Method::Pact && r.weights == eight && r.activations == Some(eight)
        });
        let haq: Vec<&Row> = t
            .rows
            .iter()
            .filter(|r| r.method == Method::Haq && r.cost.is_some())
            .collect();
        if haq.is_empty() {
            continue;
        }
        let not_tested = |detail: String| Check {
            subject: t.hardware.clone(),
            verdict: Verdict::NotTested,
            detail,
            values: BTreeMap::new(),
        };
        let Some(eight) = eight else {
            checks.push(not_tested(
                "no fixed 8-bit (w8 a8) row in this table".into(),
            ));
            continue;
        };
        let eight_cost = eight.cost.expect("fixed-bit rows have a cost");
        // (row, factor, top-1 loss), cheapest first.
        let mut rows: Vec<(&Row, f64, f64)> = haq
            .iter()
            .map(|h| (*h, eight_cost / h.cost.unwrap(), eight.top1 - h.top1))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (ratio, other): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(h, _, _)| matches!(h.budget, Some(Budget::Ratio(_))));
        let list = |rows: &[(&Row, f64, f64)]| {
            rows.iter()
                .map(|(h, f, loss)| {
                    format!(
                        "{}: {}x {verb}, top-1 {}% ({} points lost)",
                        h.stage,
                        significant(*f),
                        significant(h.top1),
                        significant(*loss)
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
            significant(eight.top1)
        );
        if ratio.is_empty() {
            checks.push(not_tested(format!(
                "no search at a ratio budget; {eight_text}.{others}"
            )));
            continue;
        }
        let ok = |&(_, f, loss): &(&Row, f64, f64)| f >= factor && loss <= NEGLIGIBLE_LOSS;
        let best = ratio.iter().find(|r| ok(r)).unwrap_or(&ratio[0]);
        checks.push(Check {
            subject: t.hardware.clone(),
            verdict: Verdict::from(ok(best)),
            detail: format!("{eight_text}; {}.{others}", list(&ratio)),
            values: values([
                ("factor", best.1),
                ("top1_loss", best.2),
                ("eight_bit_top1", eight.top1),
                ("eight_bit_cost", eight_cost),
            ]),
        });
    }
    match objective {
        Resource::Energy => Claim::new(
            "e",
            "HAQ reduces energy 1.9x against fixed 8-bit with a negligible (at most 1 point) \
             loss of top-1.",
            "Per energy table (hardware), on the HAQ rows searched at a `ratio` budget: holds \
             when one uses at most 1/1.9 of the fixed w8 a8 row's energy and its test top-1 \
             is at most 1 point below it; the values are the most frugal such row's, or the \
             most frugal row's when none qualifies. Rows at other budgets are listed only.",
            checks,
        ),
        _ => Claim::new(
            "d",
            "HAQ reduces latency 1.4x-1.95x against fixed 8-bit with a negligible (at most 1 \
             point) loss of top-1.",
            "Per latency table (hardware), on the HAQ rows searched at a `ratio` budget: holds \
             when one is at least 1.4x faster than the fixed w8 a8 row and its test top-1 is \
             at most 1 point below it; the values are the fastest such row's, or the fastest \
             row's when none qualifies. Rows at other budgets are listed only.",
            checks,
        ),
    }
}

/// (f) Per DDPG search with a random-search control: DDPG's best reward is at least
/// random search's, and so (when both were finetuned) is its final top-1.
fn ddpg_against_random(exp: &Experiments) -> Claim {
    let mut checks = Vec::new();
    for (i, c) in exp.control_pairs() {
        let s = &exp.searches[i];
        let control = &exp.searches[c];
        let (Some(ddpg), Some(random)) = (s.best_reward(), control.best_reward()) else {
            continue;
        };
        let mut detail = format!(
            "best reward: DDPG {} vs random {} ({} episodes each)",
            significant(ddpg),
            significant(random),
            s.episodes.len()
        );
        let mut pairs = vec![("ddpg_reward", ddpg), ("random_reward", random)];
        if let (Some(f), Some(g)) = (exp.finetune_of(i), exp.finetune_of(c)) {
            let (a, b) = (f.accuracy.test_top1, g.accuracy.test_top1);
            detail += &format!(
                "; after the final finetune: DDPG {}% ({}) vs random {}% ({})",
                significant(a),
                f.stage,
                significant(b),
                g.stage
            );
            pairs.extend([("ddpg_top1", a), ("random_top1", b)]);
        }
        checks.push(Check {
            subject: format!("{} vs {}", s.stage, control.stage),
            verdict: Verdict::from(ddpg >= random),
            detail,
            values: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        });
    }
    Claim::new(
        "f",
        "The DDPG agent finds better policies than random search with the same episodes, \
         reward and budget.",
        "For every DDPG search with a random search of the same hardware, objective and \
         budget (`agent: random`): holds when DDPG's best reward is at least random \
         search's. The final-finetune accuracies, where both policies were finetuned, are \
         shown beside it.",
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
    use crate::testdata::{experiments, kmeans, linear};

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
        let mut random = exp.searches[1].clone();
        random.stage = "s-edge-random".into();
        random.summary.agent = crate::collect::Agent::Random;
        random.replicate.params["agent"] = "random".into();
        exp.searches.push(random);
        let f = |exp: &Experiments| claims(exp).pop().unwrap();
        let tie = f(&exp);
        assert_eq!((tie.verdict, tie.checks.len()), (Holds, 1));
        assert_eq!(tie.checks[0].subject, "s-edge vs s-edge-random");

        // Random search finds a better reward: DDPG loses.
        let last = exp.searches[3].episodes.len() - 1;
        exp.searches[3].episodes[last].best_reward = 0.5;
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
}
