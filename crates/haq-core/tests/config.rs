//! The shared settings: split from a stage's own params, the device, and the splits and
//! network every stage derives from them on real Fashion-MNIST.

use haq_core::arch::Arch;
use haq_core::config::Settings;
use haq_core::data::DatasetName;
use serde::Deserialize;
use serde_json::json;
use tch::Device;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Own {
    calib_batch: usize,
}

fn params(own: serde_json::Value) -> serde_json::Value {
    let mut all = json!({
        "seed": 7,
        "device": "cpu",
        "dataset": {"name": "fashion-mnist", "val_size": 5000},
        "model": {"arch": "mobilenetv2", "width": 0.5},
    });
    all.as_object_mut()
        .unwrap()
        .extend(own.as_object().unwrap().clone());
    all
}

#[test]
fn params_split_into_settings_and_the_stages_own() {
    let _torch = crate::torch_lock();
    let (settings, own): (Settings, Own) =
        Settings::split_params(&params(json!({"calib_batch": 512}))).unwrap();
    assert_eq!(own, Own { calib_batch: 512 });
    assert_eq!(settings.seed, 7);
    assert_eq!(settings.dataset.name, DatasetName::FashionMnist);
    assert_eq!(settings.dataset.val_size, 5000);
    assert_eq!(
        (settings.model.arch, settings.model.width),
        (Arch::MobileNetV2, 0.5)
    );
    assert_eq!(settings.device().unwrap(), Device::Cpu);

    // Each side still rejects what it does not know.
    let err = Settings::split_params::<Own>(&params(json!({"calib_batch": 1, "calib": 2})))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `calib`"), "{err}");
    let mut typo = params(json!({"calib_batch": 1}));
    typo["model"]["widht"] = json!(1.0);
    let err = Settings::split_params::<Own>(&typo)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("widht") && err.contains("shared settings"),
        "{err}"
    );
    let mut missing = params(json!({"calib_batch": 1}));
    missing.as_object_mut().unwrap().remove("dataset");
    let err = Settings::split_params::<Own>(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing field `dataset`") && err.contains("val_size"),
        "{err}"
    );
}

#[test]
fn devices_other_than_present_ones_are_refused() {
    let _torch = crate::torch_lock();
    let with_device = |device: &str| {
        let mut p = params(json!({"calib_batch": 1}));
        p["device"] = json!(device);
        Settings::split_params::<Own>(&p).unwrap().0.device()
    };
    let err = with_device("gpu").unwrap_err().to_string();
    assert!(err.contains("cpu, cuda or cuda:N"), "{err}");
    // One past the last CUDA device there is (on a CPU-only machine: cuda:0).
    let past = format!("cuda:{}", tch::Cuda::device_count());
    let err = with_device(&past).unwrap_err().to_string();
    assert!(err.contains("use device: cpu"), "{err}");
}

#[test]
fn splits_are_seeded_and_shape_the_network() {
    let _torch = crate::torch_lock();
    let settings = |seed: u64, val_size: usize| {
        let mut p = params(json!({"calib_batch": 1}));
        p["seed"] = json!(seed);
        p["dataset"]["val_size"] = json!(val_size);
        Settings::split_params::<Own>(&p).unwrap().0
    };
    let a = settings(1, 5000);
    let splits = a.dataset.load(a.seed).unwrap();
    assert_eq!(
        (splits.train.len(), splits.val.len(), splits.test.len()),
        (55_000, 5000, 10_000)
    );
    let again = a.dataset.load(a.seed).unwrap();
    assert!(splits.val.labels.equal(&again.val.labels));
    let val_images = splits.val.images().unwrap();
    assert!(val_images.equal(&again.val.images().unwrap()));
    let other = a.dataset.load(2).unwrap();
    assert!(!val_images.equal(&other.val.images().unwrap()));

    let config = a.model.arch_config(&splits.train);
    assert_eq!(
        (
            config.arch,
            config.width,
            config.input_size,
            config.in_channels,
            config.num_classes
        ),
        (Arch::MobileNetV2, 0.5, 28, 1, 10)
    );

    let b = settings(1, 60_000);
    let err = b.dataset.load(b.seed).unwrap_err().to_string();
    assert!(err.contains("dataset.val_size"), "{err}");
}

#[test]
fn threads_set_libtorch_and_zero_is_refused() {
    let _torch = crate::torch_lock();
    let (settings, _): (Settings, Own) =
        Settings::split_params(&params(json!({"calib_batch": 1, "threads": 1}))).unwrap();
    assert_eq!(settings.threads, Some(1));
    settings.apply_runtime().unwrap();
    assert_eq!(tch::get_num_threads(), 1);

    // Left out: libtorch's own choice, untouched.
    let (unset, _): (Settings, Own) =
        Settings::split_params(&params(json!({"calib_batch": 1}))).unwrap();
    assert_eq!(unset.threads, None);
    unset.apply_runtime().unwrap();
    assert_eq!(tch::get_num_threads(), 1);

    let e = Settings::split_params::<Own>(&params(json!({"calib_batch": 1, "threads": 0})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("threads") && e.contains("use 1 to"), "{e}");
}

#[test]
fn a_training_subset_smaller_than_a_batch_is_refused() {
    let recipe = |subset: usize| {
        params(json!({"epochs": 1, "batch_size": 64, "lr": 0.1, "train_subset": subset}))
    };
    // Epochs train on full batches only: 63 images would give no step at all.
    let err = Settings::split_training_params(&recipe(63), "policy", "a policy")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train_subset") && err.contains("63") && err.contains("batch_size 64"),
        "{err}"
    );
    Settings::split_training_params(&recipe(64), "policy", "a policy").unwrap();
}
