//! Which episode reward ranks policies like their final accuracy, and at what price.
//!
//! Draws random budget-feasible policies of the default model (uniform actions, the
//! search's budget sweep and fill, at the latency of `uniform:4` on BISMO edge), scores
//! each with every reward mode, finetunes each with the default workflow's final-finetune
//! recipe, and prints per mode the Spearman correlation between the reward's accuracy and
//! the final test top-1, and the seconds per episode. It reads the pretrained weights and
//! the calibration from a store where the default workflow's `calibrate` stage has run:
//!
//! ```sh
//! target/release/haq run calibrate
//! cargo bench -p haq-search --bench reward_modes
//! ```
//!
//! Environment: `HAQ_STORE` (default `.haq/store.db`), `HAQ_POLICIES` (24),
//! `HAQ_HARDWARE` (bismo-edge), `HAQ_THREADS` (libtorch threads, 2). A final finetune takes
//! about 100 s at 2 threads, so 24 policies take most of an hour; the table is printed
//! after every policy from the third on.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

mod common;
use common::{env_or, Calibrated};
use rand::Rng;
use serde_json::json;

use haq_core::hw::by_name;
use haq_core::models::Model;
use haq_core::quant::{Policy, Quantization};
use haq_core::rng::seeded_rng;
use haq_core::search::{
    BitRange, Budget, Constraint, Env, EpisodeAccuracy, FinetuneConfig, Mode, Resource, Scoring,
};
use haq_core::stats::spearman;
use haq_core::train::{evaluate, Recipe, Trainer};

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(env_or("HAQ_STORE", ".haq/store.db".to_string()));
    let n_policies: usize = env_or("HAQ_POLICIES", 24);
    let hardware: String = env_or("HAQ_HARDWARE", "bismo-edge".to_string());
    tch::set_num_threads(env_or("HAQ_THREADS", 2));

    let Calibrated {
        weights,
        layers,
        clips,
        tables,
        settings,
        device,
        splits,
    } = common::load(&path)?;
    let new_model = || -> anyhow::Result<Model> {
        let model = Model::new(
            &settings.model.arch_config(&splits.train),
            device,
            settings.seed,
        )?;
        model.load_weights(&weights)?;
        Ok(model)
    };

    // The policies: what a search's warm-up episodes evaluate.
    let table = tables
        .get(&hardware)
        .context("hardware not in the cost tables")?;
    let objective =
        Resource::Latency.cost_function(by_name(&hardware)?.as_ref(), table, &layers)?;
    let env = Env::new(&layers, Mode::Linear, BitRange::default_for(Mode::Linear))?;
    let constraint = Constraint::new(objective, &Budget::Match("uniform:4".into()), &env)?;
    let mut rng = seeded_rng(settings.seed, 0xbe9c);
    let policies: Vec<Policy> = (0..n_policies)
        .map(|_| {
            let actions: Vec<f32> = (0..env.steps()).map(|_| rng.gen()).collect();
            let mut policy = env.policy(&actions);
            constraint.enforce(&mut policy)?;
            constraint.fill(&mut policy, env.bit_range().max);
            Ok(policy)
        })
        .collect::<haq_core::error::Result<_>>()?;

    // The default workflow's search subsets and final-finetune recipe.
    let search_train = splits.train.subset(4000, settings.seed)?;
    let search_val = splits.val.subset(1000, settings.seed)?;
    let recipe: Recipe = serde_json::from_value(json!({
        "epochs": 1, "batch_size": 128, "lr": 0.01, "train_subset": 8000,
        "augment": {"crop_padding": 0, "flip": true}
    }))?;
    let finetune_train = recipe
        .train_subset(&splits.train, settings.seed)?
        .context("the recipe has a train subset")?;

    let modes = [
        ("calibrate (512 images)", Scoring::Calibrate { images: 512 }),
        (
            "finetune (30 steps x 32)",
            Scoring::Finetune(FinetuneConfig::new(30, 32)),
        ),
    ];
    let mut scorers = modes
        .iter()
        .map(|(_, scoring)| {
            EpisodeAccuracy::new(
                new_model()?,
                clips.clone(),
                &search_train,
                &search_val,
                *scoring,
                settings.seed,
            )
            .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    println!(
        "{n_policies} random policies at the latency of uniform:4 on {hardware} ({:.4} ms); \
         {} threads",
        constraint.budget(),
        tch::get_num_threads()
    );
    let mut rewards = vec![Vec::new(); modes.len()];
    let mut seconds = vec![0.0; modes.len()];
    let mut finals = Vec::new();
    for (i, policy) in policies.iter().enumerate() {
        let mut line = format!("policy {i:2}:");
        for (m, scorer) in scorers.iter_mut().enumerate() {
            let measured = scorer.measure(policy, i)?;
            rewards[m].push(measured.accuracy);
            seconds[m] += (measured.finetune + measured.eval).as_secs_f64();
            line += &format!(" {:6.2}", measured.accuracy);
        }
        let start = Instant::now();
        let model = new_model()?;
        let mut quantization = Quantization::apply(&model, policy, &clips, settings.seed)?;
        let (quantizer, _) = quantization.parts();
        let net = model.quantized(quantizer);
        let data = (&finetune_train, &splits.val);
        Trainer::new(
            &net,
            model.var_store(),
            &recipe,
            data,
            settings.seed,
            device,
        )
        .fit::<anyhow::Error>(&mut |_| {}, &mut |_, _| Ok(()))?;
        let test = evaluate(&net, &splits.test, recipe.eval_batch, device)?;
        finals.push(test.top1);
        println!(
            "{line} -> final test top-1 {:6.2}% ({:.0} s); {}",
            test.top1,
            start.elapsed().as_secs_f64(),
            policy
                .layers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        // The table so far, so that a long run can be stopped at any policy.
        if finals.len() >= 3 {
            println!("\n| reward mode ({} policies) | Spearman vs final test top-1 | seconds per episode |", finals.len());
            println!("|---|---:|---:|");
            for (m, (name, _)) in modes.iter().enumerate() {
                println!(
                    "| {name} | {:.3} | {:.2} |",
                    spearman(&rewards[m], &finals),
                    seconds[m] / finals.len() as f64
                );
            }
            println!();
        }
    }
    Ok(())
}
