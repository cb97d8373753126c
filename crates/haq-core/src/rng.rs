//! Seeded random numbers. Everything random in haq-core (shuffles, splits, augmentation,
//! initial weights) comes from here rather than libtorch's global generator, which every
//! thread shares, so the same seed gives bitwise-identical results.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The stream of each purpose, so one seed drives them all independently.
pub mod stream {
    /// Epoch `e` shuffles and augments with stream `EPOCH + e`.
    pub const EPOCH: u64 = 0;
    /// Epoch `e` seeds libtorch's generator (dropout) from stream `TORCH + e`.
    pub const TORCH: u64 = 1 << 62;
    pub const VALIDATION_SPLIT: u64 = u64::MAX;
    pub const SUBSET: u64 = u64::MAX - 1;
    pub const INITIAL_WEIGHTS: u64 = u64::MAX - 2;
    /// The search agent: its initial weights, exploration and replay sampling.
    pub const SEARCH_AGENT: u64 = u64::MAX - 16;
    /// Random search's actions, and DDPG's in its warm-up: paired by seed, a DDPG search's
    /// warm-up episodes are its random control's first ones.
    pub const SEARCH_RANDOM: u64 = u64::MAX - 17;
    /// The Rademacher probes of the Hessian traces of a HAWQ-style search, and its k-means.
    pub const HESSIAN_PROBES: u64 = u64::MAX - 18;
    /// Episode `e` of a search finetunes with stream `SEARCH_EPISODE + e`, so a resumed
    /// search replays each episode's batches without replaying the episodes before it.
    pub const SEARCH_EPISODE: u64 = 1 << 60;
}

/// A generator for one purpose: the same `(seed, stream)` always yields the same numbers,
/// and different streams are independent (ChaCha's stream counter).
pub fn seeded_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
