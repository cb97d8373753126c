//! The size model against the HAQ paper's Table 6.

use haq_cost::arch::{layers, Arch, ArchConfig};
use haq_cost::hw::{by_name, LayerCost};

fn size_mib(arch: Arch, w_bits: u8) -> f64 {
    let size = by_name("size").unwrap();
    let total: LayerCost = layers(&ArchConfig::new(arch, 224, 1000))
        .iter()
        .map(|l| size.cost(&l.shape, w_bits, 8, 1))
        .sum();
    total.bytes / (1024.0 * 1024.0)
}

#[test]
fn fp32_sizes_within_one_percent_of_table_6() {
    // Table 6's fp32 sizes in MB (= MiB).
    for (arch, paper) in [
        (Arch::MobileNetV1, 16.14),
        (Arch::MobileNetV2, 13.37),
        (Arch::ResNet50, 97.49),
    ] {
        let mib = size_mib(arch, 32);
        let error = mib / paper - 1.0;
        println!(
            "{arch}: {mib:.3} MiB, paper {paper}, {:+.2}%",
            error * 100.0
        );
        assert!(error.abs() < 0.01, "{arch}: {mib} MiB");
    }
}

#[test]
fn bytes_scale_with_weight_bits_only() {
    let size = by_name("size").unwrap();
    for l in layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000)) {
        let at = |w, a, batch| size.cost(&l.shape, w, a, batch).bytes;
        // Each extra weight bit adds one bit per weight, plus the codebook's doubling.
        let codebook_growth = (1 << 4) as f64 * 4.0;
        assert_eq!(
            at(5, 8, 1) - at(4, 8, 1),
            l.shape.params as f64 / 8.0 + codebook_growth
        );
        assert_eq!(
            at(4, 2, 1),
            at(4, 8, 16),
            "activations and batch change nothing"
        );
        let cost = size.cost(&l.shape, 4, 4, 1);
        assert_eq!(
            (cost.cycles, cost.latency_s, cost.energy_j),
            (0.0, 0.0, 0.0)
        );
    }
    // Quantized to 4 bits, MobileNet-V2 shrinks about 7x (conv + FC weights dominate).
    let ratio = size_mib(Arch::MobileNetV2, 32) / size_mib(Arch::MobileNetV2, 4);
    assert!((6.0..8.0).contains(&ratio), "{ratio}");
}
