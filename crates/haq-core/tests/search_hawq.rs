//! Hessian + ILP end to end on a briefly trained model and real Fashion-MNIST: the traces
//! are measured, the ILP's policy is within budget on a real cost model, and it spends
//! its bits where the traces say the loss is sensitive.

use std::time::Instant;

use haq_core::arch::Arch;
use haq_core::config::ModelSettings;
use haq_core::hw::{build_table, by_name};
use haq_core::models::Model;
use haq_core::search::hessian::{layer_traces, spearman};
use haq_core::search::{
    BitRange, Budget, EpisodeAccuracy, HawqConfig, MethodConfig, Mode, Resource, Scoring, Search,
    SearchConfig,
};
use tch::Device;

use crate::tiny;

const SEED: u64 = 4;

#[test]
fn hawq_measures_the_model_and_chooses_a_policy_within_budget() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let splits = tiny::fashion_mnist(1000, SEED);
    let settings = ModelSettings {
        arch: Arch::MobileNetV2,
        width: 0.25,
    };
    let model = Model::new(&settings.arch_config(&splits.train), Device::Cpu, SEED).unwrap();
    let data = splits.train.subset(60 * tiny::BATCH, SEED).unwrap();
    tiny::train(&model, &model, &data, (0.1, 10), SEED, || {});
    let clips = tiny::clips(&model, &splits, 256, SEED);
    let layers = model.layers().to_vec();
    let train = splits.train.subset(512, SEED).unwrap();
    let val = splits.val.subset(300, SEED).unwrap();
    let scoring = Scoring::Calibrate { images: 256 };
    let mut accuracy = EpisodeAccuracy::new(model, clips, &train, &val, scoring, SEED).unwrap();

    let cost_model = by_name("bismo-edge").unwrap();
    let table = build_table(cost_model.as_ref(), &layers, cost_model.default_batch());
    let objective = Resource::Latency
        .cost_function(cost_model.as_ref(), &table, &layers)
        .unwrap();
    let config = SearchConfig {
        // The search stage's defaults.
        method: MethodConfig::Hawq(HawqConfig {
            probes: 2,
            images: 64,
        }),
        bits: BitRange::new(3, 8).unwrap(),
        ..SearchConfig::new(Mode::Linear, SEED)
    };
    let budget = Budget::Match("uniform:4".into());
    let float = accuracy.float_accuracy();
    let mut search = Search::new(config, &layers, objective, &budget, float).unwrap();
    let start = Instant::now();
    search.prepare(&accuracy).unwrap();
    println!(
        "hawq: traces of {} layers, 2 probes on 64 images, in {:.1} s",
        layers.len(),
        start.elapsed().as_secs_f64()
    );
    let report = search
        .run_episode(&mut |p| Ok(accuracy.measure(p, 0)?.accuracy))
        .unwrap()
        .unwrap();
    assert!(search.run_episode(&mut |_| Ok(0.0)).unwrap().is_none());
    assert!(report.cost <= search.budget(), "{report:?}");
    assert!(!report.probe);
    let details = search.details().unwrap();
    let stability = details["trace_stability"].as_f64().unwrap();
    println!(
        "hawq: top-1 {:.2}% (float {float:.2}%) at {:.4} of the budget; trace stability \
         (Spearman, two halves of the probes) {stability:.3}",
        report.accuracy, report.cost_ratio
    );
    let traces = details["weight_traces"].as_array().unwrap();
    assert_eq!(traces.len(), layers.len());
    assert!(stability.is_finite(), "{stability}");
    // Two estimates with different probe seeds rank the layers alike.
    let (images, labels) = accuracy.train_images(64).unwrap();
    let estimate = |seed| layer_traces(accuracy.model(), &images, &labels, 2, seed).unwrap();
    let (a, b) = (estimate(1), estimate(2));
    let (weights, inputs) = (
        spearman(&a.weights, &b.weights),
        spearman(&a.inputs, &b.inputs),
    );
    println!(
        "hawq: traces from probe seeds 1 and 2, Spearman over {} layers: weights \
         {weights:.3}, inputs {inputs:.3}",
        layers.len()
    );
    assert!(weights > 0.5 && inputs > 0.5, "{weights} {inputs}");
    // Not every layer at one width: the sensitivities differ.
    let widths: std::collections::BTreeSet<_> = report.policy.layers[1..]
        .iter()
        .map(|l| (l.w_bits, l.a_bits))
        .collect();
    assert!(widths.len() > 1, "{:?}", report.policy);
}
