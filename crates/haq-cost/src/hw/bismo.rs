//! BISMO, the bit-serial matrix multiplication overlay (Umuroglu et al., FPL 2018), as
//! the HAQ paper uses it for its edge and cloud latency numbers.
//!
//! A w x a-bit matrix product costs w * a binary matrix products on an array of Dm x Dn
//! dot-product units, each Dk bits wide. A convolution is lowered by im2col (M = output
//! pixels, K = c_in * k^2, N = c_out) and runs image by image; a linear layer takes the
//! batch as M. Fetching operands and computing overlap, so a layer takes the longest of
//! the three: compute, activation fetch (one Dk-bit row per bit plane) and weight fetch.

use super::{CostModel, LayerCost, Unit};
use crate::arch::{LayerKind, LayerShape};

/// A BISMO instance: array geometry, clock and memory bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub struct Bismo {
    pub name: String,
    /// Rows of the dot-product array (the M dimension).
    pub dm: usize,
    /// Columns of the dot-product array (the N dimension).
    pub dn: usize,
    /// Width in bits of each binary dot-product unit (the K dimension).
    pub dk: usize,
    pub batch: usize,
    pub clock_hz: f64,
    /// Bits fetched from DRAM per cycle.
    pub fetch_bits: f64,
}

impl Bismo {
    /// Xilinx Zynq-7020 (PYNQ-Z1): an 8 x 8 x 256 array, batch 1. The clock and the
    /// effective DRAM bandwidth are calibrated against the HAQ paper's Table 3
    /// (docs/hardware.md): 150 MHz and 50 bits/cycle (0.94 GB/s, a fifth of the four
    /// 64-bit AXI ports' peak).
    pub fn edge() -> Self {
        Bismo {
            name: "bismo-edge".into(),
            dm: 8,
            dn: 8,
            dk: 256,
            batch: 1,
            clock_hz: 150e6,
            fetch_bits: 50.0,
        }
    }

    /// Xilinx VU9P: a 16 x 16 x 256 array, batch 16, 200 MHz, one Dk-bit row fetched per
    /// cycle. No constant is calibrated: the HAQ authors' released cloud table
    /// (github.com/mit-han-lab/haq, `lib/simulator/lookup_tables/`) fetches exactly one
    /// 256-bit row per cycle (its depthwise layers cost batch * pixels * ceil(C/Dm) cycles
    /// per activation bit); at 200 MHz its layers between the first conv and the classifier
    /// sum to the paper's Table 3 cloud row (docs/hardware.md).
    pub fn cloud() -> Self {
        Bismo {
            name: "bismo-cloud".into(),
            dm: 16,
            dn: 16,
            dk: 256,
            batch: 16,
            clock_hz: 200e6,
            fetch_bits: 256.0,
        }
    }

    /// Cycles of an (m x k) by (k x n) product at w x a bits, its operands fetched once.
    fn matmul(&self, m: usize, k: usize, n: usize, w: f64, a: f64) -> f64 {
        let rows = k.div_ceil(self.dk) as f64;
        let compute = (m.div_ceil(self.dm) * n.div_ceil(self.dn)) as f64 * rows * w * a;
        // One Dk-bit row per cycle at full bandwidth; slower when the DRAM gives less.
        let row_cycles = self.dk as f64 / self.fetch_bits;
        let activations = row_cycles * m as f64 * rows * a;
        let weights = row_cycles * rows * n as f64 * w;
        compute.max(activations).max(weights)
    }
}

impl CostModel for Bismo {
    fn name(&self) -> &str {
        &self.name
    }

    fn default_batch(&self) -> usize {
        self.batch
    }

    fn units(&self) -> &'static [Unit] {
        &[Unit::Ms, Unit::Cycles]
    }

    fn cost(&self, l: &LayerShape, w_bits: u8, a_bits: u8, batch: usize) -> LayerCost {
        let (w, a) = (f64::from(w_bits), f64::from(a_bits));
        let pixels = l.out_h * l.out_w;
        let taps = l.kernel * l.kernel;
        let cycles = match l.kind {
            LayerKind::Linear => self.matmul(batch, l.c_in, l.c_out, w, a),
            // Weights are fetched again for every image.
            LayerKind::Conv => batch as f64 * self.matmul(pixels, l.c_in * taps, l.c_out, w, a),
            // Depthwise: Dm channels at a time as a block-diagonal product (K = Dm * k^2,
            // N = Dm). Every fetched row feeds only a few useful bits, so the layer is
            // bound by the activation fetch: it grows with a_bits, hardly with w_bits.
            LayerKind::Depthwise => {
                let groups = l.c_out.div_ceil(self.dm) as f64;
                batch as f64 * groups * self.matmul(pixels, self.dm * taps, self.dm, w, a)
            }
        };
        LayerCost {
            cycles,
            latency_s: cycles / self.clock_hz,
            ..LayerCost::default()
        }
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "array",
                format!("{} x {} x {} bits", self.dm, self.dn, self.dk),
            ),
            ("clock", format!("{} MHz", self.clock_hz / 1e6)),
            ("dram", format!("{} bits/cycle", self.fetch_bits)),
        ]
    }
}
