//! Reads the report's inputs into [`Experiments`]: the model's layers, the float
//! accuracy, every search and every finetune, with each finetune linked to the search its
//! policy came from.
//!
//! Stages are recognised by what they output, never by their names (users name stages as
//! they like): `layers` is the calibrate stage, `episodes` + `search_summary` + `policy` a
//! search, `accuracy` + `costs` + `policy` a finetune. A finetune is *searched* when its
//! `policy_source` names one of the searches and that search's policy output; otherwise
//! it is a *fixed-bit* baseline whose `policy` param (`uniform:K`, `uniform-wK`, ...) gave
//! it. The report reads nothing but its inputs.
//!
//! Replicates: every search and finetune outputs `replicate`, its seed and its other
//! params. Stages whose params are equal but for the seed are replicates of one
//! experiment ([`Experiments::search_groups`], [`Experiments::finetune_groups`]), and
//! comparisons pair replicates of two experiments by seed.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::Deserialize;

use haq_cost::arch::LayerInfo;
use haq_cost::budget::{Budget, Resource};
use haq_cost::hw::Unit;
use haq_cost::policy::Policy;
use haq_stage::StageContext;
use haq_store::Digest;

/// Everything the report is made of.
#[derive(Debug, Clone)]
pub struct Experiments {
    /// The quantizable layers in execution order (the calibrate stage's `layers`).
    pub layers: Vec<LayerInfo>,
    /// The float model on the test split (the calibrate stage's `float_accuracy`).
    pub float: Accuracy,
    /// Ordered by stage name.
    pub searches: Vec<Search>,
    /// Ordered by stage name.
    pub finetunes: Vec<Finetune>,
}

/// Test accuracy in percent.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Accuracy {
    pub test_top1: f64,
    pub test_top5: f64,
}

/// One search: its setting, every episode and the best policy.
#[derive(Debug, Clone)]
pub struct Search {
    pub stage: String,
    pub summary: SearchSummary,
    pub episodes: Vec<Episode>,
    pub policy: Policy,
    pub replicate: Replicate,
}

/// A stage's `replicate` output: its seed, and its params but the seed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Replicate {
    pub seed: u64,
    pub params: serde_json::Value,
}

impl Replicate {
    /// The params but `keys`, to compare settings that may differ in those.
    pub fn params_without(&self, keys: &[&str]) -> serde_json::Value {
        let mut params = self.params.clone();
        if let Some(map) = params.as_object_mut() {
            for k in keys {
                map.remove(*k);
            }
        }
        params
    }
}

/// Indices of `items` grouped by equal keys, groups in the order of their first member.
fn group_by<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<usize>> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// The members of `a` and `b` with equal keys (seeds), in `a`'s order.
pub fn pair_by<K: PartialEq>(
    a: &[usize],
    b: &[usize],
    key: impl Fn(&usize) -> K,
) -> Vec<(usize, usize)> {
    a.iter()
        .filter_map(|i| b.iter().find(|j| key(j) == key(i)).map(|j| (*i, *j)))
        .collect()
}

/// The replicates' stage names as one: the common beginning and end, what differs between
/// them in braces (`haq@edge-0`, `haq@edge-1` -> `haq@edge-{0,1}`); one name as it is.
pub fn replicates_label(names: &[&str]) -> String {
    let [first, rest @ ..] = names else {
        return String::new();
    };
    if rest.is_empty() {
        return first.to_string();
    }
    let common = |a: &str, b: &str, rev: bool| {
        let pairs: Vec<(char, char)> = if rev {
            a.chars().rev().zip(b.chars().rev()).collect()
        } else {
            a.chars().zip(b.chars()).collect()
        };
        pairs.iter().take_while(|(x, y)| x == y).count()
    };
    let shortest = names.iter().map(|n| n.chars().count()).min().unwrap_or(0);
    let prefix = rest
        .iter()
        .map(|n| common(first, n, false))
        .min()
        .unwrap_or(0);
    let suffix = rest
        .iter()
        .map(|n| common(first, n, true))
        .min()
        .unwrap_or(0)
        .min(shortest - prefix);
    let middle = |n: &str| -> String {
        let len = n.chars().count();
        n.chars().skip(prefix).take(len - prefix - suffix).collect()
    };
    let head: String = first.chars().take(prefix).collect();
    let tail: String = first.chars().skip(first.chars().count() - suffix).collect();
    let middles: Vec<String> = names.iter().map(|n| middle(n)).collect();
    format!("{head}{{{}}}{tail}", middles.join(","))
}

/// The fields of a search's `search_summary` output the report uses.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchSummary {
    pub hardware: String,
    pub objective: Resource,
    pub budget: Budget,
    /// The budget in `unit`.
    pub budget_value: f64,
    /// The float model's top-1 on the search-val subset, in percent.
    pub float_accuracy: f64,
    pub warmup: usize,
    /// `ddpg` (HAQ) or `random` (random search, the control); searches written before
    /// random search existed are DDPG's.
    #[serde(default)]
    pub agent: Agent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    #[default]
    Ddpg,
    Random,
}

impl Search {
    pub fn is_random(&self) -> bool {
        self.summary.agent == Agent::Random
    }

    /// The best reward, from the last episode.
    pub fn best_reward(&self) -> Option<f64> {
        self.episodes.last().map(|e| e.best_reward)
    }
}

/// A DDPG experiment and its control: the random search whose params are DDPG's but for
/// the agent, paired replicate by replicate on the seed.
#[derive(Debug, Clone)]
pub struct Control {
    /// Indices into [`Experiments::searches`]: the DDPG replicates, then the random ones.
    pub ddpg: Vec<usize>,
    pub random: Vec<usize>,
}

/// A random search of a DDPG search's hardware, objective and budget that is not its
/// control: the params they differ in (beside the agent and the seed), as `key: a vs b`.
#[derive(Debug, Clone)]
pub struct Refused {
    pub ddpg: String,
    pub random: String,
    pub differences: Vec<String>,
}

impl Experiments {
    /// Searches grouped into replicates (equal params but the seed).
    pub fn search_groups(&self) -> Vec<Vec<usize>> {
        group_by(&self.searches, |s| s.replicate.params.clone())
    }

    /// Finetunes grouped into replicates: equal params but the seed, and policies from
    /// replicates of one search (or from the same param).
    pub fn finetune_groups(&self) -> Vec<Vec<usize>> {
        group_by(&self.finetunes, |f| {
            let search = f.search.map(|i| self.searches[i].replicate.params.clone());
            (f.replicate.params.clone(), search)
        })
    }

    /// Every DDPG experiment that has a random-search control, and the random searches of
    /// the same hardware, objective and budget refused as controls, with the params
    /// they differ in (beside the agent and the seed).
    pub fn controls(&self) -> (Vec<Control>, Vec<Refused>) {
        let groups = self.search_groups();
        let (random, ddpg): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) =
            groups.iter().partition(|g| self.searches[g[0]].is_random());
        let setting = |g: &[usize]| self.searches[g[0]].replicate.params_without(&["agent"]);
        let mut controls = Vec::new();
        let mut refused = Vec::new();
        for d in ddpg {
            let first = &self.searches[d[0]];
            let found = random.iter().find(|r| setting(r) == setting(d));
            if let Some(r) = found {
                controls.push(Control {
                    ddpg: d.clone(),
                    random: r.to_vec(),
                });
            }
            for r in random.iter().filter(|r| Some(*r) != found) {
                let other = &self.searches[r[0]];
                let same_setting = other.summary.hardware == first.summary.hardware
                    && other.summary.objective == first.summary.objective
                    && other.summary.budget == first.summary.budget;
                if same_setting {
                    let (a, b) = (setting(d), setting(r));
                    refused.push(Refused {
                        ddpg: first.stage.clone(),
                        random: other.stage.clone(),
                        differences: differences(&a, &b),
                    });
                }
            }
        }
        (controls, refused)
    }

    /// The finetune of `searches[i]`'s best policy, if any.
    pub fn finetune_of(&self, i: usize) -> Option<&Finetune> {
        self.finetunes.iter().find(|f| f.search == Some(i))
    }
}

/// The top-level keys whose values differ between two params maps, as `key: a vs b`.
fn differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&serde_json::Value>| v.map_or("unset".to_string(), |v| v.to_string());
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {} vs {}", show(a.get(k)), show(b.get(k))))
        .collect()
}

/// The fields of one entry of a search's `episodes` output the report uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Episode {
    pub reward: f64,
    /// Top-1 on the search-val subset after the short finetune, in percent.
    pub accuracy: f64,
    pub best_reward: f64,
}

/// One finetuned policy.
#[derive(Debug, Clone)]
pub struct Finetune {
    pub stage: String,
    /// Index into [`Experiments::searches`] of the search whose policy was finetuned;
    /// `None` for a fixed-bit baseline.
    pub search: Option<usize>,
    pub accuracy: Accuracy,
    /// Cost model -> quantity (`latency_ms`, `energy_mj`, `size_bytes`, `cycles`, `batch`)
    /// -> value, as the finetune stage's `costs` output has it.
    pub costs: BTreeMap<String, BTreeMap<String, f64>>,
    pub policy: Policy,
    pub replicate: Replicate,
}

impl Finetune {
    /// The policy's cost on `hardware` in `unit`, if the finetune costed it there.
    pub fn cost(&self, hardware: &str, unit: Unit) -> Option<f64> {
        self.costs.get(hardware)?.get(unit.quantity()).copied()
    }

    /// The batch `hardware`'s costs are for.
    pub fn batch(&self, hardware: &str) -> Option<f64> {
        self.costs.get(hardware)?.get("batch").copied()
    }
}

/// Where a finetune's policy came from: its output `policy_source`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PolicySource {
    /// A fixed policy's spec: the policy output says all the report needs of it.
    Param(serde::de::IgnoredAny),
    Upstream {
        stage: String,
        digest: String,
    },
}

/// Reads every input of the report's run.
pub fn collect(ctx: &StageContext) -> anyhow::Result<Experiments> {
    let mut by_stage: BTreeMap<&str, BTreeMap<&str, &Digest>> = BTreeMap::new();
    for (name, digest) in ctx.inputs() {
        let (stage, output) = name
            .rsplit_once('/')
            .with_context(|| format!("input {name} is not named <stage>/<output>"))?;
        by_stage.entry(stage).or_default().insert(output, digest);
    }
    let has = |outputs: &BTreeMap<&str, &Digest>, names: &[&str]| {
        names.iter().all(|n| outputs.contains_key(n))
    };

    let calibrates: Vec<&str> = by_stage
        .iter()
        .filter(|(_, o)| has(o, &["layers", "float_accuracy"]))
        .map(|(stage, _)| *stage)
        .collect();
    let [calibrate] = calibrates.as_slice() else {
        bail!(
            "the report needs exactly one calibrate stage (one that outputs layers and \
             float_accuracy) in its needs:, got {}",
            calibrates.len()
        );
    };
    let layers: Vec<LayerInfo> = ctx.read_json_from(calibrate, "layers")?;
    let float: Accuracy = ctx.read_json_from(calibrate, "float_accuracy")?;

    let mut searches = Vec::new();
    let mut search_policies = Vec::new();
    for (stage, outputs) in by_stage
        .iter()
        .filter(|(_, o)| has(o, &["episodes", "search_summary", "policy"]))
    {
        searches.push(Search {
            stage: stage.to_string(),
            summary: ctx.read_json_from(stage, "search_summary")?,
            episodes: ctx.read_json_from(stage, "episodes")?,
            policy: ctx.read_json_from(stage, "policy")?,
            replicate: ctx.read_json_from(stage, haq_stage::REPLICATE)?,
        });
        search_policies.push((*stage, outputs["policy"].to_string()));
    }

    let mut finetunes = Vec::new();
    for (stage, _) in by_stage
        .iter()
        .filter(|(_, o)| has(o, &["accuracy", "costs", "policy"]))
    {
        let source: PolicySource = ctx.read_json_from(stage, "policy_source")?;
        let search = match source {
            PolicySource::Param(_) => None,
            PolicySource::Upstream {
                stage: from,
                digest,
            } => Some(
                search_policies
                    .iter()
                    .position(|(s, d)| *s == from && *d == digest)
                    .with_context(|| {
                        format!(
                            "stage {stage} finetuned the policy of stage {from}, but no search \
                             in the report's needs: output it; add that search stage to needs:"
                        )
                    })?,
            ),
        };
        finetunes.push(Finetune {
            stage: stage.to_string(),
            search,
            accuracy: ctx.read_json_from(stage, "accuracy")?,
            costs: ctx.read_json_from(stage, "costs")?,
            policy: ctx.read_json_from(stage, "policy")?,
            replicate: ctx.read_json_from(stage, haq_stage::REPLICATE)?,
        });
    }
    check_layers(&layers, &searches, &finetunes)?;
    Ok(Experiments {
        layers,
        float,
        searches,
        finetunes,
    })
}

/// Every policy must describe the calibrated model, layer for layer.
fn check_layers(
    layers: &[LayerInfo],
    searches: &[Search],
    finetunes: &[Finetune],
) -> anyhow::Result<()> {
    let policies = searches
        .iter()
        .map(|s| (&s.stage, &s.policy))
        .chain(finetunes.iter().map(|f| (&f.stage, &f.policy)));
    for (stage, policy) in policies {
        anyhow::ensure!(
            policy.layers.len() == layers.len(),
            "stage {stage}'s policy has {} layers, the calibrate stage's model {}; rerun \
             {stage} against the same calibrate stage",
            policy.layers.len(),
            layers.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{experiments, replicated};

    #[test]
    fn replicate_names_keep_what_they_share_and_brace_what_differs() {
        assert_eq!(
            replicates_label(&["a@x-0", "a@x-1", "a@x-12"]),
            "a@x-{0,1,12}"
        );
        assert_eq!(
            replicates_label(&["haq@edge-ddpg-0", "haq@edge-ddpg-1"]),
            "haq@edge-ddpg-{0,1}"
        );
        assert_eq!(replicates_label(&["s-1-b", "s-2-b"]), "s-{1,2}-b");
        assert_eq!(replicates_label(&["ab", "abc"]), "ab{,c}");
        assert_eq!(replicates_label(&["only"]), "only");
    }

    #[test]
    fn replicates_group_by_params_but_the_seed_and_pair_by_seed() {
        let exp = replicated(&experiments(), &[0, 1, 2], |_, _| 88.0);
        let groups = exp.search_groups();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[1], [1, 4, 7], "s-edge at seeds 0, 1, 2");
        // A finetune group: equal params, policies from one search group.
        let finetunes = exp.finetune_groups();
        assert_eq!(finetunes.len(), 6);
        assert!(finetunes.iter().all(|g| g.len() == 3));
        let seed = |i: &usize| exp.searches[*i].replicate.seed;
        assert_eq!(pair_by(&[1, 4, 7], &[7, 1], seed), [(1, 1), (7, 7)]);
        // Differing in any other param makes another experiment.
        let mut other = exp.clone();
        other.searches[7].replicate.params["episodes"] = 600.into();
        assert_eq!(other.search_groups().len(), 4);
    }
}
