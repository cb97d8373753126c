//! Exploration: the sigma schedule follows the episode count, and the random agent (the
//! control) acts as a DDPG agent's warm-up does, in every episode.

use haq_core::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_core::hw::Unit;
use haq_core::quant::Policy;
use haq_core::search::{
    Agent, Budget, CostFunction, DdpgConfig, MethodConfig, Mode, RandomConfig, Search, SearchConfig,
};

fn agent(episodes: usize, warmup: usize) -> Agent {
    let config = DdpgConfig {
        episodes,
        warmup,
        ..DdpgConfig::default()
    };
    Agent::new(config, 4, 0)
}

#[test]
fn sigma_decays_to_the_final_value_by_the_last_episode_whatever_the_count() {
    let _torch = crate::torch_lock();
    // The paper's 600 episodes with 20 of warm-up: 0.5 x 0.99^k, unchanged.
    let paper = agent(600, 20);
    assert_eq!(paper.sigma(19), None);
    assert_eq!(paper.sigma(20), Some(0.5));
    let k100 = paper.sigma(120).unwrap();
    assert!(
        (k100 / (0.5 * 0.99f64.powi(100)) - 1.0).abs() < 1e-12,
        "{k100}"
    );
    for (episodes, warmup) in [(150, 20), (20, 5), (40, 0), (300, 20)] {
        let a = agent(episodes, warmup);
        assert_eq!(a.sigma(warmup), Some(0.5), "{episodes}/{warmup}");
        let last = a.sigma(episodes - 1).unwrap();
        assert!(last <= 0.05 + 1e-12, "{episodes}: {last}");
        // Exactly the final sigma unless the paper's 0.99 gets there sooner (300 episodes).
        if episodes < 300 {
            assert!(last >= 0.05 - 1e-12, "{episodes}: {last}");
        } else {
            assert!((last / (0.5 * 0.99f64.powi(279)) - 1.0).abs() < 1e-12);
        }
        let sigmas: Vec<f64> = (warmup..episodes).map(|e| a.sigma(e).unwrap()).collect();
        assert!(
            sigmas.windows(2).all(|w| w[1] < w[0]),
            "{episodes}: decreasing"
        );
    }
    // One episode after the warm-up: it is the last, so already at the final sigma.
    assert_eq!(agent(21, 20).sigma(20), Some(0.05));
    // The 600-episode decay is the slowest: a longer search keeps 0.99.
    let long = agent(2000, 20);
    assert!((long.sigma(21).unwrap() - 0.5 * 0.99).abs() < 1e-12);
}

fn search<'a>(ls: &'a [LayerInfo], random: bool, reward: f64) -> Search<'a> {
    let cost = |p: &Policy| -> f64 {
        p.layers
            .iter()
            .map(|b| f64::from(b.w_bits * b.a_bits.unwrap_or(8)))
            .sum()
    };
    let objective = CostFunction {
        cost: Box::new(cost),
        unit: Unit::Cycles,
        reference: Some(cost(&Policy::uniform(ls.len(), 8))),
    };
    let config = SearchConfig {
        method: if random {
            MethodConfig::Random(RandomConfig { episodes: 8 })
        } else {
            MethodConfig::Ddpg(DdpgConfig {
                warmup: 3,
                episodes: 8,
                ..DdpgConfig::default()
            })
        },
        ..SearchConfig::new(Mode::Linear, 5)
    };
    Search::new(config, ls, objective, &Budget::Ratio(0.5), reward).unwrap()
}

#[test]
fn the_random_agent_is_a_warm_up_that_never_ends() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..10];
    let mut accuracy = |p: &Policy| -> haq_core::error::Result<f64> {
        Ok(p.layers.iter().map(|l| f64::from(l.w_bits)).sum::<f64>())
    };
    let (mut ddpg, mut random) = (search(ls, false, 50.0), search(ls, true, 50.0));
    let run = |s: &mut Search, accuracy: &mut dyn FnMut(&Policy) -> _| {
        (0..8)
            .map(|_| s.run_episode(accuracy).unwrap().unwrap())
            .collect::<Vec<_>>()
    };
    let d = run(&mut ddpg, &mut accuracy);
    let r = run(&mut random, &mut accuracy);
    // The warm-up episodes are the same draws.
    for e in 0..3 {
        assert_eq!(d[e].policy, r[e].policy, "warm-up episode {e}");
        assert_eq!((d[e].sigma, r[e].sigma), (None, None));
    }
    // After it, DDPG acts with exploration noise, random search stays uniform.
    assert!(d[3..].iter().all(|e| e.sigma.is_some()));
    assert!(r.iter().all(|e| e.sigma.is_none()));
    assert_ne!(
        d[3..].iter().map(|e| &e.policy).collect::<Vec<_>>(),
        r[3..].iter().map(|e| &e.policy).collect::<Vec<_>>()
    );
    // The random agent's checkpoint round-trips like DDPG's.
    let mut resumed = search(ls, true, 50.0);
    resumed.restore(&random.save().unwrap()).unwrap();
    assert_eq!(resumed.episodes_done(), 8);
}
