//! `haq hw`: the cost models' tables and policy costs from the command line.

use std::process::{Command, Output};

fn haq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haq"))
        .arg("hw")
        .args(args)
        .output()
        .expect("running haq")
}

fn stdout(args: &[&str]) -> String {
    let out = haq(args);
    assert!(
        out.status.success(),
        "haq hw {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of_failure(args: &[&str]) -> String {
    let out = haq(args);
    assert!(!out.status.success(), "haq hw {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// The number on the last line of `haq hw cost`.
fn cost(args: &[&str]) -> f64 {
    let text = stdout(&[&["cost"], args].concat());
    let last = text.lines().last().expect("a last line");
    last.parse()
        .unwrap_or_else(|_| panic!("last line `{last}` is not a number"))
}

const V1: [&str; 6] = [
    "--arch",
    "mobilenetv1",
    "--input-size",
    "224",
    "--num-classes",
    "1000",
];

const V2: [&str; 6] = [
    "--arch",
    "mobilenetv2",
    "--input-size",
    "224",
    "--num-classes",
    "1000",
];

#[test]
fn list_names_every_model_and_its_parameters() {
    let text = stdout(&["list"]);
    for name in ["bismo-edge", "bismo-cloud", "bitfusion", "size", "bops"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(
        text.contains("150 MHz") && text.contains("500 MHz"),
        "{text}"
    );
}

#[test]
fn table_rows_add_up_to_the_policy_cost() {
    let text = stdout(&[&["table"], &V1[..], &["--hardware", "bismo-edge"]].concat());
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "layer,name,kind,c_in,c_out,kernel,stride,groups,in_h,in_w,out_h,out_w,batch,\
             w_bits,a_bits,value,unit"
        )
    );
    // Layer, name, kind, w_bits, a_bits, value.
    let rows: Vec<Vec<&str>> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 17, "{l}");
            assert_eq!((f[12], f[16]), ("1", "ms"), "batch 1, in ms: {l}");
            vec![f[0], f[1], f[2], f[13], f[14], f[15]]
        })
        .collect();
    assert_eq!(rows.len(), 28 * 64);
    assert_eq!(rows[0][..5], ["0", "conv1.0", "conv", "1", "1"]);
    assert_eq!(rows[64][..5], ["1", "features.0.0", "depthwise", "1", "1"]);
    assert_eq!(
        rows[rows.len() - 1][..5],
        ["27", "classifier.0", "linear", "8", "8"]
    );

    // uniform:4 picks w8a8 for layer 0 and w4a4 for the rest.
    let picked: f64 = rows
        .iter()
        .filter(|r| {
            let bits = if r[0] == "0" { "8" } else { "4" };
            r[3] == bits && r[4] == bits
        })
        .map(|r| r[5].parse::<f64>().unwrap())
        .sum();
    let total = cost(
        &[
            &V1[..],
            &["--hardware", "bismo-edge", "--policy", "uniform:4"],
        ]
        .concat(),
    );
    assert!((picked / total - 1.0).abs() < 1e-9, "{picked} vs {total}");
    // The paper's Table 3: 45.45 ms.
    assert!((total / 45.45 - 1.0).abs() < 0.10, "{total} ms");
}

#[test]
fn json_tables_and_units() {
    let args = [
        "table",
        "--arch",
        "resnet18",
        "--input-size",
        "32",
        "--num-classes",
        "10",
        "--hardware",
        "size",
        "--format",
        "json",
    ];
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&args)).unwrap();
    assert_eq!(rows.len(), 21 * 64);
    let first = &rows[0];
    for key in ["layer", "name", "kind", "w_bits", "a_bits", "value"] {
        assert!(first.get(key).is_some(), "{first}");
    }
    // conv1 of the CIFAR ResNet: 3 x 64 x 3 x 3 one-bit weights, 64 x 2 float batch-norm
    // parameters and a 2-entry codebook.
    assert_eq!(first["value"], (1728 + 32 * (128 + 2)) as f64 / 8.0);

    let energy = cost(
        &[
            &V1[..],
            &[
                "--hardware",
                "bitfusion",
                "--policy",
                "uniform:8",
                "--unit",
                "mj",
            ],
        ]
        .concat(),
    );
    assert!((energy / 31.03 - 1.0).abs() < 0.15, "{energy} mJ");
    let cycles = cost(
        &[
            &V1[..],
            &[
                "--hardware",
                "bitfusion",
                "--policy",
                "uniform:8",
                "--unit",
                "cycles",
            ],
        ]
        .concat(),
    );
    let ms = cost(
        &[
            &V1[..],
            &["--hardware", "bitfusion", "--policy", "uniform:8"],
        ]
        .concat(),
    );
    assert!((cycles / 500e6 * 1e3 / ms - 1.0).abs() < 1e-9, "500 MHz");
}

#[test]
fn batch_defaults_to_the_models_own() {
    let cloud = [
        &V1[..],
        &["--hardware", "bismo-cloud", "--policy", "uniform-w6a4"],
    ]
    .concat();
    let default = cost(&cloud);
    assert_eq!(cost(&[&cloud[..], &["--batch", "16"]].concat()), default);
    let single = cost(&[&cloud[..], &["--batch", "1"]].concat());
    assert!(single < default / 8.0, "{single} vs {default}");
}

#[test]
fn policy_files_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    let layers: Vec<String> = (0..28)
        .map(|i| {
            format!(
                r#"{{"w_bits": {}, "a_bits": 8}}"#,
                if i == 0 { 8 } else { 2 }
            )
        })
        .collect();
    std::fs::write(&path, format!(r#"{{"layers": [{}]}}"#, layers.join(","))).unwrap();
    let file = cost(
        &[
            &V1[..],
            &["--hardware", "size", "--policy", path.to_str().unwrap()],
        ]
        .concat(),
    );
    let spec = cost(&[&V1[..], &["--hardware", "size", "--policy", "uniform-w2a8"]].concat());
    assert_eq!(file, spec);

    let wrong = stderr_of_failure(
        &[
            &["cost"],
            &V1[..],
            &["--hardware", "size", "--policy", "uniform:9"],
        ]
        .concat(),
    );
    assert!(wrong.contains("1..=8"), "{wrong}");
    let mismatch = stderr_of_failure(
        &[
            &["cost"],
            &V2[..],
            &["--hardware", "size", "--policy", path.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        mismatch.contains("policy.json: 28 layers given but the model has 53"),
        "{mismatch}"
    );
    let unit = stderr_of_failure(
        &[
            &["cost"],
            &V1[..],
            &[
                "--hardware",
                "bismo-edge",
                "--policy",
                "uniform:4",
                "--unit",
                "mj",
            ],
        ]
        .concat(),
    );
    assert!(unit.contains("bismo-edge does not report mj"), "{unit}");
    let unknown = stderr_of_failure(&[&["table"], &V1[..], &["--hardware", "eyeriss"]].concat());
    assert!(unknown.contains("bitfusion"), "{unknown}");
}

#[test]
fn a_measured_table_file_serves_wherever_a_model_name_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.csv");
    let template = stdout(&[&["table"], &V1[..], &["--hardware", "bismo-edge"]].concat());
    std::fs::write(&file, &template).unwrap();
    let table = file.to_str().unwrap();
    // Its own costs, read back: the policy cost and the table itself.
    for policy in ["uniform:4", "uniform-w6a3"] {
        let on = |hw: &str| cost(&[&V1[..], &["--hardware", hw, "--policy", policy]].concat());
        let (measured, model) = (on(table), on("bismo-edge"));
        assert!(
            (measured / model - 1.0).abs() < 1e-9,
            "{measured} vs {model}"
        );
    }
    assert_eq!(
        stdout(&[&["table"], &V1[..], &["--hardware", table]].concat()),
        template
    );
    let cost_fails = |network: &[&str]| {
        stderr_of_failure(
            &[
                &["cost"],
                network,
                &["--hardware", table, "--policy", "uniform:4"],
            ]
            .concat(),
        )
    };
    // A network it does not cover is refused, naming the first layer it has no row for.
    let uncovered = cost_fails(&V2);
    assert!(
        uncovered.contains(&format!("{table}: no row for the shape of layer")),
        "{uncovered}"
    );
    // A broken table gets the workflow's errors: file, line and column.
    std::fs::write(&file, template.replacen(",ms\n", ",hours\n", 1)).unwrap();
    let broken = cost_fails(&V1);
    assert!(
        broken.contains(&format!("{table}:2: column unit")),
        "{broken}"
    );
    let gone = dir.path().join("gone.csv");
    let missing =
        stderr_of_failure(&[&["table"], &V1[..], &["--hardware", gone.to_str().unwrap()]].concat());
    assert!(
        missing.contains("not a cost model (bismo-edge") && missing.contains("gone.csv"),
        "{missing}"
    );
}

/// The CLI answers `haq hw` (and every other command) without loading libtorch: it starts
/// in milliseconds instead of a third of a second (issue #17), whatever the workspace
/// build unifies.
#[test]
fn the_cli_links_no_libtorch() {
    let out = Command::new("readelf")
        .args(["--dynamic", env!("CARGO_BIN_EXE_haq")])
        .output()
        .expect("running readelf (binutils)");
    assert!(out.status.success(), "readelf failed");
    let dynamic = String::from_utf8(out.stdout).unwrap();
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(!needed.is_empty(), "no NEEDED entries read:\n{dynamic}");
    for lib in ["torch", "c10", "cuda", "gomp"] {
        assert!(
            needed.iter().all(|l| !l.contains(lib)),
            "haq links {lib}: {needed:#?}"
        );
    }
}
