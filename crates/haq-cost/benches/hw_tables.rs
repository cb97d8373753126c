//! Time to build every lookup table the search needs for MobileNet-V2 (224 x 224, 1000
//! classes): 53 layers x 64 bit pairs on each of the four cost models, in parallel on all
//! cores. Target: under 1 s on 2 cores. Run: `cargo bench -p haq-cost --bench hw_tables`.

use std::time::Instant;

use haq_cost::arch::{layers, Arch, ArchConfig};
use haq_cost::hw::{build_table, by_name, MODEL_NAMES};

fn main() {
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000));
    println!(
        "MobileNet-V2 224x224: {} layers x 64 bit pairs, {} threads",
        ls.len(),
        rayon::current_num_threads()
    );
    let start = Instant::now();
    for name in MODEL_NAMES {
        let model = by_name(name).expect("a known model");
        let t = Instant::now();
        let table = build_table(model.as_ref(), &ls, model.default_batch());
        println!(
            "{name:>12} (batch {:>2}): {:>8.1} ms",
            table.batch,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    println!(
        "{:>23}: {:>8.1} ms",
        "all four",
        start.elapsed().as_secs_f64() * 1e3
    );
}
