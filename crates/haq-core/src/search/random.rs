//! Random search, the control a learned method has to beat: every episode a policy of
//! uniformly random actions (each width equally likely), through the same budget repair
//! and fill as DDPG's.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{Proposal, Scored, SearchMethod, Space};
use crate::error::{Error, Result};
use crate::rng::{seeded_rng, stream};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomConfig {
    pub episodes: usize,
}

pub struct Random {
    episodes: usize,
    rng: ChaCha8Rng,
}

/// The generator's position, which is all a random search's state.
#[derive(Serialize, Deserialize)]
struct State {
    /// ChaCha's 68-bit word position, as a decimal string (JSON numbers stop at 64 bits).
    word_pos: String,
}

impl Random {
    pub fn new(config: RandomConfig, seed: u64) -> Random {
        Random {
            episodes: config.episodes,
            rng: seeded_rng(seed, stream::SEARCH_RANDOM),
        }
    }
}

impl SearchMethod for Random {
    fn propose(&mut self, space: &Space, episode: usize) -> Result<Option<Proposal>> {
        if episode >= self.episodes {
            return Ok(None);
        }
        let actions: Vec<f32> = (0..space.env.steps()).map(|_| self.rng.gen()).collect();
        Ok(Some(Proposal::Candidate(space.env.policy(&actions))))
    }

    fn observe(&mut self, _scored: &Scored, _episode: usize) {}

    fn planned(&self) -> usize {
        self.episodes
    }

    fn save(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        let state = State {
            word_pos: self.rng.get_word_pos().to_string(),
        };
        let state = serde_json::to_value(state).map_err(|e| Error::Checkpoint(e.to_string()))?;
        Ok((state, Vec::new()))
    }

    fn restore(&mut self, state: serde_json::Value, _tensors: &[(String, Tensor)]) -> Result<()> {
        let state: State =
            serde_json::from_value(state).map_err(|e| Error::Checkpoint(e.to_string()))?;
        let word_pos = state
            .word_pos
            .parse()
            .map_err(|e| Error::Checkpoint(format!("random search's generator: {e}")))?;
        self.rng.set_word_pos(word_pos);
        Ok(())
    }
}
