//! Held-out splits, subsets and seeded, augmented batches.

use haq_core::data::{Augment, Batch, Dataset, DatasetName, DatasetSpec, Split};
use haq_core::rng::seeded_rng;
use tch::{Kind, Tensor};

/// A dataset of `n` 1x4x4 images where every pixel of image `i` is `i` (and the label is
/// `i % 10`), so batches reveal which examples they hold.
fn numbered(n: i64) -> Dataset {
    let images = Tensor::arange(n, (Kind::Uint8, tch::Device::Cpu))
        .view([n, 1, 1, 1])
        .expand([n, 1, 4, 4], false)
        .contiguous();
    Dataset::in_memory(
        images,
        Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).remainder(10),
        10,
        vec![0.0],
        vec![1.0 / 255.0],
    )
}

/// Which examples a batch holds, read from its (un-normalised: mean 0, std 1/255) pixels.
fn ids(images: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(
        images
            .amax(&[1i64, 2, 3][..], false)
            .round()
            .to_kind(Kind::Int64),
    )
    .unwrap()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

/// All of `data`'s images, in memory.
fn images(data: &Dataset) -> Tensor {
    data.images().unwrap()
}

fn first_batch(data: &Dataset, batch_size: usize) -> Batch {
    data.eval_batches(batch_size).next().unwrap().unwrap()
}

#[test]
fn split_val_partitions_the_training_set() {
    let data = numbered(100);
    let (rest, val) = data.split_val(20, 7).unwrap();
    assert_eq!((rest.len(), val.len()), (80, 20));
    let mut all = [
        ids(&first_batch(&rest, 100).images),
        ids(&first_batch(&val, 100).images),
    ]
    .concat();
    // Each part keeps the original order; together they are every example once.
    assert!(all[..80].is_sorted() && all[80..].is_sorted());
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());

    // The same seed gives the same split, another seed another.
    let (_, again) = data.split_val(20, 7).unwrap();
    let (_, other) = data.split_val(20, 8).unwrap();
    assert!(same(&images(&val), &images(&again)));
    assert!(!same(&images(&val), &images(&other)));
    assert!(data.split_val(100, 7).is_err());
}

#[test]
fn subsets_are_seeded() {
    let data = numbered(50);
    let a = data.subset(10, 3).unwrap();
    assert_eq!(a.len(), 10);
    assert!(
        same(&a.labels, &data.subset(10, 3).unwrap().labels)
            && same(&images(&a), &images(&data.subset(10, 3).unwrap()))
    );
    assert!(!same(&images(&a), &images(&data.subset(10, 4).unwrap())));
    assert!(data.subset(51, 3).is_err());
}

#[test]
fn a_subset_after_another_is_disjoint_from_it_and_seeded() {
    let data = numbered(50);
    let first = ids(&images(&data.subset(10, 3).unwrap()));
    let after = ids(&images(&data.subset_after(10, 30, 3).unwrap()));
    assert_eq!(after.len(), 30);
    assert!(
        after.iter().all(|i| !first.contains(i)),
        "{first:?} {after:?}"
    );
    // The same draw: the first 10 and the next 30 make the first 40.
    let mut both: Vec<i64> = first.iter().chain(&after).copied().collect();
    both.sort_unstable();
    assert_eq!(both, ids(&images(&data.subset(40, 3).unwrap())));
    assert!(data.subset_after(10, 41, 3).is_err());
    assert!(data.subset_after(60, 1, 3).is_err());
}

#[test]
fn eval_batches_cover_everything_in_order() {
    let data = numbered(25);
    let batches: Vec<_> = data.eval_batches(10).map(Result::unwrap).collect();
    assert_eq!(
        batches
            .iter()
            .map(|b| b.labels.size()[0])
            .collect::<Vec<_>>(),
        [10, 10, 5]
    );
    let order: Vec<i64> = batches.iter().flat_map(|b| ids(&b.images)).collect();
    assert_eq!(order, (0..25).collect::<Vec<_>>());
    assert_eq!(batches[2].images.kind(), Kind::Float);
}

#[test]
fn train_batches_shuffle_per_epoch_and_repeat_bitwise() {
    let data = numbered(25);
    let augment = Augment::default();
    let epoch = |seed, e| {
        data.train_batches(10, &augment, seed, e)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    let first = epoch(1, 0);
    // Whole batches only.
    assert_eq!(first.len(), 2);
    let order: Vec<i64> = first
        .iter()
        .flat_map(|b| Vec::<i64>::try_from(&b.labels).unwrap())
        .collect();
    assert_ne!(
        order,
        (0..20).map(|i| i % 10).collect::<Vec<_>>(),
        "not shuffled"
    );

    // Bitwise repeatable for the same (seed, epoch), different otherwise.
    for (a, b) in first.iter().zip(epoch(1, 0).iter()) {
        assert!(same(&a.images, &b.images) && same(&a.labels, &b.labels));
    }
    assert!(!same(&first[0].images, &epoch(1, 1)[0].images));
    assert!(!same(&first[0].images, &epoch(2, 0)[0].images));
    // Epoch e does not depend on having iterated epochs before it (resuming).
    let later = epoch(1, 5);
    let fresh = data
        .train_batches(10, &augment, 1, 5)
        .next()
        .unwrap()
        .unwrap();
    assert!(same(&later[0].images, &fresh.images));
}

#[test]
fn crop_with_padding_shifts_images_within_the_padding() {
    // One 1x6x6 image with a single bright pixel in the middle.
    let image = Tensor::zeros([1, 1, 6, 6], (Kind::Uint8, tch::Device::Cpu));
    let _ = image.get(0).get(0).get(3).get(3).fill_(200);
    let augment = Augment {
        crop_padding: 2,
        flip: false,
    };
    let mut rng = seeded_rng(0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let out = augment.apply(&image, &mut rng);
        assert_eq!(out.size(), [1, 1, 6, 6]);
        assert_eq!(
            out.sum(Kind::Int64).int64_value(&[]),
            200,
            "the pixel stays inside a 2-pixel shift"
        );
        let pos = out.flatten(0, -1).argmax(0, false).int64_value(&[]);
        seen.insert((pos / 6 - 3, pos % 6 - 3));
    }
    // Every shift in [-2, 2]^2 occurs, and no other.
    assert_eq!(seen.len(), 25);
    assert!(seen.iter().all(|&(dy, dx)| dy.abs() <= 2 && dx.abs() <= 2));
}

#[test]
fn flips_mirror_about_half_the_images() {
    let row = Tensor::arange(5, (Kind::Uint8, tch::Device::Cpu))
        .view([1, 1, 1, 5])
        .repeat([400, 1, 1, 1]);
    let augment = Augment {
        crop_padding: 0,
        flip: true,
    };
    let out = augment.apply(&row, &mut seeded_rng(0, 0));
    let first = Vec::<i64>::try_from(out.select(3, 0).flatten(0, -1).to_kind(Kind::Int64)).unwrap();
    let flipped = first.iter().filter(|&&v| v == 4).count();
    assert!(first.iter().all(|&v| v == 0 || v == 4));
    assert!((150..250).contains(&flipped), "{flipped} of 400 flipped");
    assert!(same(
        &Augment::none().apply(&row, &mut seeded_rng(0, 0)),
        &row
    ));
}

#[test]
fn dataset_names_parse_and_roundtrip() {
    for name in DatasetName::ALL {
        assert_eq!(name.as_str().parse::<DatasetName>().unwrap(), name);
    }
    assert!("imagenet"
        .parse::<DatasetName>()
        .unwrap_err()
        .to_string()
        .contains("fashion-mnist, mnist, cifar10, folder"));
    let spec: DatasetSpec =
        serde_json::from_str(r#"{"name": "cifar10", "root": "/data/c10"}"#).unwrap();
    assert_eq!(spec.name, DatasetName::Cifar10);
    assert_eq!(spec.image_size().unwrap(), 32);
    assert!(DatasetSpec::new(DatasetName::Mnist)
        .load(Split::Test)
        .unwrap_err()
        .to_string()
        .contains("t10k-images-idx3-ubyte.gz"));
}

#[test]
fn crop_and_flip_match_pad_crop_mirror_with_tensor_ops() {
    // Two channels of distinct values, so any misplaced pixel shows.
    let image = (Tensor::arange(2 * 5 * 7, (Kind::Int64, tch::Device::Cpu)) + 1)
        .to_kind(Kind::Uint8)
        .view([1, 2, 5, 7]);
    let padded = image.constant_pad_nd([2, 2, 2, 2]);
    let mut candidates = Vec::new();
    for dy in 0..5 {
        for dx in 0..5 {
            let crop = padded.narrow(2, dy, 5).narrow(3, dx, 7);
            candidates.push(crop.flip([3]));
            candidates.push(crop);
        }
    }
    let augment = Augment {
        crop_padding: 2,
        flip: true,
    };
    let mut rng = seeded_rng(9, 0);
    let mut hit = vec![false; candidates.len()];
    for _ in 0..400 {
        let out = augment.apply(&image, &mut rng);
        let found = candidates
            .iter()
            .position(|c| same(c, &out))
            .expect("output is a padded crop, maybe mirrored");
        hit[found] = true;
    }
    assert!(hit.iter().all(|&h| h), "every crop and flip occurs");
}
