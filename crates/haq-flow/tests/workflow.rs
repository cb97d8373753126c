//! The workflow file: validation errors (each names file, line, column and field),
//! matrix expansion, shared settings, deep merge and `--set` overrides.

use std::path::Path;

use haq_flow::{deep_merge, Error, Override, Workflow};
use serde_json::json;

const KINDS: [&str; 4] = ["pretrain", "calibrate", "search", "finetune"];

fn known_kinds() -> Vec<String> {
    KINDS.iter().map(|k| k.to_string()).collect()
}

fn parse_with(source: &str, overrides: &[&str]) -> Result<Workflow, Error> {
    let overrides: Vec<Override> = overrides.iter().map(|o| o.parse().unwrap()).collect();
    Workflow::parse(
        source,
        Path::new("workflow.yaml"),
        &overrides,
        &known_kinds(),
        &|k| KINDS.contains(&k),
    )
}

fn parse(source: &str) -> Workflow {
    parse_with(source, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn error(source: &str) -> String {
    match parse_with(source, &[]) {
        Ok(wf) => panic!("expected an error, got {wf:#?}"),
        Err(e) => e.to_string(),
    }
}

fn override_error(source: &str, overrides: &[&str]) -> String {
    match parse_with(source, overrides) {
        Ok(wf) => panic!("expected an error, got {wf:#?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts `message` starts with `file:line:column: field: ` and contains each of `parts`.
fn assert_message(message: &str, at: &str, parts: &[&str]) {
    assert!(
        message.starts_with(at),
        "{message:?} should start with {at:?}"
    );
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} should contain {part:?}"
        );
    }
}

const PIPELINE: &str = "\
name: fashion-mnist
seed: 3
settings:
  dataset: {name: fashion-mnist}
  model: {arch: mobilenetv2, width: 0.5}
stages:
  pretrain:
    run: pretrain
    params: {epochs: 10, model: {width: 1.0}}
  calibrate:
    run: calibrate
    needs: [pretrain]
  search:
    run: search
    needs: [calibrate]
    matrix:
      hardware: [bismo-edge, bismo-cloud]
      bits: [4, 8]
    params:
      hardware: ${matrix.hardware}
      bits: ${matrix.bits}
      tag: hw-${matrix.hardware}-w${matrix.bits}
      nested: [{bits: '${matrix.bits}'}]
  finetune:
    run: finetune
    matrix: {hardware: [bismo-edge, bismo-cloud]}
    needs: ['search@${matrix.hardware}-4', calibrate]
  report:
    run: pretrain
    needs: [search, finetune@bismo-cloud]
";

fn names(wf: &Workflow) -> Vec<&str> {
    wf.stages.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn matrix_expands_in_key_then_value_order() {
    let wf = parse(PIPELINE);
    assert_eq!(
        names(&wf),
        [
            "pretrain",
            "calibrate",
            "search@bismo-edge-4",
            "search@bismo-edge-8",
            "search@bismo-cloud-4",
            "search@bismo-cloud-8",
            "finetune@bismo-edge",
            "finetune@bismo-cloud",
            "report",
        ]
    );
    let search = wf.stage("search@bismo-cloud-8").unwrap();
    assert_eq!(search.base, "search");
    assert_eq!(search.kind, "search");
    assert_eq!(
        search.matrix.iter().collect::<Vec<_>>(),
        [
            (&"bits".to_string(), &json!(8)),
            (&"hardware".to_string(), &json!("bismo-cloud"))
        ]
    );
    assert!(
        wf.stage("search").is_none(),
        "a matrix stage exists only as its expansions"
    );
}

#[test]
fn matrix_references_keep_their_type_when_alone_and_become_text_inside_strings() {
    let wf = parse(PIPELINE);
    let params = &wf.stage("search@bismo-edge-8").unwrap().params;
    assert_eq!(params["hardware"], json!("bismo-edge"));
    assert_eq!(
        params["bits"],
        json!(8),
        "a lone reference keeps the number type"
    );
    assert_eq!(params["tag"], json!("hw-bismo-edge-w8"));
    assert_eq!(params["nested"], json!([{"bits": 8}]));
}

#[test]
fn needs_expand_base_names_and_matrix_references() {
    let wf = parse(PIPELINE);
    let needs = |name: &str| wf.stage(name).unwrap().needs.clone();
    assert_eq!(needs("calibrate"), ["pretrain"]);
    assert_eq!(needs("search@bismo-cloud-4"), ["calibrate"]);
    assert_eq!(
        needs("finetune@bismo-edge"),
        ["search@bismo-edge-4", "calibrate"]
    );
    assert_eq!(
        needs("finetune@bismo-cloud"),
        ["search@bismo-cloud-4", "calibrate"]
    );
    assert_eq!(
        needs("report"),
        [
            "search@bismo-edge-4",
            "search@bismo-edge-8",
            "search@bismo-cloud-4",
            "search@bismo-cloud-8",
            "finetune@bismo-cloud",
        ]
    );
}

/// Replicates: a `seed` matrix key sets each expansion's seed; a YAML anchor reuses the
/// seed list downstream, where each replicate needs its own upstream replicate.
const REPLICATES: &str = "\
seed: 9
stages:
  pretrain: {run: pretrain}
  search:
    run: search
    needs: [pretrain]
    matrix: {agent: [ddpg, random], seed: &seeds [0, 1]}
    params: {agent: \"${matrix.agent}\"}
  finetune:
    run: finetune
    needs: [\"search@ddpg-${matrix.seed}\"]
    matrix: {seed: *seeds}
";

#[test]
fn a_seed_matrix_key_makes_replicates_that_share_unreplicated_upstream_stages() {
    let wf = parse(REPLICATES);
    assert_eq!(
        names(&wf),
        [
            "pretrain",
            "search@ddpg-0",
            "search@ddpg-1",
            "search@random-0",
            "search@random-1",
            "finetune@0",
            "finetune@1"
        ]
    );
    let seed = |name: &str| wf.stage(name).unwrap().params["seed"].clone();
    assert_eq!(seed("pretrain"), json!(9), "the top-level seed elsewhere");
    assert_eq!(seed("search@random-1"), json!(1));
    assert_eq!(seed("finetune@0"), json!(0));
    assert_eq!(wf.stage("finetune@1").unwrap().needs, ["search@ddpg-1"]);
    for s in ["search@ddpg-0", "search@random-1"] {
        assert_eq!(wf.stage(s).unwrap().needs, ["pretrain"]);
    }
    // A per-replicate override still wins.
    let set = parse_with(REPLICATES, &["finetune@1.seed=5"]).unwrap();
    assert_eq!(set.stage("finetune@1").unwrap().params["seed"], json!(5));
}

#[test]
fn a_seed_matrix_key_takes_integers_and_no_other_seed_in_params() {
    let bad = REPLICATES.replace("&seeds [0, 1]", "&seeds [0, one]");
    assert_message(
        &error(&bad),
        "workflow.yaml:7:",
        &[
            "stages.search.matrix.seed",
            "non-negative integers",
            "\"one\"",
        ],
    );
    let both = REPLICATES.replace("{agent: \"${matrix.agent}\"}", "{agent: ddpg, seed: 4}");
    assert_message(
        &error(&both),
        "workflow.yaml:8:",
        &["stages.search.params.seed", "remove params.seed"],
    );
    // Naming the matrix value itself is no conflict.
    let same = REPLICATES.replace("{agent: \"${matrix.agent}\"}", "{seed: \"${matrix.seed}\"}");
    assert_eq!(
        parse(&same).stage("search@ddpg-1").unwrap().params["seed"],
        json!(1)
    );
}

#[test]
fn params_are_seed_and_device_then_settings_then_stage_params_deep_merged() {
    let wf = parse(PIPELINE);
    assert_eq!(
        wf.stage("pretrain").unwrap().params,
        json!({
            "seed": 3,
            "device": "cpu",
            "dataset": {"name": "fashion-mnist"},
            "model": {"arch": "mobilenetv2", "width": 1.0},
            "epochs": 10,
        })
    );
    assert_eq!(
        wf.stage("calibrate").unwrap().params["model"],
        json!({"arch": "mobilenetv2", "width": 0.5})
    );
}

#[test]
fn deep_merge_merges_maps_recursively_and_replaces_everything_else() {
    let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}});
    deep_merge(
        &mut base,
        json!({"a": {"c": [3], "g": null}, "d": {"h": 2}, "i": 4}),
    );
    assert_eq!(
        base,
        json!({"a": {"b": 1, "c": [3], "g": null}, "d": {"h": 2}, "e": {"f": 1}, "i": 4})
    );
}

#[test]
fn defaults_come_from_the_file_name_and_folder() {
    let wf = parse("stages:\n  a: {run: pretrain}\n");
    assert_eq!(wf.name, "workflow");
    assert_eq!(wf.seed, 0);
    assert_eq!(wf.device, "cpu");
    assert!(wf.path.is_absolute());
    assert_eq!(wf.store, wf.path.parent().unwrap().join(".haq/store.db"));
    assert_eq!(wf.stages[0].params, json!({"seed": 0, "device": "cpu"}));
    assert!(wf.stages[0].needs.is_empty());
    assert!(wf.stages[0].matrix.is_empty());
}

#[test]
fn load_reads_the_file_and_resolves_the_store_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.yaml");
    std::fs::write(
        &file,
        "store: runs/s.db\ndevice: cuda:1\nstages:\n  a: {run: pretrain}\n",
    )
    .unwrap();
    let wf = Workflow::load(&file, &[], &known_kinds(), &|k| KINDS.contains(&k)).unwrap();
    let dir = dir.path().canonicalize().unwrap();
    assert_eq!(wf.path, dir.join("exp.yaml"));
    assert_eq!(wf.store, dir.join("runs/s.db"));
    assert_eq!(wf.name, "exp");
    assert_eq!(wf.device, "cuda:1");

    let missing = dir.join("missing.yaml");
    let err = Workflow::load(&missing, &[], &known_kinds(), &|_| true).unwrap_err();
    assert!(matches!(err, Error::Read { .. }));
    assert!(err.to_string().contains("missing.yaml"), "{err}");
}

#[test]
fn load_errors_name_the_file_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "stages:\n  a: {run: nope}\n").unwrap();
    let err = Workflow::load(&file, &[], &known_kinds(), &|k| KINDS.contains(&k)).unwrap_err();
    assert_message(
        &err.to_string(),
        &format!("{}:2:12: stages.a.run: ", file.display()),
        &["unknown stage kind \"nope\""],
    );
}

// ---- validation errors ----

#[test]
fn unknown_top_level_key() {
    let message = error("seed: 1\nstagez: {}\nstages:\n  a: {run: pretrain}\n");
    assert_message(
        &message,
        "workflow.yaml:2:1: ",
        &["unknown field `stagez`", "`stages`"],
    );
}

#[test]
fn unknown_stage_key() {
    let message = error("stages:\n  pretrain:\n    run: pretrain\n    need: [x]\n");
    assert_message(
        &message,
        "workflow.yaml:4:5: stages.pretrain: ",
        &[
            "unknown field `need`",
            "expected one of `run`, `needs`, `deps`, `params`, `matrix`",
        ],
    );
}

#[test]
fn wrong_type_of_a_top_level_value() {
    let message = error("seed: abc\nstages:\n  a: {run: pretrain}\n");
    assert_message(
        &message,
        "workflow.yaml:1:7: seed: ",
        &["invalid type: string \"abc\""],
    );
}

#[test]
fn wrong_type_of_needs() {
    let message = error("stages:\n  a:\n    run: pretrain\n    needs: pretrain\n");
    assert_message(
        &message,
        "workflow.yaml:4:12: stages.a.needs: ",
        &["invalid type: string \"pretrain\", expected a sequence"],
    );
}

#[test]
fn needs_naming_a_missing_stage_lists_the_known_stages() {
    let source = "\
stages:
  pretrain:
    run: pretrain
  calibrate:
    run: calibrate
    needs: [pretrain]
  search:
    run: search
    needs:
      - calibrat
";
    assert_eq!(
        error(source),
        "workflow.yaml:10:9: stages.search.needs[0]: stage \"calibrat\" does not exist; known stages: pretrain, calibrate, search"
    );
}

#[test]
fn cycle_prints_its_path() {
    let source = "\
stages:
  a:
    run: pretrain
    needs: [c]
  b:
    run: pretrain
    needs: [a]
  c:
    run: pretrain
    needs: [b]
  d:
    run: pretrain
    needs: [a]
";
    assert_message(
        &error(source),
        "workflow.yaml:4:12: stages.a.needs: ",
        &["a -> c -> b -> a"],
    );
}

#[test]
fn stage_needing_itself_is_a_cycle() {
    let source = "stages:\n  a: {run: pretrain, matrix: {x: [1, 2]}, needs: [a]}\n";
    assert_message(
        &error(source),
        "workflow.yaml:2:50: stages.a.needs: ",
        &["a@1 -> a@1"],
    );
}

#[test]
fn duplicate_stage_name_points_at_the_second_one() {
    let source =
        "stages:\n  a:\n    run: pretrain\n  b:\n    run: pretrain\n  a:\n    run: calibrate\n";
    assert_message(
        &error(source),
        "workflow.yaml:6:3: stages: ",
        &["duplicate key \"a\""],
    );
}

#[test]
fn duplicate_expanded_names() {
    let source = "stages:\n  a:\n    run: pretrain\n    matrix: {x: [1, '1']}\n";
    assert_message(
        &error(source),
        "workflow.yaml:4:13: stages.a.matrix: ",
        &["same stage name \"a@1\""],
    );
    let joined = "stages:\n  a:\n    run: pretrain\n    matrix: {x: [a-b, a], y: [c, b-c]}\n";
    assert_message(
        &error(joined),
        "workflow.yaml:4:13: stages.a.matrix: ",
        &["\"a@a-b-c\""],
    );
}

#[test]
fn empty_matrix_without_keys() {
    let source = "stages:\n  a:\n    run: pretrain\n    matrix: {}\n";
    assert_message(
        &error(source),
        "workflow.yaml:4:13: stages.a.matrix: ",
        &["empty matrix"],
    );
}

#[test]
fn empty_matrix_key() {
    let source = "stages:\n  a:\n    run: pretrain\n    matrix:\n      hardware: []\n";
    assert_message(
        &error(source),
        "workflow.yaml:5:17: stages.a.matrix.hardware: ",
        &["\"hardware\" has no values"],
    );
}

#[test]
fn matrix_values_must_be_usable_in_a_stage_name() {
    let source = "stages:\n  a:\n    run: pretrain\n    matrix:\n      x: [ok, [1, 2]]\n";
    assert_message(
        &error(source),
        "workflow.yaml:5:15: stages.a.matrix.x[1]: ",
        &["[1,2]"],
    );
    let spaced = "stages:\n  a:\n    run: pretrain\n    matrix:\n      x: ['a b']\n";
    assert_message(
        &error(spaced),
        "workflow.yaml:5:11: stages.a.matrix.x[0]: ",
        &["\"a b\""],
    );
}

#[test]
fn unknown_run_kind_lists_known_kinds_and_how_kinds_are_found() {
    let message = error("stages:\n  a:\n    run: pretrian\n");
    assert_message(
        &message,
        "workflow.yaml:3:10: stages.a.run: ",
        &[
            "unknown stage kind \"pretrian\"",
            "known kinds: pretrain, calibrate, search, finetune",
            "haq-k",
            "beside haq or on PATH",
        ],
    );
}

#[test]
fn run_kind_must_be_a_plain_word() {
    // The kind becomes part of an executable name, so a path must not slip through even
    // if something by that name exists.
    let message = Workflow::parse(
        "stages:\n  a: {run: ../evil}\n",
        Path::new("workflow.yaml"),
        &[],
        &[],
        &|_| true,
    )
    .unwrap_err()
    .to_string();
    assert_message(
        &message,
        "workflow.yaml:2:12: stages.a.run: ",
        &["\"../evil\"", "(none found)"],
    );
}

#[test]
fn missing_run() {
    let message = error("stages:\n  a:\n    needs: []\n");
    assert_message(&message, "workflow.yaml:2:3: stages.a: ", &["missing run:"]);
    let empty_stage = error("stages:\n  a:\n");
    assert_message(
        &empty_stage,
        "workflow.yaml:2:3: stages.a: ",
        &["missing run:"],
    );
}

#[test]
fn malformed_yaml() {
    let message = error("stages:\n  a:\n    run: pretrain\n   needs: [x\n");
    assert_message(
        &message,
        "workflow.yaml:4:4: ",
        &["did not find expected key"],
    );
}

#[test]
fn empty_stages() {
    assert_message(
        &error("seed: 2\nstages:\n"),
        "workflow.yaml:2:8: stages: ",
        &["no stages"],
    );
    assert_message(
        &error("seed: 2\nstages: {}\n"),
        "workflow.yaml:2:9: stages: ",
        &["no stages"],
    );
    assert_message(&error(""), "workflow.yaml", &["missing field `stages`"]);
}

#[test]
fn unknown_matrix_key_in_params() {
    let source = "stages:\n  a:\n    run: pretrain\n    matrix: {hw: [x]}\n    params:\n      nested: {list: [1, '${matrix.hx}']}\n";
    assert_message(
        &error(source),
        "workflow.yaml:6:26: stages.a.params.nested.list[1]: ",
        &["unknown matrix key \"hx\"", "matrix keys: hw"],
    );
}

#[test]
fn matrix_reference_in_a_stage_without_matrix() {
    let in_params = "stages:\n  a:\n    run: pretrain\n    params:\n      hw: ${matrix.hw}\n";
    assert_message(
        &error(in_params),
        "workflow.yaml:5:11: stages.a.params.hw: ",
        &["without matrix:"],
    );
    let in_needs = "stages:\n  a: {run: pretrain}\n  b:\n    run: pretrain\n    needs: [a, 'a@${matrix.hw}']\n";
    assert_message(
        &error(in_needs),
        "workflow.yaml:5:16: stages.b.needs[1]: ",
        &["without matrix:"],
    );
}

#[test]
fn bad_stage_names() {
    assert_message(
        &error("stages:\n  pretrain: {run: pretrain}\n  Search: {run: search}\n"),
        "workflow.yaml:3:3: stages.Search: ",
        &["lowercase letters"],
    );
    assert_message(
        &error("stages:\n  seed: {run: pretrain}\n"),
        "workflow.yaml:2:3: stages.seed: ",
        &["top-level key"],
    );
}

#[test]
fn bad_device() {
    assert_message(
        &error("device: gpu\nstages:\n  a: {run: pretrain}\n"),
        "workflow.yaml:1:9: device: ",
        &["unknown device \"gpu\"", "cpu, cuda or cuda:N"],
    );
}

#[test]
fn duplicate_key_in_params() {
    let source = "stages:\n  a:\n    run: pretrain\n    params:\n      x: 1\n      x: 2\n";
    assert_message(
        &error(source),
        "workflow.yaml:5:7: stages.a.params: ",
        &["duplicate", "\"x\""],
    );
}

// ---- overrides ----

#[test]
fn override_parses_yaml_values() {
    let parsed = |text: &str| text.parse::<Override>().unwrap();
    let o = parsed("search.episodes=50");
    assert_eq!(o.path, ["search", "episodes"]);
    assert_eq!(o.value, serde_yaml::Value::from(50));
    assert_eq!(parsed("a.b=0.5").value, serde_yaml::Value::from(0.5));
    assert_eq!(parsed("a.b=true").value, serde_yaml::Value::from(true));
    assert_eq!(parsed("a.b=foo").value, serde_yaml::Value::from("foo"));
    assert_eq!(
        parsed("a.b=[a, 2]").value,
        serde_yaml::from_str::<serde_yaml::Value>("[a, 2]").unwrap()
    );
    assert_eq!(parsed("a.b=x=y").value, serde_yaml::Value::from("x=y"));
}

#[test]
fn override_syntax_errors() {
    for (text, part) in [
        ("episodes", "expected KEY=VALUE"),
        (".x=1", "empty parts"),
        ("x..y=1", "empty parts"),
        ("a.b=[1, 2", "not a YAML value"),
    ] {
        let message = text.parse::<Override>().unwrap_err().to_string();
        assert_message(&message, &format!("--set {text}: "), &[part]);
    }
}

#[test]
fn overrides_of_top_level_keys() {
    let wf = parse_with(
        PIPELINE,
        &[
            "seed=7",
            "device=cuda",
            "name=other",
            "store=elsewhere.db",
            "settings.model.width=0.75",
        ],
    )
    .unwrap();
    assert_eq!(
        (wf.seed, wf.device.as_str(), wf.name.as_str()),
        (7, "cuda", "other")
    );
    assert_eq!(wf.store, wf.path.parent().unwrap().join("elsewhere.db"));
    let params = &wf.stage("calibrate").unwrap().params;
    assert_eq!(params["seed"], json!(7));
    assert_eq!(params["device"], json!("cuda"));
    assert_eq!(
        params["model"],
        json!({"arch": "mobilenetv2", "width": 0.75})
    );
    // The stage's own params still win over settings.
    assert_eq!(
        wf.stage("pretrain").unwrap().params["model"]["width"],
        json!(1.0)
    );

    let replaced = parse_with(PIPELINE, &["settings={model: {arch: resnet}}"]).unwrap();
    assert_eq!(
        replaced.stage("calibrate").unwrap().params["model"],
        json!({"arch": "resnet"})
    );
    // Setting `settings` itself replaces the whole map.
    assert!(replaced
        .stage("calibrate")
        .unwrap()
        .params
        .get("dataset")
        .is_none());
}

#[test]
fn override_of_a_stage_base_name_sets_every_expansion() {
    let wf = parse_with(
        PIPELINE,
        &[
            "search.episodes=50",
            "search.lr=0.001",
            "pretrain.model.width=2",
        ],
    )
    .unwrap();
    for stage in wf.stages.iter().filter(|s| s.base == "search") {
        assert_eq!(stage.params["episodes"], json!(50), "{}", stage.name);
        assert_eq!(stage.params["lr"], json!(0.001));
    }
    assert!(wf
        .stage("finetune@bismo-edge")
        .unwrap()
        .params
        .get("episodes")
        .is_none());
    assert_eq!(
        wf.stage("pretrain").unwrap().params["model"],
        json!({"arch": "mobilenetv2", "width": 2})
    );
}

#[test]
fn override_of_an_expanded_name_sets_only_it_and_wins_over_the_base_name() {
    let wf = parse_with(
        PIPELINE,
        &["search@bismo-edge-4.episodes=5", "search.episodes=50"],
    )
    .unwrap();
    let episodes = |name: &str| wf.stage(name).unwrap().params["episodes"].clone();
    assert_eq!(episodes("search@bismo-edge-4"), json!(5));
    assert_eq!(episodes("search@bismo-edge-8"), json!(50));

    let dotted = "stages:\n  a: {run: pretrain, matrix: {lr: [0.5, 1]}}\n";
    let wf = parse_with(dotted, &["a@0.5.epochs=3"]).unwrap();
    assert_eq!(wf.stage("a@0.5").unwrap().params["epochs"], json!(3));
    assert!(wf.stage("a@1").unwrap().params.get("epochs").is_none());
}

#[test]
fn override_errors_name_the_key() {
    let cases = [
        ("nosuch.x=1", "no top-level key or stage named \"nosuch\""),
        (
            "search@nowhere.x=1",
            "stages: pretrain, calibrate, search, finetune, report, search@bismo-edge-4",
        ),
        ("search=1", "name a parameter of the stage"),
        ("seed=abc", "non-negative integer"),
        ("seed.x=1", "single value"),
        ("device=gpu", "unknown device \"gpu\""),
        ("name=a/b", "report folder"),
        ("stages.search.run=x", "cannot be set"),
        ("settings=3", "settings must be a map"),
        (
            "settings.model.arch.x=1",
            "model.arch is \"mobilenetv2\", not a map",
        ),
        ("pretrain.epochs.x=1", "epochs is 10, not a map"),
    ];
    for (text, part) in cases {
        let key = text.split_once('=').unwrap().0;
        assert_message(
            &override_error(PIPELINE, &[text]),
            &format!("--set {key}: "),
            &[part],
        );
    }
}

#[test]
fn hardware_entries_become_deps_and_params_of_the_stages_naming_them() {
    let wf = parse(
        "\
hardware:
  phone: {table: hw/phone.csv}
  board: {table: hw/board.csv}
stages:
  calibrate:
    run: calibrate
    deps: [hw/phone.csv]
    params: {hardware: [bismo-edge, phone, board]}
  search:
    run: search
    matrix: {hardware: [phone, bismo-cloud]}
    params: {hardware: '${matrix.hardware}'}
  pretrain:
    run: pretrain
",
    );
    let stage = |name: &str| wf.stage(name).unwrap();
    // Listed once though also written under deps:.
    assert_eq!(stage("calibrate").deps, ["hw/phone.csv", "hw/board.csv"]);
    assert_eq!(
        stage("calibrate").params["hardware_tables"],
        json!({"phone": "hw/phone.csv", "board": "hw/board.csv"})
    );
    assert_eq!(stage("search@phone").deps, ["hw/phone.csv"]);
    assert_eq!(
        stage("search@phone").params["hardware_tables"],
        json!({"phone": "hw/phone.csv"})
    );
    for name in ["search@bismo-cloud", "pretrain"] {
        assert!(stage(name).deps.is_empty(), "{name}");
        assert!(
            stage(name).params.get("hardware_tables").is_none(),
            "{name}"
        );
    }
    // A --set that names an entry attaches it too.
    let set = parse_with(
        "hardware: {phone: {table: p.csv}}\nstages: {search: {run: search}}\n",
        &["search.hardware=phone"],
    )
    .unwrap();
    assert_eq!(set.stages[0].deps, ["p.csv"]);
}

#[test]
fn bad_hardware_entries_are_located() {
    let stages = "stages: {pretrain: {run: pretrain}}\n";
    assert_message(
        &error(&format!("hardware:\n  Phone: {{table: p.csv}}\n{stages}")),
        "workflow.yaml:2:3: hardware.Phone: ",
        &["hardware name \"Phone\" is not allowed"],
    );
    assert_message(
        &error(&format!("hardware:\n  phone: {{table: ''}}\n{stages}")),
        "workflow.yaml:2:",
        &["hardware.phone.table: empty: name the cost table file"],
    );
    assert_message(
        &error(&format!("hardware:\n  phone: {{file: p.csv}}\n{stages}")),
        "workflow.yaml:2:",
        &["unknown field `file`"],
    );
    let set = override_error(
        &format!("hardware: {{phone: {{table: p.csv}}}}\n{stages}"),
        &["hardware.phone.table=q.csv"],
    );
    assert!(
        set.contains("hardware entries cannot be set from the command line"),
        "{set}"
    );
}

#[test]
fn the_executor_block_sets_slurm_options_that_a_stage_overrides() {
    let wf = parse(
        "executor:
  kind: slurm
  workdir: jobs
  partition: gpu
  time: \"04:00:00\"
  cpus: 4
  sbatch: [--qos=low]
stages:
  pretrain:
    run: pretrain
  finetune:
    run: finetune
    needs: [pretrain]
    executor: {time: \"2-00:00:00\", gres: \"gpu:2\", sbatch: [--qos=high]}
",
    );
    assert_eq!(wf.executor.kind, haq_flow::ExecutorKind::Slurm);
    assert!(wf.executor.requeue);
    assert!(wf.executor.workdir.as_ref().unwrap().ends_with("jobs"));
    let pretrain = &wf.stage("pretrain").unwrap().slurm;
    assert_eq!(pretrain.partition.as_deref(), Some("gpu"));
    assert_eq!(pretrain.time.as_deref(), Some("04:00:00"));
    assert_eq!(pretrain.gres, None);
    let finetune = &wf.stage("finetune").unwrap().slurm;
    assert_eq!(finetune.partition.as_deref(), Some("gpu"));
    assert_eq!(finetune.cpus, Some(4));
    assert_eq!(finetune.time.as_deref(), Some("2-00:00:00"));
    assert_eq!(finetune.gres.as_deref(), Some("gpu:2"));
    assert_eq!(finetune.sbatch, ["--qos=low", "--qos=high"]);
    // Where a stage runs is no part of what it computes.
    assert_eq!(
        parse("stages: {pretrain: {run: pretrain}}").executor.kind,
        haq_flow::ExecutorKind::Local
    );
}

#[test]
fn executor_errors_name_the_field() {
    assert_message(
        &error("executor: {kind: pbs}\nstages: {pretrain: {run: pretrain}}\n"),
        "workflow.yaml:1:",
        &[
            "executor.kind: ",
            "unknown executor \"pbs\": use local or slurm",
        ],
    );
    assert_message(
        &error("executor: {cpus: 0}\nstages: {pretrain: {run: pretrain}}\n"),
        "workflow.yaml:1:",
        &["executor.cpus: ", "use 1 or more"],
    );
    assert_message(
        &error("stages:\n  pretrain:\n    run: pretrain\n    executor: {workdir: x}\n"),
        "workflow.yaml:4:",
        &[
            "stages.pretrain.executor.workdir: ",
            "move it to the top-level executor: block",
        ],
    );
    assert_message(
        &error("executor: {sbatch: [qos=high]}\nstages: {pretrain: {run: pretrain}}\n"),
        "workflow.yaml:1:",
        &["executor.sbatch: ", "write each as --name=value"],
    );
    assert!(
        error("executor: {partitoin: gpu}\nstages: {pretrain: {run: pretrain}}\n")
            .contains("unknown field `partitoin`")
    );
}

#[test]
fn a_cuda_stage_asks_for_a_gpu_in_its_batch_script() {
    let options = haq_flow::SlurmOptions {
        partition: Some("gpu".into()),
        time: Some("1:00:00".into()),
        sbatch: vec!["--qos=high".into()],
        ..Default::default()
    };
    let script = |device| {
        haq_flow::slurm::batch_script(
            "wf",
            "search@edge",
            &options,
            device,
            true,
            Path::new("/opt/haq"),
            Path::new("/scratch/jobs/search@edge"),
        )
    };
    let gpu = script("cuda:1");
    for line in [
        "#SBATCH --job-name=haq:wf:search@edge",
        "#SBATCH --requeue",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --qos=high",
        "exec '/opt/haq' slurm-job '/scratch/jobs/search@edge'",
    ] {
        assert!(gpu.lines().any(|l| l == line), "{line} in\n{gpu}");
    }
    assert!(!script("cpu").contains("--gres"));
}

#[test]
fn batch_script_paths_survive_spaces_hashes_quotes_and_percent_signs() {
    let script = haq_flow::slurm::batch_script(
        "wf",
        "a",
        &haq_flow::SlurmOptions::default(),
        "cpu",
        false,
        Path::new("/opt/haq"),
        Path::new("/data/my runs #2/\"x\" 100%/a"),
    );
    // sbatch reads `#` as the start of a comment and `%` as a filename pattern.
    let want = r#"#SBATCH --output="/data/my runs \#2/\"x\" 100%%/a/slurm-%j.out""#;
    assert!(script.lines().any(|l| l == want), "{want} in\n{script}");
    assert!(
        script
            .lines()
            .any(|l| l == "exec '/opt/haq' slurm-job '/data/my runs #2/\"x\" 100%/a'"),
        "{script}"
    );
}
