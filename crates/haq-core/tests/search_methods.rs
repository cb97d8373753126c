//! The search methods behind one seam: each ends within budget on the real cost models,
//! greedy finds the optimum where its rule is exact, and each resumes exactly.

use haq_core::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_core::hw::{build_table, by_name, Unit};
use haq_core::quant::Policy;
use haq_core::search::{
    BitRange, Budget, CostFunction, DdpgConfig, EpisodeReport, MethodConfig, Mode, RandomConfig,
    Resource, Search, SearchConfig,
};

/// A smooth stand-in for a quantized model's accuracy: each layer loses accuracy as its
/// quantization noise (a step halving with each bit) grows, more for some layers.
fn accuracy(policy: &Policy) -> haq_core::error::Result<f64> {
    let loss: f64 = policy
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let noise = |b: u8| 4f64.powi(-i32::from(b));
            let weight = 1.0 + (i % 7) as f64;
            weight * (noise(l.w_bits) + l.a_bits.map_or(0.0, noise)) * 100.0
        })
        .sum();
    Ok(90.0 - loss)
}

fn methods(episodes: usize) -> Vec<MethodConfig> {
    vec![
        MethodConfig::Ddpg(DdpgConfig {
            warmup: 2,
            episodes,
            updates_per_episode: Some(4),
            ..DdpgConfig::default()
        }),
        MethodConfig::Random(RandomConfig { episodes }),
        MethodConfig::Greedy,
    ]
}

/// Runs `search` to its end; the reports of every episode.
fn run(search: &mut Search) -> Vec<EpisodeReport> {
    std::iter::from_fn(|| search.run_episode(&mut accuracy).unwrap()).collect()
}

#[test]
fn every_method_ends_within_budget_on_the_real_cost_models() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000));
    for (model, resource, budget) in [
        (
            "bismo-edge",
            Resource::Latency,
            Budget::Match("uniform:4".into()),
        ),
        ("bitfusion", Resource::Energy, Budget::Ratio(0.6)),
        ("size", Resource::Size, Budget::Match("uniform-w2".into())),
    ] {
        let cost_model = by_name(model).unwrap();
        let table = build_table(cost_model.as_ref(), &ls, cost_model.default_batch());
        for method in methods(4) {
            let objective = resource
                .cost_function(cost_model.as_ref(), &table, &ls)
                .unwrap();
            // The default workflow's ranges: 3..=8 for latency and energy, 1..=8 for size.
            let bits = match resource.mode() {
                Mode::Linear => BitRange::new(3, 8).unwrap(),
                Mode::Kmeans => BitRange::default_for(Mode::Kmeans),
            };
            let config = SearchConfig {
                method: method.clone(),
                bits,
                ..SearchConfig::new(resource.mode(), 3)
            };
            let mut search = Search::new(config, &ls, objective, &budget, 90.0).unwrap();
            let reports = run(&mut search);
            assert_eq!(reports.len(), search.planned(), "{model} {method:?}");
            let best = search.best().expect("a policy within budget");
            let what = format!("{model}, {:?}", method.method());
            assert!(
                best.cost <= search.budget(),
                "{what}: {} > {}",
                best.cost,
                search.budget()
            );
            for r in reports.iter().filter(|r| !r.probe) {
                assert!(r.cost <= search.budget(), "{what}, episode {}", r.episode);
                assert!(
                    r.policy.layers.iter().all(|l| l.w_bits >= bits.min),
                    "{what}"
                );
            }
        }
    }
}

/// Greedy's rule (lower the width that loses least per unit of cost saved) is exact when
/// every layer's widths cost the same and each layer's loss is convex in its width: the
/// convex resource allocation problem. Brute force over every policy finds the optimum.
#[test]
fn greedy_finds_the_known_optimum_of_a_constructed_sensitivity_table() {
    let _torch = crate::torch_lock();
    let ls: Vec<LayerInfo> = layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..4].to_vec();
    let bits_per_layer = |p: &Policy| p.layers.iter().map(|l| f64::from(l.w_bits)).sum::<f64>();
    let objective = CostFunction {
        cost: Box::new(bits_per_layer),
        unit: Unit::Bytes,
        reference: Some(32.0 * 4.0),
    };
    let config = SearchConfig {
        method: MethodConfig::Greedy,
        bits: BitRange::new(1, 4).unwrap(),
        fill_budget: false,
        ..SearchConfig::new(Mode::Kmeans, 0)
    };
    let budget = Budget::Absolute {
        value: 9.0,
        unit: Unit::Bytes,
    };
    let mut search = Search::new(config, &ls, objective, &budget, 90.0).unwrap();
    let reports = run(&mut search);
    // The widest policy, 4 layers x 3 lower widths, then the walked policy.
    assert_eq!(reports.len(), 1 + 4 * 3 + 1);
    assert_eq!(reports.iter().filter(|r| r.probe).count(), 13);
    let best = search.best().unwrap();

    let mut optimum: Option<(f64, Policy)> = None;
    for code in 0..4usize.pow(4) {
        let bits: Vec<u8> = (0..4)
            .map(|i| (code / 4usize.pow(i) % 4) as u8 + 1)
            .collect();
        let policy = Policy {
            layers: bits
                .iter()
                .map(|&w| haq_core::quant::LayerBits {
                    w_bits: w,
                    a_bits: None,
                })
                .collect(),
        };
        let a = accuracy(&policy).unwrap();
        if bits_per_layer(&policy) <= 9.0 && optimum.as_ref().is_none_or(|(o, _)| a > *o) {
            optimum = Some((a, policy));
        }
    }
    let (optimum, policy) = optimum.unwrap();
    assert_eq!(best.policy, policy);
    assert_eq!(best.accuracy, optimum);
}

/// A search saved after `split` episodes and restored into a fresh one continues as
/// the uninterrupted search: the same reports and the same final checkpoint bytes.
#[test]
fn every_method_resumes_exactly() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..8];
    let cost = |p: &Policy| -> f64 {
        p.layers
            .iter()
            .map(|b| f64::from(b.w_bits * b.a_bits.unwrap_or(8)))
            .sum()
    };
    for method in methods(6) {
        let make = || {
            let objective = CostFunction {
                cost: Box::new(cost),
                unit: Unit::Cycles,
                reference: Some(cost(&Policy::uniform(ls.len(), 8))),
            };
            let config = SearchConfig {
                method: method.clone(),
                ..SearchConfig::new(Mode::Linear, 7)
            };
            Search::new(config, ls, objective, &Budget::Ratio(0.5), 90.0).unwrap()
        };
        let mut straight = make();
        let all = run(&mut straight);
        let split = all.len() / 2;
        let mut first = make();
        for _ in 0..split {
            first.run_episode(&mut accuracy).unwrap().unwrap();
        }
        let mut resumed = make();
        resumed.restore(&first.save().unwrap()).unwrap();
        let rest = run(&mut resumed);
        let strip = |r: &EpisodeReport| (r.episode, r.reward, r.cost, r.policy.clone());
        assert_eq!(
            all[split..].iter().map(strip).collect::<Vec<_>>(),
            rest.iter().map(strip).collect::<Vec<_>>(),
            "{:?}",
            method.method()
        );
        assert_eq!(straight.save().unwrap(), resumed.save().unwrap());
    }
}
