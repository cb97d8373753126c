//! Finding stage binaries: the kind `k` runs the executable `haq-k`, looked up beside the
//! running `haq` first (a build or install puts them together), then on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Stage binaries by kind, with their build identities computed once per process.
pub struct Binaries {
    dirs: Vec<PathBuf>,
    identities: Mutex<BTreeMap<String, String>>,
}

const PREFIX: &str = "haq-";

impl Binaries {
    /// Looks beside the current executable, then on PATH.
    pub fn from_env() -> Binaries {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        Binaries::in_dirs(dirs)
    }

    pub fn in_dirs(dirs: Vec<PathBuf>) -> Binaries {
        Binaries {
            dirs,
            identities: Mutex::new(BTreeMap::new()),
        }
    }

    /// The executable for a stage kind, if there is one.
    pub fn find(&self, kind: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join(format!("{PREFIX}{kind}")))
            .find(|p| is_executable(p))
    }

    /// Every kind with an executable, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .filter(|e| is_executable(&e.path()))
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix(PREFIX)
                    .map(str::to_string)
            })
            .filter(|k| !k.is_empty() && !k.contains('.'))
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// The build identity the stage binary reports (`haq-k --haq-identity`), which goes
    /// into fingerprints so that a rebuilt stage reruns.
    pub fn identity(&self, kind: &str) -> Result<String> {
        if let Some(id) = self.identities.lock().expect("identity cache").get(kind) {
            return Ok(id.clone());
        }
        let binary = self.find(kind).ok_or_else(|| Error::Stage {
            stage: kind.to_string(),
            message: format!("no executable {PREFIX}{kind} beside haq or on PATH"),
        })?;
        let out = Command::new(&binary)
            .arg(haq_stage::IDENTITY_ARG)
            .output()
            .map_err(|e| Error::Io {
                path: binary.clone(),
                source: e,
            })?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || id.is_empty() {
            return Err(Error::Stage {
                stage: kind.to_string(),
                message: format!(
                    "{} did not report its identity ({}); is it a haq stage binary? {}",
                    binary.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        self.identities
            .lock()
            .expect("identity cache")
            .insert(kind.to_string(), id.clone());
        Ok(id)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
