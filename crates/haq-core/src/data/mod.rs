//! Datasets: readers for IDX files (MNIST, Fashion-MNIST) and CIFAR-10 binary batches
//! (into memory) and image folders (streamed from disk); seeded held-out splits and
//! subsets; seeded, augmented batches.

mod augment;
mod batches;
mod cifar;
mod folder;
mod idx;
mod pixels;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::rng::stream;
use pixels::Pixels;

pub use augment::Augment;
pub use batches::{Batch, Batches};
// Kept here too for callers written before it moved to `crate::rng`.
pub use crate::rng::seeded_rng;

/// Where the Debian package `dataset-fashion-mnist` installs its files.
pub const FASHION_MNIST_ROOT: &str = "/usr/share/datasets/fashion-mnist";

/// Which part of a dataset to read. The validation split is carved from `Train` with
/// [`Dataset::split_val`]; `Test` is kept for final numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// The datasets haq can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    FashionMnist,
    Mnist,
    Cifar10,
    /// ImageNet-style: `root/train/<class>/*.jpg|png` and `root/val/<class>/...`.
    Folder,
}

impl DatasetName {
    pub const ALL: [DatasetName; 4] =
        [Self::FashionMnist, Self::Mnist, Self::Cifar10, Self::Folder];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Folder => "folder",
        }
    }

    /// Side of the (square) images, for the datasets whose images have a fixed size.
    pub fn native_image_size(self) -> Option<usize> {
        match self {
            Self::FashionMnist | Self::Mnist => Some(28),
            Self::Cifar10 => Some(32),
            Self::Folder => None,
        }
    }

    /// How to obtain the dataset, for error messages.
    fn hint(self, root: &Path) -> String {
        let root = root.display();
        match self {
            Self::FashionMnist => "install the Debian package `dataset-fashion-mnist` \
                (`apt-get install dataset-fashion-mnist`) or run the project's set-up script \
                `scripts/setup`"
                .to_string(),
            Self::Mnist => format!(
                "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                 t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from \
                 https://ossci-datasets.s3.amazonaws.com/mnist/ (PyTorch's mirror) into {root}, or point the dataset's `root` \
                 at a directory holding them"
            ),
            Self::Cifar10 => format!(
                "download the binary version (cifar-10-binary.tar.gz) from \
                 https://www.cs.toronto.edu/~kriz/cifar.html and extract it so that {root} holds \
                 data_batch_1.bin .. data_batch_5.bin and test_batch.bin, or point the dataset's \
                 `root` at that directory"
            ),
            Self::Folder => format!(
                "put one sub-directory per class holding JPEG or PNG images under {root}/train \
                 and {root}/val (the same class names in both)"
            ),
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::Config {
                field: "dataset.name".into(),
                problem: format!(
                    "unknown dataset `{s}`; expected one of fashion-mnist, mnist, cifar10, folder"
                ),
            })
    }
}

/// Which dataset to load and where it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: DatasetName,
    /// Directory holding the files; each dataset has a default (see [`DatasetSpec::root`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Side of the square images. Image folders are resized (shorter side) and centre-cropped
    /// to it (default 224); the other datasets only accept their native size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

impl DatasetSpec {
    pub fn new(name: DatasetName) -> Self {
        Self {
            name,
            root: None,
            image_size: None,
        }
    }

    /// The directory the files are read from: `root` if given, else the dataset's default
    /// (Fashion-MNIST: the Debian package's; MNIST and CIFAR-10: under the project's `data/`).
    pub fn root(&self) -> Result<PathBuf> {
        if let Some(root) = &self.root {
            return Ok(root.clone());
        }
        match self.name {
            DatasetName::FashionMnist => Ok(PathBuf::from(FASHION_MNIST_ROOT)),
            DatasetName::Mnist => Ok(PathBuf::from("data/mnist")),
            DatasetName::Cifar10 => Ok(PathBuf::from("data/cifar-10-batches-bin")),
            DatasetName::Folder => Err(Error::Config {
                field: "dataset.root".into(),
                problem:
                    "the folder dataset has no default; set it to a directory with train/ and val/ \
                          sub-directories of class folders"
                        .into(),
            }),
        }
    }

    /// Side of the square images this spec yields.
    pub fn image_size(&self) -> Result<usize> {
        match (self.name.native_image_size(), self.image_size) {
            (None, size) => Ok(size.unwrap_or(224)),
            (Some(native), None) => Ok(native),
            (Some(native), Some(size)) if size == native => Ok(native),
            (Some(native), Some(size)) => Err(Error::Config {
                field: "dataset.image_size".into(),
                problem: format!(
                    "{} images are {native}x{native}, not {size}; remove the field",
                    self.name
                ),
            }),
        }
    }

    /// Reads one split: into memory, or for image folders only the list of files.
    pub fn load(&self, split: Split) -> Result<Dataset> {
        let root = self.root()?;
        let size = self.image_size()?;
        let hint = self.name.hint(&root);
        let (pixels, labels, num_classes) = match self.name {
            DatasetName::FashionMnist | DatasetName::Mnist => idx::read_split(&root, split, &hint)?,
            DatasetName::Cifar10 => cifar::read_split(&root, split, &hint)?,
            DatasetName::Folder => folder::read_split(&root, split, size, &hint)?,
        };
        let (mean, std) = channel_stats(self.name);
        Ok(Dataset {
            pixels,
            labels,
            num_classes,
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }
}

/// Per-channel mean and standard deviation (of pixel values scaled to [0, 1]) used to
/// normalise inputs. Fixed per dataset so every stage normalises alike.
fn channel_stats(name: DatasetName) -> (&'static [f64], &'static [f64]) {
    match name {
        // Over the 60k training images; the data tests recompute them.
        DatasetName::FashionMnist => (&[0.2860], &[0.3530]),
        // The values of PyTorch's MNIST example.
        DatasetName::Mnist => (&[0.1307], &[0.3081]),
        // Over the 50k training images (per-pixel std).
        DatasetName::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
        // ImageNet's, as torchvision's pretrained models use.
        DatasetName::Folder => (&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]),
    }
}

/// Images and their labels. The images are decoded pixels in memory, or image files
/// decoded a batch at a time (see [`Dataset::images`] for all of them at once).
#[derive(Debug)]
pub struct Dataset {
    pixels: Pixels,
    /// `i64` class indices, `[N]`.
    pub labels: Tensor,
    pub num_classes: usize,
    /// Per-channel normalisation: `(pixel / 255 - mean) / std`.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Dataset {
    /// A dataset held in memory: `u8` images `[N, C, H, W]` and their `i64` labels `[N]`.
    pub fn in_memory(
        images: Tensor,
        labels: Tensor,
        num_classes: usize,
        mean: Vec<f64>,
        std: Vec<f64>,
    ) -> Dataset {
        Dataset {
            pixels: Pixels::Memory(images),
            labels,
            num_classes,
            mean,
            std,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        self.pixels.shape()
    }

    /// Every image as one `u8` tensor `[N, C, H, W]`, decoded first if the dataset streams
    /// from files: for the small subsets code needs whole (the search's, calibration's).
    pub fn images(&self) -> Result<Tensor> {
        self.pixels.all()
    }

    /// Splits off `n_val` examples chosen at random (seeded) as a held-out validation set.
    /// Returns `(rest, validation)`; both keep the original order of their examples.
    pub fn split_val(&self, n_val: usize, seed: u64) -> Result<(Dataset, Dataset)> {
        if n_val == 0 || n_val >= self.len() {
            return Err(Error::Config {
                field: "validation size".into(),
                problem: format!(
                    "{n_val} is not between 1 and {} (the training examples - 1)",
                    self.len() - 1
                ),
            });
        }
        let mut order = self.permutation(seed, stream::VALIDATION_SPLIT);
        let mut rest = order.split_off(n_val);
        order.sort_unstable();
        rest.sort_unstable();
        Ok((self.select(&rest), self.select(&order)))
    }

    /// `n` examples chosen at random (seeded), in their original order.
    pub fn subset(&self, n: usize, seed: u64) -> Result<Dataset> {
        self.subset_after(0, n, seed)
    }

    /// `n` more examples of the same seeded draw after its first `skip`: none of them is
    /// in `subset(skip, seed)`.
    pub fn subset_after(&self, skip: usize, n: usize, seed: u64) -> Result<Dataset> {
        let available = self.len().saturating_sub(skip);
        if n == 0 || n > available {
            return Err(Error::Config {
                field: "subset size".into(),
                problem: format!("{n} is not between 1 and {available} (the examples available)"),
            });
        }
        let mut order = self.permutation(seed, stream::SUBSET);
        order.truncate(skip + n);
        let mut order = order.split_off(skip);
        order.sort_unstable();
        Ok(self.select(&order))
    }

    /// Batches in order, without augmentation, the last one possibly smaller: for evaluation.
    pub fn eval_batches(&self, batch_size: usize) -> Batches<'_> {
        Batches::new(self, batch_size, None)
    }

    /// The batches (optimiser steps) of an epoch of [`Dataset::train_batches`]: the
    /// full batches only.
    pub fn train_steps(&self, batch_size: usize) -> usize {
        self.len() / batch_size
    }

    /// One epoch of shuffled, augmented batches of exactly `batch_size` examples
    /// ([`Dataset::train_steps`] of them: the few left over are dropped; a different few
    /// each epoch). The shuffle and augmentation
    /// depend only on `(seed, epoch)`, so a run resumed at epoch `e` sees the batches an
    /// uninterrupted run would.
    pub fn train_batches(
        &self,
        batch_size: usize,
        augment: &Augment,
        seed: u64,
        epoch: usize,
    ) -> Batches<'_> {
        Batches::new(
            self,
            batch_size,
            Some((
                augment.clone(),
                seeded_rng(seed, stream::EPOCH + epoch as u64),
            )),
        )
    }

    fn permutation(&self, seed: u64, stream: u64) -> Vec<i64> {
        let mut order: Vec<i64> = (0..self.len() as i64).collect();
        order.shuffle(&mut seeded_rng(seed, stream));
        order
    }

    fn select(&self, indices: &[i64]) -> Dataset {
        Dataset {
            pixels: self.pixels.select(indices),
            labels: self.labels.index_select(0, &Tensor::from_slice(indices)),
            num_classes: self.num_classes,
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }

    /// Pixels scaled to [0, 1] and normalised with the dataset's mean and std.
    pub fn normalize(&self, images: &Tensor) -> Tensor {
        let c = self.mean.len() as i64;
        let mean = Tensor::from_slice(&self.mean)
            .to_kind(Kind::Float)
            .view([1, c, 1, 1]);
        let std = Tensor::from_slice(&self.std)
            .to_kind(Kind::Float)
            .view([1, c, 1, 1]);
        (images.to_kind(Kind::Float) / 255.0 - mean) / std
    }
}

/// Checks every label read from `path` is a valid class index.
fn check_labels(labels: &[u8], num_classes: usize, path: &Path, hint: &str) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= num_classes) {
        None => Ok(()),
        Some(pos) => Err(Error::CorruptData {
            path: path.to_path_buf(),
            problem: format!(
                "label {} of example {pos} is not below the {num_classes} classes",
                labels[pos]
            ),
            hint: hint.to_string(),
        }),
    }
}

/// In-memory pixels from raw bytes (`[N, C, H, W]`, row-major), and `i64` labels.
fn to_tensors(pixels: &[u8], labels: &[u8], shape: [usize; 3]) -> (Pixels, Tensor) {
    let n = labels.len() as i64;
    let [c, h, w] = shape.map(|d| d as i64);
    let images = Tensor::from_slice(pixels).view([n, c, h, w]);
    let labels = Tensor::from_slice(labels).to_kind(Kind::Int64);
    (Pixels::Memory(images), labels)
}

/// Reads a whole file, telling a missing file (with how to get it) from other I/O errors.
fn read_file(path: &Path, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::MissingData {
            path: path.to_path_buf(),
            hint: hint.to_string(),
        },
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}
