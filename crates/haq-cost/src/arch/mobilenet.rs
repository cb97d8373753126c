//! MobileNet-V1 (Howard et al. 2017, as in the HAQ authors' code) and MobileNet-V2
//! (Sandler et al. 2018, as in torchvision).

use super::{conv_bn, make_divisible, Activation, ArchConfig, Block, Linear};

/// MobileNet-V1's depthwise-separable blocks: (output channels, stride), from the paper's
/// Table 1 and mit-han-lab/haq `models/mobilenet.py`.
const V1_BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

/// MobileNet-V2's stages: (expand ratio t, output channels c, repeats n, first stride s),
/// from the paper's Table 2 and torchvision.
const V2_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// The stride of the stem: 1 for small inputs.
fn stem_stride(cfg: &ArchConfig) -> usize {
    if cfg.small_input() {
        1
    } else {
        2
    }
}

pub(super) fn v1(cfg: &ArchConfig) -> Vec<Block> {
    // The original MobileNet's width rule (TF-slim `depth_multiplier`): truncate, at least 8.
    let width = |c: usize| ((c as f64 * cfg.width) as usize).max(8);
    let stem = width(32);
    let mut blocks = vec![Block::ConvBn(conv_bn(
        "conv1.0",
        "conv1.1",
        (cfg.in_channels, stem),
        3,
        stem_stride(cfg),
        1,
        Activation::Relu,
    ))];
    let mut c_in = stem;
    for (i, &(c, stride)) in V1_BLOCKS.iter().enumerate() {
        let c_out = width(c);
        let p = format!("features.{i}");
        blocks.push(Block::DepthwiseSeparable {
            depthwise: conv_bn(
                &format!("{p}.0"),
                &format!("{p}.1"),
                (c_in, c_in),
                3,
                stride,
                c_in,
                Activation::Relu6,
            ),
            pointwise: conv_bn(
                &format!("{p}.3"),
                &format!("{p}.4"),
                (c_in, c_out),
                1,
                1,
                1,
                Activation::Relu6,
            ),
        });
        c_in = c_out;
    }
    blocks.push(Block::GlobalAvgPool);
    blocks.push(Block::Classifier {
        dropout: 0.0,
        linear: Linear {
            name: "classifier.0".into(),
            c_in,
            c_out: cfg.num_classes,
        },
    });
    blocks
}

pub(super) fn v2(cfg: &ArchConfig) -> Vec<Block> {
    let stem = make_divisible(32.0 * cfg.width, 8);
    let last = make_divisible(1280.0 * cfg.width.max(1.0), 8);
    let mut blocks = vec![Block::ConvBn(conv_bn(
        "features.0.0",
        "features.0.1",
        (cfg.in_channels, stem),
        3,
        stem_stride(cfg),
        1,
        Activation::Relu6,
    ))];
    let mut c_in = stem;
    let mut index = 1;
    for &(t, c, n, s) in &V2_STAGES {
        let c_out = make_divisible(c as f64 * cfg.width, 8);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            blocks.push(inverted_residual(
                &format!("features.{index}.conv"),
                c_in,
                c_out,
                stride,
                t,
            ));
            c_in = c_out;
            index += 1;
        }
    }
    blocks.push(Block::ConvBn(conv_bn(
        &format!("features.{index}.0"),
        &format!("features.{index}.1"),
        (c_in, last),
        1,
        1,
        1,
        Activation::Relu6,
    )));
    blocks.push(Block::GlobalAvgPool);
    blocks.push(Block::Classifier {
        dropout: 0.2,
        linear: Linear {
            name: "classifier.1".into(),
            c_in: last,
            c_out: cfg.num_classes,
        },
    });
    blocks
}

/// torchvision's `InvertedResidual`; `p` is its `conv` Sequential's prefix.
fn inverted_residual(p: &str, c_in: usize, c_out: usize, stride: usize, t: usize) -> Block {
    let hidden = c_in * t;
    let expand = (t != 1).then(|| {
        conv_bn(
            &format!("{p}.0.0"),
            &format!("{p}.0.1"),
            (c_in, hidden),
            1,
            1,
            1,
            Activation::Relu6,
        )
    });
    // Without expansion the Sequential starts at the depthwise unit.
    let next = usize::from(expand.is_some());
    Block::InvertedResidual {
        expand,
        depthwise: conv_bn(
            &format!("{p}.{next}.0"),
            &format!("{p}.{next}.1"),
            (hidden, hidden),
            3,
            stride,
            hidden,
            Activation::Relu6,
        ),
        project: conv_bn(
            &format!("{p}.{}", next + 1),
            &format!("{p}.{}", next + 2),
            (hidden, c_out),
            1,
            1,
            1,
            Activation::Identity,
        ),
        residual: stride == 1 && c_in == c_out,
    }
}
