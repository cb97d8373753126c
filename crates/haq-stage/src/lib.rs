//! The stage harness: how a stage binary learns its run, params and inputs, and writes
//! outputs, metrics, checkpoints and progress. `haq run` starts a stage with two
//! environment variables, the store's path and the run id; everything else is in the
//! store. docs/stages.md describes the protocol for people writing stages of their own.
//! No libtorch here: the engine speaks this protocol too.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use serde::de::DeserializeOwned;

use haq_store::{Digest, Error, Result, Run, RunStatus, Store};

pub mod progress;

pub use progress::{Progress, PROGRESS_FD_ENV};

/// Path of the store file.
pub const STORE_ENV: &str = "HAQ_STORE";
/// Id of the run the stage executes.
pub const RUN_ENV: &str = "HAQ_RUN_ID";
/// Argument that makes a stage binary print its build identity and exit.
pub const IDENTITY_ARG: &str = "--haq-identity";
/// Argument that makes a stage binary check params without running: it reads a JSON list
/// of params objects on stdin and prints a JSON list with, for each, `null` or a
/// [`ParamError`]. `haq run` asks this of every stage kind before it runs anything.
pub const CHECK_PARAMS_ARG: &str = "--haq-check-params";
/// The output [`StageContext::put_replicate`] writes.
pub const REPLICATE: &str = "replicate";

/// What is wrong with a stage's params: the dotted path of the field (`augment.flip`, empty
/// for the params as a whole) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ParamError {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// From a (field, message) pair, as science crates report configuration errors.
    pub fn from_parts((field, message): (String, String)) -> ParamError {
        ParamError { field, message }
    }

    /// A serde error of deserializing params, with the path of the field it arose at.
    pub fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> ParamError {
        let field = err.path().to_string();
        let field = if field == "." { String::new() } else { field };
        ParamError::new(field, err.into_inner().to_string())
    }
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "params: {}", self.message)
        } else {
            write!(f, "params.{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ParamError {}

/// Deserializes `value` as `T`, naming the field of the first error.
pub fn from_params<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ParamError> {
    serde_path_to_error::deserialize(value).map_err(ParamError::from_serde)
}

/// How a stage checks its params; the harness calls it before the stage runs and for
/// [`CHECK_PARAMS_ARG`].
pub type CheckParams = fn(&serde_json::Value) -> Result<(), ParamError>;

/// A running stage's view of its run.
pub struct StageContext {
    store: Store,
    run: Run,
    inputs: BTreeMap<String, Digest>,
}

impl StageContext {
    /// Connects to the run `haq run` started this process for.
    pub fn from_env() -> Result<StageContext> {
        let missing = |var| {
            Error::Invalid(format!(
                "{var} is not set: a stage binary is started by `haq run`, not by hand (see docs/stages.md)"
            ))
        };
        let store_path = std::env::var_os(STORE_ENV).ok_or_else(|| missing(STORE_ENV))?;
        let run_id: i64 = std::env::var(RUN_ENV)
            .map_err(|_| missing(RUN_ENV))?
            .parse()
            .map_err(|_| Error::Invalid(format!("{RUN_ENV} must be a run id (an integer)")))?;
        let store = Store::open(store_path.as_ref())?;
        let run = store.run(run_id)?;
        if run.status != RunStatus::Running {
            return Err(Error::Invalid(format!(
                "run {run_id} is {}, not running: only `haq run` starts stages",
                run.status
            )));
        }
        let inputs = store.inputs(run_id)?;
        Ok(StageContext { store, run, inputs })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The run's params: the workflow's shared settings merged with the stage's own.
    pub fn params(&self) -> &serde_json::Value {
        &self.run.params
    }

    /// The params as a typed struct; a missing or mistyped field is named in the error.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T> {
        from_params(&self.run.params).map_err(|e| {
            Error::Invalid(format!(
                "stage {}: {e} (fix the workflow file)",
                self.run.stage
            ))
        })
    }

    /// All inputs, named `<upstream stage>/<output>`.
    pub fn inputs(&self) -> &BTreeMap<String, Digest> {
        &self.inputs
    }

    /// Inputs whose output name is `output`, as (upstream stage, digest).
    pub fn inputs_named<'a>(
        &'a self,
        output: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Digest)> + 'a {
        self.inputs.iter().filter_map(move |(name, digest)| {
            let (stage, out) = name.rsplit_once('/')?;
            (out == output).then_some((stage, digest))
        })
    }

    /// The one input whose output name is `output`; an error if there is none or several.
    pub fn input<'a>(&'a self, output: &'a str) -> Result<&'a Digest> {
        let found: Vec<_> = self.inputs_named(output).collect();
        match found.as_slice() {
            [(_, digest)] => Ok(digest),
            [] => Err(Error::Invalid(format!(
                "stage {} needs an upstream stage producing {output:?}; its inputs are: {} (add it to `needs:`)",
                self.run.stage,
                self.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
            many => Err(Error::Invalid(format!(
                "stage {} has {} inputs named {output:?} (from {}); it needs exactly one",
                self.run.stage,
                many.len(),
                many.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The bytes of the one input named `output`.
    pub fn read_input(&self, output: &str) -> Result<Vec<u8>> {
        let digest = self.input(output)?.clone();
        self.store.get_bytes(&digest)
    }

    /// The one input named `output`, read as JSON.
    pub fn read_json<T: DeserializeOwned>(&self, output: &str) -> Result<T> {
        self.json(output, self.input(output)?)
    }

    /// The input `<stage>/<output>`, read as JSON: for a stage with several inputs of one
    /// name.
    pub fn read_json_from<T: DeserializeOwned>(&self, stage: &str, output: &str) -> Result<T> {
        let name = format!("{stage}/{output}");
        let digest = self.inputs.get(&name).ok_or_else(|| {
            Error::Invalid(format!("stage {} has no input {name}", self.run.stage))
        })?;
        self.json(&name, digest)
    }

    fn json<T: DeserializeOwned>(&self, name: &str, digest: &Digest) -> Result<T> {
        serde_json::from_slice(&self.store.get_bytes(digest)?).map_err(|e| {
            Error::Invalid(format!(
                "stage {}: reading the input {name}: {e} (rerun the stage that wrote it)",
                self.run.stage
            ))
        })
    }

    /// Writes output `name`; downstream stages see it as `<this stage>/<name>`.
    pub fn put_output(&self, name: &str, bytes: &[u8], media_type: &str) -> Result<Digest> {
        self.store.put_output(self.run.id, name, bytes, media_type)
    }

    /// Writes the output `replicate`: `{"seed": S, "params": {...}}`, this run's seed and
    /// its other params. Runs whose params differ only in the seed are replicates of one
    /// experiment; a report groups them by `params` and pairs stages by `seed`.
    pub fn put_replicate(&self) -> Result<Digest> {
        let mut params = self.params().clone();
        let seed = params
            .as_object_mut()
            .and_then(|p| p.remove("seed"))
            .unwrap_or(serde_json::Value::Null);
        let replicate = serde_json::json!({"seed": seed, "params": params});
        self.put_output(
            REPLICATE,
            replicate.to_string().as_bytes(),
            "application/json",
        )
    }

    /// Records `bytes` as the workspace file `path` (relative to the directory `haq run`
    /// works in), which the stage writes there itself: a cache hit of this stage writes it
    /// back when it is missing or changed (see [`haq_store::workspace`]).
    pub fn put_workspace_output(
        &self,
        path: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        self.put_output(&haq_store::workspace::output_name(path)?, bytes, media_type)
    }

    /// Logs metrics of one step (an epoch, an episode) together.
    pub fn log_metrics(&self, step: i64, values: &[(&str, f64)]) -> Result<()> {
        self.store.log_metrics(self.run.id, step, values)
    }

    /// Saves the state after `step`. Log a step's metrics before its checkpoint: on resume,
    /// metrics after the latest checkpoint are dropped and that work is redone.
    pub fn save_checkpoint(&self, step: i64, state: &[u8]) -> Result<()> {
        self.store
            .save_checkpoint(self.run.id, step, state)
            .map(drop)
    }

    /// The latest checkpoint of this run, if it is being resumed: (step, state).
    pub fn resume(&self) -> Result<Option<(i64, Vec<u8>)>> {
        match self.store.latest_checkpoint(self.run.id)? {
            Some(c) => Ok(Some((c.step, self.store.get_bytes(&c.digest)?))),
            None => Ok(None),
        }
    }

    /// A progress bar, drawn by `haq run` when it is on a terminal.
    pub fn progress(&self, len: u64, label: &str) -> Progress {
        Progress::new(len, label)
    }
}

/// The `main` of a stage binary: answers `--haq-identity` and `--haq-check-params`,
/// connects to the run, checks its params, runs `body`, and exits non-zero with the error
/// chain on one stderr line if anything fails (a panic included: `haq run` reports a
/// stage's last stderr line as its error).
pub fn main<E>(
    identity: &str,
    check: CheckParams,
    body: impl FnOnce(&StageContext) -> std::result::Result<(), E>,
) -> !
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let name = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(name);
    match std::env::args().nth(1).as_deref() {
        Some(IDENTITY_ARG) => {
            println!("{identity}");
            std::process::exit(0)
        }
        Some(CHECK_PARAMS_ARG) => std::process::exit(answer_check(&name, check)),
        Some("-h" | "--help") => {
            println!(
                "{name}: a stage of the haq workflow. It is started by `haq run`, which passes \
                 {STORE_ENV} and {RUN_ENV}; see docs/stages.md.\n\n{IDENTITY_ARG}  print the \
                 build identity\n{CHECK_PARAMS_ARG}  check a JSON list of params objects read \
                 from stdin"
            );
            std::process::exit(0)
        }
        _ => {}
    }
    let stage = name.clone();
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        eprintln!(
            "{stage}: internal error (a bug; please report it): panicked{at}: {}",
            one_line(&what)
        );
    }));
    let result = StageContext::from_env()
        .map_err(|e| Box::new(e) as Box<dyn StdError + Send + Sync>)
        .and_then(|ctx| {
            check(ctx.params()).map_err(|e| Box::new(e) as Box<dyn StdError + Send + Sync>)?;
            body(&ctx).map_err(Into::into)
        });
    if let Err(e) = result {
        eprintln!("{name}: {}", error_chain(e.as_ref()));
        std::process::exit(1)
    }
    std::process::exit(0)
}

/// An error and its causes on one line, each cause once: many errors repeat their source's
/// text ("cannot read x: No such file (os error 2): No such file (os error 2)").
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut message = one_line(&e.to_string());
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = one_line(&cause.to_string());
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    message
}

/// Text on one line: a message's line breaks would cut it where `haq run` reports the
/// last line of a stage's stderr.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Most bytes of params read for [`CHECK_PARAMS_ARG`]: params are small JSON documents.
const CHECK_INPUT_LIMIT: u64 = 64 << 20;

/// Answers [`CHECK_PARAMS_ARG`]; the exit status.
fn answer_check(name: &str, check: CheckParams) -> i32 {
    use std::io::Read;
    let mut text = String::new();
    let read = std::io::stdin()
        .take(CHECK_INPUT_LIMIT)
        .read_to_string(&mut text);
    let list: Vec<serde_json::Value> = match read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(list) => list,
        Err(e) => {
            eprintln!(
                "{name}: {CHECK_PARAMS_ARG} expects a JSON list of params objects on stdin: {e}"
            );
            return 2;
        }
    };
    let answers: Vec<Option<ParamError>> = list.iter().map(|p| check(p).err()).collect();
    println!("{}", serde_json::to_string(&answers).expect("serializable"));
    0
}
