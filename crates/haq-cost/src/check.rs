//! Range checks for params: every number a workflow sets has bounds, and an error names
//! the field, the value and the bounds. The upper bounds are far above any real use; they
//! exist so that a typo (`epochs: 18446744073709551615`) fails at once instead of running
//! for ever.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// `value` must lie in `lo..=hi`.
pub fn range<T: PartialOrd + Display>(field: &str, value: T, lo: T, hi: T) -> Result<()> {
    if value < lo || value > hi {
        return Err(Error::Config {
            field: field.into(),
            problem: format!("{value} is out of range: use {lo} to {hi}"),
        });
    }
    Ok(())
}

/// `value` must be a finite number in `lo..=hi`; NaN and infinities are named as such.
pub fn finite(field: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::Config {
            field: field.into(),
            problem: format!("{value} is not a finite number: use {lo} to {hi}"),
        });
    }
    range(field, value, lo, hi)
}

/// The keys of the shared settings (`haq_core::config::Settings`) in a stage's params.
pub const SETTINGS_KEYS: [&str; 5] = ["seed", "device", "dataset", "model", "threads"];

/// The most epochs a training stage accepts.
pub const MAX_EPOCHS: usize = 10_000;
/// The largest batch, in images.
pub const MAX_BATCH: usize = 1 << 16;
/// The most images any subset or split may ask for.
pub const MAX_IMAGES: usize = 100_000_000;

/// Reads a file a param names, refusing what is not a regular file (`/dev/zero`, a FIFO, a
/// folder) or is over `limit` bytes, before reading any of it.
pub fn read_file(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} bytes, over the limit of {limit}", meta.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read: the limit holds whatever happens.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("over the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Deserializes params, naming the field of an error (`augment.flip: invalid type ...`);
/// `explain` adds what to do.
pub fn deserialize<T: DeserializeOwned>(
    value: Value,
    explain: impl Fn(String) -> String,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        Error::Config {
            field: if field == "." { String::new() } else { field },
            problem: explain(e.into_inner().to_string()),
        }
    })
}
