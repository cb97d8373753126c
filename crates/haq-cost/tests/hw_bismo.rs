//! BISMO against the HAQ paper's Table 3 and the authors' released cloud latency table, and
//! the roofline effect its policies rest on.

use haq_cost::arch::{layers, Arch, ArchConfig, LayerInfo, LayerKind};
use haq_cost::hw::{build_table, by_name, CostModel, CostTable};
use haq_cost::policy::Policy;
use haq_cost::stats::spearman;

/// How a Table 3 number counts the network.
#[derive(Debug, Clone, Copy)]
enum Count {
    /// `uniform:k` over the whole network, the first layer at w8 a8: the basis of the edge
    /// model's calibration (docs/hardware.md).
    Pact,
    /// The layers between the first conv and the classifier, every one at wk ak: the
    /// released cloud table adds up to Table 3's cloud MobileNet-V2 row this way, to
    /// 0.01 ms (`released_table_sums_to_table_3`).
    Inner,
}

/// HAQ paper Table 3: latency in ms of fixed-bit PACT at k = 4, 5, 6, 8, ImageNet
/// 224 x 224.
const TABLE_3: [(&str, Arch, Count, [f64; 4]); 4] = [
    (
        "bismo-edge",
        Arch::MobileNetV1,
        Count::Pact,
        [45.45, 57.75, 70.67, 96.20],
    ),
    (
        "bismo-edge",
        Arch::MobileNetV2,
        Count::Pact,
        [52.15, 66.94, 82.49, 115.84],
    ),
    (
        "bismo-cloud",
        Arch::MobileNetV1,
        Count::Inner,
        [57.49, 77.52, 99.86, 151.09],
    ),
    (
        "bismo-cloud",
        Arch::MobileNetV2,
        Count::Inner,
        [74.46, 99.43, 127.07, 189.82],
    ),
];

fn imagenet(arch: Arch) -> Vec<LayerInfo> {
    layers(&ArchConfig::new(arch, 224, 1000))
}

/// Latency in ms of the network at k bits, counted as Table 3 counts it.
fn table_3_ms(table: &CostTable, count: Count, k: u8) -> f64 {
    let n = table.layers();
    let seconds = match count {
        Count::Pact => table.total(&Policy::uniform(n, k).bits()).latency_s,
        Count::Inner => (1..n - 1).map(|i| table.get(i, k, k).latency_s).sum(),
    };
    seconds * 1e3
}

#[test]
fn uniform_latency_within_ten_percent_of_table_3() {
    let mut worst: f64 = 0.0;
    for (name, arch, count, paper) in TABLE_3 {
        let model = by_name(name).unwrap();
        let ls = imagenet(arch);
        let table = build_table(model.as_ref(), &ls, model.default_batch());
        for (k, paper_ms) in [4, 5, 6, 8].into_iter().zip(paper) {
            let ms = table_3_ms(&table, count, k);
            let error = ms / paper_ms - 1.0;
            println!(
                "{name} {arch} {count:?} k = {k}: {ms:.2} ms, paper {paper_ms} ms, {:+.1}%",
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
    // row to its last digit. This is how `Count::Inner` counts.
    let reference = released();
    let paper = TABLE_3[3].3;
    for (k, paper_ms) in [4, 5, 6, 8].into_iter().zip(paper) {
        let cycles: f64 = reference[1..52].iter().map(|l| l[k - 1][k - 1]).sum();
        let ms = cycles / 200e6 * 1e3;
        assert!((ms - paper_ms).abs() < 0.005, "k = {k}: {ms:.3} ms");
    }
}

#[test]
fn cloud_within_ten_percent_of_the_released_table() {
    let cloud = by_name("bismo-cloud").unwrap();
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 224, 100));
    let reference = released();
    assert_eq!(reference.len(), ls.len());
    let table = build_table(cloud.as_ref(), &ls, 16);
    let ours = |i: usize, w: usize, a: usize| table.get(i, w as u8, a as u8).cycles;
    println!("k | bismo-cloud (Mcycles) | released (Mcycles) | ratio | Spearman over layers");
    let mut worst: f64 = 0.0;
    let mut worst_rank: f64 = 1.0;
    for k in 1..=8 {
        let x: Vec<f64> = (0..ls.len()).map(|i| ours(i, k, k)).collect();
        let y: Vec<f64> = reference.iter().map(|l| l[k - 1][k - 1]).collect();
        let ratio = x.iter().sum::<f64>() / y.iter().sum::<f64>();
        let rank = spearman(&x, &y);
        println!(
            "{k} | {:.3} | {:.3} | {ratio:.3} | {rank:.4}",
            x.iter().sum::<f64>() / 1e6,
            y.iter().sum::<f64>() / 1e6
        );
        worst = worst.max((ratio - 1.0).abs());
        worst_rank = worst_rank.min(rank);
    }
    // Every layer at every (w, a), as the search looks them up.
    let cells =
        || (0..ls.len()).flat_map(|i| (1..=8).flat_map(move |w| (1..=8).map(move |a| (i, w, a))));
    let x: Vec<f64> = cells().map(|(i, w, a)| ours(i, w, a)).collect();
    let y: Vec<f64> = cells()
        .map(|(i, w, a)| reference[i][w - 1][a - 1])
        .collect();
    let pooled = spearman(&x, &y);
    println!("Spearman over all 53 x 64 entries: {pooled:.4}");
    assert!(worst < 0.10, "worst total off by {:.1}%", worst * 100.0);
    assert!(pooled >= 0.99, "Spearman {pooled:.4}");
    assert!(worst_rank >= 0.98, "Spearman at one k {worst_rank:.4}");
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
