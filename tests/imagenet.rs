//! The paper-scale workflow files, `workflows/imagenet-mobilenetv{1,2}.yaml`, run whole on a
//! small ImageNet-shaped folder dataset: 224x224 inputs from JPEGs of ImageNet's varied
//! sizes and aspect ratios, and only `--set` overrides of sizes (epochs, subsets, episodes,
//! width, device, root), so the files' own stage names, matrices, budgets and report are
//! what runs.

mod common;

use std::path::Path;

use common::{ok, Project};
use haq_core::arch::{Arch, ArchConfig};
use haq_core::models::Model;
use haq_core::train::to_safetensors;
use tch::Device;

const CLASSES: [&str; 3] = ["n01440764", "n01443537", "n01484850"];
/// Width and height of the JPEGs, cycled: ImageNet's common landscape and portrait shapes,
/// a square, and ones smaller than the 224 crop.
const SIZES: [(u32, u32); 6] = [
    (500, 375),
    (375, 500),
    (500, 333),
    (256, 256),
    (180, 240),
    (640, 427),
];
/// The width multiplier the runs use (the files' 1.0 would take an hour here).
const WIDTH: f64 = 0.25;

/// `root/{train,val}/<class>/*.JPEG`: each class a colour and a stripe direction, with
/// noise, so a model can tell them apart a little.
fn imagenet_folder(root: &Path) {
    let mut state = 0x9e37_79b9_u32;
    let mut noise = move || {
        // xorshift32: reproducible pixels without another dependency.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8
    };
    for (split, per_class) in [("train", 16), ("val", 6)] {
        for (c, class) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let (w, h) = SIZES[(i + c) % SIZES.len()];
                let image = image::RgbImage::from_fn(w, h, |x, y| {
                    let stripe = if c == 1 { x } else { y } / 16 % 2 == 0;
                    let base = [(c * 90) as u8, 200 - (c * 60) as u8, 120];
                    let lift = if stripe { 50 } else { 0 };
                    image::Rgb(base.map(|v| v.saturating_add(lift) ^ (noise() >> 3)))
                });
                image
                    .save_with_format(
                        dir.join(format!("{class}_{i}.JPEG")),
                        image::ImageFormat::Jpeg,
                    )
                    .unwrap();
            }
        }
    }
}

/// Float weights under torchvision's names, as the v2 file's `init:` expects (random here,
/// written by haq's own model: no download).
fn random_init(path: &Path) {
    let config = ArchConfig {
        width: WIDTH,
        ..ArchConfig::new(Arch::MobileNetV2, 224, CLASSES.len())
    };
    let model = Model::new(&config, Device::Cpu, 7).unwrap();
    std::fs::write(path, to_safetensors(&model.weights()).unwrap()).unwrap();
}

/// The overrides that make a paper-scale file run in minutes on two cores: what each stage
/// trains, searches and evaluates on, nothing about what it is.
fn reduced(root: &Path) -> Vec<String> {
    let mut sets = vec![
        "device=cpu".to_string(),
        format!("settings.dataset.root={}", root.display()),
        "settings.dataset.val_size=12".into(),
        format!("settings.model.width={WIDTH}"),
        "pretrain.batch_size=8".into(),
        "calibrate.calib_batch=8".into(),
    ];
    for stage in [
        "pact",
        "deep-compression",
        "haq-latency",
        "haq-energy",
        "haq-size",
    ] {
        for (key, value) in [("epochs", "1"), ("batch_size", "8"), ("train_subset", "16")] {
            sets.push(format!("{stage}.{key}={value}"));
        }
    }
    for stage in ["search-latency", "search-energy", "search-size"] {
        for (key, value) in [
            ("episodes", "2"),
            ("warmup", "1"),
            ("finetune_steps", "1"),
            ("finetune_batch", "8"),
            ("train_subset", "16"),
            ("val_subset", "12"),
        ] {
            sets.push(format!("{stage}.{key}={value}"));
        }
    }
    sets
}

/// Runs `workflows/<file>` on the folder dataset, reduced, and checks it reached its
/// report with every stage of the file run.
fn runs_to_a_report(file: &str, source: &str, extra: &[&str]) {
    let p = Project::new("");
    imagenet_folder(&p.path("imagenet"));
    std::fs::write(p.path(file), source).unwrap();
    if source.contains("init: mobilenet_v2.safetensors") {
        random_init(&p.path("mobilenet_v2.safetensors"));
    }
    let sets: Vec<String> = reduced(&p.path("imagenet"))
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
    let mut args = vec!["run", "-f", file];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let start = std::time::Instant::now();
    let out = ok(&p.haq(&args));
    let dag = p.haq(&["dag", "-f", file]);
    ok(&dag);
    let stages_in_file = String::from_utf8(dag.stdout).unwrap().lines().count();
    println!(
        "{file}: {stages_in_file} stages in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        out.contains(&format!("{stages_in_file} ran, 0 up to date")),
        "{out}"
    );

    // The report's tables: every baseline and searched policy at its budget.
    let name = file.trim_end_matches(".yaml");
    let reports = p.path(&format!("reports/{name}"));
    assert!(reports.join("index.html").exists());
    let table = std::fs::read_to_string(reports.join("table-latency-bismo-edge.csv")).unwrap();
    println!("{table}");
    for row in ["PACT,4,4", "PACT,5,5", "PACT,6,6", "HAQ (DDPG),"] {
        assert!(table.lines().any(|l| l.starts_with(row)), "{row}:\n{table}");
    }
    let size = std::fs::read_to_string(reports.join("table-size.csv")).unwrap();
    assert!(
        size.lines().any(|l| l.starts_with("Deep Compression")),
        "{size}"
    );
}

#[test]
fn the_mobilenet_v2_imagenet_workflow_runs_to_a_report_reduced() {
    runs_to_a_report(
        "imagenet-mobilenetv2.yaml",
        include_str!("../workflows/imagenet-mobilenetv2.yaml"),
        &[],
    );
}

#[test]
fn the_mobilenet_v1_imagenet_workflow_runs_to_a_report_reduced() {
    // v1 has no torchvision weights: its pretrain stage trains, here for one epoch.
    runs_to_a_report(
        "imagenet-mobilenetv1.yaml",
        include_str!("../workflows/imagenet-mobilenetv1.yaml"),
        &[
            "pretrain.epochs=1",
            "pretrain.warmup_epochs=0.1",
            "pretrain.train_subset=16",
        ],
    );
}
