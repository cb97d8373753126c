//! The architecture descriptions against published parameter counts, layer counts and
//! torchvision's names and feature-map sizes.

use haq_cost::arch::{blocks, layers, Arch, ArchConfig, Block, LayerInfo, LayerKind};

fn imagenet(arch: Arch) -> Vec<LayerInfo> {
    layers(&ArchConfig::new(arch, 224, 1000))
}

fn by_name<'a>(layers: &'a [LayerInfo], name: &str) -> &'a LayerInfo {
    layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layer named {name}"))
}

/// Weights of every conv and linear layer.
fn weights(layers: &[LayerInfo]) -> usize {
    layers.iter().map(|l| l.shape.params).sum()
}

/// Parameters that are not conv/linear weights: every conv is followed by a batch norm
/// (weight and bias per channel) and every linear layer has a bias.
fn other_params(cfg: &ArchConfig) -> usize {
    blocks(cfg)
        .iter()
        .map(|b| match b {
            Block::Classifier { linear, .. } => linear.c_out,
            b => b.convs().iter().map(|c| 2 * c.conv.c_out).sum(),
        })
        .sum()
}

#[test]
fn parameter_counts_match_the_published_models() {
    // Total trainable parameters: torchvision's documented counts for mobilenet_v2,
    // resnet18 and resnet50; MobileNet-V1 1.0-224 as in Keras and the HAQ authors' model.
    for (arch, total) in [
        (Arch::MobileNetV1, 4_231_976),
        (Arch::MobileNetV2, 3_504_872),
        (Arch::ResNet18, 11_689_512),
        (Arch::ResNet50, 25_557_032),
    ] {
        let cfg = ArchConfig::new(arch, 224, 1000);
        assert_eq!(weights(&layers(&cfg)) + other_params(&cfg), total, "{arch}");
    }
    // Conv + FC weights alone, summed by hand from the papers' layer tables.
    assert_eq!(weights(&imagenet(Arch::MobileNetV1)), 4_209_088);
    assert_eq!(weights(&imagenet(Arch::MobileNetV2)), 3_469_760);
}

#[test]
fn layer_counts_and_kinds() {
    for (arch, convs, depthwise) in [
        (Arch::MobileNetV1, 27, 13),
        (Arch::MobileNetV2, 52, 17),
        (Arch::ResNet18, 20, 0),
        (Arch::ResNet50, 53, 0),
    ] {
        let ls = imagenet(arch);
        let count = |k: LayerKind| ls.iter().filter(|l| l.shape.kind == k).count();
        assert_eq!(ls.len(), convs + 1, "{arch}");
        assert_eq!(count(LayerKind::Depthwise), depthwise, "{arch}");
        assert_eq!(count(LayerKind::Linear), 1, "{arch}");
        assert_eq!(ls.last().unwrap().shape.kind, LayerKind::Linear, "{arch}");
        assert!(ls.iter().enumerate().all(|(i, l)| l.index == i), "{arch}");
        let downsample = ls.iter().filter(|l| l.name.contains("downsample")).count();
        let expected = match arch {
            Arch::ResNet18 => 3,
            Arch::ResNet50 => 4,
            _ => 0,
        };
        assert_eq!(downsample, expected, "{arch}");
    }
}

#[test]
fn mobilenet_v2_follows_torchvision() {
    let ls = imagenet(Arch::MobileNetV2);
    let names: Vec<&str> = ls.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names[..6],
        [
            "features.0.0",
            "features.1.conv.0.0",
            "features.1.conv.1",
            "features.2.conv.0.0",
            "features.2.conv.1.0",
            "features.2.conv.2",
        ]
    );
    assert_eq!(names[names.len() - 2..], ["features.18.0", "classifier.1"]);

    let stem = &ls[0].shape;
    assert_eq!((stem.in_h, stem.out_h, stem.stride), (224, 112, 2));
    let dw = &by_name(&ls, "features.2.conv.1.0").shape;
    assert_eq!(dw.kind, LayerKind::Depthwise);
    assert_eq!((dw.c_in, dw.groups, dw.in_h, dw.out_h), (96, 96, 112, 56));
    let last = &by_name(&ls, "features.18.0").shape;
    assert_eq!((last.c_in, last.c_out, last.out_h), (320, 1280, 7));
    let fc = &ls[ls.len() - 1].shape;
    assert_eq!((fc.c_in, fc.c_out, fc.in_h), (1280, 1000, 1));

    // Batch-norm names of the first two blocks, as in torchvision's state dict.
    let bns: Vec<String> = blocks(&ArchConfig::new(Arch::MobileNetV2, 224, 1000))[1..3]
        .iter()
        .flat_map(|b| b.convs().into_iter().map(|c| c.bn.clone()))
        .collect();
    assert_eq!(
        bns,
        [
            "features.1.conv.0.1",
            "features.1.conv.2",
            "features.2.conv.0.1",
            "features.2.conv.1.1",
            "features.2.conv.3",
        ]
    );
}

#[test]
fn resnet_follows_torchvision() {
    let ls = imagenet(Arch::ResNet18);
    let names: Vec<&str> = ls.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names[..8],
        [
            "conv1",
            "layer1.0.conv1",
            "layer1.0.conv2",
            "layer1.1.conv1",
            "layer1.1.conv2",
            "layer2.0.conv1",
            "layer2.0.conv2",
            "layer2.0.downsample.0",
        ]
    );
    assert_eq!(names[names.len() - 1], "fc");
    let stem = &ls[0].shape;
    assert_eq!((stem.kernel, stem.in_h, stem.out_h), (7, 224, 112));
    // The max-pool halves 112 to 56 before layer1.
    assert_eq!(by_name(&ls, "layer1.0.conv1").shape.in_h, 56);
    let ds = &by_name(&ls, "layer2.0.downsample.0").shape;
    assert_eq!((ds.c_in, ds.c_out, ds.kernel, ds.stride), (64, 128, 1, 2));
    assert_eq!((ds.in_h, ds.out_h), (56, 28));
    assert_eq!(by_name(&ls, "layer4.1.conv2").shape.out_h, 7);

    let ls = imagenet(Arch::ResNet50);
    let c2 = &by_name(&ls, "layer2.0.conv2").shape;
    assert_eq!((c2.c_in, c2.stride, c2.in_h, c2.out_h), (128, 2, 56, 28));
    let ds = &by_name(&ls, "layer1.0.downsample.0").shape;
    assert_eq!((ds.c_in, ds.c_out, ds.stride), (64, 256, 1));
    assert_eq!(ls[ls.len() - 1].shape.c_in, 2048);
}

#[test]
fn mobilenet_v1_follows_the_authors_model() {
    let ls = imagenet(Arch::MobileNetV1);
    let names: Vec<&str> = ls.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names[..3], ["conv1.0", "features.0.0", "features.0.3"]);
    assert_eq!(names[names.len() - 2..], ["features.12.3", "classifier.0"]);
    let last = &by_name(&ls, "features.12.3").shape;
    assert_eq!((last.c_in, last.c_out, last.out_h), (1024, 1024, 7));
}

#[test]
fn small_inputs_drop_the_early_strides() {
    for arch in Arch::ALL {
        // MobileNets drop only the stem's stride (ending at 2x2), ResNets the stem's and the
        // max-pool's (ending at 4x4).
        let small = if matches!(arch, Arch::ResNet18 | Arch::ResNet50) {
            4
        } else {
            2
        };
        for (size, last) in [(28, small), (32, small), (224, 7)] {
            let cfg = ArchConfig {
                in_channels: 1,
                ..ArchConfig::new(arch, size, 10)
            };
            let ls = layers(&cfg);
            let final_conv = &ls[ls.len() - 2].shape;
            assert_eq!(final_conv.out_h, last, "{arch} at {size} px");
            assert_eq!(ls[0].shape.c_in, 1, "{arch}");
            assert_eq!(ls[ls.len() - 1].shape.c_out, 10, "{arch}");
            let stem_stride = if size <= 64 { 1 } else { 2 };
            assert_eq!(ls[0].shape.stride, stem_stride, "{arch} at {size} px");
        }
    }
    let resnet = layers(&ArchConfig::new(Arch::ResNet18, 28, 10));
    assert_eq!(resnet[0].shape.kernel, 3);
    assert_eq!(resnet[1].shape.in_h, 28, "no max-pool on small inputs");
}

#[test]
fn feature_maps_chain_through_the_network() {
    for arch in Arch::ALL {
        for size in [28, 224] {
            let ls = layers(&ArchConfig::new(arch, size, 10));
            for pair in ls.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                // A downsample reads the block input; the layer after it reads the block output.
                if a.name.contains("downsample") || b.name.contains("downsample") {
                    continue;
                }
                // ResNet's max-pool sits between the stem and layer1 on large inputs.
                let pooled = a.name == "conv1" && size > 64;
                if b.shape.kind != LayerKind::Linear && !pooled {
                    assert_eq!(
                        a.shape.out_h, b.shape.in_h,
                        "{arch}: {} -> {}",
                        a.name, b.name
                    );
                    assert_eq!(
                        a.shape.c_out, b.shape.c_in,
                        "{arch}: {} -> {}",
                        a.name, b.name
                    );
                }
                let s = &b.shape;
                assert_eq!(
                    s.out_h,
                    (s.in_h + 2 * (s.kernel / 2) - s.kernel) / s.stride + 1
                );
            }
        }
    }
}

#[test]
fn signed_inputs_follow_the_activations() {
    let signed = |ls: &[LayerInfo], name: &str| by_name(ls, name).signed_input;
    let v2 = imagenet(Arch::MobileNetV2);
    assert!(signed(&v2, "features.0.0"), "the normalised image");
    assert!(
        !signed(&v2, "features.1.conv.0.0"),
        "after the stem's ReLU6"
    );
    assert!(
        !signed(&v2, "features.1.conv.1"),
        "after the depthwise ReLU6"
    );
    assert!(
        signed(&v2, "features.2.conv.0.0"),
        "after a linear bottleneck"
    );
    assert!(signed(&v2, "features.4.conv.0.0"), "after a residual add");
    assert!(
        !signed(&v2, "features.4.conv.1.0"),
        "after the expansion's ReLU6"
    );
    assert!(signed(&v2, "features.18.0"), "after the last bottleneck");
    assert!(!signed(&v2, "classifier.1"), "after ReLU6 and pooling");

    for arch in [Arch::MobileNetV1, Arch::ResNet18, Arch::ResNet50] {
        let ls = imagenet(arch);
        assert!(ls[0].signed_input, "{arch}");
        assert!(
            ls[1..].iter().all(|l| !l.signed_input),
            "{arch}: all after ReLU"
        );
    }
}

#[test]
fn width_multiplier_rounds_like_the_reference_code() {
    let at = |arch, width| {
        layers(&ArchConfig {
            width,
            ..ArchConfig::new(arch, 224, 1000)
        })
    };
    // torchvision: _make_divisible to 8; the last conv never shrinks below 1280.
    let v2 = at(Arch::MobileNetV2, 0.5);
    assert_eq!(v2[0].shape.c_out, 16);
    assert_eq!(by_name(&v2, "features.2.conv.2").shape.c_out, 16);
    assert_eq!(by_name(&v2, "features.18.0").shape.c_out, 1280);
    let v2 = at(Arch::MobileNetV2, 1.4);
    assert_eq!(v2[0].shape.c_out, 48);
    assert_eq!(by_name(&v2, "features.18.0").shape.c_out, 1792);
    // MobileNet-V1: channels truncated, at least 8.
    let v1 = at(Arch::MobileNetV1, 0.25);
    assert_eq!(v1[0].shape.c_out, 8);
    assert_eq!(v1[v1.len() - 1].shape.c_in, 256);
    let r = at(Arch::ResNet18, 0.5);
    assert_eq!(r[0].shape.c_out, 32);
    assert_eq!(r[r.len() - 1].shape.c_in, 256);
}

#[test]
fn arch_names_round_trip() {
    for arch in Arch::ALL {
        let name = arch.to_string();
        assert_eq!(name.parse::<Arch>().unwrap(), arch);
        let json = serde_json::to_string(&arch).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Arch>(&json).unwrap(), arch);
    }
    let err = "mobilenet".parse::<Arch>().unwrap_err().to_string();
    assert!(
        err.contains("mobilenet") && err.contains("resnet50"),
        "{err}"
    );
}
