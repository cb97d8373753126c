//! Whether a stage's result can be reused, and if not, why: the one place that decides.
//!
//! A run's fingerprint is the blake3 hash of what determines its result (its [`Basis`]):
//! - the stage kind (`run:`), so a stage switched to another binary reruns;
//! - its params, canonical JSON (key order and whitespace do not count): `seed`,
//!   `device`, the workflow's `settings:` and the stage's own `params:`, merged;
//! - its inputs by name: each upstream output's content digest, and each `deps:` file's
//!   (`file:<path>`), so a change upstream or in a listed file reruns it;
//! - the stage binary's build identity: a hash of its sources (haq-build), not of the
//!   executable, so a rebuild from the same sources in another checkout still matches.
//!
//! Deliberately not hashed: the workflow's name and file path, the directory `haq run`
//! works in, the store's path, `jobs:`, timestamps, and the stage's name (runs are looked
//! up by stage name and fingerprint, so a renamed stage starts afresh without changing
//! what its fingerprint means). A stage's result may depend on nothing else: that is the
//! stage author's side of the contract (docs/stages.md).

use std::collections::BTreeMap;
use std::fmt;

use haq_store::{Digest, Run, Store};
use serde_json::{json, Value};

use crate::binaries::Binaries;
use crate::error::{Error, Result};
use crate::workflow::StageSpec;

/// JSON with object keys sorted at every depth and no whitespace, so equal values give
/// equal text whatever order their keys were written in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by_key(|&(k, _)| k);
            out.push('{');
            for (n, (k, v)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The blake3 hex digest of a stage run's determining inputs: its kind, canonical params,
/// input name -> upstream artifact digest, and the stage binary's identity.
pub fn fingerprint(
    kind: &str,
    params: &Value,
    inputs: &BTreeMap<String, String>,
    binary_id: &str,
) -> String {
    // One JSON document keeps the fields apart unambiguously; the version tag lets a
    // future change of this recipe invalidate old fingerprints rather than collide.
    let doc = json!({
        "fingerprint": 1,
        "kind": kind,
        "params": params,
        "inputs": inputs,
        "binary": binary_id,
    });
    blake3::hash(canonical_json(&doc).as_bytes())
        .to_hex()
        .to_string()
}

/// The identity of a stage's next run: its inputs, binary and their fingerprint.
pub struct RunKey {
    pub inputs: BTreeMap<String, Digest>,
    pub binary_id: String,
    pub fingerprint: String,
}

impl RunKey {
    /// What the next run of `stage` is computed from.
    pub fn basis<'a>(&'a self, stage: &'a StageSpec) -> Basis<'a> {
        Basis {
            kind: &stage.kind,
            params: &stage.params,
            inputs: &self.inputs,
            binary_id: &self.binary_id,
        }
    }
}

/// What a run's result is computed from: exactly what its fingerprint hashes.
pub struct Basis<'a> {
    pub kind: &'a str,
    pub params: &'a Value,
    pub inputs: &'a BTreeMap<String, Digest>,
    pub binary_id: &'a str,
}

/// The prefix of the input a `deps:` file becomes.
pub const FILE_INPUT: &str = "file:";

/// The blake3 digest of a `deps:` file, as the store would name it. Only regular files
/// (a device such as /dev/zero never ends), read in chunks so that Ctrl-C stops `haq run`
/// even inside a large file.
fn file_digest(stage: &StageSpec, path: &str) -> Result<Digest> {
    use std::io::Read;
    let bad = |why: String| Error::Stage {
        stage: stage.name.clone(),
        message: format!(
            "deps: cannot read {path}: {why} (paths are relative to the directory haq runs \
             in; list only files that exist)"
        ),
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(
            "not a regular file; deps: lists files whose contents the stage reads".into(),
        ));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if crate::executor::interrupted() {
            return Err(bad("interrupted".into()));
        }
        let n = file.read(&mut buf).map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest(hasher.finalize().to_hex().to_string()))
}

/// Computes a stage's fingerprint from its upstream runs' outputs and its `deps:` files.
pub fn run_key(
    store: &Store,
    stage: &StageSpec,
    upstream: &[(&str, &Run)],
    binaries: &Binaries,
) -> Result<RunKey> {
    let mut inputs = BTreeMap::new();
    for (name, run) in upstream {
        for (output, digest) in store.outputs(run.id)? {
            inputs.insert(format!("{name}/{output}"), digest);
        }
    }
    for path in &stage.deps {
        inputs.insert(format!("{FILE_INPUT}{path}"), file_digest(stage, path)?);
    }
    let binary_id = binaries.identity(&stage.kind)?;
    let named: BTreeMap<String, String> = inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let fingerprint = fingerprint(&stage.kind, &stage.params, &named, &binary_id);
    Ok(RunKey {
        inputs,
        binary_id,
        fingerprint,
    })
}

/// What changed between two params objects, one line per dotted path, sorted:
/// `epochs: 10 -> 12`, `lr: (unset) -> 0.1`. Maps are compared key by key; anything else
/// (lists included) as a whole.
pub fn diff_params(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(old, new, "", &mut out);
    out.sort();
    out
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if let (Value::Object(old), Value::Object(new)) = (old, new) {
        for key in old
            .keys()
            .chain(new.keys().filter(|k| !old.contains_key(*k)))
        {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (old.get(key), new.get(key)) {
                (Some(a), Some(b)) => diff_into(a, b, &path, out),
                (a, b) => out.push(format!("{path}: {} -> {}", shown(a), shown(b))),
            }
        }
    } else if old != new {
        let path = if path.is_empty() { "(params)" } else { path };
        out.push(format!(
            "{path}: {} -> {}",
            shown(Some(old)),
            shown(Some(new))
        ));
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), canonical_json)
}

/// Why a stage would run instead of reusing a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleReason {
    /// No run of the stage ever completed.
    NeverRun,
    /// An upstream stage has no result to build on (`state` is its state's label, or
    /// `not selected`).
    Upstream { stage: String, state: &'static str },
    /// Further upstream stages without a result, beyond the first named.
    MoreUpstream(usize),
    /// The stage's `run:` kind is another one.
    KindChanged { from: String, to: String },
    /// A param differs: one line of [`diff_params`] (`epochs: 10 -> 12`).
    Param(String),
    /// A `deps:` file was added, removed or edited.
    DepsFile { path: String, change: Change },
    /// An upstream output was added, removed or changed.
    UpstreamInput {
        stage: String,
        input: String,
        change: Change,
    },
    /// The stage binary was built anew, from what `changes` names (empty when its
    /// identity has no named parts: a binary built before they existed).
    BinaryRebuilt { kind: String, changes: Vec<String> },
    /// Nothing above differs: the fingerprint recipe itself changed.
    FingerprintChanged,
}

/// How one input differs from the last completed run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        })
    }
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverRun => write!(f, "never run"),
            StaleReason::Upstream { stage, state } => write!(f, "upstream {stage} is {state}"),
            StaleReason::MoreUpstream(n) => write!(
                f,
                "{n} more upstream stage{} not fresh",
                if *n == 1 { "" } else { "s" }
            ),
            StaleReason::KindChanged { from, to } => write!(f, "run kind changed: {from} -> {to}"),
            StaleReason::Param(change) => write!(f, "param {change}"),
            StaleReason::DepsFile { path, change } => write!(f, "deps: file {path} {change}"),
            StaleReason::UpstreamInput {
                stage,
                input,
                change,
            } => write!(f, "upstream {stage}: input {input} {change}"),
            StaleReason::BinaryRebuilt { kind, changes } if changes.is_empty() => {
                write!(
                    f,
                    "stage binary haq-{kind} was rebuilt from different sources"
                )
            }
            StaleReason::BinaryRebuilt { kind, changes } => {
                write!(
                    f,
                    "stage binary haq-{kind} was rebuilt: {}",
                    changes.join(", ")
                )
            }
            StaleReason::FingerprintChanged => write!(f, "fingerprint changed"),
        }
    }
}

/// What differs between two build identities of `name=value` parts (haq-build), named for
/// a reader; nothing where either has no such parts.
fn build_changes(old: &str, new: &str) -> Vec<String> {
    let parts = |id: &str| -> Option<BTreeMap<String, String>> {
        id.split_whitespace()
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    };
    let (Some(old), Some(new)) = (parts(old), parts(new)) else {
        return Vec::new();
    };
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (old.get(name), new.get(name));
            if a == b {
                return None;
            }
            Some(match name.as_str() {
                "libtorch" => format!(
                    "libtorch {} -> {}",
                    a.map_or("(none)", String::as_str),
                    b.map_or("(none)", String::as_str)
                ),
                "lock" => "Cargo.lock changed".into(),
                "build" => "build scripts, manifests or build flags changed".into(),
                "sources" => "sources changed".into(),
                other => format!("{other} changed"),
            })
        })
        .collect()
}

/// The reasons, as one line.
pub fn explain(reasons: &[StaleReason]) -> String {
    let lines: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Why a run computed from `new` cannot reuse the last completed one, computed from `old`.
pub fn why_stale(old: &Basis, new: &Basis) -> Vec<StaleReason> {
    let mut reasons = Vec::new();
    if old.kind != new.kind {
        reasons.push(StaleReason::KindChanged {
            from: old.kind.to_string(),
            to: new.kind.to_string(),
        });
    }
    reasons.extend(
        diff_params(old.params, new.params)
            .into_iter()
            .map(StaleReason::Param),
    );
    let names: std::collections::BTreeSet<&String> =
        old.inputs.keys().chain(new.inputs.keys()).collect();
    for name in names {
        let change = match (old.inputs.get(name), new.inputs.get(name)) {
            (a, b) if a == b => continue,
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            _ => Change::Changed,
        };
        reasons.push(match name.strip_prefix(FILE_INPUT) {
            Some(path) => StaleReason::DepsFile {
                path: path.to_string(),
                change,
            },
            None => StaleReason::UpstreamInput {
                stage: name
                    .rsplit_once('/')
                    .map_or(name.as_str(), |(s, _)| s)
                    .to_string(),
                input: name.clone(),
                change,
            },
        });
    }
    if old.binary_id != new.binary_id {
        reasons.push(StaleReason::BinaryRebuilt {
            kind: new.kind.to_string(),
            changes: build_changes(old.binary_id, new.binary_id),
        });
    }
    if reasons.is_empty() {
        reasons.push(StaleReason::FingerprintChanged);
    }
    reasons
}
