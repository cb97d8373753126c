//! Workspace files: files a stage writes into the directory `haq run` works in, such as
//! the report's `reports/<workflow>/`. The stage records each as an output named
//! `file:<relative path>`, so the store holds its bytes; when the stage is a cache hit,
//! `haq run` writes back any of them that are missing or differ (as DVC's `checkout`
//! does), so deleting a report, or running from another directory, never leaves a cache
//! hit without its files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::{Digest, Store};

/// The prefix of a workspace file's output name (as `deps:` files are `file:` inputs).
pub const OUTPUT_PREFIX: &str = "file:";

/// The output name of the workspace file `path`: a relative path that stays inside the
/// working directory (no `..`, no root), since `haq run` writes it back there.
pub fn output_name(path: &str) -> Result<String> {
    checked(path)?;
    Ok(format!("{OUTPUT_PREFIX}{path}"))
}

fn checked(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    let inside = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if inside {
        Ok(p)
    } else {
        Err(Error::Invalid(format!(
            "workspace file {path:?}: name a relative path inside the working directory \
             (no `..`, no leading `/`)"
        )))
    }
}

/// The workspace files among a run's `outputs` that are missing or whose bytes differ
/// from the stored ones, with their digests.
pub fn differing(outputs: &BTreeMap<String, Digest>) -> Result<Vec<(PathBuf, Digest)>> {
    let mut out = Vec::new();
    for (name, digest) in outputs {
        let Some(path) = name.strip_prefix(OUTPUT_PREFIX) else {
            continue;
        };
        let path = checked(path)?;
        if !fs::read(path).is_ok_and(|bytes| blake3::hash(&bytes).to_hex().as_str() == digest.0) {
            out.push((path.to_path_buf(), digest.clone()));
        }
    }
    Ok(out)
}

/// Writes back the workspace files among a run's `outputs` that are missing or differ,
/// each atomically (a temporary file renamed over it). Returns their paths.
pub fn restore(store: &Store, outputs: &BTreeMap<String, Digest>) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, digest) in differing(outputs)? {
        if path.is_dir() {
            return Err(Error::Invalid(format!(
                "cannot restore {}: a directory is in its place; move it away",
                path.display()
            )));
        }
        let bytes = store.get_bytes(&digest)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let partial = path.with_file_name(format!(".{file_name}.haq-partial"));
        fs::write(&partial, &bytes).map_err(|e| Error::io(&partial, e))?;
        fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
