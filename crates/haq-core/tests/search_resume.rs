//! Exact resume: a search saved after k episodes and restored into a fresh process-like
//! state continues exactly as the uninterrupted search: same policies, rewards and
//! checkpoint bytes.

use haq_core::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_core::hw::Unit;
use haq_core::quant::Policy;
use haq_core::search::{
    Budget, CostFunction, DdpgConfig, EpisodeReport, MethodConfig, Mode, Search, SearchConfig,
};

const EPISODES: usize = 9;
const SPLIT: usize = 5;

fn config(mode: Mode, updates_per_episode: Option<usize>) -> SearchConfig {
    SearchConfig {
        // A short warm-up so the networks are trained on both sides of the split.
        method: MethodConfig::Ddpg(DdpgConfig {
            warmup: 3,
            updates_per_episode,
            ..DdpgConfig::default()
        }),
        ..SearchConfig::new(mode, 11)
    }
}

fn latency(ls: &[LayerInfo]) -> impl Fn(&Policy) -> f64 + '_ {
    move |p: &Policy| {
        p.layers
            .iter()
            .zip(ls)
            .map(|(b, l)| f64::from(b.w_bits * b.a_bits.unwrap_or(8)) * l.shape.macs() as f64)
            .sum()
    }
}

fn search<'a>(ls: &'a [LayerInfo], mode: Mode) -> Search<'a> {
    search_with(ls, mode, None)
}

fn objective(ls: &[LayerInfo]) -> CostFunction<'_> {
    CostFunction {
        cost: Box::new(latency(ls)),
        unit: Unit::Cycles,
        reference: Some(latency(ls)(&Policy::uniform(ls.len(), 8))),
    }
}

fn search_with<'a>(ls: &'a [LayerInfo], mode: Mode, updates: Option<usize>) -> Search<'a> {
    Search::new(
        config(mode, updates),
        ls,
        objective(ls),
        &Budget::Ratio(0.4),
        91.5,
    )
    .unwrap()
}

/// A deterministic stand-in for the finetuned accuracy, sensitive to every bit.
fn accuracy(policy: &Policy) -> haq_core::error::Result<f64> {
    let score: f64 = policy
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| ((i % 5) as f64 + 1.0) * f64::from(l.w_bits + l.a_bits.unwrap_or(0)))
        .sum();
    Ok(60.0 + (score * 0.37).sin() * 10.0)
}

/// A report without its timing, which legitimately differs.
fn outcome(r: EpisodeReport) -> (usize, f64, f64, f64, Option<f64>, Option<f64>, Policy) {
    (
        r.episode,
        r.reward,
        r.accuracy,
        r.cost,
        r.sigma,
        r.best_reward,
        r.policy,
    )
}

#[test]
fn a_restored_search_continues_exactly_as_an_uninterrupted_one() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..12];
    // Batched updates (the default workflow's 8 per episode) resume as exactly.
    for (mode, updates) in [
        (Mode::Linear, None),
        (Mode::Kmeans, None),
        (Mode::Linear, Some(8)),
    ] {
        let mut straight = search_with(ls, mode, updates);
        let expected: Vec<_> = (0..EPISODES)
            .map(|_| outcome(straight.run_episode(&mut accuracy).unwrap().unwrap()))
            .collect();

        let mut first = search_with(ls, mode, updates);
        let mut got: Vec<_> = (0..SPLIT)
            .map(|_| outcome(first.run_episode(&mut accuracy).unwrap().unwrap()))
            .collect();
        let bytes = first.save().unwrap();
        drop(first);
        let mut resumed = search_with(ls, mode, updates);
        resumed.restore(&bytes).unwrap();
        assert_eq!(resumed.episodes_done(), SPLIT);
        got.extend(
            (SPLIT..EPISODES)
                .map(|_| outcome(resumed.run_episode(&mut accuracy).unwrap().unwrap())),
        );

        assert_eq!(got, expected, "{mode:?} {updates:?}");
        assert_eq!(resumed.best(), straight.best(), "{mode:?} {updates:?}");
        assert_eq!(
            resumed.save().unwrap(),
            straight.save().unwrap(),
            "{mode:?} {updates:?}: checkpoints after {EPISODES} episodes differ"
        );
        // The search did learn something across the split: sigma decays, policies vary.
        assert!(expected.iter().any(|e| e.6 != expected[0].6));
    }
}

#[test]
fn zero_updates_per_episode_is_refused() {
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..12];
    let config = config(Mode::Linear, Some(0));
    let err = Search::new(config, ls, objective(ls), &Budget::Ratio(0.4), 91.5)
        .err()
        .expect("0 updates per episode would never train the agent")
        .to_string();
    assert!(
        err.contains("updates_per_episode must be at least 1"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_of_another_search_is_refused() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = &layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10))[..12];
    let mut linear = search(ls, Mode::Linear);
    linear.run_episode(&mut accuracy).unwrap().unwrap();
    let bytes = linear.save().unwrap();

    let mut kmeans = search(ls, Mode::Kmeans);
    let err = kmeans.restore(&bytes).err().unwrap().to_string();
    assert!(
        err.contains("another search") && err.contains("kmeans"),
        "{err}"
    );

    let fewer = &ls[..10];
    let mut smaller = search(fewer, Mode::Linear);
    let err = smaller.restore(&bytes).err().unwrap().to_string();
    assert!(err.contains("another search"), "{err}");

    let mut fresh = search(ls, Mode::Linear);
    let err = fresh
        .restore(&bytes[..bytes.len() / 2])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("checkpoint") || err.contains("safetensors"),
        "{err}"
    );
    let err = fresh
        .restore(b"not a checkpoint")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a search checkpoint"), "{err}");
    // A failed restore leaves the search usable from the start.
    assert_eq!(fresh.episodes_done(), 0);
    fresh.restore(&bytes).unwrap();
    assert_eq!(fresh.episodes_done(), 1);
}
