//! Reads the report's inputs into [`Experiments`]: the model's layers, the float
//! accuracy, every search and every finetune, with each finetune linked to the search its
//! policy came from.
//!
//! Stages are recognised by what they output, never by their names (users name stages as
//! they like): `layers` is the calibrate stage, `episodes` + `search_summary` + `policy` a
//! search, `accuracy` + `costs` + `policy` a finetune. A finetune is *searched* when its
//! `policy_source` names one of the searches and that search's policy output; otherwise
//! it is a *fixed-bit* baseline whose `policy` param (`uniform:K`, `uniform-wK`, ...) gave
//! it. The report reads nothing but its inputs, and for the searches' seconds alone (the
//! one machine-dependent number, `search_cost`) their runs' times in the store.
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
use haq_cost::method::Method;
use haq_cost::policy::Policy;
use haq_stage::StageContext;
use haq_store::{Digest, RunStatus};

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
    /// Seconds the search's run spent, from its metrics: the one number that depends on
    /// the machine, so only `search-cost.*` shows it. `None` when the store lacks the run.
    pub seconds: Option<f64>,
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
    /// DDPG's warm-up episodes; absent for the methods without one.
    #[serde(default)]
    pub warmup: Option<usize>,
    /// Older searches call it `agent`; searches written before random search existed have
    /// neither, and are DDPG's.
    #[serde(default, alias = "agent")]
    pub method: Method,
    /// Policies scored, probes included; absent from the oldest summaries.
    #[serde(default)]
    pub episodes: Option<usize>,
    /// What the method found besides its policy; only its `front` is read.
    #[serde(default)]
    pub details: Option<Details>,
}

/// The part of a summary's `details` the report draws.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Details {
    /// Greedy's walk down the accuracy-cost front, if the method has one.
    #[serde(default)]
    pub front: Vec<FrontPoint>,
}

/// One step of a walked front: a policy's cost in the objective's unit and the top-1 the
/// walk predicted for it (search-val, percent).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct FrontPoint {
    pub cost: f64,
    pub predicted_accuracy: f64,
}

impl Search {
    pub fn method(&self) -> Method {
        self.summary.method
    }

    pub fn is_random(&self) -> bool {
        self.method() == Method::Random
    }

    /// The best reward, from the last episode; `None` while only probes were scored.
    pub fn best_reward(&self) -> Option<f64> {
        self.episodes.last().and_then(|e| e.best_reward)
    }

    /// The episodes that are results: all but the probes.
    pub fn results(&self) -> impl Iterator<Item = &Episode> {
        self.episodes.iter().filter(|e| !e.probe)
    }

    /// The search's cost in policies scored, probes included.
    pub fn policies_scored(&self) -> usize {
        self.summary.episodes.unwrap_or(self.episodes.len())
    }

    /// The front the method walked, empty if it has none.
    pub fn front(&self) -> &[FrontPoint] {
        self.summary.details.as_ref().map_or(&[], |d| &d.front)
    }
}

/// A DDPG experiment and another method's searches of its hardware, objective and budget
/// whose params are DDPG's but for the method's own ([`compared_params`]), paired
/// replicate by replicate on the seed.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub method: Method,
    /// Indices into [`Experiments::searches`]: the DDPG replicates, then the other ones.
    pub ddpg: Vec<usize>,
    pub other: Vec<usize>,
}

/// Another method's searches of a DDPG search's hardware, objective and budget that are
/// not compared with it: the params they differ in, as `key: a vs b`.
#[derive(Debug, Clone)]
pub struct Refused {
    pub ddpg: String,
    pub other: String,
    pub differences: Vec<String>,
}

/// The params two searches must agree on to be compared: all but the method's name, its
/// own settings (HAWQ's traces) and the seed, and, against a method that scores what it
/// needs rather than a set number of episodes, all but those the episodic methods alone
/// take.
fn compared_params(search: &Search, other: Method) -> serde_json::Value {
    let mut ignored = vec!["agent", "method", "hessian_probes", "hessian_images"];
    if !other.is_episodic() {
        ignored.extend([
            "episodes",
            "warmup",
            "updates_per_episode",
            "finalists",
            "finalist_val_subset",
        ]);
    }
    search.replicate.params_without(&ignored)
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

    /// Every DDPG experiment and every other method's experiment of the same hardware,
    /// objective and budget: compared when their params agree ([`compared_params`]),
    /// else refused with the params they differ in. DDPG's groups in order, then the
    /// methods in [`Method::ALL`] order.
    pub fn comparisons(&self) -> (Vec<Comparison>, Vec<Refused>) {
        let groups = self.search_groups();
        let first = |g: &[usize]| &self.searches[g[0]];
        let mut comparisons = Vec::new();
        let mut refused = Vec::new();
        for d in groups.iter().filter(|g| first(g).method() == Method::Ddpg) {
            let ddpg = first(d);
            for method in Method::ALL.into_iter().filter(|m| *m != Method::Ddpg) {
                let setting = |g: &[usize]| compared_params(first(g), method);
                let same_setting = |g: &&Vec<usize>| {
                    let s = &first(g).summary;
                    s.method == method
                        && s.hardware == ddpg.summary.hardware
                        && s.objective == ddpg.summary.objective
                        && s.budget == ddpg.summary.budget
                };
                let mut found = false;
                for o in groups.iter().filter(same_setting) {
                    // One experiment per method is compared; more of equal params would
                    // be the same one under another stage name.
                    if !found && setting(o) == setting(d) {
                        found = true;
                        comparisons.push(Comparison {
                            method,
                            ddpg: d.clone(),
                            other: o.clone(),
                        });
                    } else {
                        refused.push(Refused {
                            ddpg: ddpg.stage.clone(),
                            other: first(o).stage.clone(),
                            differences: differences(&setting(d), &setting(o)),
                        });
                    }
                }
            }
        }
        (comparisons, refused)
    }

    /// Every DDPG experiment that has a random-search control: the comparisons with
    /// random search.
    pub fn controls(&self) -> Vec<Comparison> {
        let (comparisons, _) = self.comparisons();
        comparisons
            .into_iter()
            .filter(|c| c.method == Method::Random)
            .collect()
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
    /// The best reward within budget so far; `None` while only probes were scored.
    pub best_reward: Option<f64>,
    /// A policy the method scored as it is to measure something (greedy's sensitivity
    /// probes), usually over budget: never a result.
    #[serde(default)]
    pub probe: bool,
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
            seconds: search_seconds(ctx, stage, outputs["search_summary"])?,
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

/// Seconds the run of `stage` that wrote `summary` took: the newest completed run with
/// that output (equal outputs are equal searches), from its start to its end. The whole
/// stage and not its episodes' logged times, which leave out what a method measures
/// before its first policy (HAWQ's Hessian traces); the loading of data and model, a
/// few seconds, is in every method's. A resumed run counts its last attempt only.
fn search_seconds(
    ctx: &StageContext,
    stage: &str,
    summary: &Digest,
) -> anyhow::Result<Option<f64>> {
    let store = ctx.store();
    for run in store.runs(Some(stage))? {
        if run.status == RunStatus::Done
            && store.outputs(run.id)?.get("search_summary") == Some(summary)
        {
            return Ok(run.ended_at.map(|end| end - run.started_at));
        }
    }
    Ok(None)
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
    fn summaries_of_every_age_parse_with_their_method() {
        let summary = |extra: &str| {
            let json = format!(
                r#"{{"hardware": "bismo-edge", "objective": "latency",
                    "budget": {{"match": "uniform:4"}}, "budget_value": 1.0,
                    "float_accuracy": 90.0{extra}}}"#
            );
            serde_json::from_str::<SearchSummary>(&json).unwrap()
        };
        // Before random search: neither field, DDPG's.
        let oldest = summary(r#", "warmup": 20"#);
        assert_eq!((oldest.method, oldest.warmup), (Method::Ddpg, Some(20)));
        assert_eq!(oldest.episodes, None);
        // Then `agent`, now `method`; greedy has no warm-up and a front.
        assert_eq!(summary(r#", "agent": "random""#).method, Method::Random);
        let greedy = summary(
            r#", "method": "greedy", "episodes": 9, "details": {"layers": [1],
               "widest_accuracy": 89.0, "sensitivity": [[88.0]],
               "front": [{"cost": 2.0, "predicted_accuracy": 89.0}]}"#,
        );
        assert_eq!((greedy.method, greedy.warmup), (Method::Greedy, None));
        assert_eq!(
            greedy.details.unwrap().front,
            [FrontPoint {
                cost: 2.0,
                predicted_accuracy: 89.0
            }]
        );
        // Hawq's details have no front.
        let hawq = summary(r#", "method": "hawq", "details": {"probes": 2}"#);
        assert!(hawq.details.unwrap().front.is_empty());
        // Episodes: a probe before any best reward.
        let episodes: Vec<Episode> = serde_json::from_str(
            r#"[{"reward": -3, "accuracy": 80, "best_reward": null, "probe": true},
                {"reward": -1, "accuracy": 88, "best_reward": -1}]"#,
        )
        .unwrap();
        assert_eq!(
            episodes
                .iter()
                .map(|e| (e.best_reward, e.probe))
                .collect::<Vec<_>>(),
            [(None, true), (Some(-1.0), false)]
        );
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
