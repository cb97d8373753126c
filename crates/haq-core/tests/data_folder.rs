//! The image-folder reader on small generated JPEG and PNG folders: it lists files at load
//! time and decodes them batch by batch.

use std::path::{Path, PathBuf};

use haq_core::data::{Augment, Dataset, DatasetName, DatasetSpec, Split};
use haq_core::error::Error;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use tch::{Kind, Tensor};

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
    sized_spec(root, 8)
}

fn sized_spec(root: &Path, size: usize) -> DatasetSpec {
    DatasetSpec {
        root: Some(root.to_path_buf()),
        image_size: Some(size),
        ..DatasetSpec::new(DatasetName::Folder)
    }
}

/// The same examples, decoded into memory.
fn in_memory(data: &Dataset) -> Dataset {
    Dataset::in_memory(
        data.images().unwrap(),
        data.labels.shallow_clone(),
        data.num_classes,
        data.mean.clone(),
        data.std.clone(),
    )
}

fn corrupt_path(err: Error) -> PathBuf {
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
    let images = train.images().unwrap();
    assert_eq!(images.size(), [4, 3, 8, 8]);
    assert_eq!(val.images().unwrap().size(), [3, 3, 8, 8]);
    assert_eq!(train.image_shape(), [3, 8, 8]);
    assert_eq!(train.num_classes, 2);
    // Sorted: cat/a.png, cat/b.PNG, dog/a.jpg, dog/wide.png.
    assert_eq!(Vec::<i64>::try_from(&train.labels).unwrap(), [0, 0, 1, 1]);
    assert_eq!(Vec::<i64>::try_from(&val.labels).unwrap(), [0, 0, 1]);

    let channel_means = |n: i64| {
        let image = images.get(n).to_kind(Kind::Float);
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
    let wide = train.images().unwrap().get(3).get(0);
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
        err.to_string()
            .contains(r#"differ from those of train/: it lacks ["dog"] and has ["wolf"]"#),
        "{err}"
    );
    assert!(corrupt_path(err).ends_with("val"));
}

#[test]
fn undecodable_image_is_named_by_the_batch_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    std::fs::write(dir.path().join("val/cat/broken.jpg"), b"not a jpeg").unwrap();
    // Loading only lists files: cat/a.png, cat/b.PNG, cat/broken.jpg, dog/a.jpg.
    let val = spec(dir.path()).load(Split::Test).unwrap();
    assert_eq!(val.len(), 4);
    let mut batches = val.eval_batches(2);
    assert_eq!(batches.next().unwrap().unwrap().labels.size(), [2]);
    for err in [
        batches.next().unwrap().unwrap_err(),
        val.images().unwrap_err(),
    ] {
        assert!(err.to_string().contains("cannot decode the image"), "{err}");
        assert!(
            err.to_string().contains("replace or delete the file"),
            "{err}"
        );
        assert!(corrupt_path(err).ends_with("val/cat/broken.jpg"));
    }
}

#[test]
fn streamed_pixels_are_those_of_each_file_decoded() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    let train = spec(dir.path()).load(Split::Train).unwrap();
    let files: Vec<PathBuf> = ["cat/a.png", "cat/b.PNG", "dog/a.jpg", "dog/wide.png"]
        .iter()
        .map(|f| dir.path().join("train").join(f))
        .collect();
    // Each file as the reader should see it: shorter side to 8, centre crop, RGB, [C, H, W].
    let decoded: Vec<Tensor> = files
        .iter()
        .map(|f| {
            let rgb = image::open(f)
                .unwrap()
                .resize_to_fill(8, 8, FilterType::Triangle)
                .to_rgb8();
            Tensor::from_slice(rgb.as_raw())
                .view([8, 8, 3])
                .permute([2, 0, 1])
        })
        .collect();
    let reference = Tensor::stack(&decoded, 0);
    let pixels = train.images().unwrap();
    // The reader resamples with fast_image_resize: pixel for pixel the `image` crate's
    // filter of the same kind on these files.
    assert!(pixels.equal(&reference));

    // Evaluation batches are those pixels, in order, normalised.
    let batches: Vec<Tensor> = train.eval_batches(3).map(|b| b.unwrap().images).collect();
    assert_eq!(batches.len(), 2);
    assert!(Tensor::cat(&batches, 0).equal(&train.normalize(&pixels)));

    // Shuffled, augmented training batches are bitwise those of the same data in memory.
    let memory = in_memory(&train);
    let augment = Augment {
        crop_padding: 2,
        flip: true,
    };
    for epoch in 0..3 {
        let streamed = train.train_batches(2, &augment, 5, epoch);
        let held = memory.train_batches(2, &augment, 5, epoch);
        assert_eq!(streamed.len(), 2);
        for (a, b) in streamed.zip(held) {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a.images.equal(&b.images) && a.labels.equal(&b.labels));
        }
    }
}

#[test]
fn reads_more_classes_than_a_byte_holds() {
    const CLASSES: u32 = 300;
    let dir = tempfile::tempdir().unwrap();
    // Class i's one image has red i % 256 and green i / 256, so pixels name their class.
    for i in 0..CLASSES {
        let class = dir.path().join(format!("train/c{i:03}"));
        std::fs::create_dir_all(&class).unwrap();
        solid(2, 2, [(i % 256) as u8, (i / 256) as u8, 7])
            .save(class.join("x.png"))
            .unwrap();
    }
    let train = sized_spec(dir.path(), 2).load(Split::Train).unwrap();
    assert_eq!(train.num_classes, CLASSES as usize);
    let all: Vec<i64> = (0..CLASSES as i64).collect();
    assert_eq!(Vec::<i64>::try_from(&train.labels).unwrap(), all);
    let batch = train
        .eval_batches(CLASSES as usize)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(Vec::<i64>::try_from(&batch.labels).unwrap(), all);
    let images = train.images().unwrap();
    let corner = |c: i64| {
        let values = images.select(1, c).select(1, 0).select(1, 0);
        Vec::<i64>::try_from(values.to_kind(Kind::Int64)).unwrap()
    };
    let (red, green) = (corner(0), corner(1));
    let class: Vec<i64> = red.iter().zip(&green).map(|(r, g)| r + 256 * g).collect();
    assert_eq!(class, all);
}

#[test]
fn subsets_and_validation_splits_of_folders_are_seeded_and_disjoint() {
    let dir = tempfile::tempdir().unwrap();
    // Twenty grey 4x4 images, image i of value 10 i + 5, the first ten of class `a`.
    for i in 0..20u8 {
        let class = dir.path().join(if i < 10 { "train/a" } else { "train/b" });
        std::fs::create_dir_all(&class).unwrap();
        solid(4, 4, [10 * i + 5; 3])
            .save(class.join(format!("{i:02}.png")))
            .unwrap();
    }
    let data = sized_spec(dir.path(), 4).load(Split::Train).unwrap();
    let ids = |d: &Dataset| {
        let images = d.images().unwrap();
        let ids = Vec::<i64>::try_from(images.amax(&[1i64, 2, 3][..], false).to_kind(Kind::Int64))
            .unwrap()
            .iter()
            .map(|v| v / 10)
            .collect::<Vec<_>>();
        // Labels travel with their images.
        let labels = Vec::<i64>::try_from(&d.labels).unwrap();
        assert_eq!(labels, ids.iter().map(|&i| i / 10).collect::<Vec<_>>());
        ids
    };
    assert_eq!(ids(&data), (0..20).collect::<Vec<_>>());
    let memory = in_memory(&data);

    let (rest, val) = data.split_val(5, 7).unwrap();
    let (rest_ids, val_ids) = (ids(&rest), ids(&val));
    assert_eq!((rest_ids.len(), val_ids.len()), (15, 5));
    assert!(rest_ids.is_sorted() && val_ids.is_sorted());
    let mut all = [rest_ids.clone(), val_ids.clone()].concat();
    all.sort();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
    // The examples a memory dataset of the same size would pick; another seed, others.
    let (memory_rest, memory_val) = memory.split_val(5, 7).unwrap();
    assert_eq!(
        (ids(&memory_rest), ids(&memory_val)),
        (rest_ids, val_ids.clone())
    );
    assert_ne!(ids(&data.split_val(5, 8).unwrap().1), val_ids);

    let subset = ids(&data.subset(6, 3).unwrap());
    assert_eq!(subset, ids(&memory.subset(6, 3).unwrap()));
    assert_eq!(subset, ids(&data.subset(6, 3).unwrap()));
    assert_ne!(subset, ids(&data.subset(6, 4).unwrap()));
    // A subset of a split stays within it.
    let val_subset = ids(&val.subset(3, 1).unwrap());
    assert!(val_subset.iter().all(|i| val_ids.contains(i)));
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
