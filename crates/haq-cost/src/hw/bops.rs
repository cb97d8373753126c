//! Bit operations: a hardware-agnostic proxy for what a layer costs.

use super::{CostModel, LayerCost, Unit};
use crate::arch::LayerShape;

/// BOPs of a layer: multiply-accumulates x w_bits x a_bits, the proxy HAWQ-V3 (Yao et al.,
/// ICML 2021) constrains and NNCF's mixed-precision search can rank by. The HAQ paper argues
/// that direct feedback from a hardware model beats such proxies (its Section 1 and
/// Figure 1); this model lets a workflow search under a BOPs budget and measure the result
/// on BISMO or BitFusion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bops;

impl CostModel for Bops {
    fn name(&self) -> &str {
        "bops"
    }

    fn default_batch(&self) -> usize {
        1
    }

    fn units(&self) -> &'static [Unit] {
        &[Unit::Bops]
    }

    fn cost(&self, layer: &LayerShape, w_bits: u8, a_bits: u8, batch: usize) -> LayerCost {
        let macs = (layer.macs() * batch) as f64;
        LayerCost {
            bops: macs * f64::from(w_bits) * f64::from(a_bits),
            ..LayerCost::default()
        }
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        vec![("cost", "MACs x w_bits x a_bits per image".into())]
    }
}
