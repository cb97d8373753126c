//! Image folders laid out as for torchvision's `ImageFolder`: `root/train/<class>/<image>`
//! and `root/val/<class>/<image>` (or `root/test/...`), JPEG or PNG. Classes are the
//! sub-directory names of `train/` in sorted order. Reading a split only lists its files;
//! images are decoded when asked for, a batch at a time, so ImageNet's 1.28 M training
//! images cost memory only for their names. Each image is resized so its shorter side is
//! `size`, centre-cropped to `size x size` and converted to RGB.

use std::path::{Path, PathBuf};

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rayon::prelude::*;
use tch::Tensor;

use super::{Pixels, Split};
use crate::error::{Error, Result};

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Image files not yet decoded, and how to decode them.
#[derive(Debug)]
pub(super) struct ImageFiles {
    paths: Vec<PathBuf>,
    size: usize,
    /// How to fix the dataset, for the error of an undecodable file.
    hint: String,
}

impl ImageFiles {
    pub(super) fn len(&self) -> usize {
        self.paths.len()
    }

    /// Side of the square images decoded.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// The files at `indices`, in that order.
    pub(super) fn select(&self, indices: &[i64]) -> ImageFiles {
        ImageFiles {
            paths: indices
                .iter()
                .map(|&i| self.paths[i as usize].clone())
                .collect(),
            size: self.size,
            hint: self.hint.clone(),
        }
    }

    /// The images at `indices` as `u8` `[B, 3, size, size]`, decoded in parallel.
    pub(super) fn decode(&self, indices: &[i64]) -> Result<Tensor> {
        let pixels = indices
            .par_iter()
            .map(|&i| decode(&self.paths[i as usize], self.size, &self.hint))
            .collect::<Result<Vec<_>>>()?;
        let side = self.size as i64;
        Ok(Tensor::from_slice(&pixels.concat()).view([indices.len() as i64, 3, side, side]))
    }
}

/// Lists one split: its images (undecoded), their `i64` labels and the number of classes.
pub(super) fn read_split(
    root: &Path,
    split: Split,
    size: usize,
    hint: &str,
) -> Result<(Pixels, Tensor, usize)> {
    let classes = class_names(&root.join("train"), hint)?;
    let dir = match split {
        Split::Train => root.join("train"),
        // ImageNet calls its labelled held-out images `val`; accept `test` too.
        Split::Test if !root.join("val").is_dir() && root.join("test").is_dir() => {
            root.join("test")
        }
        Split::Test => root.join("val"),
    };
    if split == Split::Test {
        let found = class_names(&dir, hint)?;
        if found != classes {
            // Only the differences: ImageNet has a thousand classes.
            let missing: Vec<_> = classes.iter().filter(|c| !found.contains(c)).collect();
            let extra: Vec<_> = found.iter().filter(|c| !classes.contains(c)).collect();
            return Err(Error::CorruptData {
                path: dir,
                problem: format!(
                    "its class folders differ from those of train/: it lacks {missing:?} and \
                     has {extra:?} besides"
                ),
                hint: hint.to_string(),
            });
        }
    }
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let images = image_files(&class_dir, hint)?;
        if images.is_empty() {
            return Err(Error::CorruptData {
                path: class_dir,
                problem: format!("empty class folder: no {} files", EXTENSIONS.join("/")),
                hint: hint.to_string(),
            });
        }
        labels.resize(labels.len() + images.len(), label as i64);
        paths.extend(images);
    }
    let files = ImageFiles {
        paths,
        size,
        hint: hint.to_string(),
    };
    let labels = Tensor::from_slice(&labels);
    Ok((Pixels::Files(files), labels, classes.len()))
}

/// Sorted names of the sub-directories of `dir`.
fn class_names(dir: &Path, hint: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = list(dir, hint)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.len() < 2 {
        // One class makes every prediction right: "100% top-1" that means nothing.
        return Err(Error::CorruptData {
            path: dir.to_path_buf(),
            problem: format!(
                "holds {} class sub-director{}; classification needs at least two",
                names.len(),
                if names.len() == 1 { "y" } else { "ies" }
            ),
            hint: hint.to_string(),
        });
    }
    Ok(names)
}

/// Sorted JPEG and PNG files directly in `dir`.
fn image_files(dir: &Path, hint: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = list(dir, hint)?
        .into_iter()
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

fn list(dir: &Path, hint: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::MissingData {
            path: dir.to_path_buf(),
            hint: hint.to_string(),
        },
        _ => Error::Io {
            path: dir.to_path_buf(),
            source,
        },
    })?;
    entries
        .map(|e| {
            e.map(|e| e.path()).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })
        })
        .collect()
}

/// One image as `[3, size, size]` bytes: RGB, the largest centred square resized to `size`
/// (bilinear with antialiasing, as torchvision's `Resize` then `CenterCrop` on PIL images).
fn decode(path: &Path, size: usize, hint: &str) -> Result<Vec<u8>> {
    let corrupt = |problem: String| Error::CorruptData {
        path: path.to_path_buf(),
        problem,
        hint: hint.to_string(),
    };
    let rgb = image::open(path)
        .map_err(|e| {
            corrupt(format!(
                "cannot decode the image ({e}); replace or delete the file"
            ))
        })?
        .into_rgb8();
    let (width, height) = rgb.dimensions();
    let side = size as u32;
    let mut square = Image::new(side, side, PixelType::U8x3);
    Image::from_vec_u8(width, height, rgb.into_raw(), PixelType::U8x3)
        .map_err(|e| e.to_string())
        .and_then(|source| {
            let options = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .fit_into_destination(None);
            Resizer::new()
                .resize(&source, &mut square, &options)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| corrupt(format!("cannot resize the {width}x{height} image ({e})")))?;
    // Interleaved HWC to planar CHW.
    let plane = size * size;
    let mut chw = vec![0u8; 3 * plane];
    for (i, pixel) in square.buffer().chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = pixel[c];
        }
    }
    Ok(chw)
}
