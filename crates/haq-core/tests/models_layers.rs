//! Every architecture builds, gives logits of the right shape at 28, 32 and 224 pixels,
//! and runs its quantizable layers exactly as `arch::layers` lists them.

use std::cell::RefCell;

use haq_core::arch::{Arch, ArchConfig, LayerKind};
use haq_core::models::{LayerQuantizer, Model};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// One hook call.
struct Call {
    layer: usize,
    hook: &'static str,
    shape: Vec<i64>,
    /// The smallest value passed in (inputs only).
    min: f64,
    /// Laid out channels-last: channels have stride 1 (4-D tensors only).
    nhwc: bool,
}

fn nhwc(t: &Tensor) -> bool {
    t.dim() == 4 && t.stride()[1] == 1
}

/// Records every hook call.
#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<Call>>,
}

impl LayerQuantizer for Recorder {
    fn weight(&self, layer: usize, w: &Tensor) -> Tensor {
        let call = Call {
            layer,
            hook: "weight",
            shape: w.size(),
            min: 0.0,
            nhwc: nhwc(w),
        };
        self.calls.borrow_mut().push(call);
        w.shallow_clone()
    }

    fn input(&self, layer: usize, x: &Tensor) -> Tensor {
        let call = Call {
            layer,
            hook: "input",
            shape: x.size(),
            min: x.min().double_value(&[]),
            nhwc: nhwc(x),
        };
        self.calls.borrow_mut().push(call);
        x.shallow_clone()
    }
}

fn configs() -> Vec<ArchConfig> {
    let mut configs = Vec::new();
    for arch in Arch::ALL {
        // Fashion-MNIST (one channel), CIFAR-10, ImageNet.
        for (size, channels, classes) in [(28, 1, 10), (32, 3, 10), (224, 3, 1000)] {
            configs.push(ArchConfig {
                in_channels: channels,
                ..ArchConfig::new(arch, size, classes)
            });
        }
    }
    configs.push(ArchConfig {
        width: 0.5,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    });
    configs.push(ArchConfig {
        width: 0.25,
        ..ArchConfig::new(Arch::MobileNetV1, 32, 10)
    });
    configs
}

#[test]
fn quantizable_layers_run_in_the_order_and_shapes_of_arch_layers() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(2);
    for config in configs() {
        let model = Model::new(&config, Device::Cpu, 1).unwrap();
        let x = Tensor::randn(
            [
                2,
                config.in_channels as i64,
                config.input_size as i64,
                config.input_size as i64,
            ],
            (Kind::Float, Device::Cpu),
        );
        let recorder = Recorder::default();
        let logits = tch::no_grad(|| model.forward_quantized(&x, false, &recorder));
        let what = format!("{config:?}");
        assert_eq!(logits.size(), [2, config.num_classes as i64], "{what}");
        // The float forward is the identity quantizer's.
        let plain = tch::no_grad(|| model.forward_t(&x, false));
        assert!(plain.equal(&logits), "{what}");

        let calls = recorder.calls.into_inner();
        let layers = model.layers();
        assert_eq!(
            calls.len(),
            2 * layers.len(),
            "{what}: every layer's input and weight, once"
        );
        for (info, pair) in layers.iter().zip(calls.chunks(2)) {
            let s = &info.shape;
            let (input, weight) = (&pair[0], &pair[1]);
            assert_eq!(
                (input.layer, input.hook, weight.layer, weight.hook),
                (info.index, "input", info.index, "weight"),
                "{what}"
            );
            let (want_weight, want_input) = match s.kind {
                LayerKind::Linear => (vec![s.c_out, s.c_in], vec![2, s.c_in]),
                _ => (
                    vec![s.c_out, s.c_in / s.groups, s.kernel, s.kernel],
                    vec![2, s.c_in, s.in_h, s.in_w],
                ),
            };
            let as_i64 = |v: Vec<usize>| v.into_iter().map(|d| d as i64).collect::<Vec<_>>();
            assert_eq!(
                weight.shape,
                as_i64(want_weight),
                "{what}: weight of {}",
                info.name
            );
            assert_eq!(
                input.shape,
                as_i64(want_input),
                "{what}: input of {}",
                info.name
            );
            assert_eq!(
                weight.shape.iter().product::<i64>() as usize,
                s.params,
                "{what}: {}",
                info.name
            );
            assert_eq!(
                model.layer_weight(info.index).size(),
                weight.shape,
                "{what}: {}",
                info.name
            );
            // Conv weights are NHWC, and so is every conv's output (the CPU's fast path;
            // the model's input arrives NCHW).
            if s.kind != LayerKind::Linear {
                assert!(weight.nhwc, "{what}: weight of {} is NCHW", info.name);
                assert!(
                    input.nhwc || info.index == 0,
                    "{what}: input of {} is NCHW",
                    info.name
                );
            }
            // A layer whose input arch calls unsigned gets no negative values.
            if !info.signed_input {
                assert!(
                    input.min >= 0.0,
                    "{what}: input of {} is negative",
                    info.name
                );
            }
        }
        // The last layer's output size follows from the shapes (the classifier's input).
        assert_eq!(layers.last().unwrap().shape.c_out, config.num_classes);
    }
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let _torch = crate::torch_lock();
    let config = ArchConfig {
        width: 0.5,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    };
    let a = Model::new(&config, Device::Cpu, 3).unwrap().weights();
    let b = Model::new(&config, Device::Cpu, 3).unwrap().weights();
    let c = Model::new(&config, Device::Cpu, 4).unwrap().weights();
    assert!(a
        .iter()
        .zip(&b)
        .all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb)));
    assert!(!a.iter().zip(&c).all(|((_, ta), (_, tc))| ta.equal(tc)));
}

#[test]
fn initial_weights_follow_torchvision() {
    let _torch = crate::torch_lock();
    let config = ArchConfig {
        width: 0.5,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    };
    let model = Model::new(&config, Device::Cpu, 0).unwrap();
    let weights: std::collections::BTreeMap<String, Tensor> = model.weights().into_iter().collect();
    let stats = |name: &str| {
        let t = &weights[name];
        (
            t.mean(Kind::Double).double_value(&[]),
            t.std(true).double_value(&[]),
        )
    };
    // The last 1x1 conv, [1280, 160, 1, 1]: He-normal with fan-out 1280.
    let (mean, std) = stats("features.18.0.weight");
    let want = (2.0f64 / 1280.0).sqrt();
    assert!(
        mean.abs() < 0.01 * want && (std / want - 1.0).abs() < 0.01,
        "mean {mean}, std {std} vs {want}"
    );
    // The classifier: normal(0, 0.01), zero bias.
    let (_, std) = stats("classifier.1.weight");
    assert!((std / 0.01 - 1.0).abs() < 0.05, "{std}");
    assert_eq!(stats("classifier.1.bias"), (0.0, 0.0));
    // Batch norms start as the identity.
    assert_eq!(stats("features.18.1.weight"), (1.0, 0.0));
    assert_eq!(stats("features.18.1.running_var"), (1.0, 0.0));
}

#[test]
fn invalid_configs_are_rejected() {
    let _torch = crate::torch_lock();
    let config = ArchConfig {
        width: 0.0,
        ..ArchConfig::new(Arch::ResNet18, 32, 10)
    };
    let err = Model::new(&config, Device::Cpu, 0).unwrap_err();
    assert!(err.to_string().contains("width"), "{err}");
}
