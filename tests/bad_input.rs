//! Hostile input, case by case: malformed or extreme workflow files, overrides, params,
//! datasets, stores and command lines. Every case asserts that `haq` exits with the
//! expected status within a time bound, that the first line of its stderr that is not
//! progress names the problem (the file and field, or the path), that nothing panicked,
//! and that the store, where one exists, passes `PRAGMA integrity_check`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Project, HAQ};

/// One hostile input.
struct Case {
    name: &'static str,
    workflow: String,
    /// Files written into the project before `haq` runs: (relative path, contents).
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    /// The exit status expected: 0 (accepted), 1 (refused) or 2 (refused by the
    /// command-line parser).
    code: i32,
    /// Every one of these appears in the first line of stderr that is not progress.
    says: Vec<&'static str>,
}

fn case(
    name: &'static str,
    workflow: &str,
    args: &[&str],
    code: i32,
    says: &[&'static str],
) -> Case {
    Case {
        name,
        workflow: workflow.to_owned(),
        files: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says: says.to_vec(),
    }
}

impl Case {
    fn with_file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Case {
        self.files.push((path.to_owned(), bytes.into()));
        self
    }
}

/// The longest any case may take: the slowest load a real dataset and fail.
const BOUND: Duration = Duration::from_secs(120);

/// Lines `haq run` prints as stages progress, and the output it echoes from stages.
fn is_progress(line: &str) -> bool {
    line.starts_with('[')
        || [": running (run ", ": up to date (run ", ": done (run "]
            .iter()
            .any(|p| line.contains(p))
}

fn check(c: &Case) {
    let p = Project::new(&c.workflow);
    for (path, bytes) in &c.files {
        let path = p.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let start = Instant::now();
    let mut child = p
        .command(&c.args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes: a full pipe would block haq and look like a hang.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).unwrap();
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BOUND {
            child.kill().unwrap();
            panic!("case {}: still running after {BOUND:?}", c.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap();
    assert!(
        !stderr.contains("panicked at") && status.code() != Some(101),
        "case {}: panicked:\n{stderr}",
        c.name
    );
    assert_eq!(
        status.code(),
        Some(c.code),
        "case {}: exit status; stderr:\n{stderr}",
        c.name
    );
    let first = stderr.lines().find(|l| !is_progress(l)).unwrap_or_default();
    for part in &c.says {
        assert!(
            first.contains(part),
            "case {}: the first line does not say {part:?}: {first:?}\nstderr:\n{stderr}",
            c.name
        );
    }
    let store = p.store_path();
    if store.is_file() {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(verdict, "ok", "case {}: store integrity", c.name);
    }
}

fn check_all(cases: &[Case]) -> usize {
    for c in cases {
        check(c);
    }
    cases.len()
}

/// One example stage; `{extra}` is appended inside the stage's map.
fn example(extra: &str) -> String {
    format!("stages:\n  a:\n    run: example\n    params: {{steps: 2}}\n{extra}")
}

#[test]
fn workflow_files() {
    let deep = format!("stages: {}", "[".repeat(400_000));
    let huge = format!("{}\n{}", example(""), "# padding\n".repeat(2_000_000));
    let matrix = "stages:\n  a:\n    run: example\n    params: {steps: 1}\n    matrix: {x: [RANGE], y: [RANGE], z: [RANGE]}\n"
        .replace("RANGE", &(0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
    let cases = [
        case("tab", "stages:\n\ta:\n\t\trun: example\n", &["run"], 1, &["workflow.yaml:2", "tab character"]),
        case("bom", &format!("\u{feff}{}", example("")), &["run"], 0, &["1 ran"]),
        case("deep nesting", &deep, &["run"], 1, &["workflow.yaml", "nest more than 64"]),
        case("huge file", &huge, &["run"], 1, &["workflow.yaml", "over the limit"]),
        case("unknown top-level key", "stagez: {}\n", &["run"], 1, &["workflow.yaml:1", "stagez"]),
        case("empty file", "", &["run"], 1, &["workflow.yaml"]),
        case("not a map", "- a\n- b\n", &["run"], 1, &["workflow.yaml", "workflow"]),
        case("duplicate stage", "stages:\n  a: {run: example}\n  a: {run: example}\n", &["run"], 1, &["workflow.yaml:3", "duplicate key \"a\""]),
        case("jobs zero", &format!("jobs: 0\n{}", example("")), &["run"], 1, &["workflow.yaml:1", "jobs", "1 to 1024"]),
        case("negative seed", &format!("seed: -1\n{}", example("")), &["run"], 1, &["workflow.yaml:1", "seed"]),
        case("unknown device", &format!("device: tpu\n{}", example("")), &["run"], 1, &["workflow.yaml:1", "device", "cpu, cuda or cuda:N"]),
        case("workflow name a path", &format!("name: ../up\n{}", example("")), &["run"], 1, &["workflow.yaml:1", "name"]),
        case("stage name in capitals", "stages:\n  Train: {run: example}\n", &["run"], 1, &["workflow.yaml:2", "stages.Train", "not allowed"]),
        case("missing run", "stages:\n  a: {params: {steps: 1}}\n", &["run"], 1, &["stages.a", "missing run:"]),
        case("unknown kind", "stages:\n  a: {run: nope}\n", &["run"], 1, &["workflow.yaml:2", "unknown stage kind \"nope\""]),
        case("unknown need", &example("    needs: [b]\n"), &["run"], 1, &["workflow.yaml:5", "stages.a.needs"]),
        case("cycle", "stages:\n  a: {run: example, needs: [b], params: {steps: 1}}\n  b: {run: example, needs: [a], params: {steps: 1}}\n", &["run"], 1, &["dependency cycle"]),
        case("million-stage matrix", &matrix, &["run"], 1, &["workflow.yaml:5", "matrix", "more than 10000 stages"]),
        case("empty matrix values", &example("    matrix: {x: []}\n"), &["run"], 1, &["stages.a.matrix.x", "no values"]),
        case("NaN param", "stages:\n  a: {run: example, params: {steps: 1, offset: .nan}}\n", &["run"], 1, &["workflow.yaml:2", "stages.a.params.offset", "NaN is not a finite number"]),
        case("infinite setting", &format!("settings: {{x: .inf}}\n{}", example("")), &["run"], 1, &["workflow.yaml:1", "settings.x", "inf is not a finite number"]),
        case("NaN override", &example(""), &["run", "--set", "a.offset=.nan"], 1, &["--set a.offset:", "NaN is not a finite number"]),
        case("override of run:", &example(""), &["run", "--set", "a.run=other"], 1, &["--set a.run:", "cannot be set from the command line"]),
        case("override without =", &example(""), &["run", "--set", "a.steps"], 1, &["--set a.steps"]),
        case("override of no stage", &example(""), &["run", "--set", "b.steps=1"], 1, &["--set b.steps:", "no top-level key or stage named \"b\""]),
        case("override jobs zero", &example(""), &["run", "--set", "jobs=0"], 1, &["--set jobs:", "1 to 1024"]),
        case("-j 0", &example(""), &["run", "-j", "0"], 2, &["-j", "0"]),
        case("unknown param", "stages:\n  a: {run: example, params: {steps: 1, stpes: 2}}\n", &["run"], 1, &["workflow.yaml:2", "stages.a.params", "unknown field `stpes`"]),
        case("param of the wrong type", "stages:\n  a: {run: example, params: {steps: many}}\n", &["run"], 1, &["workflow.yaml:2", "stages.a.params.steps", "invalid type"]),
        case("negative steps", "stages:\n  a: {run: example, params: {steps: -3}}\n", &["run"], 1, &["stages.a.params.steps", "negative"]),
        case("missing workflow file", &example(""), &["run", "-f", "nope.yaml"], 1, &["nope.yaml", "cannot read the workflow file"]),
        case("workflow file a folder", &example(""), &["run", "-f", "."], 1, &["cannot read the workflow file"]),
    ];
    eprintln!("{} workflow-file cases", check_all(&cases));
}

#[test]
fn files_and_stores() {
    let mut foreign = Vec::new();
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada');")
            .unwrap();
        drop(conn);
        foreign.extend(std::fs::read(&path).unwrap());
    }
    let cases = [
        case(
            "deps: /dev/zero",
            &example("    deps: [/dev/zero]\n"),
            &["run"],
            1,
            &["stage a", "/dev/zero", "not a regular file"],
        ),
        case(
            "deps: a folder",
            &example("    deps: [sub]\n"),
            &["run"],
            1,
            &["stage a", "sub", "not a regular file"],
        )
        .with_file("sub/x", "x"),
        case(
            "deps: a missing file",
            &example("    deps: [gone.txt]\n"),
            &["run"],
            1,
            &["stage a", "deps: cannot read gone.txt"],
        ),
        case(
            "store: a folder",
            &format!("store: sub\n{}", example("")),
            &["run"],
            1,
            &["store", "is a directory"],
        )
        .with_file("sub/x", "x"),
        case(
            "store: empty path",
            &format!("store: ''\n{}", example("")),
            &["run"],
            1,
            &["store", "directory"],
        ),
        case(
            "store: not SQLite",
            &format!("store: notes.db\n{}", example("")),
            &["run"],
            1,
            &["notes.db", "not an SQLite file"],
        )
        .with_file(
            "notes.db",
            "these are my notes, not a database\n".repeat(100),
        ),
        case(
            "store: another program's database",
            &format!("store: other.db\n{}", example("")),
            &["run"],
            1,
            &["other.db", "another program", "untouched"],
        )
        .with_file("other.db", foreign.clone()),
        case(
            "status on another program's database",
            &format!("store: other.db\n{}", example("")),
            &["status"],
            1,
            &["other.db", "another program"],
        )
        .with_file("other.db", foreign.clone()),
    ];
    eprintln!("{} file and store cases", check_all(&cases));
    // The foreign database is untouched, byte for byte, with nothing created beside it.
    let p = Project::new(&format!("store: other.db\n{}", example("")));
    std::fs::write(p.path("other.db"), &foreign).unwrap();
    assert!(!p.haq(&["run"]).status.success());
    assert_eq!(std::fs::read(p.path("other.db")).unwrap(), foreign);
    assert!(!p.path("other.db.d").exists());
}

/// A workflow of the real stages on Fashion-MNIST; each case breaks one param. Params are
/// checked before anything runs, so none of these trains.
fn science(pretrain: &str, rest: &str) -> String {
    format!(
        "settings:
  dataset: {{name: fashion-mnist, val_size: 500}}
  model: {{arch: mobilenetv2, width: 0.25}}
stages:
  pretrain:
    run: pretrain
    params: {{epochs: 1, batch_size: 64, lr: 0.05, train_subset: 256{pretrain}}}
  calibrate:
    run: calibrate
    needs: [pretrain]
    params: {{hardware: [bismo-edge], calib_batch: 64}}
{rest}"
    )
}

fn finetune(params: &str) -> String {
    science(
        "",
        &format!(
            "  ft:\n    run: finetune\n    needs: [pretrain, calibrate]\n    params: {{epochs: 1, batch_size: 64, lr: 0.01, policy: \"uniform:4\"{params}}}\n"
        ),
    )
}

fn search(params: &str) -> String {
    science(
        "",
        &format!(
            "  s:\n    run: search\n    needs: [pretrain, calibrate]\n    params: {{hardware: bismo-edge, objective: latency, episodes: 3, warmup: 1, train_subset: 512, val_subset: 64{params}}}\n"
        ),
    )
}

/// `science` with one pretrain param changed (its line comes first).
fn pretrain(from: &str, to: &str) -> String {
    science("", "").replacen(from, to, 1)
}

/// `search(...)` with the default budget, which most cases leave alone.
fn search_budget(budget: &str) -> String {
    search(&format!(", budget: {budget}"))
}

#[test]
fn stage_params_are_checked_before_anything_runs() {
    let ok_budget = "{match: \"uniform:4\"}";
    let cases = [
        case("pretrain batch_size 0", &pretrain("batch_size: 64", "batch_size: 0"), &["run"], 1, &["workflow.yaml:7", "stages.pretrain.params.batch_size", "0 is out of range: use 1 to 65536"]),
        case("eval_batch 0", &science(", eval_batch: 0", ""), &["run"], 1, &["stages.pretrain.params.eval_batch", "out of range"]),
        case("epochs 2^64-1", &pretrain("epochs: 1", "epochs: 18446744073709551615"), &["run"], 1, &["stages.pretrain.params.epochs", "use 0 to 10000"]),
        case("negative momentum", &science(", momentum: -0.5", ""), &["run"], 1, &["stages.pretrain.params.momentum", "-0.5 is out of range"]),
        case("negative weight decay", &science(", weight_decay: -0.1", ""), &["run"], 1, &["stages.pretrain.params.weight_decay"]),
        case("negative warm-up", &science(", warmup_epochs: -1", ""), &["run"], 1, &["stages.pretrain.params.warmup_epochs"]),
        case("warm-up longer than training", &science(", warmup_epochs: 5", ""), &["run"], 1, &["stages.pretrain.params.warmup_epochs", "use 0 to 1"]),
        case("crop padding 100000", &science(", augment: {crop_padding: 100000}", ""), &["run"], 1, &["stages.pretrain.params.augment.crop_padding", "use 0 to 14"]),
        case("negative lr", &pretrain("lr: 0.05", "lr: -0.1"), &["run"], 1, &["stages.pretrain.params.lr"]),
        case("NaN lr", &pretrain("lr: 0.05", "lr: .NaN"), &["run"], 1, &["stages.pretrain.params.lr", "not a finite number"]),
        case("misspelt param", &science(", epoch: 3", ""), &["run"], 1, &["stages.pretrain.params", "unknown field `epoch`"]),
        case("epochs as text", &pretrain("epochs: 1", "epochs: three"), &["run"], 1, &["stages.pretrain.params.epochs", "invalid type"]),
        case("train_subset 0", &pretrain("train_subset: 256", "train_subset: 0"), &["run"], 1, &["stages.pretrain.params.train_subset"]),
        case("init not a path", &science(", init: 5", ""), &["run"], 1, &["stages.pretrain.params.init", "expected a safetensors file's path"]),
        case("init /dev/zero", &science(", init: /dev/zero", ""), &["run"], 1, &["stages.pretrain.params.init", "not a regular file"]),
        case("init missing", &science(", init: gone.safetensors", ""), &["run"], 1, &["stages.pretrain.params.init", "gone.safetensors"]),
        case("threads 0", &science("", "").replace("settings:\n", "settings:\n  threads: 0\n"), &["run"], 1, &["workflow.yaml:2", "settings.threads", "out of range"]),
        case("width 0", &science("", "").replace("width: 0.25", "width: 0"), &["run"], 1, &["settings.model.width", "out of range"]),
        case("val_size 0", &science("", "").replace("val_size: 500", "val_size: 0"), &["run"], 1, &["settings.dataset.val_size"]),
        case("unknown dataset", &science("", "").replace("name: fashion-mnist", "name: imagenet2"), &["run"], 1, &["settings.dataset.name", "imagenet2"]),
        case("misspelt setting", &science("", "").replace("val_size: 500", "val_size: 500, rot: /data"), &["run"], 1, &["settings.dataset", "rot"]),
        case("setting of no stage", &science("", "").replace("settings:\n", "settings:\n  epochs: 3\n"), &["run"], 1, &["settings.epochs", "unknown field `epochs`"]),
        case("calibrate no hardware", &science("", "").replace("hardware: [bismo-edge]", "hardware: []"), &["run"], 1, &["stages.calibrate.params.hardware", "empty"]),
        case("calibrate unknown hardware", &science("", "").replace("hardware: [bismo-edge]", "hardware: [tpu-v9]"), &["run"], 1, &["stages.calibrate.params.hardware", "tpu-v9"]),
        case("calib_batch 0", &science("", "").replace("calib_batch: 64", "calib_batch: 0"), &["run"], 1, &["stages.calibrate.params.calib_batch"]),
        case("finetune batch_size 0", &finetune("").replace("batch_size: 64, lr: 0.01", "batch_size: 0, lr: 0.01"), &["run"], 1, &["stages.ft.params.batch_size", "out of range"]),
        case("finetune policy /dev/zero", &finetune("").replace("\"uniform:4\"", "/dev/zero"), &["run"], 1, &["stages.ft.params.policy", "not a regular file"]),
        case("finetune policy missing", &finetune("").replace("\"uniform:4\"", "gone.json"), &["run"], 1, &["stages.ft.params.policy", "cannot read gone.json"]),
        case("finetune policy 12 bits", &finetune("").replace("uniform:4", "uniform:12"), &["run"], 1, &["stages.ft.params.policy", "outside the allowed range"]),
        case("finetune policy garbled", &finetune("").replace("uniform:4", "uniform-4"), &["run"], 1, &["stages.ft.params.policy", "cannot parse"]),
        case("finetune policy not JSON", &finetune("").replace("\"uniform:4\"", "policy.json"), &["run"], 1, &["stages.ft.params.policy", "policy.json"])
            .with_file("policy.json", "{\"layers\": [oops"),
        case("finetune policy a number", &finetune("").replace("\"uniform:4\"", "4"), &["run"], 1, &["stages.ft.params.policy", "expected a string"]),
        case("search episodes 0", &search_budget(ok_budget).replace("episodes: 3", "episodes: 0"), &["run"], 1, &["stages.s.params.episodes", "out of range"]),
        case("search episodes 10^12", &search_budget(ok_budget).replace("episodes: 3", "episodes: 1000000000000"), &["run"], 1, &["stages.s.params.episodes", "out of range"]),
        case("search warm-up past the end", &search_budget(ok_budget).replace("warmup: 1", "warmup: 9"), &["run"], 1, &["stages.s.params.warmup", "use 0 to 3"]),
        case("search budget of two forms", &search_budget("{ratio: 0.5, match: \"uniform:4\"}"), &["run"], 1, &["stages.s.params.budget", "2 forms given"]),
        case("search budget not a map", &search_budget("0.5"), &["run"], 1, &["stages.s.params.budget", "not a map"]),
        case("search negative ratio", &search_budget("{ratio: -1}"), &["run"], 1, &["stages.s.params.budget.ratio", "out of range"]),
        case("search budget unknown policy", &search_budget("{match: \"uniform:9\"}"), &["run"], 1, &["stages.s.params.budget.match"]),
        case("search budget unknown unit", &search_budget("{absolute: {value: 3, unit: hours}}"), &["run"], 1, &["stages.s.params.budget", "hours"]),
        case("search unknown hardware", &search_budget(ok_budget).replace("hardware: bismo-edge, objective", "hardware: tpu-v9, objective"), &["run"], 1, &["stages.s.params.hardware", "tpu-v9"]),
        case("search unknown objective", &search_budget(ok_budget).replace("objective: latency", "objective: speed"), &["run"], 1, &["stages.s.params.objective", "speed"]),
        case("search finalists without images", &search(&format!(", budget: {ok_budget}, finalists: 2")), &["run"], 1, &["stages.s.params.finalists", "finalist_val_subset"]),
        case("search bits upside down", &search(&format!(", budget: {ok_budget}, bits: {{min: 6, max: 3}}")), &["run"], 1, &["stages.s.params.bits"]),
        case("search finetune batch above its images", &search(&format!(", budget: {ok_budget}, reward: finetune, finetune_steps: 2, finetune_batch: 1024")), &["run"], 1, &["stages.s.params.finetune_batch", "1024 is not between 2 and the 512 images of the search-train subset"]),
        case("search size ratio on a measured table", &format!("hardware:\n  rig: {{table: rig.csv}}\n{}", search_budget("{ratio: 0.1}").replace("hardware: bismo-edge, objective: latency", "hardware: rig, objective: size")), &["run"], 1, &["stages.s.params.budget", "a ratio budget for size", "{match: \"uniform-w2\"}"])
            .with_file("rig.csv", "kind,c_in,c_out,kernel,stride,groups,in_h,in_w,out_h,out_w,batch,w_bits,a_bits,value,unit\n"),
        case("search finetune reward without steps", &search(&format!(", budget: {ok_budget}, reward: finetune")), &["run"], 1, &["stages.s.params.reward", "finetune_steps"]),
        case("report with params", &science("", "  report:\n    run: report\n    needs: [pretrain]\n    params: {format: pdf}\n"), &["run"], 1, &["stages.report.params.format", "takes no params"]),
        case("matrix stage names itself", &science("", "  ft:\n    run: finetune\n    needs: [pretrain, calibrate]\n    matrix: {bits: [4, 0]}\n    params: {epochs: 1, batch_size: 64, lr: 0.01, policy: \"uniform:${matrix.bits}\"}\n"), &["run"], 1, &["stages.ft.params.policy", "(in stage ft@0)"]),
        case("override to a bad value", &science("", ""), &["run", "--set", "pretrain.batch_size=0"], 1, &["stages.pretrain.params.batch_size", "out of range"]),
        case("dry run checks params too", &pretrain("batch_size: 64", "batch_size: 0"), &["run", "--dry-run"], 1, &["stages.pretrain.params.batch_size"]),
    ];
    eprintln!("{} params cases", check_all(&cases));
}

/// An IDX file of unsigned bytes: the magic number, the dimensions, then `data`.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// A Fashion-MNIST folder whose training images are `train` (an IDX file) and the rest
/// well formed: 20 images of 28x28 in each split.
fn fashion_root(train_images: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let labels: Vec<u8> = (0..20).map(|i| i % 10).collect();
    let images = idx(&[20, 28, 28], &vec![7; 20 * 28 * 28]);
    vec![
        ("data/train-images-idx3-ubyte".into(), train_images),
        ("data/train-labels-idx1-ubyte".into(), idx(&[20], &labels)),
        ("data/t10k-images-idx3-ubyte".into(), images),
        ("data/t10k-labels-idx1-ubyte".into(), idx(&[20], &labels)),
    ]
}

fn with_files(mut c: Case, files: Vec<(String, Vec<u8>)>) -> Case {
    c.files.extend(files);
    c
}

/// `science` on the dataset under `data/` (val_size 5 of its 20 images).
fn on_own_data(name: &str) -> String {
    science("", "")
        .replace(
            "name: fashion-mnist, val_size: 500",
            &format!("name: {name}, root: data, val_size: 5"),
        )
        // A batch these few images can fill: a smaller subset than a batch is refused.
        .replace(
            "batch_size: 64, lr: 0.05, train_subset: 256",
            "batch_size: 2, lr: 0.05, train_subset: 10",
        )
}

/// A PNG of `size` x `size` pixels of one grey.
fn png(size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::GrayImage::from_pixel(size, size, image::Luma([100]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[test]
fn datasets_are_what_they_claim_to_be() {
    let one_class: Vec<(String, Vec<u8>)> = (0..4)
        .flat_map(|i| {
            [
                (format!("data/train/shirt/{i}.png"), png(16)),
                (format!("data/val/shirt/{i}.png"), png(16)),
            ]
        })
        .collect();
    let mut corrupt_jpeg: Vec<(String, Vec<u8>)> = (0..6)
        .flat_map(|i| {
            [
                (format!("data/train/{}/{i}.png", ["a", "b"][i % 2]), png(16)),
                (format!("data/val/{}/{i}.png", ["a", "b"][i % 2]), png(16)),
            ]
        })
        .collect();
    corrupt_jpeg.push((
        "data/train/a/broken.jpg".into(),
        b"\xff\xd8\xffnot really a jpeg".to_vec(),
    ));
    let folder = |c: &str| {
        science("", "")
            .replace(
                "name: fashion-mnist, val_size: 500",
                "name: folder, root: data, image_size: 16, val_size: 2",
            )
            .replace("batch_size: 64, lr: 0.05, train_subset: 256", c)
    };
    let cases = [
        with_files(
            case(
                "IDX images of 32x32",
                &on_own_data("fashion-mnist"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "32x32", "28x28"],
            ),
            fashion_root(idx(&[20, 32, 32], &vec![0; 20 * 32 * 32])),
        ),
        with_files(
            case(
                "IDX header overflows",
                &on_own_data("mnist"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "overflow"],
            ),
            fashion_root(idx(&[u32::MAX, u32::MAX, u32::MAX], &[])),
        ),
        with_files(
            case(
                "IDX truncated",
                &on_own_data("fashion-mnist"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "truncated"],
            ),
            fashion_root(idx(&[20, 28, 28], &[0; 100])),
        ),
        with_files(
            case(
                "IDX damaged gzip",
                &on_own_data("fashion-mnist"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "damaged gzip stream"],
            ),
            fashion_root(b"\x1f\x8bnot gzip at all".to_vec()),
        ),
        case(
            "dataset folder missing",
            &on_own_data("fashion-mnist"),
            &["run", "pretrain"],
            1,
            &["pretrain: FAILED", "not found"],
        ),
        with_files(
            case(
                "one class",
                &folder("batch_size: 2, lr: 0.05, train_subset: 2"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "data/train", "at least two"],
            ),
            one_class,
        ),
        with_files(
            case(
                "corrupt JPEG",
                &folder("batch_size: 2, lr: 0.05, train_subset: 5"),
                &["run", "pretrain"],
                1,
                &["pretrain: FAILED", "broken.jpg"],
            ),
            corrupt_jpeg,
        ),
        case(
            "init not safetensors",
            &science(", init: fake.safetensors", ""),
            &["run", "pretrain"],
            1,
            &[
                "pretrain: FAILED",
                "param init",
                "fake.safetensors",
                "not a safetensors file",
            ],
        )
        .with_file("fake.safetensors", "{\"weights\": \"are not json\"}"),
    ];
    eprintln!("{} dataset cases", check_all(&cases));
}

/// `haq hw cost` of MobileNet-V2 on bismo-edge with `from` in its flags replaced by `to`.
fn hw_cost(name: &'static str, from: &str, to: &str, code: i32, says: &[&'static str]) -> Case {
    let line = "hw cost --arch mobilenetv2 --input-size 224 --num-classes 10 --hardware bismo-edge --policy uniform:4"
        .replace(from, to);
    let mut c = case(name, "", &[], code, says);
    c.args = line.split_whitespace().map(String::from).collect();
    c
}

#[test]
fn command_lines() {
    let done = Project::new(&example(""));
    common::ok(&done.haq(&["run"]));
    let run_in_done = |name: &'static str, args: &[&str], code: i32, says: &[&'static str]| {
        let c = case(name, &example(""), args, code, says);
        // The same store as `done`: copy it in, so each case sees a completed run.
        let mut c = c;
        c.files.push((
            ".haq/store.db".into(),
            std::fs::read(done.store_path()).unwrap(),
        ));
        let wal = done.path(".haq/store.db-wal");
        if wal.exists() {
            c.files
                .push((".haq/store.db-wal".into(), std::fs::read(wal).unwrap()));
        }
        c
    };
    let cases = [
        run_in_done(
            "metrics of no such key",
            &["metrics", "a", "nosuchkey"],
            1,
            &["no metric \"nosuchkey\"", "its metrics: acc_mod_1000, step"],
        ),
        run_in_done(
            "metrics of no such stage",
            &["metrics", "nope"],
            1,
            &["no completed run of stage \"nope\""],
        ),
        run_in_done("show of no such run", &["show", "999"], 1, &["no run 999"]),
        run_in_done("log of no such run", &["log", "999"], 1, &["no run 999"]),
        run_in_done(
            "export-model of a run without a model",
            &["export-model", "1", "--out", "m.safetensors"],
            1,
            &["run 1", "has no output quantized_model"],
        ),
        run_in_done(
            "run of no such stage",
            &["run", "nope"],
            1,
            &["no stage named \"nope\""],
        ),
        run_in_done(
            "force of no such stage",
            &["run", "--force", "nope"],
            1,
            &["--force nope: no such stage"],
        ),
        case(
            "unknown command",
            &example(""),
            &["frobnicate"],
            2,
            &["frobnicate"],
        ),
        hw_cost(
            "hw cost of a huge input",
            "--input-size 224",
            "--input-size 10000000",
            1,
            &["input_size", "use 8 to 2048"],
        ),
        hw_cost(
            "hw cost of a NaN width",
            "--num-classes 10",
            "--num-classes 10 --width NaN",
            1,
            &["width", "not a finite number"],
        ),
        hw_cost(
            "hw cost of a huge batch",
            "--num-classes 10",
            "--num-classes 10 --batch 18446744073709551615",
            2,
            &["--batch"],
        ),
        hw_cost(
            "hw cost of many classes",
            "--num-classes 10",
            "--num-classes 18446744073709551615",
            1,
            &["num_classes", "out of range"],
        ),
        hw_cost(
            "hw cost of a policy from /dev/zero",
            "uniform:4",
            "/dev/zero",
            1,
            &["/dev/zero", "not a regular file"],
        ),
    ];
    eprintln!("{} command-line cases", check_all(&cases));
}

/// A params error leaves no run behind; the check protocol answers field by field.
#[test]
fn a_params_error_leaves_the_store_without_runs() {
    let p =
        Project::new(&finetune("").replace("batch_size: 64, lr: 0.01", "batch_size: 0, lr: 0.01"));
    let out = p.haq(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(p.store().runs(None).unwrap().is_empty());
    let mut input = std::process::Command::new(Path::new(HAQ).with_file_name("haq-finetune"))
        .arg("--haq-check-params")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    input
        .stdin
        .take()
        .unwrap()
        .write_all(b"[{\"policy\": 4}]")
        .unwrap();
    let answer = input.wait_with_output().unwrap();
    let text = String::from_utf8(answer.stdout).unwrap();
    assert!(text.contains("\"field\":\"policy\""), "{text}");
}
