//! Training-time augmentation on batches of images, seeded by the caller's generator.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Which augmentations to apply to training batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Random crop after zero-padding each side by this many pixels (0: no crop), as
    /// torchvision's `RandomCrop(size, padding)`.
    pub crop_padding: usize,
    /// Mirror each image left-right with probability 1/2.
    pub flip: bool,
}

impl Default for Augment {
    /// Crop with 4 pixels of padding, no flips: Fashion-MNIST's usual recipe (clothes are
    /// mostly symmetric, but flips do not help at 28x28).
    fn default() -> Self {
        Self {
            crop_padding: 4,
            flip: false,
        }
    }
}

impl Augment {
    /// No augmentation at all.
    pub fn none() -> Self {
        Self {
            crop_padding: 0,
            flip: false,
        }
    }

    /// Augments `[B, C, H, W]` images (any kind; padding is 0, i.e. black). Draws, per
    /// image in order, the crop's row and column offsets and then the flip, so the result
    /// depends only on the generator's state.
    pub fn apply(&self, images: &Tensor, rng: &mut impl Rng) -> Tensor {
        if *self == Self::none() {
            return images.shallow_clone();
        }
        let (b, _, h, w) = images.size4().expect("images are [B, C, H, W]");
        let pad = self.crop_padding as i64;
        let padded = if pad > 0 {
            images.constant_pad_nd([pad, pad, pad, pad])
        } else {
            images.shallow_clone()
        };
        let crops: Vec<Tensor> = (0..b)
            .map(|i| {
                let dy = rng.gen_range(0..=2 * pad);
                let dx = rng.gen_range(0..=2 * pad);
                let crop = padded.get(i).narrow(1, dy, h).narrow(2, dx, w);
                if self.flip && rng.gen_bool(0.5) {
                    crop.flip([2])
                } else {
                    crop
                }
            })
            .collect();
        Tensor::stack(&crops, 0)
    }
}
