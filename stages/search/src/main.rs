//! `haq-search`: a mixed-precision search (docs/search.md) for one cost model, objective
//! and budget, by one method: HAQ's DDPG agent, random search, greedy sensitivity or
//! Hessian + ILP (`method`).
//!
//! Inputs: the pretrain stage's `weights`; the calibrate stage's `layers`, `cost_tables`
//! and `clips`. Each episode the method proposes a policy, the budget repair brings it
//! within budget, and the pretrained model, quantized by it, is recalibrated or finetuned
//! briefly on a search-train subset and evaluated on a search-val subset. After each
//! episode: its metrics at step = episode, then a checkpoint holding the search and every
//! episode so far. Outputs (JSON):
//! - `policy`: the best episode's policy (`layers`, readable as a policy file) with its
//!   search accuracy and its cost on every cost model of the calibrate stage's tables
//!   (keyed as the finetune stage's `costs`: `batch`, `latency_ms`, `energy_mj`, ...);
//!   with `finalists: k`, the best of the k highest-reward policies scored again on
//!   `finalist_val_subset` validation images;
//! - `episodes`: every episode's numbers and policy;
//! - `search_summary`: the setting and the best episode;
//! - `replicate`: the seed and the other params, by which a report groups replicates.
//!
//! Timings differ from run to run, and outputs must not (a resumed search gives the
//! uninterrupted one's bytes), so the time breakdown is in the metrics (`time_*_s` per
//! episode) and the log (the means, printed at the end), not in the outputs.

mod history;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use haq_core::arch::LayerInfo;
use haq_core::config::Settings;
use haq_core::hw::{check_name, policy_costs, CostTable, PolicyCost, Unit};
use haq_core::quant::{ClipTable, Policy};
use haq_core::search::{
    budget::no_fp32_reference, BitRange, Budget, DdpgConfig, EpisodeAccuracy, FinetuneConfig,
    HawqConfig, Method, MethodConfig, Mode, RandomConfig, Repair, Resource, Scoring, Search,
    SearchConfig,
};
use haq_core::stage::{cost_model, pretrained_model};
use haq_stage::{ParamError, StageContext};
use history::{Episode, Times};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The cost model the budget is on (built-in, or a workflow's `hardware:` entry); the
    /// calibrate stage must have tabulated it.
    hardware: String,
    objective: Resource,
    /// `{ratio: r}`, `{match: "uniform:k"}` or `{absolute: {value, unit}}`; read by
    /// [`Budget::from_param`], which explains a wrong form.
    budget: Value,
    /// `ddpg` (HAQ's agent), `random` (random search, the control), `greedy` (per-layer
    /// sensitivity and a greedy walk, AIMET's) or `hawq` (Hessian traces and an ILP,
    /// HAWQ-V3's); `agent` is its older name.
    #[serde(default, alias = "agent")]
    method: Method,
    /// HAWQ's Hutchinson probes per Hessian trace, and the search-train images the traces
    /// and the activation noise are measured on (default: 2 and 64; docs/search.md has
    /// their cost and the traces' stability).
    #[serde(default)]
    hessian_probes: Option<usize>,
    #[serde(default)]
    hessian_images: Option<usize>,
    /// Episodes of DDPG and random search; the other methods score what they need.
    #[serde(default)]
    episodes: Option<usize>,
    /// DDPG's episodes of uniformly random actions before the agent acts (the paper: 20).
    #[serde(default)]
    warmup: Option<usize>,
    /// DDPG updates per episode, all taken after it; unset: one per step (the paper's).
    #[serde(default)]
    updates_per_episode: Option<usize>,
    /// How an episode scores its policy: `calibrate` (batch-norm statistics
    /// re-estimated on `calibrate_images` images, no SGD) or `finetune` (the paper's:
    /// `finetune_steps` SGD steps of `finetune_batch` images).
    #[serde(default)]
    reward: RewardMode,
    #[serde(default = "default_calibrate_images")]
    calibrate_images: usize,
    #[serde(default)]
    finetune_steps: Option<usize>,
    #[serde(default)]
    finetune_batch: Option<usize>,
    /// After the budget sweep, raise bits while the budget allows (default: yes).
    #[serde(default = "yes")]
    fill_budget: bool,
    /// How a policy over budget is brought within it: `sweep` (the paper's, last layer to
    /// first) or `widest` (the widest bit width first).
    #[serde(default)]
    repair: Repair,
    /// Images of the search-train subset, drawn (seeded) from the training split less
    /// the validation examples.
    train_subset: usize,
    /// Images of the search-val subset, drawn (seeded) from the validation split.
    val_subset: usize,
    /// How many of the highest-reward policies to score again, on `finalist_val_subset`
    /// validation images that are not search-val ones, to choose the output policy; 1
    /// (the default, the paper's) takes the best episode as it is.
    #[serde(default = "one")]
    finalists: usize,
    #[serde(default)]
    finalist_val_subset: Option<usize>,
    /// The bit widths searched; by default 2..=8 (latency, energy) or 1..=8 (size).
    #[serde(default)]
    bits: Option<BitRange>,
    /// The workflow's measured tables `hardware` may name (set by `haq run`).
    #[serde(default)]
    hardware_tables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RewardMode {
    /// The default: it ranks policies like their final accuracy at least as well as
    /// the finetune, in a fraction of the time (docs/search.md).
    #[default]
    Calibrate,
    Finetune,
}

fn default_calibrate_images() -> usize {
    512
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// The `policy` output.
#[derive(Serialize)]
struct BestPolicy<'a> {
    #[serde(flatten)]
    policy: &'a Policy,
    episode: usize,
    reward: f64,
    /// Top-1 on the search-val subset after the short finetune, and the float model's.
    accuracy: f64,
    float_accuracy: f64,
    /// Top-1 on the finalists' validation images, when finalists were scored.
    finalist_accuracy: Option<f64>,
    /// The policy's cost on every cost model the calibrate stage tabulated.
    costs: BTreeMap<String, PolicyCost>,
}

/// The `search_summary` output.
#[derive(Serialize)]
struct Summary<'a> {
    hardware: &'a str,
    objective: Resource,
    unit: Unit,
    budget: &'a Budget,
    /// The budget resolved, in `unit`.
    budget_value: f64,
    float_accuracy: f64,
    method: Method,
    /// Policies scored, probes included.
    episodes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    warmup: Option<usize>,
    reward: RewardMode,
    best_episode: usize,
    best_reward: f64,
    best_accuracy: f64,
    best_cost: f64,
    /// The episode whose policy is the output: the best one, or the best finalist.
    chosen_episode: usize,
    /// The float model's top-1 on the finalists' validation images, and the finalists.
    #[serde(skip_serializing_if = "Option::is_none")]
    finalist_float_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    finalists: Vec<Finalist>,
    /// What the method found besides its policy (greedy: the sensitivities and the front
    /// it walked).
    #[serde(skip_serializing_if = "Value::is_null")]
    details: Value,
}

/// A finalist: a high-reward episode scored again on more validation images.
#[derive(Serialize)]
struct Finalist {
    episode: usize,
    reward: f64,
    /// Top-1 on the search-val subset (the reward's) and on the finalists' images.
    search_accuracy: f64,
    accuracy: f64,
}

const JSON: &str = "application/json";

fn main() {
    haq_stage::main(env!("HAQ_BUILD_IDENTITY"), check, run)
}

/// The params, read and checked: what the harness's check and the run both use.
struct Checked {
    settings: Settings,
    p: Params,
    budget: Budget,
    scoring: Scoring,
    method: MethodConfig,
}

fn check(params: &Value) -> Result<(), ParamError> {
    parse(params)
        .map(drop)
        .map_err(|e| ParamError::from_parts(e.field_and_message()))
}

fn parse(params: &Value) -> haq_core::error::Result<Checked> {
    use haq_core::check::{range, MAX_IMAGES};
    let (settings, p): (Settings, Params) = Settings::split_params(params)?;
    let budget = Budget::from_param(&p.budget)?;
    check_name(&p.hardware, &p.hardware_tables)?;
    let measured = p.hardware_tables.contains_key(&p.hardware);
    if measured && p.objective.mode() == Mode::Kmeans && matches!(budget, Budget::Ratio(_)) {
        return Err(no_fp32_reference().into());
    }
    let bad = |field: &str, problem: &str| {
        Err(haq_core::error::Error::Config {
            field: field.into(),
            problem: problem.into(),
        })
    };
    let method = method_config(&p)?;
    range("train_subset", p.train_subset, 1, MAX_IMAGES)?;
    range("val_subset", p.val_subset, 1, MAX_IMAGES)?;
    if !p.method.is_episodic() && p.finalists != 1 {
        return bad(
            "finalists",
            &format!(
                "applies to ddpg and random search; {} ends with one policy, so remove it",
                p.method
            ),
        );
    }
    range("finalists", p.finalists, 1, p.episodes.unwrap_or(1))?;
    match (p.finalists, p.finalist_val_subset) {
        (1, Some(_)) => {
            return bad(
                "finalist_val_subset",
                "applies when finalists is above 1; remove it or set finalists",
            )
        }
        (1, None) => {}
        (_, Some(n)) => range("finalist_val_subset", n, 1, MAX_IMAGES)?,
        (_, None) => {
            return bad(
                "finalists",
                "above 1 needs finalist_val_subset, the validation images the finalists are \
                 scored on (e.g. 2000)",
            )
        }
    }
    let scoring = match (p.reward, p.finetune_steps, p.finetune_batch) {
        (RewardMode::Calibrate, None, None) => Scoring::Calibrate {
            images: p.calibrate_images,
        },
        (RewardMode::Calibrate, ..) => {
            return bad(
                "reward",
                "finetune_steps and finetune_batch apply to `reward: finetune` only; remove \
                 them, or set reward: finetune",
            )
        }
        (RewardMode::Finetune, Some(steps), Some(batch)) => {
            range("finetune_steps", steps, 1, 1_000_000)?;
            range("finetune_batch", batch, 1, haq_core::check::MAX_BATCH)?;
            Scoring::Finetune(FinetuneConfig::new(steps, batch))
        }
        (RewardMode::Finetune, ..) => {
            return bad(
                "reward",
                "`reward: finetune` needs finetune_steps and finetune_batch (e.g. 30 and 32)",
            )
        }
    };
    // Said here rather than after pretrain and calibrate have run.
    scoring.check(p.train_subset)?;
    if let Some(bits) = p.bits {
        BitRange::new(bits.min, bits.max)?;
    }
    Ok(Checked {
        settings,
        p,
        budget,
        scoring,
        method,
    })
}

/// The method's config from its params: `episodes` (and DDPG's `warmup` and
/// `updates_per_episode`) belong to the episodic methods alone.
fn method_config(p: &Params) -> haq_core::error::Result<MethodConfig> {
    use haq_core::check::range;
    // The params one kind of method owns, refused by the others.
    let (episodic, hawq) = (p.method.is_episodic(), p.method == Method::Hawq);
    let owned = [
        (
            "episodes",
            p.episodes.is_some(),
            episodic,
            "the episodic methods'",
        ),
        (
            "warmup",
            p.warmup.is_some(),
            episodic,
            "the episodic methods'",
        ),
        (
            "updates_per_episode",
            p.updates_per_episode.is_some(),
            episodic,
            "the episodic methods'",
        ),
        ("hessian_probes", p.hessian_probes.is_some(), hawq, "hawq's"),
        ("hessian_images", p.hessian_images.is_some(), hawq, "hawq's"),
    ];
    if let Some((field, _, _, whose)) = owned
        .iter()
        .find(|(_, given, applies, _)| *given && !applies)
    {
        return Err(haq_core::error::Error::Config {
            field: (*field).into(),
            problem: format!(
                "does not apply to method {}; remove it (it is {whose})",
                p.method
            ),
        });
    }
    let episodes = |p: &Params| match p.episodes {
        Some(n) => Ok(range("episodes", n, 1, 1_000_000).map(|()| n)?),
        None => Err(haq_core::error::Error::Config {
            field: "episodes".into(),
            problem: format!(
                "method {} needs its number of episodes (e.g. 100)",
                p.method
            ),
        }),
    };
    match p.method {
        Method::Ddpg => {
            let episodes = episodes(p)?;
            let warmup = p.warmup.ok_or_else(|| haq_core::error::Error::Config {
                field: "warmup".into(),
                problem: "DDPG needs its warm-up episodes (the paper: 20)".into(),
            })?;
            range("warmup", warmup, 0, episodes)?;
            if let Some(k) = p.updates_per_episode {
                range("updates_per_episode", k, 1, 1_000_000)?;
            }
            Ok(MethodConfig::Ddpg(DdpgConfig {
                warmup,
                episodes,
                updates_per_episode: p.updates_per_episode,
                ..DdpgConfig::default()
            }))
        }
        Method::Random => {
            let episodes = episodes(p)?;
            // A control takes its DDPG search's params, so the two pair on them; the
            // agent's warm-up and updates change nothing in random search.
            if let Some(warmup) = p.warmup {
                range("warmup", warmup, 0, episodes)?;
            }
            Ok(MethodConfig::Random(RandomConfig { episodes }))
        }
        Method::Greedy => Ok(MethodConfig::Greedy),
        Method::Hawq => {
            let probes = p.hessian_probes.unwrap_or(2);
            let images = p.hessian_images.unwrap_or(64.min(p.train_subset));
            range("hessian_probes", probes, 1, 10_000)?;
            range("hessian_images", images, 1, p.train_subset)?;
            Ok(MethodConfig::Hawq(HawqConfig { probes, images }))
        }
    }
}

fn run(ctx: &StageContext) -> anyhow::Result<()> {
    let Checked {
        settings,
        p,
        budget,
        scoring,
        method,
    } = parse(ctx.params())?;
    let model_of_costs = cost_model(ctx, &p.hardware, &p.hardware_tables)?;
    let layers: Vec<LayerInfo> = ctx.read_json("layers")?;
    let tables: BTreeMap<String, CostTable> = ctx.read_json("cost_tables")?;
    let clips: ClipTable = ctx.read_json("clips")?;
    let table = tables.get(&p.hardware).with_context(|| {
        format!(
            "params: hardware: the calibrate stage tabulated {} but not `{}`; add it to its \
             `hardware` list",
            tables.keys().cloned().collect::<Vec<_>>().join(", "),
            p.hardware
        )
    })?;
    let objective = p
        .objective
        .cost_function(model_of_costs.as_ref(), table, &layers)?;

    settings.apply_runtime()?;

    let device = settings.device()?;
    let splits = settings.dataset.load(settings.seed)?;
    let model = pretrained_model(ctx, &settings, &splits.train, device)?;
    anyhow::ensure!(
        model.layers() == layers.as_slice(),
        "the calibrate stage's layers are not those of settings.model; rerun calibrate"
    );
    let train = splits
        .train
        .subset(p.train_subset, settings.seed)
        .context("params: train_subset")?;
    let val = splits
        .val
        .subset(p.val_subset, settings.seed)
        .context("params: val_subset (at most the dataset's val_size)")?;
    // Images the episodes never saw: the best rewards are biased upward on those.
    let finalist_val = match p.finalist_val_subset {
        None => None,
        Some(n) => Some(
            splits
                .val
                .subset_after(p.val_subset, n, settings.seed)
                .context("params: finalist_val_subset (at most val_size - val_subset)")?,
        ),
    };
    let mut accuracy = EpisodeAccuracy::new(model, clips, &train, &val, scoring, settings.seed)?;
    let float_accuracy = accuracy.float_accuracy();

    let mode = p.objective.mode();
    let config = SearchConfig {
        bits: p.bits.unwrap_or(BitRange::default_for(mode)),
        method,
        fill_budget: p.fill_budget,
        repair: p.repair,
        ..SearchConfig::new(mode, settings.seed)
    };
    let mut search = Search::new(config, &layers, objective, &budget, float_accuracy)?;
    search.prepare(&accuracy)?;
    println!(
        "{} on {}: budget {} = {:.6} {} ({} layers, {mode:?} mode); float top-1 on the \
         {} search-val images {float_accuracy:.2}%",
        p.objective,
        p.hardware,
        budget,
        search.budget(),
        search.unit(),
        layers.len(),
        p.val_subset
    );

    let mut history: Vec<Episode> = Vec::new();
    if let Some((step, bytes)) = ctx.resume()? {
        let (done, state) = history::decode(&bytes)?;
        search.restore(state)?;
        anyhow::ensure!(
            done.len() == search.episodes_done() && step + 1 == done.len() as i64,
            "checkpoint {step} holds {} episodes of history and a search after {}",
            done.len(),
            search.episodes_done()
        );
        history = done;
        eprintln!("resuming after episode {step}");
    }

    let bar = ctx.progress(search.planned() as u64, "episodes");
    bar.set_position(history.len() as u64);
    // An episode's time runs from the end of the one before, so its `other` includes
    // the previous episode's metrics and checkpoint.
    let mut since = Instant::now();
    loop {
        let episode = search.episodes_done();
        let mut measured = None;
        let Some(report) = search.run_episode(&mut |policy| {
            let m = accuracy.measure(policy, episode)?;
            measured = Some(m);
            Ok(m.accuracy)
        })?
        else {
            break;
        };
        let measured = measured.expect("run_episode measured its policy");
        if measured.diverged {
            println!("episode {episode}: the finetune diverged; scored as collapsed (0%)");
        }
        let times = Times::new(since.elapsed(), &measured, report.agent_time);
        since = Instant::now();
        let record = Episode { report, times };
        let r = &record.report;
        println!(
            "episode {episode}{}: reward {:.4}, top-1 {:.2}%, cost {:.6} {} ({:.3} of budget), \
             best reward {}; {times}",
            if r.probe { " (probe)" } else { "" },
            r.reward,
            r.accuracy,
            r.cost,
            search.unit(),
            r.cost_ratio,
            r.best_reward
                .map_or("none yet".into(), |b| format!("{b:.4}"))
        );
        ctx.log_metrics(episode as i64, &record.metrics())?;
        history.push(record);
        ctx.save_checkpoint(episode as i64, &history::encode(&history, &search.save()?)?)?;
        bar.inc(1);
    }
    bar.finish();

    let best = search
        .best()
        .expect("every method scores a policy within budget");
    let (finalist_float_accuracy, finalists) = match &finalist_val {
        Some(val) => {
            let float = accuracy.set_val(val)?;
            let ranked = haq_core::search::finalists(
                history
                    .iter()
                    .filter(|e| !e.report.probe)
                    .map(|e| (e.report.episode, e.report.reward, &e.report.policy)),
                p.finalists,
            );
            let finalists = ranked
                .into_iter()
                .map(|episode| {
                    let e = &history[episode];
                    let m = accuracy.measure(&e.report.policy, episode)?;
                    println!(
                        "finalist: episode {episode}, reward {:.4}, top-1 {:.2}% on the {} \
                         search-val images, {:.2}% on {} (float {float:.2}%)",
                        e.report.reward,
                        e.report.accuracy,
                        p.val_subset,
                        m.accuracy,
                        val.len()
                    );
                    Ok(Finalist {
                        episode,
                        reward: e.report.reward,
                        search_accuracy: e.report.accuracy,
                        accuracy: m.accuracy,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (Some(float), finalists)
        }
        None => (None, Vec::new()),
    };
    // The most accurate finalist; on a tie the higher-reward one (they are ranked).
    let winner = finalists
        .iter()
        .reduce(|w, f| if f.accuracy > w.accuracy { f } else { w });
    let chosen = &history[winner.map_or(best.episode, |w| w.episode)];
    let costs = policy_costs(&tables, &chosen.report.policy.bits())?;
    let policy = BestPolicy {
        policy: &chosen.report.policy,
        episode: chosen.report.episode,
        reward: chosen.report.reward,
        accuracy: chosen.report.accuracy,
        float_accuracy,
        finalist_accuracy: winner.map(|w| w.accuracy),
        costs,
    };

    let mean_times = Times::mean(history.iter().map(|e| &e.times));
    let after_warmup = p
        .warmup
        .filter(|_| search.method() == Method::Ddpg)
        .and_then(|w| history.get(w..))
        .filter(|h| !h.is_empty());
    let mean_times_after_warmup = after_warmup.map(|h| Times::mean(h.iter().map(|e| &e.times)));
    println!(
        "mean time per episode over {} episodes: {mean_times}",
        history.len()
    );
    if let Some(t) = &mean_times_after_warmup {
        println!("after the warm-up: {t}");
    }
    println!(
        "best: episode {}, reward {:.4}, top-1 {:.2}%, cost {:.6} {}",
        best.episode,
        best.reward,
        best.accuracy,
        best.cost,
        search.unit()
    );
    let summary = Summary {
        hardware: &p.hardware,
        objective: p.objective,
        unit: search.unit(),
        budget: &budget,
        budget_value: search.budget(),
        float_accuracy,
        episodes: history.len(),
        method: p.method,
        warmup: p.warmup.filter(|_| p.method.is_episodic()),
        reward: p.reward,
        best_episode: best.episode,
        best_reward: best.reward,
        best_accuracy: best.accuracy,
        best_cost: best.cost,
        chosen_episode: chosen.report.episode,
        finalist_float_accuracy,
        finalists,
        details: search.details()?,
    };
    ctx.put_output("policy", &serde_json::to_vec_pretty(&policy)?, JSON)?;
    ctx.put_output(
        "episodes",
        &serde_json::to_vec(&history::untimed(&history)?)?,
        JSON,
    )?;
    ctx.put_output(
        "search_summary",
        &serde_json::to_vec_pretty(&summary)?,
        JSON,
    )?;
    ctx.put_replicate()?;
    Ok(())
}
