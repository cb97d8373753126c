//! The IDX reader on small generated files: gzip and raw, and every corrupt case.

use std::io::Write;
use std::path::Path;

use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::error::Error;

/// An IDX file of unsigned bytes: magic, big-endian dimensions, data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The pixels of three 28x28 images: 0, 1, 2, ... modulo 256.
fn pixels() -> Vec<u8> {
    (0..3 * 28 * 28).map(|i| (i % 256) as u8).collect()
}

/// Writes a 3-image test split of 28x28 images holding [`pixels`], labels `[7, 0, 9]`.
fn write_test_split(root: &Path, compress: bool) {
    let images = idx_bytes(&[3, 28, 28], &pixels());
    let labels = idx_bytes(&[3], &[7, 0, 9]);
    let (images, labels, ext) = if compress {
        (gzip(&images), gzip(&labels), ".gz")
    } else {
        (images, labels, "")
    };
    std::fs::write(root.join(format!("t10k-images-idx3-ubyte{ext}")), images).unwrap();
    std::fs::write(root.join(format!("t10k-labels-idx1-ubyte{ext}")), labels).unwrap();
}

fn load(root: &Path) -> Result<haq_core::data::Dataset, Error> {
    let spec = DatasetSpec {
        root: Some(root.to_path_buf()),
        ..DatasetSpec::new(DatasetName::FashionMnist)
    };
    spec.load(Split::Test)
}

fn corrupt_problem(err: Error, file: &str) -> String {
    match err {
        Error::CorruptData {
            path,
            problem,
            hint,
        } => {
            assert!(
                path.ends_with(file),
                "error names {} instead of {file}",
                path.display()
            );
            assert!(hint.contains("dataset-fashion-mnist"), "hint: {hint}");
            problem
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[test]
fn gzip_and_raw_files_read_alike() {
    for compress in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        write_test_split(dir.path(), compress);
        let data = load(dir.path()).unwrap();
        let images = data.images().unwrap();
        assert_eq!(images.size(), [3, 1, 28, 28]);
        assert_eq!(
            Vec::<u8>::try_from(images.flatten(0, -1)).unwrap(),
            pixels()
        );
        assert_eq!(Vec::<i64>::try_from(&data.labels).unwrap(), [7, 0, 9]);
    }
}

#[test]
fn missing_files_say_how_to_get_fashion_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::MissingData { .. }));
    assert!(message.contains("t10k-images-idx3-ubyte.gz"), "{message}");
    assert!(
        message.contains("apt-get install dataset-fashion-mnist"),
        "{message}"
    );
    assert!(message.contains("scripts/setup"), "{message}");
}

#[test]
fn wrong_magic_number_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), false);
    // A labels file (1 dimension) where images (3 dimensions) belong.
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        idx_bytes(&[3], &[1, 2, 3]),
    )
    .unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(
        problem.contains("wrong magic number 0x00000801"),
        "{problem}"
    );
    assert!(problem.contains("0x00000803"), "{problem}");
}

#[test]
fn truncated_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), false);
    let full = idx_bytes(&[3, 28, 28], &pixels());
    let path = dir.path().join("t10k-images-idx3-ubyte");

    std::fs::write(&path, &full[..full.len() - 1]).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(
        problem.contains("truncated") && problem.contains("2351 follow"),
        "{problem}"
    );

    std::fs::write(&path, &full[..10]).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(
        problem.contains("shorter than its 16-byte header"),
        "{problem}"
    );

    let mut longer = full.clone();
    longer.push(0);
    std::fs::write(&path, longer).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(problem.contains("1 bytes follow"), "{problem}");
}

#[test]
fn truncated_gzip_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), true);
    let path = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-labels-idx1-ubyte.gz");
    assert!(problem.contains("damaged gzip stream"), "{problem}");
}

#[test]
fn image_and_label_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), false);
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[2], &[1, 2]),
    )
    .unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(
        problem.contains("holds 3 images but") && problem.contains("holds 2 labels"),
        "{problem}"
    );
}

#[test]
fn labels_must_be_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), false);
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[3], &[1, 10, 2]),
    )
    .unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-labels-idx1-ubyte");
    assert!(problem.contains("label 10 of example 1"), "{problem}");
}

#[test]
fn images_of_another_size_and_overflowing_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_test_split(dir.path(), false);
    let path = dir.path().join("t10k-images-idx3-ubyte");
    std::fs::write(&path, idx_bytes(&[3, 32, 32], &[0; 3 * 32 * 32])).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(
        problem.contains("32x32") && problem.contains("28x28"),
        "{problem}"
    );

    std::fs::write(&path, idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[])).unwrap();
    let problem = corrupt_problem(load(dir.path()).unwrap_err(), "t10k-images-idx3-ubyte");
    assert!(problem.contains("overflow"), "{problem}");
}
