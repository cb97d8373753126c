//! Model size: the bytes needed to store a layer's parameters.

use super::{CostModel, LayerCost, Unit};
use crate::arch::{LayerKind, LayerShape};

/// Bytes of a layer at `w_bits` per weight. The HAQ paper's Table 6 counts every parameter
/// of the network: its fp32 sizes (MobileNet-V1 16.14 MB, V2 13.37 MB, ResNet-50 97.49 MB,
/// MB = MiB) are the torchvision parameter counts times 4 bytes. So besides the quantized
/// weights each layer carries its float parameters at 32 bits: the following batch norm's
/// scale and shift (2 per output channel) for a conv, the bias for a linear layer. A k-means
/// quantized layer (at most 8 bits) also stores its codebook of 2^b fp32 centroids.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelSize;

impl CostModel for ModelSize {
    fn name(&self) -> &str {
        "size"
    }

    fn default_batch(&self) -> usize {
        1
    }

    fn units(&self) -> &'static [Unit] {
        &[Unit::Bytes]
    }

    /// The batch and activation bits do not change a model's size.
    fn cost(&self, layer: &LayerShape, w_bits: u8, _a_bits: u8, _batch: usize) -> LayerCost {
        let float_params = match layer.kind {
            LayerKind::Linear => layer.c_out,
            LayerKind::Conv | LayerKind::Depthwise => 2 * layer.c_out,
        };
        let codebook = if w_bits <= 8 { 1usize << w_bits } else { 0 };
        let bits = layer.params * usize::from(w_bits) + 32 * (float_params + codebook);
        LayerCost {
            bytes: bits as f64 / 8.0,
            ..LayerCost::default()
        }
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("weights", "w_bits each".into()),
            ("batch norm, bias", "32 bits each".into()),
            (
                "codebook",
                "2^w_bits x 32 bits per layer (w_bits <= 8)".into(),
            ),
        ]
    }
}
