//! What the stage remembers of each episode: its numbers, policy and timings. The history
//! travels in every checkpoint beside the search's own state, so the episodes' policies
//! are in the store from the moment each episode ends, and a resumed run writes the same
//! `episodes` output as an uninterrupted one.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use haq_core::search::{EpisodeReport, Measurement};

/// Seconds an episode spent on each part of its work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Times {
    /// Applying the policy and finetuning.
    pub finetune: f64,
    pub eval: f64,
    /// The method: choosing the policy, the budget repair and fill, its own updates.
    pub agent: f64,
    /// The rest: metrics, the previous episode's checkpoint.
    pub other: f64,
}

impl Times {
    /// The parts of an episode that took `wall` in all.
    pub fn new(wall: Duration, measured: &Measurement, agent: Duration) -> Times {
        let [finetune, eval, agent] =
            [measured.finetune, measured.eval, agent].map(|d| d.as_secs_f64());
        Times {
            finetune,
            eval,
            agent,
            other: (wall.as_secs_f64() - finetune - eval - agent).max(0.0),
        }
    }

    fn total(&self) -> f64 {
        self.finetune + self.eval + self.agent + self.other
    }

    /// The mean of `times`.
    pub fn mean<'a>(times: impl IntoIterator<Item = &'a Times>) -> Times {
        let (mut sum, mut n) = (Times::default(), 0.0);
        for t in times {
            sum.finetune += t.finetune;
            sum.eval += t.eval;
            sum.agent += t.agent;
            sum.other += t.other;
            n += 1.0;
        }
        let n = f64::max(n, 1.0);
        Times {
            finetune: sum.finetune / n,
            eval: sum.eval / n,
            agent: sum.agent / n,
            other: sum.other / n,
        }
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total().max(f64::MIN_POSITIVE);
        let part = |s: f64| format!("{s:.3} s ({:.1}%)", 100.0 * s / total);
        write!(
            f,
            "{:.3} s: finetune {}, eval {}, agent {}, other {}",
            self.total(),
            part(self.finetune),
            part(self.eval),
            part(self.agent),
            part(self.other)
        )
    }
}

/// One episode, as the checkpoint holds it and (less its times) the `episodes` output:
/// the search's report (its accuracy is top-1 on the search-val subset, in percent) and
/// where the episode's time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    #[serde(flatten)]
    pub report: EpisodeReport,
    pub times: Times,
}

impl Episode {
    /// The episode's metrics, logged at step = episode.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let r = &self.report;
        let mut metrics = vec![
            ("reward", r.reward),
            ("accuracy", r.accuracy),
            ("cost", r.cost),
            ("cost_ratio", r.cost_ratio),
            ("time_finetune_s", self.times.finetune),
            ("time_eval_s", self.times.eval),
            ("time_agent_s", self.times.agent),
            ("time_other_s", self.times.other),
        ];
        if let Some(best) = r.best_reward {
            metrics.push(("best_reward", best));
        }
        if let Some(sigma) = r.sigma {
            metrics.push(("sigma", sigma));
        }
        metrics
    }
}

/// The history as the `episodes` output gives it: every episode without its times.
pub fn untimed(history: &[Episode]) -> anyhow::Result<serde_json::Value> {
    let mut episodes = serde_json::to_value(history)?;
    for episode in episodes.as_array_mut().into_iter().flatten() {
        episode.as_object_mut().map(|e| e.remove("times"));
    }
    Ok(episodes)
}

/// A checkpoint: the history's JSON length (u64, little-endian), the JSON, then the
/// search's own bytes (`Search::save`).
pub fn encode(history: &[Episode], search: &[u8]) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(history)?;
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes.extend(search);
    Ok(bytes)
}

/// The history and the search's bytes of a checkpoint written by [`encode`].
pub fn decode(bytes: &[u8]) -> anyhow::Result<(Vec<Episode>, &[u8])> {
    let (len, rest) = bytes
        .split_first_chunk::<8>()
        .context("checkpoint too short")?;
    let len = usize::try_from(u64::from_le_bytes(*len))?;
    anyhow::ensure!(rest.len() >= len, "checkpoint truncated");
    let (json, search) = rest.split_at(len);
    let history = serde_json::from_slice(json).context("checkpoint's episode history")?;
    Ok((history, search))
}
