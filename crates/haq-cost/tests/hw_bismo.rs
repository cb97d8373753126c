//! BISMO against the HAQ paper's Table 3 and the authors' released cloud latency table, and
//! the roofline effect its policies rest on.

use haq_cost::arch::{layers, Arch, ArchConfig, LayerInfo, LayerKind};
use haq_cost::hw::{build_table, by_name, CostModel};
use haq_cost::policy::Policy;

/// HAQ paper Table 3: latency in ms of fixed-bit PACT (first layer 8 bits, every other
/// layer k bits) at k = 4, 5, 6, 8, ImageNet 224 x 224.
const TABLE_3: [(&str, Arch, [f64; 4]); 4] = [
    (
        "bismo-edge",
        Arch::MobileNetV1,
        [45.45, 57.75, 70.67, 96.20],
    ),
    (
        "bismo-edge",
        Arch::MobileNetV2,
        [52.15, 66.94, 82.49, 115.84],
    ),
    (
        "bismo-cloud",
        Arch::MobileNetV1,
        [57.49, 77.52, 99.86, 151.09],
    ),
    (
        "bismo-cloud",
        Arch::MobileNetV2,
        [74.46, 99.43, 127.07, 189.82],
    ),
];

fn imagenet(arch: Arch) -> Vec<LayerInfo> {
    layers(&ArchConfig::new(arch, 224, 1000))
}

#[test]
fn uniform_latency_within_ten_percent_of_table_3() {
    let mut worst: f64 = 0.0;
    for (name, arch, paper) in TABLE_3 {
        let model = by_name(name).unwrap();
        let ls = imagenet(arch);
        let table = build_table(model.as_ref(), &ls, model.default_batch());
        for (k, paper_ms) in [4, 5, 6, 8].into_iter().zip(paper) {
            let ms = table.total(&Policy::uniform(ls.len(), k).bits()).latency_s * 1e3;
            let error = ms / paper_ms - 1.0;
            println!(
                "{name} {arch} uniform:{k}: {ms:.2} ms, paper {paper_ms} ms, {:+.1}%",
                error * 100.0
            );
            worst = worst.max(error.abs());
        }
    }
    assert!(worst < 0.10, "worst residual {:.1}%", worst * 100.0);
}

/// The authors' released BISMO cloud table (tests/fixtures), `[layer][w - 1][a - 1]` cycles
/// of MobileNet-V2 at 224 px, batch 16, 100 classes.
fn released() -> Vec<[[f64; 8]; 8]> {
    let text = include_str!("fixtures/haq_released_bismo_cloud_mobilenetv2.csv");
    let mut table: Vec<[[f64; 8]; 8]> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<usize> = line.split(',').map(|f| f.parse().unwrap()).collect();
        let (layer, w) = (fields[0], fields[1] - 1);
        if layer == table.len() {
            table.push([[0.0; 8]; 8]);
        }
        for (a, &cycles) in fields[2..].iter().enumerate() {
            table[layer][w][a] = cycles as f64;
        }
    }
    table
}

#[test]
fn released_table_sums_to_table_3() {
    // Cycles at 200 MHz, first conv and classifier left out: Table 3's cloud MobileNet-V2
    // row to its last digit.
    let reference = released();
    let paper = TABLE_3[3].2;
    for (k, paper_ms) in [4, 5, 6, 8].into_iter().zip(paper) {
        let cycles: f64 = reference[1..52].iter().map(|l| l[k - 1][k - 1]).sum();
        let ms = cycles / 200e6 * 1e3;
        assert!((ms - paper_ms).abs() < 0.005, "k = {k}: {ms:.3} ms");
    }
}

fn latency(model: &dyn CostModel, layer: &LayerInfo, w: u8, a: u8) -> f64 {
    model
        .cost(&layer.shape, w, a, model.default_batch())
        .latency_s
}

#[test]
fn depthwise_layers_are_memory_bound_on_the_edge() {
    let edge = by_name("bismo-edge").unwrap();
    let ls = imagenet(Arch::MobileNetV2);
    let depthwise: Vec<&LayerInfo> = ls
        .iter()
        .filter(|l| l.shape.kind == LayerKind::Depthwise)
        .collect();
    assert_eq!(depthwise.len(), 17);
    for l in depthwise {
        let base = latency(edge.as_ref(), l, 4, 4);
        // Four times the weight bits: hardly slower.
        let wide_weights = latency(edge.as_ref(), l, 8, 4) / base;
        assert!(wide_weights < 1.05, "{}: w8/w4 = {wide_weights:.3}", l.name);
        // Twice the activation bits: about twice as slow.
        let wide_acts = latency(edge.as_ref(), l, 4, 8) / base;
        assert!(
            (1.9..=2.1).contains(&wide_acts),
            "{}: a8/a4 = {wide_acts:.3}",
            l.name
        );
    }
}

#[test]
fn pointwise_layers_grow_with_weight_bits_on_the_edge() {
    // The contrast the paper's edge policies show: unlike the depthwise layers, the 1x1
    // convs together get much slower with wider weights (most are compute bound).
    let edge = by_name("bismo-edge").unwrap();
    let ls = imagenet(Arch::MobileNetV2);
    let pointwise = || {
        ls.iter()
            .filter(|l| l.shape.kind == LayerKind::Conv && l.shape.kernel == 1)
    };
    let total = |w: u8| -> f64 { pointwise().map(|l| latency(edge.as_ref(), l, w, 8)).sum() };
    let ratio = total(8) / total(4);
    assert!(ratio > 1.5, "w8a8 / w4a8 = {ratio:.3}");
}

#[test]
fn cloud_runs_a_batch_of_16_and_edge_one_image() {
    assert_eq!(by_name("bismo-cloud").unwrap().default_batch(), 16);
    assert_eq!(by_name("bismo-edge").unwrap().default_batch(), 1);
    // A batch of 16 images costs 16 single images for convolutions.
    let cloud = by_name("bismo-cloud").unwrap();
    let conv = &imagenet(Arch::MobileNetV1)[2].shape;
    let one = cloud.cost(conv, 6, 6, 1).cycles;
    assert_eq!(cloud.cost(conv, 6, 6, 16).cycles, 16.0 * one);
}
