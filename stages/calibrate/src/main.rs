//! `haq-calibrate`: what the search and finetune stages look up about the pretrained model,
//! computed once. Input: the pretrain stage's `weights`. Outputs (JSON):
//! - `layers`: the quantizable layers in execution order (`arch::LayerInfo`);
//! - `cost_tables`: for each cost model in `hardware` (built-in, or a workflow's
//!   `hardware:` entry: a measured table, its file an input `file:<path>`), its
//!   `hw::CostTable` (every layer at every (w, a) bit pair, at the model's own batch size),
//!   as a map name -> table;
//! - `clips`: the weight and activation clip of every layer at every bit width
//!   (`quant::ClipTable`), activations measured on a seeded calibration batch;
//! - `float_accuracy`: the float model's top-1 on the validation split (what the search's
//!   rewards are relative to) and top-1 / top-5 on the test split.
//!
//! It also logs those accuracies and the test top-1 with every layer at w8 a8 as metrics.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use haq_core::config::Settings;
use haq_core::hw::{build_table, check_name, CostTable};
use haq_core::quant::{measure_clips, LinearQuantizer, Policy};
use haq_core::stage::{cost_model, pretrained_model};
use haq_core::train::evaluate;
use haq_stage::ParamError;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Cost models to tabulate, by name (`haq hw list`, or the workflow's `hardware:`
    /// entries).
    hardware: Vec<String>,
    /// The workflow's measured tables `hardware` may name (set by `haq run`).
    #[serde(default)]
    hardware_tables: BTreeMap<String, String>,
    /// Images in the calibration batch, drawn (seeded) from the training split less the
    /// validation examples.
    calib_batch: usize,
}

/// The params read and checked.
fn parse(params: &Value) -> haq_core::error::Result<(Settings, Params)> {
    let (settings, p): (Settings, Params) = Settings::split_params(params)?;
    haq_core::check::range("calib_batch", p.calib_batch, 1, haq_core::check::MAX_BATCH)?;
    if p.hardware.is_empty() {
        return Err(haq_core::error::Error::Config {
            field: "hardware".into(),
            problem: "empty: name at least one cost model (`haq hw list`)".into(),
        });
    }
    for name in &p.hardware {
        check_name(name, &p.hardware_tables)?;
    }
    Ok((settings, p))
}

fn check(params: &Value) -> Result<(), ParamError> {
    parse(params)
        .map(drop)
        .map_err(|e| ParamError::from_parts(e.field_and_message()))
}

/// The `float_accuracy` output, in percent.
#[derive(Serialize)]
struct FloatAccuracy {
    search_val_top1: f64,
    test_top1: f64,
    test_top5: f64,
}

/// Images per evaluation batch: large batches are faster, and this one fits any device.
const EVAL_BATCH: usize = 500;

const JSON: &str = "application/json";

fn main() {
    haq_stage::main(
        env!("HAQ_BUILD_IDENTITY"),
        check,
        |ctx| -> anyhow::Result<()> {
            let (settings, p) = parse(ctx.params())?;
            settings.apply_runtime()?;
            let device = settings.device()?;
            let splits = settings.dataset.load(settings.seed)?;
            let model = pretrained_model(ctx, &settings, &splits.train, device)?;
            let config = model.config();
            let layers = model.layers();
            println!(
                "{} at width {} on {}x{} inputs: {} quantizable layers",
                config.arch,
                config.width,
                config.input_size,
                config.input_size,
                layers.len()
            );

            let start = Instant::now();
            let mut tables: BTreeMap<&str, CostTable> = BTreeMap::new();
            for name in &p.hardware {
                let m = cost_model(ctx, name, &p.hardware_tables)?;
                m.covers(layers)?;
                tables.insert(name, build_table(m.as_ref(), layers, m.default_batch()));
            }
            println!(
                "cost tables for {} in {:.0} ms",
                p.hardware.join(", "),
                start.elapsed().as_secs_f64() * 1e3
            );

            let start = Instant::now();
            let calibration = splits
                .train
                .subset(p.calib_batch, settings.seed)
                .context("params: calib_batch")?;
            let images = calibration
                .eval_batches(p.calib_batch)
                .next()
                .expect("a non-empty subset has a batch")?
                .images
                .to_device(device);
            let clips = measure_clips(&model, &images)?;
            println!(
                "clips from {} calibration images in {:.1} s",
                p.calib_batch,
                start.elapsed().as_secs_f64()
            );

            let val = evaluate(&model, &splits.val, EVAL_BATCH, device)?;
            let test = evaluate(&model, &splits.test, EVAL_BATCH, device)?;
            // Every layer at w8 a8, no finetuning: a sanity check of the clips, which should
            // cost well under a point of accuracy.
            let vs = VarStore::new(device);
            let w8a8 = LinearQuantizer::new(&vs.root(), &Policy::uniform(layers.len(), 8), &clips)?;
            let test_w8a8 = evaluate(&model.quantized(&w8a8), &splits.test, EVAL_BATCH, device)?;
            println!(
                "float top-1: validation {:.2}%, test {:.2}% (top-5 {:.2}%); test at w8a8 {:.2}%",
                val.top1, test.top1, test.top5, test_w8a8.top1
            );
            ctx.log_metrics(
                0,
                &[
                    ("search_val_top1", val.top1),
                    ("test_top1", test.top1),
                    ("test_top5", test.top5),
                    ("test_top1_w8a8", test_w8a8.top1),
                ],
            )?;

            let accuracy = FloatAccuracy {
                search_val_top1: val.top1,
                test_top1: test.top1,
                test_top5: test.top5,
            };
            ctx.put_output("layers", &serde_json::to_vec(layers)?, JSON)?;
            ctx.put_output("cost_tables", &serde_json::to_vec(&tables)?, JSON)?;
            ctx.put_output("clips", &serde_json::to_vec(&clips)?, JSON)?;
            ctx.put_output("float_accuracy", &serde_json::to_vec(&accuracy)?, JSON)?;
            Ok(())
        },
    )
}
