//! The folder reader's training pipeline at ImageNet sizes, in images per second: JPEG
//! decode, resize of the shorter side to 224 and centre crop, the default augmentation
//! (random crop with 4 pixels of padding, as the ImageNet workflows train), normalisation,
//! batches of 32, on 1 and 2 threads. `scripts/bench-loader` runs it beside PyTorch's
//! DataLoader with torchvision's equivalent transforms on the same files.
//!
//! `HAQ_BENCH_FOLDER=DIR cargo bench -p haq-core --bench folder_loader`, DIR holding
//! `train/<class>/*.JPEG`; `HAQ_BENCH_IMAGES` caps the images read per line (default 512).

use std::time::Instant;

use haq_core::data::{Augment, DatasetName, DatasetSpec, Split};

const BATCH: usize = 32;

fn main() {
    // rayon's global pool decodes (a dataset's tensors are not Sync, so a scoped pool
    // cannot borrow it): each thread count runs in a child process of its own.
    let Ok(threads) = std::env::var("HAQ_BENCH_LOADER_THREADS") else {
        for threads in ["1", "2"] {
            let status = std::process::Command::new(std::env::current_exe().expect("own path"))
                .args(std::env::args_os().skip(1))
                .env("HAQ_BENCH_LOADER_THREADS", threads)
                .env("RAYON_NUM_THREADS", threads)
                .status()
                .expect("the bench's child process");
            assert!(status.success(), "the {threads}-thread run failed");
        }
        return;
    };
    let root = std::env::var("HAQ_BENCH_FOLDER")
        .expect("HAQ_BENCH_FOLDER names a folder dataset (scripts/bench-loader makes one)");
    let images: usize = std::env::var("HAQ_BENCH_IMAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let spec = DatasetSpec {
        root: Some(root.clone().into()),
        image_size: Some(224),
        ..DatasetSpec::new(DatasetName::Folder)
    };
    let train = spec.load(Split::Train).expect("the bench's folder dataset");
    let train = train
        .subset(images.min(train.len()), 0)
        .expect("the bench's subset");
    // libtorch's own threads only normalise here; the decoding runs on rayon's.
    tch::set_num_threads(1);
    // One untimed epoch first: the page cache then holds the files, as it does for
    // PyTorch's timed pass.
    for epoch in 0..2 {
        let start = Instant::now();
        let mut seen = 0;
        for batch in train.train_batches(BATCH, &Augment::default(), 0, epoch) {
            seen += batch.expect("decodable images").labels.size()[0] as usize;
        }
        if epoch == 1 {
            let rate = seen as f64 / start.elapsed().as_secs_f64();
            println!("haq threads {threads}: {rate:.0} images/s");
        }
    }
    if threads == "1" {
        decode_only(&root, images);
    }
}

/// The ablation: JPEG decoding to RGB alone (the `image` crate, whose JPEG decoder is
/// zune-jpeg), no resize, crop or tensor, on one thread.
fn decode_only(root: &str, images: usize) {
    let mut paths: Vec<_> = std::fs::read_dir(format!("{root}/train"))
        .expect("the bench's train folder")
        .flat_map(|class| std::fs::read_dir(class.expect("a class folder").path()).unwrap())
        .map(|file| file.expect("an image file").path())
        .collect();
    paths.sort();
    paths.truncate(images);
    let start = Instant::now();
    for path in &paths {
        std::hint::black_box(image::open(path).expect("decodable").to_rgb8());
    }
    let rate = paths.len() as f64 / start.elapsed().as_secs_f64();
    println!("haq decode-only threads 1: {rate:.0} images/s");
}
