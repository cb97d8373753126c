//! Hessian + ILP end to end on a briefly trained model and real Fashion-MNIST: the traces
//! are measured and stable across probe seeds, and the ILP's policy is within budget on
//! each real cost model, its widths spread by the sensitivities.

use std::time::Instant;

use haq_core::arch::Arch;
use haq_core::config::ModelSettings;
use haq_core::hw::{build_table, by_name};
use haq_core::models::Model;
use haq_core::search::hessian::layer_traces;
use haq_core::search::{
    BitRange, Budget, EpisodeAccuracy, HawqConfig, MethodConfig, Mode, Resource, Scoring, Search,
    SearchConfig,
};
use haq_core::stats::spearman;
use tch::Device;

use crate::tiny;

const SEED: u64 = 4;

#[test]
fn hawq_measures_the_model_and_chooses_a_policy_within_budget_on_each_cost_model() {
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

    let float = accuracy.float_accuracy();
    // The paper's three objectives, each on its cost model and at its baseline's cost.
    for (model, resource, budget, bits) in [
        (
            "bismo-edge",
            Resource::Latency,
            "uniform:4",
            BitRange::new(3, 8).unwrap(),
        ),
        (
            "bitfusion",
            Resource::Energy,
            "uniform:4",
            BitRange::new(3, 8).unwrap(),
        ),
        (
            "size",
            Resource::Size,
            "uniform-w2",
            BitRange::default_for(Mode::Kmeans),
        ),
    ] {
        let cost_model = by_name(model).unwrap();
        let table = build_table(cost_model.as_ref(), &layers, cost_model.default_batch());
        let objective = resource
            .cost_function(cost_model.as_ref(), &table, &layers)
            .unwrap();
        let config = SearchConfig {
            // The search stage's defaults.
            method: MethodConfig::Hawq(HawqConfig {
                probes: 2,
                images: 64,
            }),
            bits,
            ..SearchConfig::new(resource.mode(), SEED)
        };
        let budget = Budget::Match(budget.into());
        let mut search = Search::new(config, &layers, objective, &budget, float).unwrap();
        let start = Instant::now();
        search.prepare(&accuracy).unwrap();
        let measured = start.elapsed().as_secs_f64();
        let report = search
            .run_episode(&mut |p| Ok(accuracy.measure(p, 0)?.accuracy))
            .unwrap()
            .unwrap();
        assert!(search.run_episode(&mut |_| Ok(0.0)).unwrap().is_none());
        assert!(report.cost <= search.budget(), "{model}: {report:?}");
        assert!(!report.probe);
        assert_eq!(search.best().unwrap().policy, report.policy);
        let details = search.details().unwrap();
        let stability = details["trace_stability"].as_f64().unwrap();
        println!(
            "hawq on {model}: traces of {} layers (2 probes, 64 images) in {measured:.1} s; \
             top-1 {:.2}% (float {float:.2}%) at {:.4} of the budget; Spearman of the two \
             probes' weight traces {stability:.3}",
            layers.len(),
            report.accuracy,
            report.cost_ratio
        );
        assert_eq!(
            details["weight_traces"].as_array().unwrap().len(),
            layers.len()
        );
        // Not every layer at one width: the sensitivities differ.
        let widths: std::collections::BTreeSet<_> = report.policy.layers[1..]
            .iter()
            .map(|l| (l.w_bits, l.a_bits))
            .collect();
        assert!(widths.len() > 1, "{model}: {:?}", report.policy);
    }
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
}
