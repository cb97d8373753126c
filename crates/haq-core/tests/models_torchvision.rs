//! haq's models against torchvision's: the same parameter names and shapes, state dicts
//! written by PyTorch in safetensors format load by name, and the loaded models compute
//! torchvision's logits.
//!
//! `fixtures/models_torchvision.json` holds, per case, torchvision's state-dict names
//! and shapes and the logits it computes for deterministic weights and input (made by
//! `fixtures/models_torchvision.py reference`, which needs torchvision). The test has the
//! project's PyTorch (`.venv`) write those deterministic weights as safetensors files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use haq_core::arch::ArchConfig;
use haq_core::models::Model;
use haq_core::train::from_safetensors;
use serde::Deserialize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

#[derive(Deserialize)]
struct Case {
    arch: String,
    width: f64,
    input_size: usize,
    in_channels: usize,
    num_classes: usize,
    tensors: BTreeMap<String, Vec<i64>>,
    logits: Vec<f64>,
}

/// The input the reference used: `sin(0.37 i)` over the flattened image, via float64.
fn model_input(c: usize, size: usize) -> Tensor {
    let n = (c * size * size) as i64;
    (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37)
        .sin()
        .to_kind(Kind::Float)
        .view([1, c as i64, size as i64, size as i64])
}

#[test]
fn torchvision_state_dicts_load_by_name_and_give_torchvisions_logits() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = manifest.join("tests/fixtures");
    let cases: BTreeMap<String, Case> = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("models_torchvision.json")).unwrap(),
    )
    .unwrap();
    let python = manifest.join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .arg(fixtures.join("models_torchvision.py"))
        .arg("write")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "writing the state dicts failed");

    for (key, case) in &cases {
        let config = ArchConfig {
            arch: case.arch.parse().unwrap(),
            width: case.width,
            input_size: case.input_size,
            in_channels: case.in_channels,
            num_classes: case.num_classes,
        };
        let model = Model::new(&config, Device::Cpu, 0).unwrap();
        let ours: BTreeMap<String, Vec<i64>> = model
            .weights()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        assert_eq!(
            &ours, &case.tensors,
            "{key}: names or shapes differ from torchvision's"
        );

        let bytes = std::fs::read(dir.path().join(format!("{key}.safetensors"))).unwrap();
        model
            .load_weights(&from_safetensors(&bytes).unwrap())
            .unwrap();
        let logits = tch::no_grad(|| {
            model.forward_t(&model_input(case.in_channels, case.input_size), false)
        });
        let logits = Vec::<f64>::try_from(logits.to_kind(Kind::Double).flatten(0, -1)).unwrap();
        let scale = case.logits.iter().fold(0f64, |m, v| m.max(v.abs()));
        let worst = logits
            .iter()
            .zip(&case.logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        assert!(
            worst <= 1e-4 * scale,
            "{key}: logits {logits:?}\n differ from torchvision's {:?}",
            case.logits
        );
    }
}
