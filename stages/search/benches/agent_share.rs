//! What the DDPG agent costs of a search episode, and whether fewer updates hurt learning.
//!
//! Runs the default workflow's search-latency@bismo-edge-ddpg search (latency of
//! `uniform:4` on BISMO edge, bits 3..8, calibrate reward on 256 images, 4000 train and
//! 500 val images, one libtorch thread) once per setting of `updates_per_episode` and per
//! seed, and prints per run the mean episode time after the warm-up, the agent's share of
//! it and the best reward, then the new setting's ratios to the paper's. It reads the
//! pretrained weights and the calibration from a store where the default workflow's
//! `calibrate` stage has run:
//!
//! ```sh
//! target/release/haq run calibrate
//! cargo bench -p haq-search --bench agent_share
//! ```
//!
//! Environment: `HAQ_STORE` (default `.haq/store.db`), `HAQ_EPISODES` (150),
//! `HAQ_SEEDS` (comma-separated, `0`), `HAQ_UPDATES` (the new setting, 8).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

mod common;
use common::{env_or, Calibrated};

use haq_core::hw::by_name;
use haq_core::models::Model;
use haq_core::search::{
    BitRange, Budget, DdpgConfig, EpisodeAccuracy, MethodConfig, Mode, Resource, Scoring, Search,
    SearchConfig,
};

/// One search's figures: means over the episodes after the warm-up.
struct Figures {
    episode: Duration,
    agent: Duration,
    best_reward: f64,
}

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(env_or("HAQ_STORE", ".haq/store.db".to_string()));
    let episodes: usize = env_or("HAQ_EPISODES", 150);
    let updates: usize = env_or("HAQ_UPDATES", 8);
    let seeds: Vec<u64> = env_or("HAQ_SEEDS", "0".to_string())
        .split(',')
        .map(|s| s.trim().parse().context("HAQ_SEEDS: comma-separated seeds"))
        .collect::<anyhow::Result<_>>()?;
    let warmup = 20;
    tch::set_num_threads(1);

    let Calibrated {
        weights,
        layers,
        clips,
        tables,
        settings,
        device,
        splits,
    } = common::load(&path)?;
    let table = tables
        .get("bismo-edge")
        .context("bismo-edge not in the cost tables")?;
    let cost_model = by_name("bismo-edge")?;

    let search = |updates_per_episode: Option<usize>, seed: u64| -> anyhow::Result<Figures> {
        let model = Model::new(&settings.model.arch_config(&splits.train), device, seed)?;
        model.load_weights(&weights)?;
        let train = splits.train.subset(4000, seed)?;
        let val = splits.val.subset(500, seed)?;
        let scoring = Scoring::Calibrate { images: 256 };
        let mut accuracy = EpisodeAccuracy::new(model, clips.clone(), &train, &val, scoring, seed)?;
        let objective = Resource::Latency.cost_function(cost_model.as_ref(), table, &layers)?;
        let config = SearchConfig {
            bits: BitRange::new(3, 8)?,
            method: MethodConfig::Ddpg(DdpgConfig {
                warmup,
                episodes,
                updates_per_episode,
                ..DdpgConfig::default()
            }),
            ..SearchConfig::new(Mode::Linear, seed)
        };
        let budget = Budget::Match("uniform:4".into());
        let mut search = Search::new(
            config,
            &layers,
            objective,
            &budget,
            accuracy.float_accuracy(),
        )?;
        let (mut episode_time, mut agent_time) = (Duration::ZERO, Duration::ZERO);
        for episode in 0..episodes {
            let start = Instant::now();
            let report = search
                .run_episode(&mut |policy| Ok(accuracy.measure(policy, episode)?.accuracy))?
                .expect("DDPG runs its episodes");
            if episode >= warmup {
                episode_time += start.elapsed();
                agent_time += report.agent_time;
            }
        }
        let n = (episodes - warmup).max(1) as u32;
        Ok(Figures {
            episode: episode_time / n,
            agent: agent_time / n,
            best_reward: search.best().context("no episode ran")?.reward,
        })
    };

    println!(
        "search-latency@bismo-edge-ddpg: {episodes} episodes, warm-up {warmup}, {} steps; \
         means over the episodes after the warm-up, 1 thread",
        layers.len() * 2
    );
    let settings_run = [("per step (paper)", None), ("per episode", Some(updates))];
    for seed in seeds {
        let mut figures = Vec::new();
        for (name, setting) in settings_run {
            let f = search(setting, seed)?;
            println!(
                "seed {seed}  {name:<17} updates {:>4}/episode  episode {:.3} s  agent {:.4} s \
                 ({:.1}%)  best reward {:.4}",
                setting.unwrap_or(layers.len() * 2),
                f.episode.as_secs_f64(),
                f.agent.as_secs_f64(),
                100.0 * f.agent.as_secs_f64() / f.episode.as_secs_f64(),
                f.best_reward
            );
            figures.push(f);
        }
        let (old, new) = (&figures[0], &figures[1]);
        println!(
            "seed {seed}  new/old: episode time x{:.3}, agent time x{:.3}, best reward {:+.4}",
            new.episode.as_secs_f64() / old.episode.as_secs_f64(),
            new.agent.as_secs_f64() / old.agent.as_secs_f64(),
            new.best_reward - old.best_reward
        );
    }
    Ok(())
}
