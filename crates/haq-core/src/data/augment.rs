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

    /// Augments `u8` images `[B, C, H, W]` (padding is 0, i.e. black). Draws, per image in
    /// order, the crop's row and column offsets and then the flip, so the result depends
    /// only on the generator's state. Works on the bytes: one pass, no per-image libtorch
    /// calls.
    pub fn apply(&self, images: &Tensor, rng: &mut impl Rng) -> Tensor {
        if *self == Self::none() {
            return images.shallow_clone();
        }
        let (b, c, h, w) = images.size4().expect("images are [B, C, H, W]");
        let (b, c, h, w) = (b as usize, c as usize, h as usize, w as usize);
        let src = Vec::<u8>::try_from(images.flatten(0, -1)).expect("images are u8");
        let mut out = vec![0u8; src.len()];
        let pad = self.crop_padding as isize;
        for (src, out) in src
            .chunks_exact(c * h * w)
            .zip(out.chunks_exact_mut(c * h * w))
        {
            // The crop's top-left corner in the padded image, relative to the original's.
            let dy = rng.gen_range(0..=2 * pad) - pad;
            let dx = rng.gen_range(0..=2 * pad) - pad;
            let flip = self.flip && rng.gen_bool(0.5);
            for y in 0..h {
                let sy = y as isize + dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for x in 0..w {
                    // A flip mirrors the crop, so output column x shows crop column w-1-x.
                    let cx = if flip { w - 1 - x } else { x };
                    let sx = cx as isize + dx;
                    if sx < 0 || sx >= w as isize {
                        continue;
                    }
                    for ch in 0..c {
                        out[(ch * h + y) * w + x] = src[(ch * h + sy as usize) * w + sx as usize];
                    }
                }
            }
        }
        Tensor::from_slice(&out).view([b as i64, c as i64, h as i64, w as i64])
    }
}
