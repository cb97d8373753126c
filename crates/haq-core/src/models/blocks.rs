//! libtorch modules for the blocks of [`crate::arch::Block`].

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, BatchNorm, Init, ModuleT, Path};
use tch::Tensor;

use super::LayerQuantizer;
use crate::arch::{Activation, Block, ConvBn, Linear};

/// The same values with channels-last (NHWC) strides. Convolutions whose weights are
/// laid out so run on oneDNN's NHWC kernels, their outputs stay NHWC, and so does every
/// activation after them: MobileNet trains about 1.4x faster on CPU than in NCHW
/// (`cargo bench --bench train_speed`). Shapes, names and values are unchanged, and
/// serialisation makes tensors contiguous first. The strides are set explicitly because
/// permuting and copying keeps NCHW strides wherever a dimension has size 1, as in 1x1
/// and depthwise kernels.
fn channels_last(t: &Tensor) -> Tensor {
    let &[_, c, h, w] = t.size().as_slice() else {
        panic!("channels_last: a 4-D tensor, got {:?}", t.size())
    };
    let mut nhwc =
        Tensor::empty_strided(t.size(), [h * w * c, 1, w * c, c], (t.kind(), t.device()));
    tch::no_grad(|| nhwc.copy_(t));
    nhwc
}

/// Creates the variables of a network: where they go, where initial values come from,
/// and the index of the next quantizable layer (execution order).
pub(super) struct Builder<'a> {
    pub root: Path<'a>,
    pub rng: ChaCha8Rng,
    pub next_layer: usize,
}

impl<'a> Builder<'a> {
    /// The variable path of a dotted module name such as `features.1.conv.0.0`.
    fn path(&self, name: &str) -> Path<'a> {
        name.split('.').fold(self.root.clone(), |p, part| p / part)
    }

    /// A trainable `name.weight` drawn from normal(0, std).
    fn normal_weight(&mut self, module: &str, dims: &[usize], std: f64) -> Tensor {
        let n = dims.iter().product();
        let mut values = Vec::with_capacity(n + 1);
        while values.len() < n {
            let (a, b) = standard_normal_pair(&mut self.rng);
            values.extend([(std * a) as f32, (std * b) as f32]);
        }
        values.truncate(n);
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let path = self.path(module);
        let weight = Tensor::from_slice(&values).view(dims.as_slice());
        let weight = if dims.len() == 4 {
            channels_last(&weight)
        } else {
            weight
        };
        path.add("weight", weight.to_device(path.device()), true)
    }

    fn take_layer(&mut self) -> usize {
        self.next_layer += 1;
        self.next_layer - 1
    }
}

/// Box-Muller: two independent standard normal samples from two uniform ones.
fn standard_normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    let u1 = 1.0 - rng.gen::<f64>(); // in (0, 1]
    let u2 = rng.gen::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
    (r * cos, r * sin)
}

/// A quantizable conv (bias-free), its batch norm and activation.
pub(super) struct ConvBnLayer {
    layer: usize,
    weight: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
    bn: BatchNorm,
    act: Activation,
}

impl ConvBnLayer {
    fn new(b: &mut Builder, unit: &ConvBn) -> Self {
        let c = &unit.conv;
        // He-normal with fan-out, torchvision's conv initialisation.
        let fan_out = c.c_out * c.kernel * c.kernel;
        let weight = b.normal_weight(
            &c.name,
            &[c.c_out, c.c_in / c.groups, c.kernel, c.kernel],
            (2.0 / fan_out as f64).sqrt(),
        );
        // PyTorch's defaults (eps 1e-5, momentum 0.1), with torchvision's initial scale 1.
        let bn_config = nn::BatchNormConfig {
            ws_init: Init::Const(1.0),
            ..Default::default()
        };
        let bn = nn::batch_norm2d(b.path(&unit.bn), c.c_out as i64, bn_config);
        Self {
            layer: b.take_layer(),
            weight,
            stride: c.stride as i64,
            padding: c.padding() as i64,
            groups: c.groups as i64,
            bn,
            act: unit.act,
        }
    }

    fn forward(&self, x: &Tensor, train: bool, q: &dyn LayerQuantizer) -> Tensor {
        let x = q.input(self.layer, x);
        let w = q.weight(self.layer, &self.weight);
        let y = x.conv2d(
            &w,
            None::<Tensor>,
            [self.stride],
            [self.padding],
            [1],
            self.groups,
        );
        let y = self.bn.forward_t(&y, train);
        match self.act {
            Activation::Identity => y,
            Activation::Relu => y.relu(),
            Activation::Relu6 => y.relu6(),
        }
    }
}

/// Dropout, then the quantizable linear classifier.
pub(super) struct Classifier {
    layer: usize,
    dropout: f64,
    weight: Tensor,
    bias: Tensor,
}

impl Classifier {
    fn new(b: &mut Builder, dropout: f64, linear: &Linear) -> Self {
        // torchvision's MobileNet classifier initialisation.
        let weight = b.normal_weight(&linear.name, &[linear.c_out, linear.c_in], 0.01);
        let bias = b
            .path(&linear.name)
            .var("bias", &[linear.c_out as i64], Init::Const(0.0));
        Self {
            layer: b.take_layer(),
            dropout,
            weight,
            bias,
        }
    }

    fn forward(&self, x: &Tensor, train: bool, q: &dyn LayerQuantizer) -> Tensor {
        let x = if self.dropout > 0.0 {
            x.dropout(self.dropout, train)
        } else {
            x.shallow_clone()
        };
        let x = q.input(self.layer, &x);
        x.linear(&q.weight(self.layer, &self.weight), Some(&self.bias))
    }
}

/// One block of the network, ready to run.
pub(super) enum Stage {
    /// Convs one after another.
    Chain(Vec<ConvBnLayer>),
    /// `main(x) + shortcut(x)` (the shortcut is `x` itself without a conv), then ReLU
    /// for ResNet blocks; MobileNet-V2's residual add has none.
    Residual {
        main: Vec<ConvBnLayer>,
        shortcut: Option<ConvBnLayer>,
        relu: bool,
    },
    MaxPool {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    GlobalAvgPool,
    Classifier(Classifier),
}

impl Stage {
    /// Builds the block's variables; quantizable layers are numbered in the execution
    /// order of [`Block::convs`] (a shortcut's conv after the main path's).
    pub(super) fn new(b: &mut Builder, block: &Block) -> Self {
        let mut layers: Vec<ConvBnLayer> = block
            .convs()
            .into_iter()
            .map(|unit| ConvBnLayer::new(b, unit))
            .collect();
        match block {
            Block::ConvBn(_) | Block::DepthwiseSeparable { .. } => Stage::Chain(layers),
            Block::InvertedResidual {
                residual: false, ..
            } => Stage::Chain(layers),
            Block::InvertedResidual { residual: true, .. } => Stage::Residual {
                main: layers,
                shortcut: None,
                relu: false,
            },
            Block::Basic { downsample, .. } | Block::Bottleneck { downsample, .. } => {
                let shortcut = downsample
                    .as_ref()
                    .map(|_| layers.pop().expect("the downsample conv comes last"));
                Stage::Residual {
                    main: layers,
                    shortcut,
                    relu: true,
                }
            }
            &Block::MaxPool {
                kernel,
                stride,
                padding,
            } => Stage::MaxPool {
                kernel: kernel as i64,
                stride: stride as i64,
                padding: padding as i64,
            },
            Block::GlobalAvgPool => Stage::GlobalAvgPool,
            Block::Classifier { dropout, linear } => {
                Stage::Classifier(Classifier::new(b, *dropout, linear))
            }
        }
    }

    pub(super) fn forward(&self, x: &Tensor, train: bool, q: &dyn LayerQuantizer) -> Tensor {
        let chain = |layers: &[ConvBnLayer]| {
            layers
                .iter()
                .fold(x.shallow_clone(), |y, l| l.forward(&y, train, q))
        };
        match self {
            Stage::Chain(layers) => chain(layers),
            Stage::Residual {
                main,
                shortcut,
                relu,
            } => {
                let y = chain(main);
                let y = match shortcut {
                    Some(conv) => y + conv.forward(x, train, q),
                    None => y + x,
                };
                if *relu {
                    y.relu()
                } else {
                    y
                }
            }
            Stage::MaxPool {
                kernel,
                stride,
                padding,
            } => x.max_pool2d([*kernel], [*stride], [*padding], [1], false),
            Stage::GlobalAvgPool => x.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
            Stage::Classifier(classifier) => classifier.forward(x, train, q),
        }
    }
}
