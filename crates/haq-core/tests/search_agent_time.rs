//! The agent's own time per episode on MobileNet-V2 (53 layers, 106 steps): it must be
//! small next to an episode's finetune, which takes seconds. Run with `--nocapture` to see
//! the numbers.

use std::time::Duration;

use haq_core::arch::{layers, Arch, ArchConfig};
use haq_core::hw::Unit;
use haq_core::quant::Policy;
use haq_core::search::{
    Budget, CostFunction, DdpgConfig, MethodConfig, Mode, Search, SearchConfig,
};

#[test]
fn the_agent_takes_a_small_fraction_of_a_second_per_episode_on_mobilenet_v2() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000));
    let bits = |p: &Policy| -> f64 {
        p.layers
            .iter()
            .zip(&ls)
            .map(|(b, l)| (b.w_bits * b.a_bits.unwrap()) as f64 * l.shape.macs() as f64)
            .sum()
    };
    let objective = CostFunction {
        cost: Box::new(bits),
        unit: Unit::Cycles,
        reference: Some(bits(&Policy::uniform(ls.len(), 8))),
    };
    let warmup = 3;
    let config = SearchConfig {
        method: MethodConfig::Ddpg(DdpgConfig {
            warmup,
            ..DdpgConfig::default()
        }),
        ..SearchConfig::new(Mode::Linear, 0)
    };
    let mut search = Search::new(config, &ls, objective, &Budget::Ratio(0.5), 90.0).unwrap();
    let mut times = Vec::new();
    for episode in 0..warmup + 5 {
        let report = search
            .run_episode(&mut |p| Ok(80.0 + p.layers[1].w_bits as f64))
            .unwrap()
            .unwrap();
        if episode >= warmup {
            times.push(report.agent_time);
        }
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "agent time per episode, MobileNet-V2 ({} steps, one update each), 1 thread: \
         mean {mean:.3?}, all {times:.3?}",
        search.env().steps()
    );
    println!(
        "checkpoint after {} episodes: {} bytes",
        warmup + times.len(),
        search.save().unwrap().len()
    );
    // Generous, for a loaded machine: the search stage's breakdown gives the real share.
    assert!(mean < Duration::from_secs(3), "{mean:?}");
}
