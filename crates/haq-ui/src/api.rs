//! The routes: the page and its assets, the JSON the page polls, artifacts by digest, and
//! the latest report by the names its run stored.

use std::collections::BTreeMap;
use std::io::Read;

use haq_flow::fingerprint::explain;
use haq_flow::plan::{self, State};
use haq_store::{Digest, Run, RunStatus, Store};
use serde_json::{json, Value};

use crate::source::Source;
use crate::{assets, downsample, Reply};

/// Points per metric curve sent to the page unless it asks otherwise: a chart a few
/// hundred pixels wide shows no more.
const DEFAULT_POINTS: usize = 1000;

/// The tail of a run's log sent to the page.
const LOG_TAIL: u64 = 256 * 1024;

pub fn route(source: &Source, url: &str) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let decoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    // Nothing here maps a request to a file, but a `..` is refused outright, not looked up.
    if decoded
        .iter()
        .any(|s| s == ".." || s.contains('/') || s.contains('\\'))
    {
        return Reply::error(
            400,
            "paths with `..` are refused: name an artifact by its digest",
        );
    }
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [""] => Reply::new(200, "text/html; charset=utf-8", assets::INDEX),
        ["app.js"] => Reply::new(200, "text/javascript; charset=utf-8", assets::APP_JS),
        ["style.css"] => Reply::new(200, "text/css; charset=utf-8", assets::STYLE_CSS),
        ["api", "dag"] => source.dag_reply(|| source.with_store(|store| dag(source, store))),
        ["api", "runs"] => source.with_store(runs),
        ["api", "run", id] => with_run(source, id, run),
        ["api", "run", id, "metrics"] => {
            let max = param(query, "max")
                .and_then(|m| m.parse().ok())
                .unwrap_or(DEFAULT_POINTS);
            with_run(source, id, |store, run| metrics(store, run, max))
        }
        ["api", "run", id, "log"] => with_run(source, id, log),
        ["api", "search", id] => with_run(source, id, search),
        ["artifact", digest] => source.with_store(|store| artifact(store, digest)),
        ["report"] | ["report", ""] => Reply::redirect("/report/index.html"),
        ["report", rest @ ..] => source.with_store(|store| report(store, &rest.join("/"))),
        _ => Reply::new(
            404,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><title>Not found</title><p>Nothing at <code>{}</code>. \
                 <a href=\"/\">The workflow</a></p>",
                html_escape(path)
            ),
        ),
    }
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Answers with `f` for run `id`, or 404 when there is no such run.
fn with_run(source: &Source, id: &str, f: impl FnOnce(&Store, Run) -> Reply) -> Reply {
    let Ok(id) = id.parse::<i64>() else {
        return Reply::error(
            404,
            format!("{id:?} is not a run id (a number, see /#/runs)"),
        );
    };
    source.with_store(|store| match store.run(id) {
        Ok(run) => f(store, run),
        Err(haq_store::Error::NoSuchRun(_)) => {
            Reply::error(404, format!("no run {id} in the store"))
        }
        Err(e) => Reply::error(500, e.to_string()),
    })
}

/// `?` for handlers: a store error becomes a 500 with its line.
fn fail(e: impl std::fmt::Display) -> Reply {
    Reply::error(500, e.to_string())
}

macro_rules! tryr {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail(e),
        }
    };
}

/// Every stage: its upstream, state, why, its run and how far a running one has got.
fn dag(source: &Source, store: &Store) -> Reply {
    let wf = &source.wf;
    let order = source.dag.topo_order();
    let states = tryr!(plan::status(
        wf,
        &source.dag,
        &order,
        store,
        &source.binaries
    ));
    let now = now();
    let mut stages = Vec::new();
    for (&i, state) in order.iter().zip(&states) {
        let spec = &wf.stages[i];
        let (run, detail) = match state {
            State::Fresh(r) => (Some(r.clone()), format!("run {}", r.id)),
            State::Stale(why) => (
                tryr!(store.runs(Some(&spec.name))).into_iter().next(),
                explain(why),
            ),
            State::Running(r) => (
                Some(r.clone()),
                format!("run {} (attempt {})", r.id, r.attempts),
            ),
            State::Interrupted(r) => (Some(r.clone()), format!("run {}: resumes", r.id)),
            State::Failed(r) => (
                Some(r.clone()),
                r.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("failed")
                    .to_string(),
            ),
        };
        let progress = match state {
            State::Running(r) => tryr!(store.latest_metric(r.id)).map(|m| {
                json!({
                    "key": m.key,
                    "step": m.step,
                    "of": r.params.get("episodes").and_then(Value::as_i64),
                    "ago": (now - m.time).max(0.0),
                })
            }),
            _ => None,
        };
        stages.push(json!({
            "name": spec.name,
            "base": spec.base,
            "kind": spec.kind,
            "needs": spec.needs,
            "state": state.label(),
            "detail": detail,
            "run": run.as_ref().map(|r| r.id),
            "progress": progress,
        }));
    }
    Reply::json(
        200,
        &json!({
            "workflow": wf.path.display().to_string(),
            "name": wf.name,
            "store": wf.store.display().to_string(),
            "stages": stages,
        }),
    )
}

fn run_summary(run: &Run, metrics: Option<&BTreeMap<String, f64>>) -> Value {
    json!({
        "id": run.id,
        "stage": run.stage,
        "kind": run.kind,
        "status": run.status,
        "attempts": run.attempts,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration": run.ended_at.map(|e| e - run.started_at),
        "error": run.error,
        "params": run.flat_params(),
        "metrics": metrics,
    })
}

/// Every run, newest first, with its params flattened and its final metrics.
fn runs(store: &Store) -> Reply {
    let runs = tryr!(store.runs(None));
    let finals = tryr!(store.final_metrics());
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| run_summary(r, finals.get(&r.id)))
        .collect();
    Reply::json(200, &Value::Array(rows))
}

fn artifacts(store: &Store, named: &BTreeMap<String, Digest>) -> Result<Vec<Value>, Reply> {
    named
        .iter()
        .map(|(name, digest)| {
            Ok(json!({
                "name": name,
                "digest": digest.0,
                "size": store.artifact_size(digest).map_err(fail)?,
                "media_type": store.artifact_media_type(digest).map_err(fail)?,
            }))
        })
        .collect()
}

/// One run: its summary, inputs and outputs (digests, sizes), checkpoints, metric keys.
fn run(store: &Store, run: Run) -> Reply {
    // Ordered by key then step, so each key's last value is its last step's.
    let finals: BTreeMap<String, f64> = tryr!(store.metrics(run.id, None))
        .into_iter()
        .map(|m| (m.key, m.value))
        .collect();
    let inputs = match artifacts(store, &tryr!(store.inputs(run.id))) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let outputs = match artifacts(store, &tryr!(store.outputs(run.id))) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let checkpoints: Vec<Value> = tryr!(store.checkpoints(run.id))
        .iter()
        .map(|c| json!({"step": c.step, "digest": c.digest.0}))
        .collect();
    let mut body = run_summary(&run, Some(&finals));
    body["inputs"] = Value::Array(inputs);
    body["outputs"] = Value::Array(outputs);
    body["checkpoints"] = Value::Array(checkpoints);
    body["fingerprint"] = json!(run.fingerprint);
    Reply::json(200, &body)
}

/// A run's metric curves, each cut to about `max` points on the server.
fn metrics(store: &Store, run: Run, max: usize) -> Reply {
    let mut by_key: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for m in tryr!(store.metrics(run.id, None)) {
        by_key.entry(m.key).or_default().push((m.step, m.value));
    }
    let curves: serde_json::Map<String, Value> = by_key
        .into_iter()
        .map(|(key, points)| {
            let total = points.len();
            let kept = downsample(&points, max.max(2));
            let (steps, values): (Vec<i64>, Vec<f64>) = kept.into_iter().unzip();
            (
                key,
                json!({"steps": steps, "values": values, "total": total}),
            )
        })
        .collect();
    Reply::json(
        200,
        &json!({"run": run.id, "status": run.status, "curves": curves}),
    )
}

/// The last [`LOG_TAIL`] bytes of a run's log.
fn log(store: &Store, run: Run) -> Reply {
    let path = store.log_path(run.id);
    let Ok(mut file) = std::fs::File::open(&path) else {
        return Reply::new(200, "text/plain; charset=utf-8", "(no log yet)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut text = String::new();
    if len > LOG_TAIL {
        use std::io::Seek;
        tryr!(file.seek(std::io::SeekFrom::Start(len - LOG_TAIL)));
        text.push_str("[... earlier lines in `haq log` ...]\n");
    }
    let mut bytes = Vec::new();
    tryr!(file.read_to_end(&mut bytes));
    text.push_str(&String::from_utf8_lossy(&bytes));
    Reply::new(200, "text/plain; charset=utf-8", text)
}

/// The params a search and its random control share: the same budget, on the same
/// hardware, seed and episodes, differing only in the method.
const CONTROL_KEYS: [&str; 6] = [
    "hardware",
    "objective",
    "budget",
    "seed",
    "episodes",
    "reward",
];

/// A search: its control's run id, the chosen policy and the layer table it was chosen
/// over (so the page can mark depthwise and pointwise layers).
fn search(store: &Store, run: Run) -> Reply {
    let same = |other: &Run| {
        CONTROL_KEYS
            .iter()
            .all(|k| other.params.get(k) == run.params.get(k))
    };
    let control = if run.params.get("method").and_then(Value::as_str) == Some("random") {
        None
    } else {
        tryr!(store.runs(None)).into_iter().find(|r| {
            r.kind == run.kind
                && r.params.get("method").and_then(Value::as_str) == Some("random")
                && same(r)
        })
    };
    let json_artifact = |named: BTreeMap<String, Digest>, name: &str| -> Result<Value, String> {
        match named.get(name) {
            Some(d) => serde_json::from_slice(&store.get_bytes(d).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string()),
            None => Ok(Value::Null),
        }
    };
    let policy = tryr!(json_artifact(tryr!(store.outputs(run.id)), "policy"));
    let layers = tryr!(json_artifact(
        tryr!(store.inputs(run.id)),
        "calibrate/layers"
    ));
    Reply::json(
        200,
        &json!({
            "run": run_summary(&run, None),
            "control": control.map(|c| json!({"id": c.id, "stage": c.stage, "status": c.status})),
            "policy": policy,
            "layers": layers,
        }),
    )
}

/// An artifact's bytes, by its full blake3 digest only.
fn artifact(store: &Store, digest: &str) -> Reply {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Reply::error(
            400,
            "an artifact is named by its blake3 digest: 64 hex digits (see a run's page)",
        );
    }
    let digest = Digest(digest.to_ascii_lowercase());
    let media = match store.artifact_media_type(&digest) {
        Ok(m) => m,
        Err(haq_store::Error::NoSuchArtifact(_)) => {
            return Reply::error(404, format!("no artifact {digest} in the store"))
        }
        Err(e) => return fail(e),
    };
    let bytes = tryr!(store.get_bytes(&digest));
    let mut reply = Reply::new(200, &media, bytes);
    reply.download = Some(digest.short().to_string());
    reply
}

/// A file of the newest completed report run that has an `index.html`, looked up among
/// the names that run stored (`<dir>/index.html`, `<dir>/figures/x.png`, ...).
fn report(store: &Store, rel: &str) -> Reply {
    let mut newest: Option<(String, BTreeMap<String, Digest>)> = None;
    for r in tryr!(store.runs(None)) {
        if r.kind != "report" || r.status != RunStatus::Done {
            continue;
        }
        let outputs = tryr!(store.outputs(r.id));
        let index = outputs
            .keys()
            .filter_map(|k| k.strip_suffix("index.html"))
            .min_by_key(|dir| dir.len())
            .map(str::to_string);
        if let Some(dir) = index {
            newest = Some((dir, outputs));
            break;
        }
    }
    let Some((dir, outputs)) = newest else {
        return Reply::new(
            404,
            "text/html; charset=utf-8",
            "<!doctype html><p>No report yet: the report stage has not completed.</p>",
        );
    };
    let Some(digest) = outputs.get(&format!("{dir}{rel}")) else {
        return Reply::error(404, format!("the report has no file {rel:?}"));
    };
    let media = tryr!(store.artifact_media_type(digest));
    Reply::new(200, &media, tryr!(store.get_bytes(digest)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
