//! IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or raw.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, the element type 0x08 for
//! unsigned bytes, the number of dimensions), each dimension as a big-endian u32, then
//! the elements in row-major order.

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::Tensor;

use super::{check_labels, read_file, to_tensors, Pixels, Split};
use crate::error::{Error, Result};

/// Both datasets have ten classes.
const NUM_CLASSES: usize = 10;
/// Both datasets have 28x28 images.
const SIDE: usize = 28;
/// The most bytes a (decompressed) IDX file may hold: the largest of these datasets, 60,000
/// images of 28x28, is 47 MB; a gzip stream could otherwise expand without bound.
const MAX_IDX_BYTES: u64 = 1 << 30;
/// Element type code of unsigned bytes, the only one these datasets use.
const TYPE_U8: u32 = 0x08;

/// Reads `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` from `root`.
pub(super) fn read_split(root: &Path, split: Split, hint: &str) -> Result<(Pixels, Tensor, usize)> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(root, &format!("{prefix}-images-idx3-ubyte"), hint)?;
    let labels_path = find(root, &format!("{prefix}-labels-idx1-ubyte"), hint)?;
    let (dims, pixels) = read_idx(&images_path, 3, hint)?;
    let (label_dims, labels) = read_idx(&labels_path, 1, hint)?;
    if dims[0] != label_dims[0] {
        return Err(Error::CorruptData {
            path: images_path,
            problem: format!(
                "holds {} images but {} holds {} labels",
                dims[0],
                labels_path.display(),
                label_dims[0]
            ),
            hint: hint.to_string(),
        });
    }
    if dims[1..] != [SIDE, SIDE] {
        return Err(Error::CorruptData {
            path: images_path,
            problem: format!(
                "holds {}x{} images; MNIST and Fashion-MNIST images are {SIDE}x{SIDE}",
                dims[1], dims[2]
            ),
            hint: hint.to_string(),
        });
    }
    check_labels(&labels, NUM_CLASSES, &labels_path, hint)?;
    let (images, labels) = to_tensors(&pixels, &labels, [1, dims[1], dims[2]]);
    Ok((images, labels, NUM_CLASSES))
}

/// The gzip-compressed file if present, else the raw one.
fn find(root: &Path, stem: &str, hint: &str) -> Result<PathBuf> {
    let gz = root.join(format!("{stem}.gz"));
    let raw = root.join(stem);
    match (gz.exists(), raw.exists()) {
        (false, true) => Ok(raw),
        (true, _) => Ok(gz),
        (false, false) => Err(Error::MissingData {
            path: gz,
            hint: hint.to_string(),
        }),
    }
}

/// Reads an IDX file of unsigned bytes with `ndims` dimensions: its dimensions and elements.
fn read_idx(path: &Path, ndims: usize, hint: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let corrupt = |problem: String| Error::CorruptData {
        path: path.to_path_buf(),
        problem,
        hint: hint.to_string(),
    };
    let raw = read_file(path, hint)?;
    // Gzip streams start with 0x1f 0x8b (RFC 1952); IDX files start with two zero bytes.
    let mut bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("damaged gzip stream ({e})")))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(corrupt(format!(
                "decompresses to over {MAX_IDX_BYTES} bytes"
            )));
        }
        out
    } else {
        raw
    };
    let header_len = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(corrupt(format!(
            "truncated: {} bytes, shorter than the 4-byte IDX magic number",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    let expected = TYPE_U8 << 8 | ndims as u32;
    if magic != expected {
        return Err(corrupt(format!(
            "wrong magic number {magic:#010x}; an IDX file of unsigned bytes with {ndims} dimension(s) \
             starts with {expected:#010x}"
        )));
    }
    if bytes.len() < header_len {
        return Err(corrupt(format!(
            "truncated: {} bytes, shorter than its {header_len}-byte header",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes(d.try_into().expect("4 bytes")) as usize)
        .collect();
    let expected_len = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            corrupt(format!(
                "header dimensions {dims:?} overflow: not an IDX file"
            ))
        })?;
    let data_len = bytes.len() - header_len;
    if data_len < expected_len {
        return Err(corrupt(format!(
            "truncated: the header promises {dims:?} = {expected_len} bytes of data but {data_len} follow"
        )));
    }
    if data_len > expected_len {
        return Err(corrupt(format!(
            "{} bytes follow the {dims:?} = {expected_len} bytes of data its header promises",
            data_len - expected_len
        )));
    }
    bytes.drain(..header_len);
    Ok((dims, bytes))
}
