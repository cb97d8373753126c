//! The quantized model file as an ONNX graph (opset 13) that computes what haq-core's
//! `IntegerModel` computes in eval mode.
//!
//! - Input `input`, float `[batch, C, H, W]`: images normalised as for training
//!   (`(pixel / 255 - mean) / std`); output `logits`, float `[batch, classes]`. The batch
//!   dimension is symbolic.
//! - Linear-mode weights are int8 initializers holding the k-bit integers q
//!   (|q| <= 2^(k-1) - 1, or ±1 at 1 bit) with a DequantizeLinear (zero point 0, the layer's
//!   step as scale): exactly the f32 weights `IntegerModel` uses ([`crate::linear_levels`]).
//! - Linear-mode activations pass Clip → QuantizeLinear → DequantizeLinear before each
//!   quantized layer: unsigned inputs in uint8, signed ones in int8, zero point 0, scale
//!   clip / (2^k - 1) or clip / (2^(k-1) - 1). QuantizeLinear saturates to the container's
//!   range, not to the k-bit one, and no scale or zero point can make it saturate at both
//!   ends of a k-bit range inside 8 bits, so the Clip to the PACT range [0, a] or [-a, a]
//!   does: then round(x / scale) lands on the k-bit grid, rounding halves to even as
//!   `fake_quantize` does. (Unsigned inputs follow a ReLU, so an int8 zero point of
//!   127 - (2^k - 1) would saturate at the top alone; the Clip keeps every pair
//!   self-contained, with zero point 0, at the cost of one elementwise node.) Two cases have no QuantizeLinear form: signed 1-bit inputs
//!   (±a, sign(0) = +1: two levels and no zero) are Where(x >= 0, a, -a), and a clip of 0
//!   (everything quantized to 0) is a Mul by 0.
//! - k-means layers: the dequantized weights (codebook entries) as float initializers;
//!   their inputs stay float.
//! - Batch norms are BatchNormalization nodes on the running statistics (epsilon 1e-5, as
//!   the model's): folding them would turn the k-bit weights into float ones.
//! - Dropout is the identity, as in eval mode.

use std::collections::HashSet;

use safetensors::tensor::{Dtype, SafeTensors};

mod proto;

use haq_cost::arch::{self, Activation, Block, ConvBn};
use haq_cost::error::Result;

use crate::{layer_codes, linear_levels, not_quantized, read_header, LayerEntry};
use proto::{Attribute, DataType, Dim, Message};

/// The ONNX operator set the graph uses (QuantizeLinear and DequantizeLinear per tensor,
/// Clip with tensor bounds).
pub const OPSET: i64 = 13;

/// PyTorch's (and so the models') batch-norm epsilon.
const BN_EPSILON: f32 = 1e-5;

/// Converts the bytes of a quantized model file (see [`crate`]) into the bytes of an ONNX
/// model; see the module docs for the graph.
pub fn to_onnx(quantized: &[u8]) -> Result<Vec<u8>> {
    let header = read_header(quantized)?;
    let file = SafeTensors::deserialize(quantized)
        .map_err(|e| not_quantized(format!("unreadable safetensors: {e}")))?;
    let config = &header.arch;
    config.validate()?;
    header.policy.check(arch::layers(config).len())?;
    let mut graph = Graph {
        file,
        layers: &header.layers,
        next_layer: 0,
        nodes: Vec::new(),
        initializers: Vec::new(),
        constants: HashSet::new(),
    };
    let input = "input".to_string();
    let mut x = input.clone();
    for block in arch::blocks(config) {
        x = graph.block(&x, &block)?;
    }
    let size = config.input_size as i64;
    let batch = Dim::Named("batch");
    let inputs = [proto::value_info(
        &input,
        DataType::Float,
        &[
            batch,
            Dim::Fixed(config.in_channels as i64),
            Dim::Fixed(size),
            Dim::Fixed(size),
        ],
    )];
    let outputs = [proto::value_info(
        &x,
        DataType::Float,
        &[batch, Dim::Fixed(config.num_classes as i64)],
    )];
    let name = format!("haq {}", config.arch);
    let g = proto::graph(&name, &graph.nodes, &graph.initializers, &inputs, &outputs);
    Ok(proto::model(&g, OPSET, "haq", env!("CARGO_PKG_VERSION")))
}

/// The graph under construction, reading tensors from the quantized model's file. Every
/// value is named after the module that computes it.
struct Graph<'a> {
    file: SafeTensors<'a>,
    layers: &'a [LayerEntry],
    next_layer: usize,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    /// Names of the shared scalar initializers added so far.
    constants: HashSet<String>,
}

impl<'a> Graph<'a> {
    /// Adds a node computing `output` and returns its name.
    fn op(&mut self, op: &str, inputs: &[&str], output: String, attrs: &[Attribute]) -> String {
        self.nodes.push(proto::node(op, inputs, &[&output], attrs));
        output
    }

    fn initializer(&mut self, name: String, dims: &[i64], dtype: DataType, raw: &[u8]) -> String {
        self.initializers
            .push(proto::tensor(&name, dims, dtype, raw));
        name
    }

    fn scalar(&mut self, name: String, value: f32) -> String {
        self.initializer(name, &[], DataType::Float, &value.to_le_bytes())
    }

    /// A scalar shared by every node that uses it: `name` is its value's name.
    fn constant(&mut self, name: &str, value: f32) -> String {
        if self.constants.insert(name.to_string()) {
            self.scalar(name.to_string(), value);
        }
        name.to_string()
    }

    /// The raw bytes of tensor `name` of the file, which must have `dtype`, and its shape.
    fn stored(&self, name: &str, dtype: Dtype) -> Result<(Vec<i64>, &[u8])> {
        let view = self
            .file
            .tensor(name)
            .map_err(|_| not_quantized(format!("tensor `{name}` is missing")))?;
        if view.dtype() != dtype {
            return Err(not_quantized(format!(
                "tensor `{name}` is {:?}, not {dtype:?}",
                view.dtype()
            )));
        }
        let dims = view.shape().iter().map(|&d| d as i64).collect();
        Ok((dims, view.data()))
    }

    /// A float tensor of the file, as an initializer of the same name (pushed here, not by
    /// [`Graph::initializer`], as its bytes borrow the file).
    fn float(&mut self, name: String) -> Result<String> {
        let (dims, raw) = self.stored(&name, Dtype::F32)?;
        let tensor = proto::tensor(&name, &dims, DataType::Float, raw);
        self.initializers.push(tensor);
        Ok(name)
    }

    /// A scalar f32 of the file.
    fn stored_scalar(&self, name: &str) -> Result<f32> {
        let (_, raw) = self.stored(name, Dtype::F32)?;
        let bytes = raw
            .try_into()
            .map_err(|_| not_quantized(format!("tensor `{name}` is not one f32")))?;
        Ok(f32::from_le_bytes(bytes))
    }

    fn block(&mut self, x: &str, block: &Block) -> Result<String> {
        let mut convs = block.convs();
        Ok(match block {
            Block::ConvBn(_) | Block::DepthwiseSeparable { .. } => self.chain(x, &convs)?,
            Block::InvertedResidual { residual, .. } => {
                let y = self.chain(x, &convs)?;
                if *residual {
                    let name = format!("{}.residual", convs[convs.len() - 1].bn);
                    self.op("Add", &[&y, x], name, &[])
                } else {
                    y
                }
            }
            Block::Basic { downsample, .. } | Block::Bottleneck { downsample, .. } => {
                // The downsample conv, last in execution order, runs on the block's input.
                let (y, shortcut) = match downsample {
                    Some(_) => {
                        let downsample = convs.pop().expect("the downsample conv comes last");
                        let y = self.chain(x, &convs)?;
                        (y, self.conv_bn(x, downsample)?)
                    }
                    None => (self.chain(x, &convs)?, x.to_string()),
                };
                let name = format!("{}.residual", convs[convs.len() - 1].bn);
                let sum = self.op("Add", &[&y, &shortcut], name.clone(), &[]);
                self.op("Relu", &[&sum], format!("{name}.relu"), &[])
            }
            &Block::MaxPool {
                kernel,
                stride,
                padding,
            } => {
                let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
                let attrs = [
                    Attribute::Ints("kernel_shape", vec![k, k]),
                    Attribute::Ints("strides", vec![s, s]),
                    Attribute::Ints("pads", vec![p; 4]),
                ];
                self.op("MaxPool", &[x], "maxpool".into(), &attrs)
            }
            Block::GlobalAvgPool => {
                let pooled = self.op("GlobalAveragePool", &[x], "avgpool".into(), &[]);
                let attrs = [Attribute::Int("axis", 1)];
                self.op("Flatten", &[&pooled], "avgpool.flatten".into(), &attrs)
            }
            Block::Classifier { linear, .. } => {
                let layer = self.next_layer(&linear.name)?;
                let x = self.quantize_input(x, layer)?;
                let w = self.weight(layer, &[linear.c_out as i64, linear.c_in as i64])?;
                let b = self.float(format!("{}.bias", linear.name))?;
                let attrs = [Attribute::Int("transB", 1)];
                self.op("Gemm", &[&x, &w, &b], "logits".into(), &attrs)
            }
        })
    }

    fn chain(&mut self, x: &str, convs: &[&ConvBn]) -> Result<String> {
        convs
            .iter()
            .try_fold(x.to_string(), |y, unit| self.conv_bn(&y, unit))
    }

    /// The layer entry that the next quantizable layer, `name`, must have.
    fn next_layer(&mut self, name: &str) -> Result<&'a LayerEntry> {
        let entry = self.layers.get(self.next_layer).filter(|e| e.name == name);
        self.next_layer += 1;
        entry.ok_or_else(|| {
            not_quantized(format!(
                "its layer {} is not `{name}` of its architecture",
                self.next_layer - 1
            ))
        })
    }

    fn conv_bn(&mut self, x: &str, unit: &ConvBn) -> Result<String> {
        let c = &unit.conv;
        let layer = self.next_layer(&c.name)?;
        let x = self.quantize_input(x, layer)?;
        let dims = [c.c_out, c.c_in / c.groups, c.kernel, c.kernel].map(|d| d as i64);
        let w = self.weight(layer, &dims)?;
        let (k, s, p) = (c.kernel as i64, c.stride as i64, c.padding() as i64);
        let attrs = [
            Attribute::Ints("kernel_shape", vec![k, k]),
            Attribute::Ints("strides", vec![s, s]),
            Attribute::Ints("pads", vec![p; 4]),
            Attribute::Int("group", c.groups as i64),
        ];
        let y = self.op("Conv", &[&x, &w], c.name.clone(), &attrs);
        let bn = &unit.bn;
        let params = ["weight", "bias", "running_mean", "running_var"]
            .map(|p| self.float(format!("{bn}.{p}")))
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let inputs: Vec<&str> = [y.as_str()]
            .into_iter()
            .chain(params.iter().map(String::as_str))
            .collect();
        let attrs = [Attribute::Float("epsilon", BN_EPSILON)];
        let y = self.op("BatchNormalization", &inputs, bn.clone(), &attrs);
        Ok(match unit.act {
            Activation::Identity => y,
            Activation::Relu => self.op("Relu", &[&y], format!("{bn}.relu"), &[]),
            Activation::Relu6 => {
                let (zero, six) = (self.constant("zero", 0.0), self.constant("six", 6.0));
                self.op("Clip", &[&y, &zero, &six], format!("{bn}.relu6"), &[])
            }
        })
    }

    /// The weights of `layer` with shape `dims`: int8 levels and a DequantizeLinear in
    /// linear mode, the codebook entries in k-means mode.
    fn weight(&mut self, layer: &LayerEntry, dims: &[i64]) -> Result<String> {
        let n = dims.iter().product::<i64>() as usize;
        let name = &layer.name;
        let (_, packed) = self.stored(&format!("{name}.weight_codes"), Dtype::U8)?;
        let codes = layer_codes(packed, layer, n)?;
        if layer.a_bits.is_none() {
            let (_, codebook) = self.stored(&format!("{name}.weight_codebook"), Dtype::F32)?;
            let entry = |c: u8| codebook.get(usize::from(c) * 4..usize::from(c) * 4 + 4);
            let raw = codes
                .iter()
                .map(|&c| entry(c))
                .collect::<Option<Vec<&[u8]>>>()
                .ok_or_else(|| not_quantized(format!("a code of `{name}` beyond its codebook")))?
                .concat();
            return Ok(self.initializer(format!("{name}.weight"), dims, DataType::Float, &raw));
        }
        let scale = self.stored_scalar(&format!("{name}.weight_scale"))?;
        let (levels, step) = linear_levels(&codes, layer.w_bits, scale)?;
        let raw: Vec<u8> = levels.iter().map(|&q| q as u8).collect();
        let q = self.initializer(
            format!("{name}.weight_quantized"),
            dims,
            DataType::Int8,
            &raw,
        );
        let scale = self.scalar(format!("{name}.weight_scale"), step);
        let zero = self.initializer(
            format!("{name}.weight_zero_point"),
            &[],
            DataType::Int8,
            &[0],
        );
        Ok(self.op(
            "DequantizeLinear",
            &[&q, &scale, &zero],
            format!("{name}.weight"),
            &[],
        ))
    }

    /// `x` on the input grid of `layer` (see the module docs); unchanged in k-means mode.
    fn quantize_input(&mut self, x: &str, layer: &LayerEntry) -> Result<String> {
        let Some(bits) = layer.a_bits else {
            return Ok(x.to_string());
        };
        let name = format!("{}.input", layer.name);
        let clip = self.stored_scalar(&format!("{name}_clip"))?;
        // As fake_quantize: a clip this small quantizes everything to 0.
        if clip < f32::MIN_POSITIVE {
            let zero = self.constant("zero", 0.0);
            return Ok(self.op("Mul", &[x, &zero], format!("{name}.zero"), &[]));
        }
        let signed = layer.signed_input;
        if signed && bits == 1 {
            let zero = self.constant("zero", 0.0);
            let nonnegative = self.op("GreaterOrEqual", &[x, &zero], format!("{name}.sign"), &[]);
            let high = self.scalar(format!("{name}_clip"), clip);
            let low = self.scalar(format!("{name}_clip_negative"), -clip);
            return Ok(self.op("Where", &[&nonnegative, &high, &low], name, &[]));
        }
        let levels = if signed {
            (1u32 << (bits - 1)) - 1
        } else {
            (1u32 << bits) - 1
        };
        // fake_quantize's step: computed in f64, used in f32.
        let step = (f64::from(clip) / f64::from(levels)) as f32;
        let high = self.scalar(format!("{name}_clip"), clip);
        let low = if signed {
            self.scalar(format!("{name}_clip_negative"), -clip)
        } else {
            self.constant("zero", 0.0)
        };
        let clipped = self.op("Clip", &[x, &low, &high], format!("{name}.clipped"), &[]);
        let scale = self.scalar(format!("{name}_scale"), step);
        let container = if signed {
            DataType::Int8
        } else {
            DataType::Uint8
        };
        let zero_point = self.initializer(format!("{name}_zero_point"), &[], container, &[0]);
        let q = self.op(
            "QuantizeLinear",
            &[&clipped, &scale, &zero_point],
            format!("{name}.quantized"),
            &[],
        );
        Ok(self.op("DequantizeLinear", &[&q, &scale, &zero_point], name, &[]))
    }
}
