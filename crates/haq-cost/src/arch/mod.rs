//! Network architectures described without libtorch.
//!
//! [`blocks`] is the single structural description of a network: the units a model
//! builder instantiates, with channel counts, kernels, strides and the parameter name of
//! every conv, batch norm and linear layer. [`layers`] derives from it the quantizable
//! layers in execution order, with the exact shapes the cost models need.
//!
//! Parameter names follow torchvision's state dicts (`features.1.conv.0.0.weight`,
//! `layer1.0.downsample.0.weight`, ...) so a torchvision checkpoint loads by name.
//! MobileNet-V1 has no torchvision model; its names are those of the HAQ authors' code
//! (mit-han-lab/haq, `models/mobilenet.py`): `conv1.0` / `conv1.1` for the stem conv and
//! batch norm, `features.N.0` / `features.N.1` and `features.N.3` / `features.N.4` for
//! block N's depthwise and pointwise conv and batch norm, `classifier.0` for the linear.

mod mobilenet;
mod resnet;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::{Error, Result};

/// What kind of operation a quantizable layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Conv,
    Depthwise,
    Linear,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Depthwise => "depthwise",
            LayerKind::Linear => "linear",
        }
    }
}

/// The shape of one quantizable layer, enough to cost it on any hardware model.
/// A linear layer is a 1x1 convolution on a 1x1 feature map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerShape {
    pub kind: LayerKind,
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// Number of weights (biases excluded: they stay in float).
    pub params: usize,
}

impl LayerShape {
    /// Multiply-accumulates for one image.
    pub fn macs(&self) -> usize {
        self.params * self.out_h * self.out_w
    }
}

/// One quantizable layer of a network, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Position in execution order, from 0.
    pub index: usize,
    /// Module prefix of the layer's weight, e.g. `features.1.conv.0.0`.
    pub name: String,
    pub shape: LayerShape,
    /// Whether the layer's input can be negative, so its activation quantizer must be signed.
    pub signed_input: bool,
}

/// The architectures haq knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    MobileNetV1,
    MobileNetV2,
    ResNet18,
    ResNet50,
}

/// An architecture's name and the builder of its blocks.
#[derive(Clone, Copy)]
struct Entry {
    arch: Arch,
    name: &'static str,
    blocks: fn(&ArchConfig) -> Vec<Block>,
}

/// Every architecture: the one list [`Arch::ALL`], names, parsing and [`blocks`] read.
const ARCHS: [Entry; 4] = [
    Entry {
        arch: Arch::MobileNetV1,
        name: "mobilenetv1",
        blocks: mobilenet::v1,
    },
    Entry {
        arch: Arch::MobileNetV2,
        name: "mobilenetv2",
        blocks: mobilenet::v2,
    },
    Entry {
        arch: Arch::ResNet18,
        name: "resnet18",
        blocks: resnet::resnet18,
    },
    Entry {
        arch: Arch::ResNet50,
        name: "resnet50",
        blocks: resnet::resnet50,
    },
];

impl Arch {
    pub const ALL: [Arch; ARCHS.len()] = {
        let mut all = [Arch::MobileNetV1; ARCHS.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = ARCHS[i].arch;
            i += 1;
        }
        all
    };

    fn entry(self) -> Entry {
        ARCHS
            .into_iter()
            .find(|e| e.arch == self)
            .expect("every architecture is in ARCHS")
    }

    pub fn as_str(self) -> &'static str {
        self.entry().name
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ARCHS
            .into_iter()
            .find(|e| e.name == s)
            .map(|e| e.arch)
            .ok_or_else(|| Error::Config {
                field: "arch".into(),
                problem: format!(
                    "unknown architecture `{s}`; expected one of {}",
                    ARCHS.map(|e| e.name).join(", ")
                ),
            })
    }
}

/// An architecture at a given width, input resolution and class count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    pub arch: Arch,
    /// Width multiplier applied to every channel count (1.0 = the published network).
    pub width: f64,
    /// Height and width of the (square) input image.
    pub input_size: usize,
    pub in_channels: usize,
    pub num_classes: usize,
}

impl ArchConfig {
    /// The published network (width 1.0) on RGB input.
    pub fn new(arch: Arch, input_size: usize, num_classes: usize) -> Self {
        ArchConfig {
            arch,
            width: 1.0,
            input_size,
            in_channels: 3,
            num_classes,
        }
    }

    /// Inputs of at most 64 px (28x28 Fashion-MNIST, 32x32 CIFAR) use the small-input
    /// variant, which drops early strides:
    /// - MobileNet-V1 and V2: the stem conv's stride 2 -> 1 only. 28 px ends at 2x2,
    ///   32 px at 2x2. Also dropping the first stride-2 stage's stride (as some CIFAR
    ///   MobileNets do) keeps the widest stages at full resolution and costs 3.4x the
    ///   MACs (23.1 M vs 6.8 M at width 0.5, 28 px): too slow to train on a CPU.
    /// - ResNet: a 3x3 stride-1 stem conv and no max-pool, as in the CIFAR ResNets
    ///   (He et al. 2016, section 4.2). 28 px ends at 4x4, 32 px at 4x4.
    pub fn small_input(&self) -> bool {
        self.input_size <= 64
    }

    /// Rejects configurations no network can be built from.
    pub fn validate(&self) -> Result<()> {
        // The bounds keep every shape's arithmetic (MACs times a batch) inside 64 bits.
        check::finite("width", self.width, 0.01, 8.0)?;
        check::range("input_size", self.input_size, 8, 2048)?;
        check::range("in_channels", self.in_channels, 1, 1024)?;
        check::range("num_classes", self.num_classes, 1, 1_000_000)?;
        Ok(())
    }
}

/// The nonlinearity after a conv + batch norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// None: MobileNet-V2's linear bottleneck, or a ResNet conv whose ReLU follows the add.
    Identity,
    Relu,
    Relu6,
}

/// A bias-free 2-D convolution with padding `kernel / 2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    /// Module prefix: the weight is `{name}.weight`.
    pub name: String,
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
}

impl Conv {
    pub fn padding(&self) -> usize {
        self.kernel / 2
    }

    fn out_size(&self, size: usize) -> usize {
        (size + 2 * self.padding() - self.kernel) / self.stride + 1
    }
}

/// Conv, then batch norm (kept in float), then an activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvBn {
    pub conv: Conv,
    /// Module prefix of the batch norm: `{bn}.weight`, `{bn}.running_mean`, ...
    pub bn: String,
    pub act: Activation,
}

/// A linear layer with bias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear {
    /// Module prefix: `{name}.weight` and `{name}.bias`.
    pub name: String,
    pub c_in: usize,
    pub c_out: usize,
}

/// The units a model builder instantiates, in forward order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Block {
    /// A single conv-bn-activation unit (stems, MobileNet-V2's last 1x1 conv).
    ConvBn(ConvBn),
    /// MobileNet-V1: depthwise 3x3 conv-bn-relu6, then pointwise 1x1 conv-bn-relu6.
    DepthwiseSeparable {
        depthwise: ConvBn,
        pointwise: ConvBn,
    },
    /// MobileNet-V2: optional 1x1 expansion (relu6), depthwise 3x3 (relu6), linear 1x1
    /// projection; the input is added to the output when `residual` (no activation after).
    InvertedResidual {
        expand: Option<ConvBn>,
        depthwise: ConvBn,
        project: ConvBn,
        residual: bool,
    },
    /// ResNet basic block: conv1 (relu), conv2; the shortcut (the input, or `downsample`
    /// of it) is added and ReLU applied.
    Basic {
        conv1: ConvBn,
        conv2: ConvBn,
        downsample: Option<ConvBn>,
    },
    /// ResNet bottleneck (torchvision's v1.5: the stride is on the 3x3 conv2): conv1 and
    /// conv2 (relu), conv3; shortcut added, then ReLU.
    Bottleneck {
        conv1: ConvBn,
        conv2: ConvBn,
        conv3: ConvBn,
        downsample: Option<ConvBn>,
    },
    /// Max pooling with padding.
    MaxPool {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// Global average pooling to 1x1, then flatten.
    GlobalAvgPool,
    /// Dropout (skipped when `dropout` is 0), then the linear classifier.
    Classifier { dropout: f64, linear: Linear },
}

impl Block {
    /// The block's convolutions in torchvision's forward order (a shortcut's downsample
    /// runs after the main path).
    pub fn convs(&self) -> Vec<&ConvBn> {
        match self {
            Block::ConvBn(c) => vec![c],
            Block::DepthwiseSeparable {
                depthwise,
                pointwise,
            } => vec![depthwise, pointwise],
            Block::InvertedResidual {
                expand,
                depthwise,
                project,
                ..
            } => expand.iter().chain([depthwise, project]).collect(),
            Block::Basic {
                conv1,
                conv2,
                downsample,
            } => [conv1, conv2].into_iter().chain(downsample).collect(),
            Block::Bottleneck {
                conv1,
                conv2,
                conv3,
                downsample,
            } => [conv1, conv2, conv3]
                .into_iter()
                .chain(downsample)
                .collect(),
            Block::MaxPool { .. } | Block::GlobalAvgPool | Block::Classifier { .. } => vec![],
        }
    }
}

/// The structural description of a network, in forward order.
pub fn blocks(cfg: &ArchConfig) -> Vec<Block> {
    (cfg.arch.entry().blocks)(cfg)
}

/// Every quantizable conv and linear layer, in execution order, with exact feature-map
/// sizes and whether its input can be negative.
pub fn layers(cfg: &ArchConfig) -> Vec<LayerInfo> {
    let mut walk = LayerWalk {
        size: cfg.input_size,
        // The first layer sees the normalised image, which is signed.
        signed: true,
        layers: Vec::new(),
    };
    for block in blocks(cfg) {
        walk.block(&block);
    }
    walk.layers
}

/// Follows the feature map through the blocks: its size and whether it can be negative.
struct LayerWalk {
    size: usize,
    signed: bool,
    layers: Vec<LayerInfo>,
}

impl LayerWalk {
    fn block(&mut self, block: &Block) {
        match block {
            Block::ConvBn(c) => self.chain(&[c]),
            Block::DepthwiseSeparable {
                depthwise,
                pointwise,
            } => self.chain(&[depthwise, pointwise]),
            Block::InvertedResidual {
                expand,
                depthwise,
                project,
                ..
            } => {
                let convs: Vec<&ConvBn> = expand.iter().chain([depthwise, project]).collect();
                // The residual add of two signed tensors stays signed, as does the
                // linear bottleneck's output.
                self.chain(&convs);
            }
            Block::Basic {
                conv1,
                conv2,
                downsample,
            } => self.residual(&[conv1, conv2], downsample.as_ref()),
            Block::Bottleneck {
                conv1,
                conv2,
                conv3,
                downsample,
            } => self.residual(&[conv1, conv2, conv3], downsample.as_ref()),
            Block::MaxPool {
                kernel,
                stride,
                padding,
            } => self.size = (self.size + 2 * padding - kernel) / stride + 1,
            Block::GlobalAvgPool => self.size = 1,
            Block::Classifier { linear, .. } => {
                let shape = LayerShape {
                    kind: LayerKind::Linear,
                    c_in: linear.c_in,
                    c_out: linear.c_out,
                    kernel: 1,
                    stride: 1,
                    groups: 1,
                    in_h: 1,
                    in_w: 1,
                    out_h: 1,
                    out_w: 1,
                    params: linear.c_in * linear.c_out,
                };
                self.push(&linear.name, shape);
            }
        }
    }

    /// Convs applied one after another; the output's sign follows the last activation.
    fn chain(&mut self, convs: &[&ConvBn]) {
        for c in convs {
            self.conv(c);
        }
    }

    /// A ResNet block: the main path, then the downsample on the block's input; ReLU
    /// after the add makes the output non-negative.
    fn residual(&mut self, main: &[&ConvBn], downsample: Option<&ConvBn>) {
        let (size, signed) = (self.size, self.signed);
        self.chain(main);
        if let Some(ds) = downsample {
            let out = self.size;
            (self.size, self.signed) = (size, signed);
            self.conv(ds);
            debug_assert_eq!(self.size, out, "downsample must match the main path");
        }
        self.signed = false;
    }

    fn conv(&mut self, c: &ConvBn) {
        let conv = &c.conv;
        let out = conv.out_size(self.size);
        let kind = if conv.groups == 1 {
            LayerKind::Conv
        } else {
            LayerKind::Depthwise
        };
        let shape = LayerShape {
            kind,
            c_in: conv.c_in,
            c_out: conv.c_out,
            kernel: conv.kernel,
            stride: conv.stride,
            groups: conv.groups,
            in_h: self.size,
            in_w: self.size,
            out_h: out,
            out_w: out,
            params: conv.c_out * (conv.c_in / conv.groups) * conv.kernel * conv.kernel,
        };
        self.push(&conv.name, shape);
        self.size = out;
        self.signed = c.act == Activation::Identity;
    }

    fn push(&mut self, name: &str, shape: LayerShape) {
        self.layers.push(LayerInfo {
            index: self.layers.len(),
            name: name.to_string(),
            shape,
            signed_input: self.signed,
        });
    }
}

/// torchvision's `_make_divisible`: round `v` to the nearest multiple of `divisor`, never
/// going more than 10% below `v`.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((v + d / 2.0) / d).floor() * d).max(d);
    let rounded = if rounded < 0.9 * v {
        rounded + d
    } else {
        rounded
    };
    rounded as usize
}

/// Builds conv-bn units with the bias-free, `kernel / 2`-padded convs all models use.
fn conv_bn(
    conv: &str,
    bn: &str,
    (c_in, c_out): (usize, usize),
    kernel: usize,
    stride: usize,
    groups: usize,
    act: Activation,
) -> ConvBn {
    ConvBn {
        conv: Conv {
            name: conv.to_string(),
            c_in,
            c_out,
            kernel,
            stride,
            groups,
        },
        bn: bn.to_string(),
        act,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // Worked through torchvision's formula by hand.
        assert_eq!(make_divisible(32.0 * 0.5, 8), 16);
        assert_eq!(make_divisible(24.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(96.0 * 0.75, 8), 72);
        assert_eq!(make_divisible(32.0 * 1.4, 8), 48);
        assert_eq!(make_divisible(20.0, 8), 24);
        assert_eq!(make_divisible(19.0, 8), 24);
        assert_eq!(make_divisible(11.0, 8), 16);
    }
}
