//! The workflow file (workflow.yaml): schema, validation, `matrix:` expansion, shared
//! settings and `--set` overrides, resolved into a flat list of stages.

mod executor;
mod hardware;
mod locate;
mod matrix;
mod overrides;
mod raw;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Location, Result};
use crate::topo;
pub use executor::{ExecutorKind, ExecutorSpec, SlurmOptions};
use locate::Seg;
use matrix::Combo;
pub use overrides::Override;
use raw::{RawStage, RawWorkflow};

/// A loaded workflow: every matrix stage expanded, every override applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Reports go to `reports/<name>/`; defaults to the file's stem.
    pub name: String,
    /// The workflow file, canonical where it exists on disk.
    pub path: PathBuf,
    /// The store file, resolved against the workflow file's folder.
    pub store: PathBuf,
    pub seed: u64,
    pub device: String,
    /// Stages `haq run` runs at once unless `-j` says otherwise (the file's `jobs:`, 1 by
    /// default). Not part of any fingerprint: it changes when stages run, not what they do.
    pub jobs: usize,
    /// The top-level `executor:` block.
    pub executor: ExecutorSpec,
    /// Expanded stages in declaration order (a matrix stage's expansions in matrix order).
    pub stages: Vec<StageSpec>,
    /// The file's text, to locate errors found after loading (see [`Workflow::param_error`]).
    pub source: String,
    /// Each stage's needs as indices into `stages`, and an order with every stage after
    /// what it needs: resolved and checked for cycles as the file was loaded.
    upstream: Vec<Vec<usize>>,
    order: Vec<usize>,
}

/// One stage to run.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    /// `base`, or `base@v1-v2` for a matrix expansion.
    pub name: String,
    /// The name declared under `stages:`.
    pub base: String,
    /// The `run:` kind: the stage runs the executable `haq-<kind>`.
    pub kind: String,
    /// Expanded names of the stages this one needs, in the order written, without repeats.
    pub needs: Vec<String>,
    /// Files (paths relative to where `haq run` starts) whose contents the stage depends
    /// on, e.g. a policy file named in its params: each becomes the input `file:<path>`,
    /// stored with the run, so editing the file reruns the stage.
    pub deps: Vec<String>,
    /// `{seed, device}`, deep-merged with `settings:`, then the stage's `params:`, then
    /// overrides; always a JSON object.
    pub params: Value,
    /// This expansion's matrix values; empty for a stage without a matrix.
    pub matrix: BTreeMap<String, Value>,
    /// What a Slurm job of this stage asks for: the top-level `executor:` block merged
    /// with the stage's own.
    pub slurm: SlurmOptions,
}

/// Top-level keys; a stage may not take one of these names, so that `--set` is unambiguous.
const TOP_LEVEL_KEYS: [&str; 9] = [
    "name", "store", "seed", "device", "jobs", "executor", "settings", "hardware", "stages",
];

const DEFAULT_STORE: &str = ".haq/store.db";

impl Workflow {
    /// Reads and validates the workflow file at `path`. `kind_exists` says whether a stage
    /// executable exists for a `run:` kind; `known_kinds` lists those found, for the error.
    pub fn load(
        path: &Path,
        overrides: &[Override],
        known_kinds: &[String],
        kind_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Workflow> {
        let source = fs::read_to_string(path).map_err(|source| Error::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&source, path, overrides, known_kinds, kind_exists)
    }

    /// As [`Workflow::load`], with the file's text given; `path` names the file in errors
    /// and anchors the relative store path.
    pub fn parse(
        source: &str,
        path: &Path,
        overrides: &[Override],
        known_kinds: &[String],
        kind_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Workflow> {
        // Editors on Windows may start the file with a byte-order mark; YAML ignores it.
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let doc = Doc { source, file: path };
        // Not located: finding a position means parsing, which is what this bounds.
        check_size(source).map_err(|message| Error::Invalid {
            at: Location {
                file: path.to_path_buf(),
                line_column: None,
            },
            field: String::new(),
            message,
        })?;
        let raw: RawWorkflow = serde_yaml::from_str(source).map_err(|e| doc.yaml_error(&e))?;
        let (top_overrides, stage_overrides): (Vec<&Override>, Vec<&Override>) = overrides
            .iter()
            .partition(|o| TOP_LEVEL_KEYS.contains(&o.path[0].as_str()));

        let mut top = Top::from_raw(&doc, &raw)?;
        for o in top_overrides {
            top.apply(o)?;
        }
        if raw.stages.0.is_empty() {
            return Err(doc.invalid(
                &[key("stages")],
                false,
                "no stages: declare at least one, e.g. stages: {pretrain: {run: pretrain}}",
            ));
        }
        let shared = {
            let mut shared = json!({"seed": top.seed, "device": top.device});
            deep_merge(&mut shared, top.settings.clone());
            shared
        };
        let check = KindCheck {
            known: known_kinds,
            exists: kind_exists,
        };
        let raw_executor = raw.executor.as_ref();
        let at_executor =
            |(field, m): (&str, String)| doc.invalid(&[key("executor"), key(field)], false, m);
        let slurm = raw_executor
            .map(|e| e.options())
            .transpose()
            .map_err(at_executor)?
            .unwrap_or_default();
        let (kind, workdir, requeue) = raw_executor
            .map(|e| e.spec())
            .transpose()
            .map_err(at_executor)?
            .unwrap_or((ExecutorKind::Local, None, true));
        let mut stages = Vec::new();
        for (base, stage) in &raw.stages.0 {
            stages.extend(expand_stage(&doc, base, stage, &shared, &slurm, &check)?);
        }
        if stages.len() > matrix::MAX_EXPANSIONS {
            return Err(doc.invalid(
                &[key("stages")],
                false,
                format!(
                    "{} stages after matrix expansion, more than {}; split the workflow",
                    stages.len(),
                    matrix::MAX_EXPANSIONS
                ),
            ));
        }
        check_unique_names(&doc, &stages)?;
        apply_stage_overrides(&mut stages, &stage_overrides)?;
        let entries = hardware::entries(&doc, raw.hardware.as_ref())?;
        hardware::attach(&mut stages, &entries);
        let upstream = resolve_needs(&doc, &mut stages)?;
        let order = topo::sort(&upstream).map_err(|cycle| {
            let first = &stages[cycle[0]];
            doc.invalid(
                &[key("stages"), key(&first.base), key("needs")],
                false,
                format!(
                    "dependency cycle {} (each stage needs the next); remove one of these needs",
                    topo::cycle_path(&cycle, |i| &stages[i].name)
                ),
            )
        })?;

        let path = fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let folder = path.parent().unwrap_or(Path::new("."));
        let store = folder.join(&top.store);
        let executor = ExecutorSpec {
            kind,
            workdir: workdir.map(|w| folder.join(w)),
            requeue,
        };
        Ok(Workflow {
            name: top.name,
            path,
            store,
            seed: top.seed,
            device: top.device,
            jobs: top.jobs,
            executor,
            stages,
            source: source.to_owned(),
            upstream,
            order,
        })
    }

    /// Each stage's needs as indices, and a topological order (for [`crate::Dag`]).
    pub(crate) fn graph(&self) -> (&[Vec<usize>], &[usize]) {
        (&self.upstream, &self.order)
    }

    /// The stage with this expanded name.
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// An error in a stage's params, found after loading (by the stage kind's own check),
    /// located where the value is written: the stage's `params:`, else `settings:` or the
    /// top level (the shared settings every stage receives), else the stage's `params:`.
    /// `field` is a dotted path within the params, as serde names it (`hardware[0]`).
    pub fn param_error(&self, stage: &StageSpec, field: &str, message: &str) -> Error {
        let doc = Doc {
            source: &self.source,
            file: &self.path,
        };
        let within = field_path(field);
        let in_stage = [
            vec![key("stages"), key(&stage.base), key("params")],
            within.clone(),
        ]
        .concat();
        let in_settings = [vec![key("settings")], within.clone()].concat();
        let exists = |path: &[Seg]| locate::locate_exact(&self.source, path, false).is_some();
        let path = if within.is_empty() || exists(&in_stage) {
            in_stage
        } else if exists(&in_settings) {
            in_settings
        } else if exists(&within[..1]) {
            within
        } else {
            in_stage
        };
        let message = if stage.name == stage.base {
            message.to_owned()
        } else {
            format!("{message} (in stage {})", stage.name)
        };
        doc.invalid(&path, false, message)
    }
}

/// A dotted field path with list indices (`layers[2].w_bits`) as path segments.
fn field_path(field: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            segs.push(key(name));
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(key(index)),
            }
        }
    }
    segs
}

/// Merges `over` into `base`: maps merge key by key, recursively; anything else in `over`
/// replaces what `base` has.
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

/// The workflow file's text and name, to turn a field path into a located error.
struct Doc<'a> {
    source: &'a str,
    file: &'a Path,
}

impl Doc<'_> {
    /// An error at the node at `path` (at the key naming it when `at_key`).
    fn invalid(&self, path: &[Seg], at_key: bool, message: impl Into<String>) -> Error {
        Error::Invalid {
            at: Location {
                file: self.file.to_path_buf(),
                line_column: locate::locate(self.source, path, at_key),
            },
            field: locate::render(path),
            message: message.into(),
        }
    }

    /// serde_yaml renders `field.path: message at line L column C`; we keep the position
    /// and the field apart so every error reads `file:L:C: field: message`.
    fn yaml_error(&self, err: &serde_yaml::Error) -> Error {
        let line_column = err.location().map(|at| (at.line(), at.column()));
        let mut message = err.to_string();
        if let Some((line, column)) = line_column {
            message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        let tab_on_line = line_column
            .and_then(|(line, _)| self.source.lines().nth(line.saturating_sub(1)))
            .is_some_and(|text| text.contains('\t'));
        if tab_on_line && message.contains("cannot start any token") {
            message = "a tab character: YAML indents with spaces only; replace the tab with \
                       spaces"
                .into();
        }
        let (field, message) = match message.split_once(": ") {
            Some((field, rest)) if !field.contains(char::is_whitespace) => {
                (field.to_owned(), rest.to_owned())
            }
            _ => (String::new(), message),
        };
        Error::Invalid {
            at: Location {
                file: self.file.to_path_buf(),
                line_column,
            },
            field,
            message,
        }
    }
}

/// The top-level settings, before and after `--set`.
struct Top {
    name: String,
    store: String,
    seed: u64,
    device: String,
    jobs: usize,
    settings: Value,
}

impl Top {
    fn from_raw(doc: &Doc, raw: &RawWorkflow) -> Result<Top> {
        let name = match &raw.name {
            Some(name) => name.clone(),
            None => doc
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        check_workflow_name(&name).map_err(|m| doc.invalid(&[key("name")], false, m))?;
        let device = raw.device.clone().unwrap_or_else(|| "cpu".into());
        check_device(&device).map_err(|m| doc.invalid(&[key("device")], false, m))?;
        let settings = to_json(raw.settings.clone().unwrap_or_default())
            .map_err(|(path, m)| doc.invalid(&[vec![key("settings")], path].concat(), false, m))?;
        let jobs = raw.jobs.unwrap_or(1);
        check_jobs(jobs).map_err(|m| doc.invalid(&[key("jobs")], false, m))?;
        Ok(Top {
            name,
            store: raw.store.clone().unwrap_or_else(|| DEFAULT_STORE.into()),
            seed: raw.seed.unwrap_or(0),
            device,
            jobs,
            settings,
        })
    }

    fn apply(&mut self, o: &Override) -> Result<()> {
        let typed = |what: &str| -> Result<String> {
            serde_yaml::from_value::<String>(o.value.clone())
                .map_err(|_| o.error(format!("expected {what}")))
        };
        match (o.path[0].as_str(), &o.path[1..]) {
            ("stages", _) => {
                return Err(o.error(
                    "stages cannot be set from the command line; override a stage's params with --set STAGE.PARAM=VALUE",
                ))
            }
            ("executor", _) => {
                return Err(o.error(
                    "executor: cannot be set with --set; use haq run --executor, or edit the file",
                ))
            }
            ("hardware", _) => {
                return Err(o.error(
                    "hardware entries cannot be set from the command line; edit the workflow file's hardware: or the table file",
                ))
            }
            ("settings", rest) => {
                let value = o.json_value()?;
                if rest.is_empty() && !value.is_object() {
                    return Err(o.error("settings must be a map, e.g. settings={model: {width: 0.5}}"));
                }
                overrides::set_path(&mut self.settings, rest, value).map_err(|m| o.error(m))?;
            }
            (top, [_, ..]) => {
                return Err(o.error(format!("{top} is a single value with no fields; use --set {top}=VALUE")))
            }
            ("seed", []) => {
                self.seed = serde_yaml::from_value(o.value.clone())
                    .map_err(|_| o.error("expected a non-negative integer, e.g. seed=1"))?;
            }
            ("device", []) => {
                let device = typed("a device: cpu, cuda or cuda:N")?;
                check_device(&device).map_err(|m| o.error(m))?;
                self.device = device;
            }
            ("name", []) => {
                let name = typed("a workflow name")?;
                check_workflow_name(&name).map_err(|m| o.error(m))?;
                self.name = name;
            }
            ("store", []) => self.store = typed("a store path, e.g. store=.haq/other.db")?,
            ("jobs", []) => {
                let jobs = serde_yaml::from_value(o.value.clone())
                    .map_err(|_| o.error("expected a positive integer, e.g. jobs=2"))?;
                check_jobs(jobs).map_err(|m| o.error(m))?;
                self.jobs = jobs;
            }
            (other, []) => unreachable!("{other} is not in TOP_LEVEL_KEYS"),
        }
        Ok(())
    }
}

/// The largest workflow file: a thousand-stage sweep takes a few hundred kilobytes.
const MAX_SOURCE_BYTES: usize = 16 << 20;
/// The deepest `[`/`{` nesting: the YAML parser's time grows with the square of it.
const MAX_FLOW_DEPTH: usize = 64;

/// Bounds the parser's work before it starts.
fn check_size(source: &str) -> Result<(), String> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "the file is {} bytes, over the limit of {MAX_SOURCE_BYTES}; a workflow this large \
             is not hand-written: generate several smaller ones",
            source.len()
        ));
    }
    // Brackets inside quotes or comments count too: a bound, not a parse.
    let mut depth = 0usize;
    for c in source.chars() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_FLOW_DEPTH {
            return Err(format!(
                "brackets nest more than {MAX_FLOW_DEPTH} deep; a workflow needs a few levels"
            ));
        }
    }
    Ok(())
}

fn check_jobs(jobs: usize) -> Result<(), String> {
    if !(1..=1024).contains(&jobs) {
        return Err(format!(
            "jobs is {jobs}; use 1 to 1024 (stages run at once)"
        ));
    }
    Ok(())
}

/// A YAML map as JSON; a NaN or an infinity is refused (JSON has neither: it would
/// become null), naming where it is.
fn to_json(map: serde_yaml::Mapping) -> Result<Value, (Vec<Seg>, String)> {
    let value = serde_yaml::Value::Mapping(map);
    if let Some((path, x)) = non_finite(&value) {
        return Err((path, format!("{x:?} is not a finite number; give a number")));
    }
    serde_json::to_value(value)
        .map_err(|e| (Vec::new(), format!("{e}; use string keys and plain values")))
}

/// The path and value of the first NaN or infinity in `value`.
fn non_finite(value: &serde_yaml::Value) -> Option<(Vec<Seg>, f64)> {
    use serde_yaml::Value as Y;
    let within = |seg: Seg, inner: &Y| {
        non_finite(inner).map(|(mut path, x)| {
            path.insert(0, seg);
            (path, x)
        })
    };
    match value {
        Y::Number(n) => n
            .as_f64()
            .filter(|x| !x.is_finite())
            .map(|x| (Vec::new(), x)),
        Y::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| within(Seg::Index(i), v)),
        Y::Mapping(map) => map.iter().find_map(|(k, v)| {
            let name = k
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{k:?}"));
            within(Seg::Key(name), v)
        }),
        Y::Tagged(tagged) => non_finite(&tagged.value),
        _ => None,
    }
}

fn check_workflow_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "workflow name {name:?} is not usable as the report folder reports/<name>/: use letters, digits, '_', '.' and '-', not starting with '.'"
        ))
    }
}

fn check_device(device: &str) -> Result<(), String> {
    let ok = match device.strip_prefix("cuda:") {
        Some(index) => !index.is_empty() && index.chars().all(|c| c.is_ascii_digit()),
        None => device == "cpu" || device == "cuda",
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unknown device {device:?}: use cpu, cuda or cuda:N (N a GPU index)"
        ))
    }
}

/// Stage names and kinds share one alphabet: they become executable names and CLI words.
fn is_stage_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

struct KindCheck<'a> {
    known: &'a [String],
    exists: &'a dyn Fn(&str) -> bool,
}

impl KindCheck<'_> {
    fn check(&self, kind: &str) -> Result<(), String> {
        if is_stage_word(kind) && (self.exists)(kind) {
            return Ok(());
        }
        let known = if self.known.is_empty() {
            "(none found)".to_owned()
        } else {
            self.known.join(", ")
        };
        Err(format!(
            "unknown stage kind {kind:?}; known kinds: {known}. A kind k runs the executable haq-k, which must be beside haq or on PATH"
        ))
    }
}

/// One declared stage, expanded over its matrix, with params merged and substituted.
/// `needs` still holds the names as written (after substitution); see [`resolve_needs`].
fn expand_stage(
    doc: &Doc,
    base: &str,
    stage: &RawStage,
    shared: &Value,
    slurm: &SlurmOptions,
    kinds: &KindCheck,
) -> Result<Vec<StageSpec>> {
    let at = |rest: Vec<Seg>| [vec![key("stages"), key(base)], rest].concat();
    if !is_stage_word(base) {
        return Err(doc.invalid(
            &at(vec![]),
            true,
            format!(
                "stage name {base:?} is not allowed: use lowercase letters, digits, '_' and '-'"
            ),
        ));
    }
    if TOP_LEVEL_KEYS.contains(&base) {
        return Err(doc.invalid(
            &at(vec![]),
            true,
            format!("stage name {base:?} is also a top-level key, which would make --set {base}... ambiguous; rename the stage"),
        ));
    }
    let kind = stage.run.as_deref().ok_or_else(|| {
        doc.invalid(
            &at(vec![]),
            true,
            "missing run:, the stage kind; e.g. run: pretrain runs the executable haq-pretrain",
        )
    })?;
    kinds
        .check(kind)
        .map_err(|m| doc.invalid(&at(vec![key("run")]), false, m))?;
    let at_executor =
        |(field, m): (&str, String)| doc.invalid(&at(vec![key("executor"), key(field)]), false, m);
    let slurm = match &stage.executor {
        Some(own) => {
            own.check_stage_level().map_err(at_executor)?;
            slurm.merged(&own.options().map_err(at_executor)?)
        }
        None => slurm.clone(),
    };
    let params = to_json(stage.params.clone().unwrap_or_default())
        .map_err(|(path, m)| doc.invalid(&at([vec![key("params")], path].concat()), false, m))?;
    let combos: Vec<(String, Option<Combo>)> = match &stage.matrix {
        None => vec![(base.to_owned(), None)],
        Some(m) => matrix::expand(&m.0)
            .map_err(|(path, m)| doc.invalid(&at(path), false, m))?
            .into_iter()
            .map(|(suffix, combo)| (format!("{base}@{suffix}"), Some(combo)))
            .collect(),
    };
    let problem = |(path, m): matrix::Problem| doc.invalid(&at(path), false, m);
    combos
        .into_iter()
        .map(|(name, combo)| {
            let own = matrix::substitute(&params, combo.as_ref(), &mut vec![key("params")])
                .map_err(problem)?;
            let texts = |field: &str, list: &Option<Vec<String>>| {
                list.iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, text)| {
                        matrix::substitute_text(text, combo.as_ref())
                            .map_err(|m| problem((vec![key(field), Seg::Index(i)], m)))
                    })
                    .collect::<Result<Vec<String>>>()
            };
            let needs = texts("needs", &stage.needs)?;
            let deps = texts("deps", &stage.deps)?;
            let seed = replicate_seed(&own, combo.as_ref()).map_err(problem)?;
            let mut params = shared.clone();
            deep_merge(&mut params, own);
            if let Some(seed) = seed {
                params["seed"] = seed;
            }
            Ok(StageSpec {
                name,
                base: base.to_owned(),
                kind: kind.to_owned(),
                needs,
                deps,
                params,
                matrix: combo.unwrap_or_default(),
                slurm: slurm.clone(),
            })
        })
        .collect()
}

/// The matrix key `seed` makes replicates: each expansion runs with that seed, which
/// drives every RNG of the stage and so is part of its fingerprint. The stage's own
/// `params:` may not give a different one.
fn replicate_seed(own: &Value, combo: Option<&Combo>) -> Result<Option<Value>, matrix::Problem> {
    let Some(seed) = combo.and_then(|c| c.get("seed")) else {
        return Ok(None);
    };
    if !seed.is_u64() {
        return Err((
            vec![key("matrix"), key("seed")],
            format!(
                "matrix key seed gives each replicate its seed: use non-negative integers, e.g. seed: [0, 1, 2], not {seed}"
            ),
        ));
    }
    match own.get("seed") {
        Some(given) if given != seed => Err((
            vec![key("params"), key("seed")],
            format!(
                "the seed is {given} here but {seed} in matrix: seed; remove params.seed (the matrix sets it)"
            ),
        )),
        _ => Ok(Some(seed.clone())),
    }
}

/// Distinct matrix values can still render alike (`1` and `"1"`, or `a-b` + `c` against
/// `a` + `b-c`); expanded names must stay unique.
fn check_unique_names(doc: &Doc, stages: &[StageSpec]) -> Result<()> {
    let mut seen = HashSet::new();
    for stage in stages {
        if !seen.insert(stage.name.as_str()) {
            return Err(doc.invalid(
                &[key("stages"), key(&stage.base), key("matrix")],
                false,
                format!(
                    "two matrix combinations give the same stage name {:?}; make the values distinct as text",
                    stage.name
                ),
            ));
        }
    }
    Ok(())
}

/// Every name a `needs:` entry or a `--set` may use: declared names, then expanded names.
fn known_stage_names(stages: &[StageSpec]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for stage in stages {
        if !names.contains(&stage.base.as_str()) {
            names.push(&stage.base);
        }
    }
    for stage in stages {
        if !names.contains(&stage.name.as_str()) {
            names.push(&stage.name);
        }
    }
    names
}

/// Overrides of a whole stage go first so that one naming a single expansion wins.
fn apply_stage_overrides(stages: &mut [StageSpec], overrides: &[&Override]) -> Result<()> {
    let mut targets = Vec::with_capacity(overrides.len());
    for o in overrides {
        // An expanded name may hold dots (`search@0.5`), so try ever longer prefixes.
        let found = (1..=o.path.len()).find_map(|n| {
            let name = o.path[..n].join(".");
            let whole = stages.iter().any(|s| s.base == name);
            (whole || stages.iter().any(|s| s.name == name)).then_some((name, whole, n))
        });
        let Some((name, whole, n)) = found else {
            return Err(o.error(format!(
                "no top-level key or stage named {:?}; top-level keys: {}; stages: {}",
                o.path[0],
                TOP_LEVEL_KEYS.join(", "),
                known_stage_names(stages).join(", ")
            )));
        };
        if n == o.path.len() {
            return Err(o.error(format!(
                "name a parameter of the stage, e.g. --set {name}.epochs=5"
            )));
        }
        if let Some(field) = ["run", "needs", "deps", "matrix", "executor"]
            .into_iter()
            .find(|f| o.path[n] == *f)
        {
            return Err(o.error(format!(
                "{field}: is part of the stage's shape and cannot be set from the command \
                 line (--set {name}.PARAM=VALUE sets its params); edit the workflow file"
            )));
        }
        targets.push((!whole, name, *o, n));
    }
    targets.sort_by_key(|&(single, ..)| single);
    for (_, name, o, n) in targets {
        let value = o.json_value()?;
        for stage in stages
            .iter_mut()
            .filter(|s| s.base == name || s.name == name)
        {
            overrides::set_path(&mut stage.params, &o.path[n..], value.clone())
                .map_err(|m| o.error(m))?;
        }
    }
    Ok(())
}

/// Replaces each stage's `needs` by expanded names (a matrix stage's base name means all
/// its expansions) and returns the upstream indices of every stage.
fn resolve_needs(doc: &Doc, stages: &mut [StageSpec]) -> Result<Vec<Vec<usize>>> {
    let index: HashMap<String, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    // A need names a declared stage (every expansion) or one expansion; indexed, so a
    // workflow of thousands of stages resolves in linear time.
    let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in stages.iter().enumerate() {
        by_base.entry(&s.base).or_default().push(i);
    }
    let mut upstream = Vec::with_capacity(stages.len());
    let mut resolved_all = Vec::with_capacity(stages.len());
    for stage in stages.iter() {
        let mut resolved: Vec<String> = Vec::new();
        for (i, need) in stage.needs.iter().enumerate() {
            let mut found = by_base.get(need.as_str()).cloned().unwrap_or_default();
            found.extend(index.get(need));
            found.sort_unstable();
            found.dedup();
            let matches: Vec<&StageSpec> = found.iter().map(|&t| &stages[t]).collect();
            if matches.is_empty() {
                return Err(doc.invalid(
                    &[key("stages"), key(&stage.base), key("needs"), Seg::Index(i)],
                    false,
                    format!(
                        "stage {need:?} does not exist; known stages: {}",
                        known_stage_names(stages).join(", ")
                    ),
                ));
            }
            for t in matches {
                if !resolved.contains(&t.name) {
                    resolved.push(t.name.clone());
                }
            }
        }
        upstream.push(resolved.iter().map(|n| index[n]).collect());
        resolved_all.push(resolved);
    }
    for (stage, needs) in stages.iter_mut().zip(resolved_all) {
        stage.needs = needs;
    }
    Ok(upstream)
}
