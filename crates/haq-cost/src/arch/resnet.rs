//! ResNet-18 and ResNet-50 (He et al. 2016) as in torchvision: bottleneck stride on the
//! 3x3 conv (v1.5), shortcut downsample by a strided 1x1 conv + batch norm.

use super::{conv_bn, make_divisible, Activation, ArchConfig, Block, Linear};

/// Per stage: (planes, first stride).
const STAGES: [(usize, usize); 4] = [(64, 1), (128, 2), (256, 2), (512, 2)];

pub(super) fn resnet18(cfg: &ArchConfig) -> Vec<Block> {
    resnet(cfg, [2, 2, 2, 2], false)
}

pub(super) fn resnet50(cfg: &ArchConfig) -> Vec<Block> {
    resnet(cfg, [3, 4, 6, 3], true)
}

fn resnet(cfg: &ArchConfig, repeats: [usize; 4], bottleneck: bool) -> Vec<Block> {
    let width = |c: usize| make_divisible(c as f64 * cfg.width, 8);
    let expansion = if bottleneck { 4 } else { 1 };
    let stem = width(64);
    // Small inputs: the CIFAR ResNets' 3x3 stride-1 stem and no max-pool.
    let (kernel, stride) = if cfg.small_input() { (3, 1) } else { (7, 2) };
    let mut blocks = vec![Block::ConvBn(conv_bn(
        "conv1",
        "bn1",
        (cfg.in_channels, stem),
        kernel,
        stride,
        1,
        Activation::Relu,
    ))];
    if !cfg.small_input() {
        blocks.push(Block::MaxPool {
            kernel: 3,
            stride: 2,
            padding: 1,
        });
    }
    let mut c_in = stem;
    for (stage, (&(planes, first_stride), &n)) in STAGES.iter().zip(&repeats).enumerate() {
        let planes = width(planes);
        for i in 0..n {
            let p = format!("layer{}.{i}", stage + 1);
            let stride = if i == 0 { first_stride } else { 1 };
            let c_out = planes * expansion;
            let unit = |j: usize, io: (usize, usize), k: usize, s: usize, act: Activation| {
                conv_bn(
                    &format!("{p}.conv{j}"),
                    &format!("{p}.bn{j}"),
                    io,
                    k,
                    s,
                    1,
                    act,
                )
            };
            let downsample = (stride != 1 || c_in != c_out).then(|| {
                conv_bn(
                    &format!("{p}.downsample.0"),
                    &format!("{p}.downsample.1"),
                    (c_in, c_out),
                    1,
                    stride,
                    1,
                    Activation::Identity,
                )
            });
            blocks.push(if bottleneck {
                Block::Bottleneck {
                    conv1: unit(1, (c_in, planes), 1, 1, Activation::Relu),
                    conv2: unit(2, (planes, planes), 3, stride, Activation::Relu),
                    conv3: unit(3, (planes, c_out), 1, 1, Activation::Identity),
                    downsample,
                }
            } else {
                Block::Basic {
                    conv1: unit(1, (c_in, planes), 3, stride, Activation::Relu),
                    conv2: unit(2, (planes, c_out), 3, 1, Activation::Identity),
                    downsample,
                }
            });
            c_in = c_out;
        }
    }
    blocks.push(Block::GlobalAvgPool);
    blocks.push(Block::Classifier {
        dropout: 0.0,
        linear: Linear {
            name: "fc".into(),
            c_in,
            c_out: cfg.num_classes,
        },
    });
    blocks
}
