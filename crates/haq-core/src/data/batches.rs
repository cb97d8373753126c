//! Iterating a dataset in batches of normalised float tensors, decoding a streamed
//! dataset's images as each batch is built.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::{Augment, Dataset};
use crate::error::Result;

/// One batch: normalised `f32` images `[B, C, H, W]` and `i64` labels `[B]`, on the CPU.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// An iterator of batches over a [`Dataset`]; see [`Dataset::eval_batches`] and
/// [`Dataset::train_batches`]. A batch whose images cannot be decoded is an error.
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<i64>,
    batch_size: usize,
    next: usize,
    /// For training: the augmentation and the epoch's generator (already used to shuffle).
    augment: Option<(Augment, ChaCha8Rng)>,
}

impl<'a> Batches<'a> {
    pub(super) fn new(
        data: &'a Dataset,
        batch_size: usize,
        mut augment: Option<(Augment, ChaCha8Rng)>,
    ) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        let mut order: Vec<i64> = (0..data.len() as i64).collect();
        if let Some((_, rng)) = &mut augment {
            order.shuffle(rng);
            // Training batches all have `batch_size` examples.
            order.truncate(data.train_steps(batch_size) * batch_size);
        }
        Self {
            data,
            order,
            batch_size,
            next: 0,
            augment,
        }
    }

    /// The batch of the examples at `order[start..end]`.
    fn batch(&mut self, start: usize, end: usize) -> Result<Batch> {
        let indices = &self.order[start..end];
        let mut images = self.data.pixels.get(indices)?;
        if let Some((augment, rng)) = &mut self.augment {
            images = augment.apply(&images, rng);
        }
        Ok(Batch {
            images: self.data.normalize(&images),
            labels: self
                .data
                .labels
                .index_select(0, &Tensor::from_slice(indices)),
        })
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.order.len() {
            return None;
        }
        let start = self.next;
        self.next = (start + self.batch_size).min(self.order.len());
        Some(self.batch(start, self.next))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.order.len() - self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}
