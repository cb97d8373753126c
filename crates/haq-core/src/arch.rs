//! Network architectures described without libtorch: the quantizable layers of a model,
//! in execution order, with the shapes the cost models need.

use serde::{Deserialize, Serialize};

/// What kind of operation a quantizable layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Conv,
    Depthwise,
    Linear,
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
