//! The report's files and the directory they are written to.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One file of the report.
pub struct File {
    /// A plain file name: the report directory is flat.
    pub name: String,
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

impl File {
    pub fn new(name: String, bytes: Vec<u8>, media_type: &'static str) -> File {
        File {
            name,
            bytes,
            media_type,
        }
    }

    /// A Markdown or LaTeX file.
    pub fn text(name: String, text: String) -> File {
        let media_type = if name.ends_with(".md") {
            "text/markdown"
        } else {
            "text/plain"
        };
        File::new(name, text.into_bytes(), media_type)
    }
}

/// Writes `files` to `reports/<workflow>/` (relative to the working directory; `workflow`
/// is the workflow's name, or a name made of it), replacing the directory whole so no file
/// of an earlier report lingers. Returns the directory.
pub fn write_dir(workflow: &str, files: &[File]) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !workflow.is_empty() && !workflow.starts_with('.') && !workflow.contains(['/', '\\']),
        "the workflow name {workflow:?} cannot name a directory of reports/; give the \
         workflow a `name:` of letters, digits and dashes"
    );
    let reports = Path::new("reports");
    let dir = reports.join(workflow);
    // Written beside the final directory, then swapped in, so a failure leaves the old
    // report intact.
    let partial = reports.join(format!(".{workflow}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the leftover {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    for f in files {
        let path = partial.join(&f.name);
        fs::write(&path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    fs::rename(&partial, &dir)
        .with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    Ok(dir)
}
