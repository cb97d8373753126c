//! The CIFAR-10 binary-batch reader on small generated batches.

use std::path::Path;

use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::error::Error;

const RECORD: usize = 1 + 3 * 32 * 32;

/// A record whose red, green and blue planes are filled with `label`, `label + 100` and
/// `label + 200`.
fn record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    for offset in [0u8, 100, 200] {
        r.extend(std::iter::repeat_n(label + offset, 1024));
    }
    r
}

/// Training batch `i` holds two records with labels `2i - 2` and `2i - 1`; the test batch
/// holds labels 9, 8, 7.
fn write_batches(root: &Path) {
    for i in 1..=5u8 {
        let bytes = [record(2 * i - 2), record(2 * i - 1)].concat();
        std::fs::write(root.join(format!("data_batch_{i}.bin")), bytes).unwrap();
    }
    std::fs::write(
        root.join("test_batch.bin"),
        [record(9), record(8), record(7)].concat(),
    )
    .unwrap();
}

fn spec(root: &Path) -> DatasetSpec {
    DatasetSpec {
        root: Some(root.to_path_buf()),
        ..DatasetSpec::new(DatasetName::Cifar10)
    }
}

#[test]
fn reads_all_batches_as_planar_rgb() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path());
    let train = spec(dir.path()).load(Split::Train).unwrap();
    let test = spec(dir.path()).load(Split::Test).unwrap();
    let test_images = test.images().unwrap();
    assert_eq!(train.images().unwrap().size(), [10, 3, 32, 32]);
    assert_eq!(test_images.size(), [3, 3, 32, 32]);
    assert_eq!(train.num_classes, 10);
    assert_eq!(train.mean.len(), 3);
    assert_eq!(
        Vec::<i64>::try_from(&train.labels).unwrap(),
        (0..10).collect::<Vec<i64>>()
    );
    assert_eq!(Vec::<i64>::try_from(&test.labels).unwrap(), [9, 8, 7]);
    // Channel c of example n is the plane filled with label + 100 c.
    for (n, label) in [(0, 9), (2, 7)] {
        for c in 0..3 {
            let plane = test_images.get(n).get(c);
            assert_eq!(plane.min().int64_value(&[]), label + 100 * c);
            assert_eq!(plane.max().int64_value(&[]), label + 100 * c);
        }
    }
}

#[test]
fn missing_batch_says_where_to_download() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let err = spec(dir.path()).load(Split::Train).unwrap_err();
    assert!(
        matches!(&err, Error::MissingData { path, .. } if path.ends_with("data_batch_4.bin")),
        "{err}"
    );
    assert!(err.to_string().contains("cifar-10-binary.tar.gz"), "{err}");
}

#[test]
fn truncated_batch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path());
    let path = dir.path().join("test_batch.bin");
    std::fs::write(&path, &std::fs::read(&path).unwrap()[..2 * RECORD + 5]).unwrap();
    let err = spec(dir.path()).load(Split::Test).unwrap_err();
    match err {
        Error::CorruptData { path, problem, .. } => {
            assert!(path.ends_with("test_batch.bin"));
            assert!(
                problem.contains("truncated") && problem.contains("3073-byte records"),
                "{problem}"
            );
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[test]
fn bad_label_names_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path());
    let mut bad = record(3);
    bad[0] = 11;
    std::fs::write(dir.path().join("data_batch_2.bin"), bad).unwrap();
    let err = spec(dir.path()).load(Split::Train).unwrap_err();
    assert!(
        matches!(&err, Error::CorruptData { path, .. } if path.ends_with("data_batch_2.bin")),
        "{err}"
    );
    assert!(err.to_string().contains("label 11 of example 0"), "{err}");
}

#[test]
fn image_size_must_be_native() {
    let spec = DatasetSpec {
        image_size: Some(28),
        ..DatasetSpec::new(DatasetName::Cifar10)
    };
    let err = spec.load(Split::Test).unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, .. } if field == "dataset.image_size"),
        "{err}"
    );
}
