//! BitFusion, the bit-flexible accelerator (Sharma et al., ISCA 2018), in the
//! configuration matched to Eyeriss that the HAQ paper uses.
//!
//! This follows the authors' simulator (github.com/hsharma35/bitfusion,
//! `src/optimizer/optimizer.py`, `get_stats_fast` and `_optimize_for_order`): for every
//! layer it searches the tilings of batch, output width and height, input and output
//! channels (powers of two; the kernel is never tiled) and every order of the five tile
//! loops, counts DRAM traffic by hoisting each tile past the loops that do not index it
//! while it fits half its (double-buffered) buffer, picks the cheapest on-chip dataflow,
//! and keeps the fewest cycles (ties: least energy).
//!
//! Depthwise convolutions, which the simulator does not model, follow a rule of our own
//! (see [`BitFusion::cost`] and docs/hardware.md).

use super::{CostModel, LayerCost, Unit};
use crate::arch::{LayerKind, LayerShape};

/// Precision of the partial sums in the output buffer.
const OUT_BITS: u64 = 32;

/// The five tile loops, indexed as in `Loop::ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    Batch,
    OutWidth,
    OutHeight,
    InChannels,
    OutChannels,
}

impl Loop {
    const ALL: [Loop; 5] = [
        Loop::Batch,
        Loop::OutWidth,
        Loop::OutHeight,
        Loop::InChannels,
        Loop::OutChannels,
    ];

    /// Whether the loop indexes the activations, weights or outputs.
    fn indexes(self, data: Data, mapping: Mapping) -> bool {
        match data {
            // A depthwise output channel reads its own input channel.
            Data::Act => self != Loop::OutChannels || mapping == Mapping::Diagonal,
            Data::Wgt => matches!(self, Loop::InChannels | Loop::OutChannels),
            Data::Out => self != Loop::InChannels,
        }
    }
}

/// The three tensors a layer moves between DRAM and the on-chip buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Act,
    Wgt,
    Out,
}

/// How a layer's loops map onto the array. Each Fusion Unit row broadcasts its inputs to
/// every column; each column sums its rows' products into one output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapping {
    /// The simulator's default: input channels across the rows (`rows * fusion` lanes),
    /// output channels across the columns, kernel taps one after another.
    ChannelWise,
    /// The simulator's mapping of the image input: kernel taps and input channels share
    /// the lanes.
    Im2col,
    /// Ours, for depthwise convolutions: an output channel sums only its own input
    /// channel, so only the diagonal units (row i feeding column i) do useful work;
    /// `min(rows, cols)` channels run in parallel, each unit taking `fusion` kernel taps
    /// per cycle. Modelled as one input channel per output channel.
    Diagonal,
}

/// Energy per event, in picojoules: the values the BitFusion simulator derives from its
/// synthesis results and CACTI (45 nm) for this configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyCosts {
    /// The whole array, per cycle that computes (stall cycles cost nothing).
    pub core_per_cycle: f64,
    pub wbuf_read: f64,
    pub wbuf_write: f64,
    pub ibuf_read: f64,
    pub ibuf_write: f64,
    pub obuf_read: f64,
    pub obuf_write: f64,
    pub dram: f64,
}

/// A BitFusion instance.
#[derive(Debug, Clone, PartialEq)]
pub struct BitFusion {
    /// Fusion-unit rows: input lanes, `fusion(a, w)`-fold at low precision.
    pub rows: usize,
    /// Fusion-unit columns: output channels in parallel.
    pub cols: usize,
    pub clock_hz: f64,
    pub wbuf_bytes: usize,
    pub ibuf_bytes: usize,
    pub obuf_bytes: usize,
    pub dram_bits_per_cycle: usize,
    pub batch: usize,
    pub energy: EnergyCosts,
    /// Load every output tile from DRAM before its first partial sum, as the simulator
    /// does (used to check our port against it); otherwise outputs are loaded only to
    /// continue a sum an earlier input-channel tile began.
    pub load_empty_outputs: bool,
}

/// One layer as the simulator sees it: a square-kernel convolution over a batch.
#[derive(Debug, Clone, Copy)]
struct Problem {
    kernel: usize,
    stride: usize,
    out_w: usize,
    out_h: usize,
    /// Input channels each output channel sums over (1 for depthwise).
    in_channels: usize,
    out_channels: usize,
    batch: usize,
    a_bits: u64,
    w_bits: u64,
    mapping: Mapping,
}

/// Bits moved and cycles spent by one layer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stats {
    cycles: u64,
    stalls: u64,
    reads: Traffic,
    writes: Traffic,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Traffic {
    act: u64,
    wgt: u64,
    out: u64,
    dram: u64,
}

impl BitFusion {
    /// 16 x 32 Fusion Units at 500 MHz, 64 KB weight, 32 KB input and 16 KB output
    /// buffers, 192 DRAM bits per cycle: the simulator's `bf_e_conf.ini`. Energy per event
    /// from the simulator's synthesis and CACTI tables. The batch size is calibrated
    /// against the HAQ paper's Table 4 (docs/hardware.md).
    pub fn eyeriss_matched() -> Self {
        BitFusion {
            rows: 16,
            cols: 32,
            clock_hz: 500e6,
            wbuf_bytes: 64 * 1024,
            ibuf_bytes: 32 * 1024,
            obuf_bytes: 16 * 1024,
            dram_bits_per_cycle: 192,
            batch: 4,
            load_empty_outputs: false,
            energy: EnergyCosts {
                core_per_cycle: 235.104,
                wbuf_read: 0.021,
                wbuf_write: 0.029,
                ibuf_read: 0.059,
                ibuf_write: 0.114,
                obuf_read: 0.033,
                obuf_write: 0.073,
                dram: 15.0,
            },
        }
    }

    /// Multiply-accumulates per Fusion Unit per cycle: a unit of 16 2-bit BitBricks
    /// fuses to one 8x8 product, two 4x8, four 4x4, ... (1 bit counts as 2, 3 as 4).
    fn fusion(a_bits: u64, w_bits: u64) -> usize {
        let lanes = |b: u64| (8 / b.max(2)).max(1) as usize;
        lanes(a_bits) * lanes(w_bits)
    }

    /// Half of a buffer, in bits: double buffering leaves half for the current tile.
    fn capacity(&self, data: Data) -> u64 {
        let bytes = match data {
            Data::Act => self.ibuf_bytes,
            Data::Wgt => self.wbuf_bytes,
            Data::Out => self.obuf_bytes,
        };
        bytes as u64 * 4
    }

    fn energy_pj(&self, s: &Stats) -> f64 {
        let e = &self.energy;
        (s.cycles - s.stalls) as f64 * e.core_per_cycle
            + s.reads.wgt as f64 * e.wbuf_read
            + s.writes.wgt as f64 * e.wbuf_write
            + s.reads.act as f64 * e.ibuf_read
            + s.writes.act as f64 * e.ibuf_write
            + s.reads.out as f64 * e.obuf_read
            + s.writes.out as f64 * e.obuf_write
            + (s.reads.dram + s.writes.dram) as f64 * e.dram
    }

    /// The best (fewest cycles, then least energy) tiling and loop order of a layer.
    fn simulate(&self, p: &Problem) -> (Stats, f64) {
        let bw = self.dram_bits_per_cycle as u64;
        // Tilings that fit, cheapest bound first. No loop order avoids loading the first
        // tiles and storing the last, nor moving every tile at least once.
        let mut candidates: Vec<(u64, Tiling, TileTraffic)> = self
            .tilings(p)
            .into_iter()
            .filter_map(|t| {
                let tile = self.tile_traffic(p, &t)?;
                let [act, wgt, out] = tile.tile;
                let edges = t.compute + (act + wgt).div_ceil(bw) + out.div_ceil(bw);
                let streamed: u64 = [Data::Act, Data::Wgt, Data::Out]
                    .into_iter()
                    .zip(tile.tile)
                    .map(|(d, size)| {
                        Loop::ALL
                            .into_iter()
                            .filter(|l| l.indexes(d, p.mapping))
                            .fold(size, |acc, l| acc * t.counts[l as usize] as u64)
                    })
                    .sum();
                Some((edges.max(streamed.div_ceil(bw)), t, tile))
            })
            .collect();
        candidates.sort_by_key(|c| c.0);
        let mut best: Option<(Stats, f64)> = None;
        for (bound, tiling, tile) in &candidates {
            if best.as_ref().is_some_and(|(b, _)| *bound > b.cycles) {
                break;
            }
            for_each_order(&tiling.counts, |order| {
                let stats = self.with_order(p, tiling, tile, order);
                let energy = self.energy_pj(&stats);
                if best
                    .as_ref()
                    .is_none_or(|(b, e)| (stats.cycles, energy) < (b.cycles, *e))
                {
                    best = Some((stats, energy));
                }
            });
        }
        best.expect("the 1 x 1 x 1 x 1 x 1 tiling always fits the buffers")
    }

    /// Output channels computed in parallel.
    fn parallel_outputs(&self, p: &Problem) -> usize {
        match p.mapping {
            Mapping::ChannelWise | Mapping::Im2col => self.cols,
            Mapping::Diagonal => self.rows.min(self.cols),
        }
    }

    /// Reduction terms (kernel taps x input channels) one output consumes per cycle.
    fn step_width(&self, p: &Problem) -> usize {
        let fusion = Self::fusion(p.a_bits, p.w_bits);
        match p.mapping {
            Mapping::ChannelWise | Mapping::Im2col => self.rows * fusion,
            Mapping::Diagonal => fusion,
        }
    }

    /// Cycles per output pixel and group of parallel outputs, for `ic` input channels.
    fn steps(&self, p: &Problem, ic: usize) -> usize {
        let (taps, width) = (p.kernel * p.kernel, self.step_width(p));
        match p.mapping {
            Mapping::ChannelWise => taps * ic.div_ceil(width),
            Mapping::Im2col => (taps * ic).div_ceil(width),
            Mapping::Diagonal => taps.div_ceil(width),
        }
    }

    /// Every tiling of the five loops in powers of two (output channels in multiples of
    /// the parallel outputs, except under im2col), with its compute cycles.
    fn tilings(&self, p: &Problem) -> Vec<Tiling> {
        let powers = |n: usize, unit: usize| -> Vec<usize> {
            let steps = n.div_ceil(unit).next_power_of_two().trailing_zeros();
            (0..=steps).map(|i| ((1 << i) * unit).min(n)).collect()
        };
        let par = self.parallel_outputs(p);
        let oc_unit = if p.mapping == Mapping::Im2col { 1 } else { par };
        let totals = [p.batch, p.out_w, p.out_h, p.in_channels, p.out_channels];
        let mut out = Vec::new();
        for &b in &powers(p.batch, 1) {
            // The simulator tiles width and height with one square tile size.
            for &o in &powers(p.out_w.max(p.out_h), 1) {
                let (ow, oh) = (o.min(p.out_w), o.min(p.out_h));
                for &ic in &powers(p.in_channels, 1) {
                    for &oc in &powers(p.out_channels, oc_unit) {
                        let sizes = [b, ow, oh, ic, oc];
                        let counts: [usize; 5] =
                            std::array::from_fn(|i| totals[i].div_ceil(sizes[i]));
                        let per_tile = b * ow * oh * oc.div_ceil(par) * self.steps(p, ic);
                        let tiles: usize = counts.iter().product();
                        out.push(Tiling {
                            sizes,
                            counts,
                            compute: (tiles * per_tile) as u64,
                        });
                    }
                }
            }
        }
        out
    }

    /// One tile's buffer footprints and the on-chip traffic of the whole layer; `None`
    /// when a tile overflows its buffer.
    fn tile_traffic(&self, p: &Problem, t: &Tiling) -> Option<TileTraffic> {
        let [b, ow, oh, ic, oc] = t.sizes.map(|s| s as u64);
        let k = p.kernel as u64;
        let (a, w) = (p.a_bits, p.w_bits);
        let par = self.parallel_outputs(p) as u64;
        let padded_oc = oc.div_ceil(par) * par;
        let width = self.step_width(p) as u64;
        let reduction = self.steps(p, ic as usize) as u64 * width;
        let (s, taps) = (p.stride as u64, k * k);
        let window = (k + (ow - 1) * s) * (k + (oh - 1) * s);
        // The simulator pads a weight tile's k^2 * ic to the lanes whatever the mapping.
        let wgt = (taps * ic).div_ceil(width) * width * oc * w;
        let act = match p.mapping {
            Mapping::ChannelWise => window * ic * b * a,
            Mapping::Im2col => ow * oh * taps * ic * b * a,
            Mapping::Diagonal => window * oc * b * a,
        };
        let out = ow * oh * padded_oc * b * OUT_BITS;
        let tile = [act, wgt, out];
        let data = [Data::Act, Data::Wgt, Data::Out];
        if (0..3).any(|i| tile[i] > self.capacity(data[i])) {
            return None;
        }

        // On-chip reads for the dataflow (input, output or weight stationary) that moves
        // the fewest bits through the array; every output read is written back.
        let pixels = b * oh * ow;
        let input_stationary = reduction * pixels * (a + padded_oc * (w + OUT_BITS));
        let output_stationary = padded_oc * pixels * (OUT_BITS + reduction * (a + w));
        let weight_stationary = reduction * padded_oc * (w + pixels * (a + OUT_BITS));
        let least = input_stationary
            .min(output_stationary)
            .min(weight_stationary);
        let macs = taps * ic * oc * pixels;
        let (act_reads, wgt_reads, out_reads) = if input_stationary == least {
            (macs / oc * a, macs * w, macs * OUT_BITS)
        } else if output_stationary == least {
            (macs * a, macs * w, oc * pixels * OUT_BITS)
        } else {
            (macs * a, taps * ic * oc * w, macs * OUT_BITS)
        };
        let tiles = t.counts.iter().product::<usize>() as u64;
        Some(TileTraffic {
            tile,
            onchip: [act_reads * tiles, wgt_reads * tiles, out_reads * tiles],
        })
    }

    /// DRAM traffic and cycles for one loop order (outermost first).
    fn with_order(&self, p: &Problem, t: &Tiling, tile: &TileTraffic, order: &[Loop]) -> Stats {
        let data = [Data::Act, Data::Wgt, Data::Out];
        // Bits loaded into each buffer over the layer, and the largest block that stays
        // resident (loaded before compute starts).
        let mut loaded = tile.tile;
        let mut resident = tile.tile;
        let mut hoisting = [true; 3];
        // How often each output leaves the chip: once per input-channel tile when that
        // loop runs outside the outputs' residency.
        let mut visits = 1;
        for &l in order.iter().rev() {
            let n = t.counts[l as usize] as u64;
            if l == Loop::InChannels && !hoisting[2] {
                visits = n;
            }
            for i in 0..3 {
                if !hoisting[i] {
                    loaded[i] *= n;
                } else if l.indexes(data[i], p.mapping) {
                    loaded[i] *= n;
                    if loaded[i] > self.capacity(data[i]) {
                        hoisting[i] = false;
                    } else {
                        resident[i] = loaded[i];
                    }
                }
            }
        }
        let [act, wgt, out_stores] = loaded;
        // Partial sums come back once per store but the last; the simulator also loads
        // every output tile before its first partial sum, when it holds nothing.
        let (out_loads, resident_out) = if self.load_empty_outputs {
            (out_stores, resident[2])
        } else {
            (out_stores / visits * (visits - 1), 0)
        };
        let [act_onchip, wgt_onchip, out_onchip] = tile.onchip;
        let reads = Traffic {
            act: act_onchip,
            wgt: wgt_onchip,
            out: out_stores + out_onchip,
            dram: act + wgt + out_loads,
        };
        let writes = Traffic {
            act,
            wgt,
            out: out_loads + out_onchip,
            dram: out_stores,
        };
        let bw = self.dram_bits_per_cycle as u64;
        let first_loads = resident[0] + resident[1] + resident_out;
        let last_stores = resident[2];
        let latency = first_loads.div_ceil(bw) + last_stores.div_ceil(bw);
        let overlapped = (reads.dram + writes.dram - first_loads - last_stores).div_ceil(bw);
        let stalls = overlapped.saturating_sub(t.compute) + latency;
        Stats {
            cycles: t.compute + stalls,
            stalls,
            reads,
            writes,
        }
    }
}

/// Tile sizes and counts per loop (in `Loop::ALL` order) and the compute cycles.
struct Tiling {
    sizes: [usize; 5],
    counts: [usize; 5],
    compute: u64,
}

/// Per tensor (act, wgt, out): one tile's footprint, and the bits the array reads from
/// its buffer over the whole layer.
struct TileTraffic {
    tile: [u64; 3],
    onchip: [u64; 3],
}

/// Calls `f` with every order (outermost first) of the loops that run more than once;
/// a loop of one iteration changes nothing wherever it sits.
fn for_each_order(counts: &[usize; 5], mut f: impl FnMut(&[Loop])) {
    let mut loops = Loop::ALL;
    let mut n = 0;
    for l in Loop::ALL {
        if counts[l as usize] > 1 {
            loops[n] = l;
            n += 1;
        }
    }
    permute(&mut loops[..n], 0, &mut f);
}

fn permute(items: &mut [Loop], k: usize, f: &mut impl FnMut(&[Loop])) {
    if k == items.len() {
        f(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permute(items, k + 1, f);
        items.swap(k, i);
    }
}

impl CostModel for BitFusion {
    fn name(&self) -> &str {
        "bitfusion"
    }

    fn default_batch(&self) -> usize {
        self.batch
    }

    fn units(&self) -> &'static [Unit] {
        &[Unit::Ms, Unit::Mj, Unit::Cycles]
    }

    fn cost(&self, l: &LayerShape, w_bits: u8, a_bits: u8, batch: usize) -> LayerCost {
        let mapping = match l.kind {
            LayerKind::Depthwise => Mapping::Diagonal,
            // The simulator lowers the image input by im2col; so do we for any layer with
            // too few input channels to fill the rows.
            LayerKind::Conv if l.c_in < self.rows => Mapping::Im2col,
            LayerKind::Conv | LayerKind::Linear => Mapping::ChannelWise,
        };
        let problem = Problem {
            kernel: l.kernel,
            stride: l.stride,
            out_w: l.out_w,
            out_h: l.out_h,
            in_channels: l.c_in / l.groups,
            out_channels: l.c_out,
            batch,
            a_bits: u64::from(a_bits),
            w_bits: u64::from(w_bits),
            mapping,
        };
        let (stats, energy_pj) = self.simulate(&problem);
        let cycles = stats.cycles as f64;
        LayerCost {
            cycles,
            latency_s: cycles / self.clock_hz,
            energy_j: energy_pj * 1e-12,
            ..LayerCost::default()
        }
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let e = &self.energy;
        vec![
            (
                "array",
                format!("{} x {} Fusion Units", self.rows, self.cols),
            ),
            ("clock", format!("{} MHz", self.clock_hz / 1e6)),
            (
                "buffers",
                format!(
                    "WBUF {} KB, IBUF {} KB, OBUF {} KB, double-buffered",
                    self.wbuf_bytes / 1024,
                    self.ibuf_bytes / 1024,
                    self.obuf_bytes / 1024
                ),
            ),
            ("dram", format!("{} bits/cycle", self.dram_bits_per_cycle)),
            (
                "energy (pJ)",
                format!(
                    "core {}/cycle; WBUF r/w {}/{}, IBUF {}/{}, OBUF {}/{}, DRAM {} per bit",
                    e.core_per_cycle,
                    e.wbuf_read,
                    e.wbuf_write,
                    e.ibuf_read,
                    e.ibuf_write,
                    e.obuf_read,
                    e.obuf_write,
                    e.dram
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our port against the simulator's own numbers for its reference layer (AlexNet's
    /// second conv, batch 16, 4-bit operands), in the simulator's mode: every count exact.
    #[test]
    fn reproduces_the_simulator_on_its_reference_layer() {
        let simulator = BitFusion {
            load_empty_outputs: true,
            ..BitFusion::eyeriss_matched()
        };
        let p = Problem {
            kernel: 5,
            stride: 1,
            out_w: 27,
            out_h: 27,
            in_channels: 48,
            out_channels: 128,
            batch: 16,
            a_bits: 4,
            w_bits: 4,
            mapping: Mapping::ChannelWise,
        };
        let (s, _) = simulator.simulate(&p);
        assert_eq!(s.cycles, 1_255_369);
        assert_eq!(s.stalls, 969);
        assert_eq!(s.reads.wgt, 7_707_033_600);
        assert_eq!(s.reads.dram, 138_706_944);

        // Without loading empty output tiles only the partial-sum loads go.
        let (ours, _) = BitFusion::eyeriss_matched().simulate(&p);
        assert_eq!(ours.reads.wgt, s.reads.wgt);
        assert_eq!(ours.reads.dram, s.reads.dram - s.writes.dram);
        assert!(ours.cycles <= s.cycles);
    }
}
