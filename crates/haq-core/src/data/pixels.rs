//! Where a dataset's images are: decoded in memory, or image files decoded when asked for.

use tch::Tensor;

use super::folder::ImageFiles;
use crate::error::Result;

#[derive(Debug)]
pub(super) enum Pixels {
    /// `u8` `[N, C, H, W]`.
    Memory(Tensor),
    Files(ImageFiles),
}

impl Pixels {
    /// `[C, H, W]` of one image.
    pub(super) fn shape(&self) -> [usize; 3] {
        match self {
            Pixels::Memory(images) => {
                let s = images.size();
                [s[1] as usize, s[2] as usize, s[3] as usize]
            }
            Pixels::Files(files) => [3, files.size(), files.size()],
        }
    }

    /// The images at `indices`, as `u8` `[B, C, H, W]`.
    pub(super) fn get(&self, indices: &[i64]) -> Result<Tensor> {
        match self {
            Pixels::Memory(images) => Ok(images.index_select(0, &Tensor::from_slice(indices))),
            Pixels::Files(files) => files.decode(indices),
        }
    }

    /// Every image, as `u8` `[N, C, H, W]`.
    pub(super) fn all(&self) -> Result<Tensor> {
        match self {
            Pixels::Memory(images) => Ok(images.shallow_clone()),
            Pixels::Files(files) => files.decode(&(0..files.len() as i64).collect::<Vec<_>>()),
        }
    }

    /// The images at `indices`, kept as they are (in memory or as files).
    pub(super) fn select(&self, indices: &[i64]) -> Pixels {
        match self {
            Pixels::Memory(images) => {
                Pixels::Memory(images.index_select(0, &Tensor::from_slice(indices)))
            }
            Pixels::Files(files) => Pixels::Files(files.select(indices)),
        }
    }
}
