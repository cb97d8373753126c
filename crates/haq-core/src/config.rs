//! The workflow's shared settings. The engine merges `seed`, `device` and the workflow's
//! `settings:` (`dataset`, `model`) into every stage's params, so each stage reads them the
//! same way and all stages agree on the data splits and the network:
//!
//! ```yaml
//! seed: 0
//! device: cpu
//! settings:
//!   dataset: {name: fashion-mnist, val_size: 5000}   # root, image_size, test_size: optional
//!   model: {arch: mobilenetv2, width: 0.5}
//! ```

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tch::Device;

use crate::arch::{Arch, ArchConfig};
use crate::check::{self, SETTINGS_KEYS};
use crate::data::{Dataset, DatasetName, DatasetSpec, Split};
use crate::error::{Error, Result};
use crate::train::Recipe;

/// The settings every stage receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub seed: u64,
    /// `cpu`, `cuda` or `cuda:N`; see [`Settings::device`].
    pub device: String,
    pub dataset: DatasetSettings,
    pub model: ModelSettings,
    /// libtorch's intra-op threads in a stage; by default libtorch's own choice (every
    /// core). Two one-thread stages side by side (`haq run -j 2`) train faster than one
    /// two-thread stage on a 2-core machine. A param like any other, so part of the
    /// fingerprint: float sums may depend on the thread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl Settings {
    /// Splits a stage's params into the shared settings and the stage's own params `T`,
    /// so that `T` can deny unknown fields (serde cannot when the two are flattened into
    /// one struct).
    pub fn split_params<T: DeserializeOwned>(params: &Value) -> Result<(Settings, T)> {
        let Value::Object(all) = params else {
            return Err(Error::Config {
                field: String::new(),
                problem: format!("expected a map, got {params}"),
            });
        };
        let (shared, own): (Map<String, Value>, Map<String, Value>) = all
            .clone()
            .into_iter()
            .partition(|(k, _)| SETTINGS_KEYS.contains(&k.as_str()));
        let settings: Settings = check::deserialize(Value::Object(shared), |problem| {
            format!(
                "shared settings: {problem}; the workflow needs seed, device and settings: {{dataset: {{name: \
                 fashion-mnist, val_size: 5000}}, model: {{arch: mobilenetv2, width: 0.5}}}}"
            )
        })?;
        settings.check()?;
        let own = check::deserialize(Value::Object(own), |problem| {
            format!("{problem} (fix the stage's params: in the workflow file)")
        })?;
        Ok((settings, own))
    }

    /// Splits a training stage's params into the shared settings, the recipe (checked)
    /// and the string param `extra` (a path or spec the stage reads itself), if given;
    /// `expected` says what `extra` holds, for the error when it is not a string.
    pub fn split_training_params(
        params: &Value,
        extra: &str,
        expected: &str,
    ) -> Result<(Settings, Recipe, Option<String>)> {
        let mut params = params.clone();
        let value = match params.as_object_mut().and_then(|p| p.remove(extra)) {
            None => None,
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                return Err(Error::Config {
                    field: extra.into(),
                    problem: format!("expected {expected}, got {other}"),
                })
            }
        };
        let (settings, recipe): (Settings, Recipe) = Settings::split_params(&params)?;
        recipe.check(settings.dataset.image_size())?;
        Ok((settings, recipe, value))
    }

    /// The ranges of the settings' numbers.
    pub fn check(&self) -> Result<()> {
        if let Some(threads) = self.threads {
            check::range("threads", threads, 1, 4096)?;
        }
        self.dataset.check()?;
        Ok(check::finite("model.width", self.model.width, 0.01, 8.0)?)
    }

    /// Sets the process up for libtorch: its thread count from `threads`, if given (at
    /// least 1), and the allocator ([`keep_freed_buffers`]).
    pub fn apply_runtime(&self) -> Result<()> {
        keep_freed_buffers();
        self.check()?;
        if let Some(n) = self.threads {
            tch::set_num_threads(i32::try_from(n).unwrap_or(i32::MAX));
        }
        Ok(())
    }

    /// The libtorch device `device` names; a CUDA device must exist.
    pub fn device(&self) -> Result<Device> {
        let bad = |problem: String| {
            Err(Error::Config {
                field: "device".into(),
                problem,
            })
        };
        let index = match self.device.as_str() {
            "cpu" => return Ok(Device::Cpu),
            "cuda" => 0,
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => i,
                _ => return bad(format!("`{other}` is not cpu, cuda or cuda:N")),
            },
        };
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            return bad(format!(
                "`{}` asked for, but libtorch sees {count} CUDA device(s) (no GPU, or the \
                 stages were built against the CPU-only libtorch); use device: cpu",
                self.device
            ));
        }
        Ok(Device::Cuda(index))
    }
}

/// Which dataset, and how much of its training split is held out for validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSettings {
    pub name: DatasetName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Examples of the training split held out (seeded) for validation: pretraining never
    /// trains on them, and the search measures its accuracies on them.
    pub val_size: usize,
    /// Evaluate on this many test examples (a seeded subset) instead of the whole test
    /// split: for toy workflows, whose numbers are not comparable to published ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
}

/// The three splits every stage agrees on.
#[derive(Debug)]
pub struct Splits {
    /// The training split less the validation examples.
    pub train: Dataset,
    /// `val_size` examples held out of the training split.
    pub val: Dataset,
    pub test: Dataset,
}

impl DatasetSettings {
    pub fn spec(&self) -> DatasetSpec {
        DatasetSpec {
            name: self.name,
            root: self.root.clone(),
            image_size: self.image_size,
        }
    }

    /// The ranges of the split sizes and image size.
    pub fn check(&self) -> Result<()> {
        check::range("dataset.val_size", self.val_size, 1, check::MAX_IMAGES)?;
        if let Some(n) = self.test_size {
            check::range("dataset.test_size", n, 1, check::MAX_IMAGES)?;
        }
        if let Some(size) = self.image_size {
            check::range("dataset.image_size", size, 8, 4096)?;
        }
        Ok(())
    }

    /// The side of the images the stages see, where the settings alone tell it.
    pub fn image_size(&self) -> Option<usize> {
        self.image_size.or(self.name.native_image_size())
    }

    /// Reads the dataset and carves the validation split out of its training split with
    /// `seed`, the same way in every stage.
    pub fn load(&self, seed: u64) -> Result<Splits> {
        let spec = self.spec();
        let (train, val) = spec
            .load(Split::Train)?
            .split_val(self.val_size, seed)
            .map_err(setting("dataset.val_size"))?;
        let test = spec.load(Split::Test)?;
        let test = match self.test_size {
            None => test,
            Some(n) => test.subset(n, seed).map_err(setting("dataset.test_size"))?,
        };
        Ok(Splits { train, val, test })
    }
}

/// Tells glibc's allocator to keep freed buffers of up to 32 MiB for reuse instead of
/// unmapping them: every activation tensor is such a buffer, and fresh pages (faulted in
/// and zeroed by the kernel) made an out-of-place op 3x an in-place one and evaluation
/// 15-25% slower (docs/performance.md). Every stage that trains calls it through
/// [`Settings::apply_runtime`]; a no-op off glibc.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters, under glibc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Renames a configuration error's field to the setting the user writes.
fn setting(field: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Config { problem, .. } => Error::Config {
            field: field.into(),
            problem,
        },
        other => other,
    }
}

/// The network: an architecture at a width; the dataset sets its input and classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub arch: Arch,
    /// Width multiplier (1.0 = the published network).
    #[serde(default = "full_width")]
    pub width: f64,
}

fn full_width() -> f64 {
    1.0
}

impl ModelSettings {
    /// The network for images and classes like `data`'s.
    pub fn arch_config(&self, data: &Dataset) -> ArchConfig {
        let [channels, size, _] = data.image_shape();
        ArchConfig {
            arch: self.arch,
            width: self.width,
            input_size: size,
            in_channels: channels,
            num_classes: data.num_classes,
        }
    }
}
