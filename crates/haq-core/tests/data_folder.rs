//! The image-folder reader on small generated JPEG and PNG folders.

use std::path::Path;

use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::error::Error;
use image::{Rgb, RgbImage};
use tch::Kind;

fn solid(w: u32, h: u32, colour: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(colour))
}

/// `root/{train,val}/{cat,dog}`: cats are red PNGs, dogs are blue JPEGs, of assorted sizes.
/// One extra dog in train is wide (30x10) with a white middle third and black sides.
fn write_folder(root: &Path) {
    for split in ["train", "val"] {
        let cat = root.join(split).join("cat");
        let dog = root.join(split).join("dog");
        std::fs::create_dir_all(&cat).unwrap();
        std::fs::create_dir_all(&dog).unwrap();
        solid(12, 9, [255, 0, 0]).save(cat.join("a.png")).unwrap();
        solid(8, 8, [255, 0, 0]).save(cat.join("b.PNG")).unwrap();
        solid(20, 16, [0, 0, 255]).save(dog.join("a.jpg")).unwrap();
        // Not an image: skipped.
        std::fs::write(dog.join("notes.txt"), "dogs").unwrap();
    }
    let wide = RgbImage::from_fn(30, 10, |x, _| {
        if (10..20).contains(&x) {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    wide.save(root.join("train/dog/wide.png")).unwrap();
}

fn spec(root: &Path) -> DatasetSpec {
    DatasetSpec {
        root: Some(root.to_path_buf()),
        image_size: Some(8),
        ..DatasetSpec::new(DatasetName::Folder)
    }
}

fn corrupt_path(err: Error) -> std::path::PathBuf {
    match err {
        Error::CorruptData { path, hint, .. } => {
            assert!(hint.contains("one sub-directory per class"), "{hint}");
            path
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[test]
fn reads_classes_from_sub_directories() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    let train = spec(dir.path()).load(Split::Train).unwrap();
    let val = spec(dir.path()).load(Split::Test).unwrap();
    assert_eq!(train.images.size(), [4, 3, 8, 8]);
    assert_eq!(val.images.size(), [3, 3, 8, 8]);
    assert_eq!(train.num_classes, 2);
    // Sorted: cat/a.png, cat/b.PNG, dog/a.jpg, dog/wide.png.
    assert_eq!(Vec::<i64>::try_from(&train.labels).unwrap(), [0, 0, 1, 1]);
    assert_eq!(Vec::<i64>::try_from(&val.labels).unwrap(), [0, 0, 1]);

    let channel_means = |n: i64| {
        let image = train.images.get(n).to_kind(Kind::Float);
        Vec::<f32>::try_from(image.mean_dim(&[1i64, 2][..], false, Kind::Float)).unwrap()
    };
    // Solid colours survive resizing exactly (PNG) or nearly (JPEG).
    assert_eq!(channel_means(0), [255.0, 0.0, 0.0]);
    assert_eq!(channel_means(1), [255.0, 0.0, 0.0]);
    let blue = channel_means(2);
    assert!(
        blue[0] < 10.0 && blue[1] < 10.0 && blue[2] > 245.0,
        "{blue:?}"
    );
}

#[test]
fn resizes_the_shorter_side_and_crops_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    let train = spec(dir.path()).load(Split::Train).unwrap();
    // 30x10 becomes 24x8, whose centre 8 columns are the white middle third; only the
    // outermost columns may blend with the black sides.
    let wide = train.images.get(3).get(0);
    let inner = wide.narrow(1, 1, 6);
    assert_eq!(inner.min().int64_value(&[]), 255, "{wide}");
    assert!(
        wide.to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
            > 200.0
    );
}

#[test]
fn empty_class_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    std::fs::create_dir(dir.path().join("train/emu")).unwrap();
    std::fs::write(dir.path().join("train/emu/readme.txt"), "no images").unwrap();
    let err = spec(dir.path()).load(Split::Train).unwrap_err();
    assert!(err.to_string().contains("empty class folder"), "{err}");
    assert!(corrupt_path(err).ends_with("train/emu"));
}

#[test]
fn validation_classes_must_match_training_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    std::fs::rename(dir.path().join("val/dog"), dir.path().join("val/wolf")).unwrap();
    let err = spec(dir.path()).load(Split::Test).unwrap_err();
    assert!(
        err.to_string().contains("differ from those of train/"),
        "{err}"
    );
    assert!(corrupt_path(err).ends_with("val"));
}

#[test]
fn undecodable_image_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    std::fs::write(dir.path().join("val/cat/broken.jpg"), b"not a jpeg").unwrap();
    let err = spec(dir.path()).load(Split::Test).unwrap_err();
    assert!(err.to_string().contains("cannot decode the image"), "{err}");
    assert!(corrupt_path(err).ends_with("val/cat/broken.jpg"));
}

#[test]
fn missing_folder_and_root_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = spec(dir.path()).load(Split::Train).unwrap_err();
    assert!(
        matches!(&err, Error::MissingData { path, .. } if path.ends_with("train")),
        "{err}"
    );

    let err = DatasetSpec::new(DatasetName::Folder)
        .load(Split::Train)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, .. } if field == "dataset.root"),
        "{err}"
    );
}
