//! Choosing clip values: the range `[-c, c]` (or `[0, a]`) a quantizer maps onto its levels.
//!
//! As HAQ calibrates (docs/search.md, "Clips"): below 5 bits the clip minimises the KL
//! divergence between the original and the quantized distribution; at 5 bits and above
//! it is max |x|.

use serde::{Deserialize, Serialize};

use super::policy::{MAX_BITS, MIN_BITS};

/// Histogram resolution of the KL search: TensorRT's 2048 bins for large samples; a
/// smaller sample gets one bin per 16 values, but at least 16 bins per level. A sparse
/// histogram (mostly counts of 0 and 1) looks the same after any quantization, and the
/// search then settles on max |x|: on 1000 Gaussian weights at 2-4 bits (10 seeds), 2048
/// bins gave clips of 0.87-0.97 max |x| and MSE 0.86-0.94 of max-clipping's, these rules
/// 0.61-0.83 and 0.50-0.72.
const MAX_BINS: usize = 2048;
const VALUES_PER_BIN: usize = 16;
const BINS_PER_LEVEL: usize = 16;

/// Bit widths below this use the KL clip, at and above it max |x|.
const KL_BELOW_BITS: u8 = 5;

/// The clip for quantizing `values` to `bits` bits: symmetric (`signed`, weights and
/// signed activations) or unsigned `[0, a]` (activations after ReLU); `bits` in 1..=8.
pub fn choose_clip(values: &[f32], bits: u8, signed: bool) -> f64 {
    if signed && bits == 1 {
        // c * sign(x) has a single magnitude, which KL cannot place (every candidate's Q is
        // flat); mean |x| minimises the squared error (XNOR-Net, Rastegari et al., 2016).
        mean_abs(values)
    } else if bits < KL_BELOW_BITS {
        // The levels of |x| the quantizer can output: 0..=2^(b-1)-1 steps when signed,
        // 0..=2^b-1 steps when unsigned.
        let levels = if signed {
            1usize << (bits - 1)
        } else {
            1usize << bits
        };
        kl_clip(values, levels)
    } else {
        max_abs(values)
    }
}

/// The largest |x| (non-finite values ignored); 0 for an empty slice.
pub fn max_abs(values: &[f32]) -> f64 {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs() as f64))
}

/// The mean |x| (non-finite values ignored); 0 for an empty slice.
pub fn mean_abs(values: &[f32]) -> f64 {
    let (sum, n) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0usize), |(s, n), v| (s + v.abs() as f64, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The threshold T minimising KL(P || Q) when |x| is quantized to `levels` magnitudes on
/// `[0, T]` (`levels`, 2..=16, counts zero).
///
/// Procedure (TensorRT's INT8 calibration, Migacz, GTC 2017, with the levels placed where
/// our quantizer puts them):
/// 1. Histogram the non-zero |x| into N bins (2048, fewer for small samples: see
///    [`MAX_BINS`]) of width `w = max|x| / N`.
/// 2. For every candidate `i` from `levels` to N (T = i * w, the top edge of bin i-1;
///    fewer bins than levels would compare distributions too coarse to tell apart) whose
///    bin i-1 is not empty: the reference P is bins 0..i with all mass beyond T added to
///    bin i-1 (the values clipping moves onto T).
/// 3. The candidate Q quantizes bins 0..i *without* that outlier mass: each bin goes to the
///    level its centre rounds to (step `s = T / (levels - 1)`, so level 0 covers `[0, s/2)`
///    and the top level ends at T), and each level's mass is spread evenly over its
///    non-empty bins (empty bins stay empty).
/// 4. KL(P || Q) over P's support (finite: P > 0 only where bins are non-empty, and there
///    Q > 0 too). The smallest KL wins; ties keep the larger T, which clips less. A
///    candidate with a single non-empty bin below T is no candidate: its P and Q are the
///    same point mass (KL 0) however much it clips.
pub fn kl_clip(values: &[f32], levels: usize) -> f64 {
    assert!(
        (2..=16).contains(&levels),
        "kl_clip: {levels} levels not in 2..=16"
    );
    let max = max_abs(values);
    if max == 0.0 {
        return 0.0;
    }
    let nonzero = || values.iter().filter(|v| v.is_finite() && **v != 0.0);
    let bins = (nonzero().count() / VALUES_PER_BIN).clamp(BINS_PER_LEVEL * levels, MAX_BINS);
    let width = max / bins as f64;
    let mut hist = vec![0.0f64; bins];
    // Exact zeros (half of any post-ReLU sample) are left out: every threshold keeps them
    // exact, and their spike in bin 0, spread over level 0 by step 3, would drag the choice
    // towards small thresholds.
    for v in nonzero() {
        let bin = ((v.abs() as f64 / width) as usize).min(bins - 1);
        hist[bin] += 1.0;
    }

    let prefix = Prefix::new(&hist);
    let mut best = (f64::INFINITY, bins);
    for i in (levels..=bins).rev() {
        if hist[i - 1] > 0.0 && prefix.nonempty[i] >= 2 {
            let kl = prefix.divergence(i, levels);
            if kl < best.0 {
                best = (kl, i);
            }
        }
    }
    best.1 as f64 * width
}

/// Prefix sums over the histogram, so that a candidate's KL costs O(levels), not O(bins):
/// entry k sums bins 0..k.
struct Prefix {
    mass: Vec<f64>,
    /// Sum of h ln h.
    mass_ln: Vec<f64>,
    nonempty: Vec<usize>,
}

impl Prefix {
    fn new(hist: &[f64]) -> Prefix {
        let mut p = Prefix {
            mass: vec![0.0],
            mass_ln: vec![0.0],
            nonempty: vec![0],
        };
        for (j, &h) in hist.iter().enumerate() {
            let h_ln_h = if h > 0.0 { h * h.ln() } else { 0.0 };
            p.mass.push(p.mass[j] + h);
            p.mass_ln.push(p.mass_ln[j] + h_ln_h);
            p.nonempty.push(p.nonempty[j] + usize::from(h > 0.0));
        }
        p
    }

    /// KL(P || Q) for the candidate T at the top of bin n-1 (steps 2-4 of [`kl_clip`]).
    ///
    /// With H the mass of bins 0..n, B the mass beyond, pt = H + B: P_j = h_j / pt except
    /// P_{n-1} = (h_{n-1} + B) / pt; Q_j = m_l / (c_l H) on the c_l non-empty bins of level l
    /// (mass m_l). So KL = sum_{j<n-1} (h_j/pt) ln(h_j/pt) - sum_l (m'_l/pt) ln q_l
    /// + P_{n-1} ln(P_{n-1}/q_top), where m'_l leaves out bin n-1 (in the top level).
    fn divergence(&self, n: usize, levels: usize) -> f64 {
        let total = self.mass[n];
        let p_total = self.mass[self.mass.len() - 1]; // every bin, clipped or not
        let last = self.mass[n] - self.mass[n - 1];
        let p_last = (last + p_total - total) / p_total;

        let mut kl = (self.mass_ln[n - 1] - p_total.ln() * self.mass[n - 1]) / p_total;
        // Level l holds the bins whose centre (j + 1/2) rounds to l on the step
        // s = n / (levels - 1) bins: it starts at the first j with j + 1/2 >= (l - 1/2) s.
        let step = n as f64 / (levels - 1) as f64;
        let start = |l: usize| match l {
            0 => 0,
            _ if l == levels => n,
            _ => (((l as f64 - 0.5) * step - 0.5).ceil().max(0.0) as usize).min(n),
        };
        for l in 0..levels {
            let (lo, hi) = (start(l), start(l + 1));
            let count = self.nonempty[hi] - self.nonempty[lo];
            if count == 0 {
                continue;
            }
            let mass = self.mass[hi] - self.mass[lo];
            let q = mass / (count as f64 * total);
            let outside_last = if l == levels - 1 { mass - last } else { mass };
            kl -= outside_last / p_total * q.ln();
            if l == levels - 1 {
                kl += p_last * (p_last / q).ln();
            }
        }
        kl
    }
}

/// The clips of one layer at every bit width 1..=8: for its weights (symmetric) and its
/// input activations (symmetric when the input can be negative, else `[0, a]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerClips {
    /// `weight[b - 1]` is the weight clip at b bits.
    pub weight: [f64; MAX_BITS as usize],
    /// `input[b - 1]` is the initial (trainable) activation clip at b bits.
    pub input: [f64; MAX_BITS as usize],
    pub signed_input: bool,
}

impl LayerClips {
    /// Measures the clips from a layer's weights and a calibration sample of its inputs.
    pub fn measure(weights: &[f32], inputs: &[f32], signed_input: bool) -> LayerClips {
        let bits = |i: usize| MIN_BITS + i as u8;
        LayerClips {
            weight: std::array::from_fn(|i| choose_clip(weights, bits(i), true)),
            input: std::array::from_fn(|i| choose_clip(inputs, bits(i), signed_input)),
            signed_input,
        }
    }

    /// The weight clip at `bits` (1..=8).
    pub fn weight_clip(&self, bits: u8) -> f64 {
        self.weight[(bits - MIN_BITS) as usize]
    }

    /// The initial activation clip at `bits` (1..=8).
    pub fn input_clip(&self, bits: u8) -> f64 {
        self.input[(bits - MIN_BITS) as usize]
    }
}

/// The clips of every quantizable layer of a model, in execution order: what the
/// calibrate stage measures and the search and finetune stages start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipTable {
    pub layers: Vec<LayerClips>,
}
