//! CIFAR-10's binary batches: `data_batch_1.bin` .. `data_batch_5.bin` (training) and
//! `test_batch.bin`. Each record is one label byte then a 32x32 colour image as three
//! 1024-byte planes (red, green, blue), i.e. already `[C, H, W]`.

use std::path::Path;

use tch::Tensor;

use super::{check_labels, read_file, to_tensors, Pixels, Split};
use crate::error::{Error, Result};

const NUM_CLASSES: usize = 10;
const SIDE: usize = 32;
const IMAGE_BYTES: usize = 3 * SIDE * SIDE;
const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

pub(super) fn read_split(root: &Path, split: Split, hint: &str) -> Result<(Pixels, Tensor, usize)> {
    let files: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    };
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        let path = root.join(file);
        let bytes = read_file(&path, hint)?;
        if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
            return Err(Error::CorruptData {
                problem: format!(
                    "truncated: {} bytes is not a whole number of {RECORD_BYTES}-byte records \
                     (1 label byte + {IMAGE_BYTES} pixel bytes)",
                    bytes.len()
                ),
                path,
                hint: hint.to_string(),
            });
        }
        let first = labels.len();
        for record in bytes.chunks_exact(RECORD_BYTES) {
            labels.push(record[0]);
            pixels.extend_from_slice(&record[1..]);
        }
        check_labels(&labels[first..], NUM_CLASSES, &path, hint)?;
    }
    let (images, labels) = to_tensors(&pixels, &labels, [3, SIDE, SIDE]);
    Ok((images, labels, NUM_CLASSES))
}
