//! `haq-finetune`: quantization-aware training of the pretrained model under one policy, the
//! final finetune of HAQ (the paper's §4; docs/search.md), checkpointing every epoch.
//!
//! Params: the training recipe (`haq_core::train::Recipe`: `epochs`, `batch_size`, `lr`, ...)
//! and the policy, either the param `policy` or the upstream input `policy` (a search
//! stage's best policy) — exactly one of them. The param is one of:
//! - `uniform:K`: layer 0 w8 a8, every other layer wK aK, linear mode;
//! - `uniform-wWaA`: the same with separate weight and activation bits;
//! - `uniform-wW`: every layer's weights k-means clustered to 2^W values;
//! - the path of a policy JSON file (`{"layers":[{"w_bits":8,"a_bits":8},...]}`), absolute
//!   or relative to the directory `haq run` was started in (a stage cannot see where the
//!   workflow file is); list it in the stage's `deps:` too, so that editing it reruns the
//!   stage.
//!
//! The paper's baselines are this stage with a fixed policy and the HAQ rows' recipe:
//! fixed-bit PACT is `policy: uniform:K` (linear mode), Deep Compression is
//! `policy: uniform-wK` (k-means mode).
//!
//! The policy decides the mode. Linear (it has activation bits): weights and the inputs of
//! every quantizable layer are fake-quantized, the clips starting from the calibrate stage's
//! table and the activation clips trained with PACT (which regularises them with L2, so the
//! recipe's weight decay applies to them too). k-means (weights only): every layer's
//! weights are clustered and, after every optimiser step, reset to their cluster means.
//!
//! Inputs: `weights` (pretrain); `clips` and `cost_tables` (calibrate); `policy` (search)
//! unless the param gives it. Outputs:
//! - `accuracy` (JSON): `test_top1`, `test_top5`, `val_top1`, in percent;
//! - `costs` (JSON): for every cost model in the cost tables, the policy's total at the
//!   table's batch, keyed by quantity and unit (`latency_ms`, `energy_mj`, `size_bytes`,
//!   `cycles`);
//! - `policy` (JSON): the policy trained;
//! - `policy_source` (JSON): where it came from, `{"param": "uniform:4"}` or
//!   `{"upstream": {"stage": "<search stage>", "digest": "<its policy output>"}}`;
//! - `weights` (safetensors): every variable of the finetuned model in float, linear mode's
//!   activation clips (`quant.input_clip_<layer>`) included;
//! - `quantized_model` (safetensors): the deployable model, integer weight codes with their
//!   scales or codebooks (`haq_core::quant::export`); `haq export-model RUN` writes it out;
//! - `replicate` (JSON): the seed and the other params, by which a report groups replicates.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};

use haq_core::config::Settings;
use haq_core::hw::{policy_costs, CostTable};
use haq_core::quant::{export, ClipTable, Policy, Quantization};
use haq_core::stage::pretrained_model;
use haq_core::train::{evaluate, to_safetensors, Recipe, Trainer};
use haq_stage::{ParamError, StageContext};

const JSON: &str = "application/json";

fn main() {
    haq_stage::main(env!("HAQ_BUILD_IDENTITY"), check, run)
}

/// The params read and checked: settings, recipe and the `policy` param if given.
fn parse(params: &Value) -> haq_core::error::Result<(Settings, Recipe, Option<String>)> {
    let (settings, recipe, policy) = Settings::split_training_params(
        params,
        "policy",
        "a string (uniform:K, uniform-wWaA, uniform-wW or a policy file's path)",
    )?;
    if let Some(spec) = &policy {
        Policy::check_spec(spec).map_err(|e| {
            let cwd = std::env::current_dir().unwrap_or_default();
            haq_core::error::Error::Config {
                field: "policy".into(),
                problem: format!(
                    "{e} (a relative path is read from {}, where haq run started)",
                    cwd.display()
                ),
            }
        })?;
    }
    Ok((settings, recipe, policy))
}

fn check(params: &Value) -> Result<(), ParamError> {
    parse(params)
        .map(drop)
        .map_err(|e| ParamError::from_parts(e.field_and_message()))
}

/// Where the policy comes from; written as the output `policy_source`, so that the report
/// links a finetune to its search from its own inputs.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum PolicySource {
    /// The `policy` param.
    Param(String),
    /// The `policy` output of this upstream stage (its digest), in JSON.
    Upstream {
        stage: String,
        digest: String,
        #[serde(skip)]
        json: Vec<u8>,
    },
}

impl PolicySource {
    /// The source of the policy, given the `policy` param if any: exactly one source must
    /// give a policy.
    fn find(ctx: &StageContext, param: Option<String>) -> anyhow::Result<PolicySource> {
        let upstream: Vec<(&str, _)> = ctx.inputs_named("policy").collect();
        match (param, upstream.as_slice()) {
            (Some(spec), []) => Ok(PolicySource::Param(spec)),
            (None, [(stage, digest)]) => Ok(PolicySource::Upstream {
                stage: stage.to_string(),
                digest: digest.to_string(),
                json: ctx.store().get_bytes(digest)?,
            }),
            (None, []) => bail!(
                "no policy: give the param policy (e.g. policy: uniform:4) or add a stage \
                 that outputs a policy (a search) to needs:"
            ),
            (Some(spec), _) => bail!(
                "two policies: the param policy ({spec}) and the output of {}; remove the \
                 param or that stage from needs:",
                names(&upstream)
            ),
            (None, _) => bail!(
                "{} upstream stages output a policy ({}); keep one in needs:",
                upstream.len(),
                names(&upstream)
            ),
        }
    }

    /// The policy, checked against a model with `n_layers` quantizable layers.
    fn read(&self, n_layers: usize) -> anyhow::Result<Policy> {
        match self {
            PolicySource::Param(spec) => Policy::parse(spec, n_layers).with_context(|| {
                let cwd = std::env::current_dir().unwrap_or_default();
                format!(
                    "param policy (a relative path is read from {}, where haq run started)",
                    cwd.display()
                )
            }),
            PolicySource::Upstream { stage, json, .. } => {
                let policy: Policy = serde_json::from_slice(json)
                    .with_context(|| format!("reading the policy output of stage {stage}"))?;
                policy
                    .check(n_layers)
                    .with_context(|| format!("the policy output of stage {stage}"))?;
                Ok(policy)
            }
        }
    }
}

fn names<D>(inputs: &[(&str, D)]) -> String {
    inputs
        .iter()
        .map(|(stage, _)| *stage)
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(ctx: &StageContext) -> anyhow::Result<()> {
    let (settings, recipe, policy) = parse(ctx.params())?;
    let source = PolicySource::find(ctx, policy)?;
    let clips: ClipTable = ctx.read_json("clips")?;
    let tables: BTreeMap<String, CostTable> = ctx.read_json("cost_tables")?;
    settings.apply_runtime()?;
    let device = settings.device()?;
    let splits = settings.dataset.load(settings.seed)?;
    let subset = recipe.train_subset(&splits.train, settings.seed)?;
    let train = subset.as_ref().unwrap_or(&splits.train);
    let model = pretrained_model(ctx, &settings, train, device)?;
    let policy = source.read(model.layers().len())?;
    let costs = policy_costs(&tables, &policy.bits())?;

    // Applied to the pretrained weights also when resuming: k-means mode gets back the
    // clusters the run started with, and the checkpoint then replaces the weights (and
    // linear mode's clips) with their trained values.
    let mut quantization = Quantization::apply(&model, &policy, &clips, settings.seed)?;
    let mode = quantization.mode();
    eprintln!(
        "{mode} mode, {} layers: {}",
        policy.layers.len(),
        policy
            .layers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let (quantizer, mut kmeans) = quantization.parts();
    let net = model.quantized(quantizer);
    let mut trainer = Trainer::new(
        &net,
        model.var_store(),
        &recipe,
        (train, &splits.val),
        settings.seed,
        device,
    );
    let val = haq_core::stage::train(ctx, &mut trainer, |_| {
        // Deep Compression's trained quantization: the step moved each weight; the
        // cluster's shared value moves by their mean.
        if let Some(k) = kmeans.as_deref_mut() {
            k.update();
        }
    })?;
    let test = evaluate(&net, &splits.test, recipe.eval_batch, device)?;
    eprintln!(
        "{mode} finetune: test top-1 {:.2}% top-5 {:.2}%, val top-1 {:.2}%",
        test.top1, test.top5, val.top1
    );
    let mut metrics = vec![
        ("test_top1".to_string(), test.top1),
        ("test_top5".to_string(), test.top5),
    ];
    for (name, cost) in &costs {
        for (quantity, value) in &cost.totals {
            eprintln!("{name}: {quantity} {value}");
            metrics.push((format!("{name}.{quantity}"), *value));
        }
    }
    let metrics: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    ctx.log_metrics(recipe.epochs as i64, &metrics)?;

    ctx.put_output(
        "weights",
        &to_safetensors(&model.weights())?,
        "application/x-safetensors",
    )?;
    let accuracy = json!({"test_top1": test.top1, "test_top5": test.top5, "val_top1": val.top1});
    ctx.put_output("accuracy", accuracy.to_string().as_bytes(), JSON)?;
    ctx.put_output("costs", &serde_json::to_vec_pretty(&costs)?, JSON)?;
    ctx.put_output("policy", &serde_json::to_vec_pretty(&policy)?, JSON)?;
    ctx.put_output("policy_source", &serde_json::to_vec(&source)?, JSON)?;
    ctx.put_replicate()?;
    ctx.put_output(
        "quantized_model",
        &export(&model, &policy, &clips)?,
        "application/x-safetensors",
    )?;
    Ok(())
}
