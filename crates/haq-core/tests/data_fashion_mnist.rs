//! The IDX reader on the real Fashion-MNIST files of the Debian package
//! `dataset-fashion-mnist`, and the statistics haq normalises with.

use haq_core::data::{DatasetName, DatasetSpec, Split};
use tch::Kind;

#[test]
fn reads_the_debian_package_files() {
    let spec = DatasetSpec::new(DatasetName::FashionMnist);
    let train = spec.load(Split::Train).unwrap();
    let test = spec.load(Split::Test).unwrap();

    let images = train.images().unwrap();
    assert_eq!(images.size(), [60000, 1, 28, 28]);
    assert_eq!(test.images().unwrap().size(), [10000, 1, 28, 28]);
    assert_eq!(images.kind(), Kind::Uint8);
    assert_eq!(train.labels.kind(), Kind::Int64);
    assert_eq!(train.num_classes, 10);
    let histogram = Vec::<i64>::try_from(train.labels.bincount::<tch::Tensor>(None, 0)).unwrap();
    assert_eq!(histogram, vec![6000; 10]);
    let histogram = Vec::<i64>::try_from(test.labels.bincount::<tch::Tensor>(None, 0)).unwrap();
    assert_eq!(histogram, vec![1000; 10]);

    // The normalisation constants are the training set's own statistics.
    let pixels = images.to_kind(Kind::Double) / 255.0;
    let mean = pixels.mean(Kind::Double).double_value(&[]);
    let std = pixels.std(true).double_value(&[]);
    assert!(
        (mean - train.mean[0]).abs() < 5e-4,
        "mean {mean} vs {}",
        train.mean[0]
    );
    assert!(
        (std - train.std[0]).abs() < 5e-4,
        "std {std} vs {}",
        train.std[0]
    );

    // A normalised training batch then has mean about 0 and std about 1.
    let batch = train.eval_batches(60000).next().unwrap().unwrap();
    assert!(batch.images.mean(Kind::Float).double_value(&[]).abs() < 1e-3);
    assert!((batch.images.std(true).double_value(&[]) - 1.0).abs() < 1e-3);
}
