//! End to end on `workflows/smoke.yaml` (the default workflow's DAG at toy sizes) from an
//! empty store: every stage runs with the real binaries, libtorch, Fashion-MNIST and
//! SQLite store; the report is complete and consistent; a second run is all cache hits;
//! and a run killed during a search and again during a finetune, then resumed, ends with
//! exactly the results of the uninterrupted run.
//!
//! Needs the release binaries: `cargo build --release --workspace` (scripts/test does it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{kill9, ok, outputs, slurm_tests_enabled, wait_until, Project};
use haq_store::{RunStatus, Store};

const SMOKE: &str = include_str!("../workflows/smoke.yaml");

/// The report's files: name -> bytes.
fn report_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The targets of `href="..."` and `src="..."` in `html` that are not in-page anchors.
fn links(html: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for attr in ["href=\"", "src=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let target = &rest[..rest.find('"').unwrap()];
            if !target.starts_with('#') {
                found.insert(target.to_string());
            }
        }
    }
    found
}

/// A PNG that decodes and is not one flat colour.
fn assert_drawn(name: &str, bytes: &[u8]) {
    let image = image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("{name} does not decode: {e}"))
        .to_rgb8();
    assert!(
        image.width() >= 200 && image.height() >= 150,
        "{name} is tiny"
    );
    let colours: BTreeSet<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 8,
        "{name} is blank: {} colours",
        colours.len()
    );
}

/// The data rows of a CSV table.
fn csv_rows(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.lines().skip(1).map(str::to_string).collect()
}

fn run_and_kill_when(project: &Project, what: &str, mut ready: impl FnMut(&Store) -> bool) {
    // Output unread until the kill would fill the pipe (greedy prints a line a probe) and
    // stall the run; only its status matters here.
    let haq = project
        .command(&["run", "-f", "smoke.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store_path = project.store_path();
    // Generous: the second kill waits for every search the first left to end, ~4 minutes
    // on an idle 2-core machine.
    wait_until(what, Duration::from_secs(1800), || {
        store_path.exists() && Store::open(&store_path).is_ok_and(|s| ready(&s))
    });
    kill9(haq.id());
    let out = haq.wait_with_output().unwrap();
    assert!(!out.status.success(), "haq run was killed");
}

/// A running run of stage kind `kind`, of a stage named `prefix...`, that has logged at
/// least `metrics` metric rows.
fn running(store: &Store, kind: &str, prefix: &str, metrics: usize) -> bool {
    store.runs(None).unwrap().into_iter().any(|r| {
        r.kind == kind
            && r.stage.starts_with(prefix)
            && r.status == RunStatus::Running
            && store.metrics(r.id, None).unwrap().len() >= metrics
    })
}

#[test]
fn the_smoke_workflow_reports_everything_caches_and_survives_kill_9() {
    // Uninterrupted, from an empty store.
    let reference = Project::new("");
    std::fs::write(reference.path("smoke.yaml"), SMOKE).unwrap();
    let start = std::time::Instant::now();
    let first = ok(&reference.haq(&["run", "-f", "smoke.yaml"]));
    let local_s = start.elapsed().as_secs_f64();
    println!("smoke workflow from an empty store: {local_s:.0} s");
    assert!(first.contains(" ran, 0 up to date"), "{first}");
    let second = ok(&reference.haq(&["run", "-f", "smoke.yaml"]));
    assert!(
        second.contains("0 ran, "),
        "a second run is all cache hits: {second}"
    );

    let files = report_files(&reference.path("reports/smoke"));
    let names: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    println!("report files: {names:?}");
    for required in ["index.html", "claims.md", "claims.json"] {
        assert!(names.contains(required), "{required} missing: {names:?}");
    }
    for ext in ["md", "csv", "tex", "png", "svg"] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!(".{ext}"))),
            "no .{ext} file: {names:?}"
        );
    }
    // Every PNG has an SVG twin, and every table comes as Markdown, CSV and LaTeX.
    for name in &names {
        if let Some(stem) = name.strip_suffix(".png") {
            assert!(names.contains(format!("{stem}.svg").as_str()), "{stem}.svg");
            assert_drawn(name, &files[*name]);
        }
        if let Some(stem) = name.strip_suffix(".csv") {
            for ext in ["md", "tex"] {
                assert!(
                    names.contains(format!("{stem}.{ext}").as_str()),
                    "{stem}.{ext}"
                );
            }
            assert!(!csv_rows(&files[*name]).is_empty(), "{name} has no rows");
        }
    }
    // A cache hit writes a deleted report back, byte for byte, recomputing nothing.
    std::fs::remove_dir_all(reference.path("reports/smoke")).unwrap();
    let third = ok(&reference.haq(&["run", "-f", "smoke.yaml"]));
    assert!(
        third.contains("0 ran, ")
            && third.contains(&format!("restored {} workspace files", files.len())),
        "{third}"
    );
    assert_eq!(report_files(&reference.path("reports/smoke")), files);

    // The smoke workflow has every experiment type: a table for each, with the fixed-bit
    // baseline and the HAQ row in it.
    let tables: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    for topic in [
        "latency-bismo-edge",
        "latency-bismo-cloud",
        "latency-bitfusion",
        "energy-bitfusion",
        "size",
    ] {
        let table = tables
            .iter()
            .find(|n| n.contains(topic))
            .unwrap_or_else(|| panic!("no table for {topic}: {tables:?}"));
        let rows = csv_rows(&files[*table]).join("\n");
        assert!(rows.contains("HAQ"), "{table} has no HAQ row:\n{rows}");
    }
    // The BOPs search beside each latency search, its policy's latency looked up there.
    // On the edge the rows are replicates, named together (a quoted CSV field).
    for (hardware, haq) in [
        ("bismo-edge", "\"haq-edge@ddpg-{0,1}\""),
        ("bismo-cloud", "haq-latency@bismo-cloud"),
        ("bitfusion", "haq-latency@bitfusion"),
    ] {
        let rows = csv_rows(&files[&format!("table-proxy-{hardware}.csv")]);
        assert_eq!(rows.len(), 3, "{hardware}: {rows:?}");
        assert!(rows[0].starts_with("PACT,4,4,"), "{rows:?}");
        assert!(
            rows[1].starts_with("HAQ (DDPG),") && rows[1].ends_with(&format!(",{haq}")),
            "{rows:?}"
        );
        assert!(
            rows[2].starts_with("HAQ (BOPs budget),") && rows[2].ends_with(",haq-bops"),
            "{rows:?}"
        );
    }
    let html = String::from_utf8(files["index.html"].clone()).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    for link in links(&html) {
        assert!(
            names.contains(link.as_str()),
            "index.html links a missing {link}"
        );
    }
    let claims: serde_json::Value = serde_json::from_slice(&files["claims.json"]).unwrap();
    let claims = claims["claims"]
        .as_array()
        .expect("claims.json: {claims: [...]}");
    let ids: Vec<&str> = claims.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
    // The replicated comparisons on the edge, paired by seed: DDPG against random search,
    // greedy sensitivity and Hessian + ILP, at the same budget.
    let subjects = [
        "search-edge@ddpg-{0,1} vs search-edge@random-{0,1} (random search)",
        "search-edge@ddpg-{0,1} vs greedy-edge@{0,1} (greedy sensitivity (AIMET-style))",
        "search-edge@ddpg-{0,1} vs hawq-edge@{0,1} (Hessian + ILP (HAWQ-V3-style))",
    ];
    let checks = claims[5]["checks"].as_array().unwrap();
    for subject in subjects {
        let f = checks
            .iter()
            .find(|c| c["subject"] == subject)
            .unwrap_or_else(|| panic!("claim (f) has no check of {subject}: {checks:?}"));
        assert_eq!(f["tests"][0]["n"], 2, "{f}");
        assert_eq!(f["tests"][0]["seeds"], serde_json::json!([0, 1]), "{f}");
        assert!(
            f["tests"][0]["ci_low"].is_f64() && f["tests"][0]["ci_high"].is_f64(),
            "{f}"
        );
    }
    // Every method has its row in the edge's latency table.
    let edge = tables
        .iter()
        .find(|n| n.contains("latency-bismo-edge"))
        .unwrap();
    let rows = csv_rows(&files[*edge]).join("\n");
    for method in [
        "HAQ (DDPG)",
        "random search",
        "greedy sensitivity",
        "Hessian + ILP",
    ] {
        assert!(rows.contains(method), "{edge} has no {method} row:\n{rows}");
    }
    for claim in claims {
        // Every experiment is in the smoke workflow, so every claim is tested.
        let verdict = claim["verdict"].as_str().unwrap();
        assert!(
            ["holds", "does not hold", "undecided"].contains(&verdict),
            "claim {}: {verdict}",
            claim["id"]
        );
        println!("claim ({}): {verdict}", claim["id"].as_str().unwrap());
    }

    // Killed during a replicated search, then during a finetune, then resumed to the end.
    let killed = Project::new("");
    std::fs::write(killed.path("smoke.yaml"), SMOKE).unwrap();
    run_and_kill_when(&killed, "a replicate's first episode", |s| {
        running(s, "search", "search-edge@ddpg-1", 1)
    });
    run_and_kill_when(&killed, "a finetune in progress", |s| {
        running(s, "finetune", "", 0)
    });
    let resumed = ok(&killed.haq(&["run", "-f", "smoke.yaml"]));
    assert!(
        resumed.contains("resuming run") || resumed.contains("restarting run"),
        "{resumed}"
    );

    assert_eq!(
        outputs(&killed.store()),
        outputs(&reference.store()),
        "every stage's outputs are the uninterrupted run's"
    );
    assert_eq!(
        report_files(&killed.path("reports/smoke")),
        files,
        "the report is the uninterrupted run's, byte for byte"
    );

    // The same workflow through Slurm (tests/slurm.rs says when it runs): one job per
    // stage, the whole DAG queued at once, and the same outputs and report, byte for byte.
    if slurm_tests_enabled() {
        let cluster = Project::new("");
        std::fs::write(cluster.path("smoke.yaml"), SMOKE).unwrap();
        let start = std::time::Instant::now();
        let out = ok(&cluster.haq(&["run", "-f", "smoke.yaml", "--executor", "slurm", "-j", "64"]));
        println!(
            "smoke workflow through Slurm: {:.0} s (locally, one stage at a time: {local_s:.0} s)",
            start.elapsed().as_secs_f64()
        );
        assert!(out.contains(" ran, 0 up to date"), "{out}");
        assert_eq!(
            outputs(&cluster.store()),
            outputs(&reference.store()),
            "every stage's outputs are the local executor's"
        );
        assert_eq!(report_files(&cluster.path("reports/smoke")), files);
    }
}
