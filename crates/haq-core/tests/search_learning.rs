//! The agent learns: on a synthetic task whose best policy is known, the DDPG search ends
//! with a clearly better best reward than random search given the same episodes.
//!
//! The task, in k-means mode (one step per layer) on MobileNet-V2's first 16 layers at
//! 32 px: a hidden target gives depthwise layers 7 bits and the others 3, the kind of
//! structure HAQ exploits (its policies differ between depthwise and pointwise layers). A
//! policy's "accuracy" falls by 10 points per bit of mean distance from the target, so the
//! reward is minus that distance. The budget is the target's own size, so the target is
//! the best policy within budget, with reward 0.
//!
//! Random search is the same search with every episode in the warm-up, whose actions are
//! uniformly random; both see the same budget sweep.

use haq_core::arch::{layers, Arch, ArchConfig, LayerInfo, LayerKind};
use haq_core::hw::Unit;
use haq_core::quant::Policy;
use haq_core::search::{
    Budget, CostFunction, DdpgConfig, MethodConfig, Mode, Search, SearchConfig,
};

const EPISODES: usize = 150;
const SEEDS: u64 = 3;

fn target(ls: &[LayerInfo]) -> Policy {
    let mut target = Policy::uniform_weights(ls.len(), 3);
    for (bits, layer) in target.layers.iter_mut().zip(ls) {
        if layer.shape.kind == LayerKind::Depthwise {
            bits.w_bits = 7;
        }
    }
    target
}

/// Bytes of the weights: the model size the budget constrains.
fn size(ls: &[LayerInfo]) -> impl Fn(&Policy) -> f64 + '_ {
    move |p: &Policy| {
        p.layers
            .iter()
            .zip(ls)
            .map(|(b, l)| f64::from(b.w_bits) * l.shape.params as f64 / 8.0)
            .sum()
    }
}

/// Mean distance in bits from the target.
fn distance(policy: &Policy, target: &Policy) -> f64 {
    let total: u32 = policy
        .layers
        .iter()
        .zip(&target.layers)
        .map(|(p, t)| u32::from(p.w_bits.abs_diff(t.w_bits)))
        .sum();
    f64::from(total) / policy.layers.len() as f64
}

/// The best reward after EPISODES episodes with `warmup` random ones.
fn best_reward(ls: &[LayerInfo], seed: u64, warmup: usize) -> f64 {
    let target = target(ls);
    let config = SearchConfig {
        method: MethodConfig::Ddpg(DdpgConfig {
            warmup,
            ..DdpgConfig::default()
        }),
        ..SearchConfig::new(Mode::Kmeans, seed)
    };
    let limit = size(ls)(&target);
    let budget = Budget::Absolute {
        value: limit,
        unit: Unit::Bytes,
    };
    let objective = CostFunction {
        cost: Box::new(size(ls)),
        unit: Unit::Bytes,
        reference: Some(4.0 * ls.iter().map(|l| l.shape.params as f64).sum::<f64>()),
    };
    let mut search = Search::new(config, ls, objective, &budget, 0.0).unwrap();
    for _ in 0..EPISODES {
        let report = search
            .run_episode(&mut |p| Ok(-10.0 * distance(p, &target)))
            .unwrap()
            .unwrap();
        assert!(report.cost <= limit, "{report:?}");
    }
    search.best().unwrap().reward
}

#[test]
fn ddpg_beats_random_search_on_a_task_with_a_known_optimum() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..16];
    let (mut ddpg_sum, mut random_sum) = (0.0, 0.0);
    for seed in 0..SEEDS {
        let start = std::time::Instant::now();
        let ddpg = best_reward(ls, seed, DdpgConfig::default().warmup);
        let took = start.elapsed();
        let random = best_reward(ls, seed, EPISODES);
        println!(
            "seed {seed}: best reward after {EPISODES} episodes: DDPG {ddpg:.3} ({took:.1?}), \
             random search {random:.3} (optimum 0)"
        );
        assert!(ddpg > random, "seed {seed}: DDPG {ddpg} vs random {random}");
        ddpg_sum += ddpg;
        random_sum += random;
    }
    let (ddpg, random) = (ddpg_sum / SEEDS as f64, random_sum / SEEDS as f64);
    println!("mean over {SEEDS} seeds: DDPG {ddpg:.3}, random search {random:.3}");
    // A clear margin: random search's best stays about a bit from the target on average.
    assert!(ddpg > random + 0.3, "DDPG {ddpg} vs random {random}");
}
