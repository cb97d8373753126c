//! The quantized model as a file, without libtorch: its layout, what reads it, and its
//! ONNX form ([`onnx`]). `haq_core::quant::export` writes it and runs integer inference
//! from it.
//!
//! A safetensors file in which each quantizable layer `<name>` (see
//! [`haq_cost::arch::layers`]) keeps its weights as integer codes packed at `w_bits` bits each (LSB first), in
//! `<name>.weight_codes` (u8), with
//! - linear mode: `<name>.weight_scale` (f32 scalar `s`; weight = (code - offset) * s with
//!   offset 2^(b-1) - 1, or at 1 bit weight = s * (2 code - 1)) and `<name>.input_clip`
//!   (f32 scalar, the trained PACT clip of the layer's input);
//! - k-means mode: `<name>.weight_codebook` (f32 `[2^b]`; `weight = codebook[code]`).
//!
//! Every other variable (batch-norm parameters and statistics, biases) is stored in f32
//! under its own name. The metadata's one entry, `haq` (one entry, as safetensors writes
//! metadata in hash order and the file must be byte-for-byte reproducible), is a JSON
//! object: `policy` (the policy), `arch` (the [`ArchConfig`]) and `layers` (per layer:
//! name, bits, input signedness).

pub mod onnx;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use haq_cost::arch::ArchConfig;
use haq_cost::error::{Error, Result};
use haq_cost::policy::Policy;

/// The metadata entry's key.
pub const METADATA: &str = "haq";

/// The metadata: what the file holds besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub policy: Policy,
    pub arch: ArchConfig,
    pub layers: Vec<LayerEntry>,
}

/// One quantizable layer as the metadata records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerEntry {
    pub name: String,
    pub w_bits: u8,
    pub a_bits: Option<u8>,
    pub signed_input: bool,
}

/// Packs `codes` (each below 2^bits) at `bits` bits each, LSB first.
pub fn pack(codes: &[u8], bits: u8) -> Vec<u8> {
    let mut out = vec![0u8; (codes.len() * usize::from(bits)).div_ceil(8)];
    for (i, &c) in codes.iter().enumerate() {
        for j in 0..usize::from(bits) {
            let p = i * usize::from(bits) + j;
            out[p / 8] |= ((c >> j) & 1) << (p % 8);
        }
    }
    out
}

/// The inverse of [`pack`] for `n` codes.
fn unpack(bytes: &[u8], bits: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (0..usize::from(bits)).fold(0u8, |c, j| {
                let p = i * usize::from(bits) + j;
                c | (((bytes[p / 8] >> (p % 8)) & 1) << j)
            })
        })
        .collect()
}

/// The code offset and step of a linear weight quantizer with clip `c` at `bits`: the
/// same grid as haq-core's `fake_quantize` (signed), s = c / (2^(b-1) - 1); at 1 bit the
/// weights are ±c, stored as offset 1/2 and step 2c so that (code - 1/2) * 2c = ±c.
pub fn linear_grid(bits: u8, clip: f32) -> (f32, f32) {
    if bits == 1 {
        (0.5, 2.0 * clip)
    } else {
        let steps = ((1u32 << (bits - 1)) - 1) as f32;
        (steps, clip / steps)
    }
}

/// A linear layer's weights as integers q with weight = q * step, both exact in f32: q =
/// code - offset and step = the stored scale, or at 1 bit q = 2 code - 1 = ±1 and step =
/// scale / 2 = c. A code beyond the grid (never written by haq-core) is an error.
pub fn linear_levels(codes: &[u8], bits: u8, scale: f32) -> Result<(Vec<i8>, f32)> {
    let (mul, offset, step) = if bits == 1 {
        (2, 1, scale / 2.0)
    } else {
        (1, (1i16 << (bits - 1)) - 1, scale)
    };
    let levels = codes
        .iter()
        .map(|&c| {
            let q = mul * i16::from(c) - offset;
            (q.abs() <= offset).then_some(q as i8)
        })
        .collect::<Option<Vec<i8>>>()
        .ok_or_else(|| not_quantized(format!("a weight code beyond the {bits}-bit grid")))?;
    Ok((levels, step))
}

/// The error for bytes that are not a quantized model file.
pub fn not_quantized(what: String) -> Error {
    Error::Weights(format!(
        "not a quantized model ({what}); write one with `haq export-model`"
    ))
}

/// The metadata of a quantized model file.
pub fn read_header(bytes: &[u8]) -> Result<Header> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| not_quantized(format!("unreadable safetensors header: {e}")))?;
    let header = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA))
        .ok_or_else(|| not_quantized(format!("no `{METADATA}` entry in its metadata")))?;
    serde_json::from_str(header).map_err(|e| not_quantized(format!("metadata `{METADATA}`: {e}")))
}

/// The `n` weight codes of `layer` from its packed `weight_codes`.
pub fn layer_codes(packed: &[u8], layer: &LayerEntry, n: usize) -> Result<Vec<u8>> {
    if packed.len() != (n * usize::from(layer.w_bits)).div_ceil(8) {
        return Err(not_quantized(format!(
            "`{}.weight_codes` has {} bytes for {n} weights at {} bits",
            layer.name,
            packed.len(),
            layer.w_bits
        )));
    }
    Ok(unpack(packed, layer.w_bits, n))
}
