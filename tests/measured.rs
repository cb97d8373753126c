//! End to end on `workflows/measured.yaml`: a search on a cost table file named by the
//! workflow's `hardware:`, and editing that file reruns the stages that use it.

mod common;

use common::{ok, Project};

const WORKFLOW: &str = include_str!("../workflows/measured.yaml");
const TABLE: &str = include_str!("../workflows/hw/depthwise-6bit.csv");

/// (stage, state, reason) of each line of `haq status`.
fn status(p: &Project) -> Vec<(String, String, String)> {
    let out = p.haq(&["status", "-f", "measured.yaml"]);
    ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut next = || words.next().unwrap_or_default().to_string();
            let (stage, state) = (next(), next());
            (stage, state, words.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn a_search_on_a_measured_table_reruns_when_the_table_changes() {
    let p = Project::new("");
    std::fs::create_dir(p.path("hw")).unwrap();
    // A second entry no stage names: its file is nobody's dependency.
    let workflow = WORKFLOW.replace("workflows/hw/", "hw/").replace(
        "  depthwise-6bit: {table: hw/depthwise-6bit.csv}",
        "  depthwise-6bit: {table: hw/depthwise-6bit.csv}\n  unused: {table: hw/unused.csv}",
    );
    std::fs::write(p.path("measured.yaml"), workflow).unwrap();
    std::fs::write(p.path("hw/depthwise-6bit.csv"), TABLE).unwrap();
    std::fs::write(p.path("hw/unused.csv"), TABLE).unwrap();

    let first = ok(&p.haq(&["run", "-f", "measured.yaml"]));
    assert!(first.contains("7 ran, 0 up to date"), "{first}");

    // The search spent the measured device's budget; the report has its table.
    let summary: serde_json::Value = {
        let store = p.store();
        let run = store.latest_done("search").unwrap().unwrap();
        let digest = &store.outputs(run.id).unwrap()["search_summary"];
        serde_json::from_slice(&store.get_bytes(digest).unwrap()).unwrap()
    };
    assert_eq!(summary["hardware"], "depthwise-6bit");
    let table =
        std::fs::read_to_string(p.path("reports/measured/table-latency-depthwise-6bit.csv"))
            .unwrap();
    assert!(
        table.lines().any(|l| l.starts_with("HAQ (DDPG),")),
        "{table}"
    );

    // The stages naming the entry have its file as an input; the others do not.
    let store = p.store();
    for (stage, uses) in [
        ("pretrain", false),
        ("calibrate", true),
        ("pact@4", false),
        ("search", true),
        ("haq", false),
        ("report", false),
    ] {
        let run = store.latest_done(stage).unwrap().unwrap();
        let inputs = store.inputs(run.id).unwrap();
        assert_eq!(
            inputs.contains_key("file:hw/depthwise-6bit.csv"),
            uses,
            "{stage}"
        );
        assert!(!inputs.keys().any(|k| k.contains("unused")), "{stage}");
    }

    // Editing a file no stage uses changes nothing.
    std::fs::write(p.path("hw/unused.csv"), format!("{TABLE}# edited\n")).unwrap();
    assert!(
        status(&p).iter().all(|(_, state, _)| state == "fresh"),
        "{:?}",
        status(&p)
    );

    // Depthwise layers dearer at w8 a8: calibrate reruns for the table, and everything
    // after it, which reads its cost tables; pretraining does not.
    let edited: String = TABLE
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            if f.len() == 17 && f[2] == "depthwise" && f[13] == "8" && f[14] == "8" {
                f[15] = (f[15].parse::<f64>().unwrap() * 1.5).to_string();
            }
            f.join(",") + "\n"
        })
        .collect();
    std::fs::write(p.path("hw/depthwise-6bit.csv"), edited).unwrap();
    let now = status(&p);
    assert_eq!(now[0].1, "fresh", "pretrain: {now:?}");
    assert_eq!(
        (now[1].0.as_str(), now[1].1.as_str(), now[1].2.as_str()),
        (
            "calibrate",
            "stale",
            "deps: file hw/depthwise-6bit.csv changed"
        )
    );
    let second = ok(&p.haq(&["run", "-f", "measured.yaml"]));
    assert!(second.contains("6 ran, 1 up to date"), "{second}");
    // A broken table stops calibrate with the file, line and column named.
    std::fs::write(
        p.path("hw/depthwise-6bit.csv"),
        TABLE.replacen(",ms\n", ",seconds\n", 1),
    )
    .unwrap();
    let out = p.haq(&["run", "-f", "measured.yaml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hw/depthwise-6bit.csv:7: column unit: `seconds`"),
        "{stderr}"
    );
}
