//! Seeded random numbers. Everything random in data handling comes from here, never from
//! libtorch's global generator, so the same seed gives bitwise-identical data.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream of the validation split; epochs use streams `0, 1, 2, ...`.
pub(crate) const STREAM_SPLIT: u64 = u64::MAX;
/// Stream of [`super::Dataset::subset`].
pub(crate) const STREAM_SUBSET: u64 = u64::MAX - 1;

/// A generator for one purpose: the same `(seed, stream)` always yields the same numbers,
/// and different streams are independent (ChaCha's stream counter), so e.g. every epoch
/// gets its own shuffle without consuming numbers of another.
pub fn seeded_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
