//! BitFusion against the simulator's reference layer and the HAQ paper's Table 4.

use haq_cost::arch::{layers, Arch, ArchConfig, LayerKind, LayerShape};
use haq_cost::hw::{build_table, by_name};
use haq_cost::policy::Policy;

/// AlexNet's second conv (one group): 48 -> 128 channels, 5x5, 27x27 output.
fn reference_layer() -> LayerShape {
    LayerShape {
        kind: LayerKind::Conv,
        c_in: 48,
        c_out: 128,
        kernel: 5,
        stride: 1,
        groups: 1,
        in_h: 27,
        in_w: 27,
        out_h: 27,
        out_w: 27,
        params: 48 * 128 * 25,
    }
}

#[test]
fn reference_layer_within_five_percent() {
    // The simulator's count for this layer at batch 16, w4 a4.
    let cycles = by_name("bitfusion")
        .unwrap()
        .cost(&reference_layer(), 4, 4, 16)
        .cycles;
    println!("reference layer: {cycles} cycles, simulator 1255369");
    assert!((cycles / 1_255_369.0 - 1.0).abs() < 0.05, "{cycles}");
}

#[test]
fn fusion_units_trade_precision_for_throughput() {
    // A 1x1 conv with 512 input channels on a batch of 4: 8-bit operands take 32 steps
    // of 16 lanes per output, 4-bit 8 steps of 64 lanes, 2-bit 2 of 256. 5..7 bits
    // compute as 8 and 3 as 4, moving a little less data. At 2 bits the 32-bit partial
    // sums' DRAM traffic, not compute, bounds the layer.
    let bf = by_name("bitfusion").unwrap();
    let ls = layers(&ArchConfig::new(Arch::MobileNetV1, 224, 1000));
    let pw = &ls.iter().find(|l| l.name == "features.6.3").unwrap().shape;
    let cycles = |w: u8, a: u8| bf.cost(pw, w, a, 4).cycles;
    for (w, a) in [
        (8, 8),
        (6, 6),
        (4, 4),
        (3, 3),
        (2, 2),
        (1, 1),
        (8, 4),
        (4, 2),
    ] {
        println!("w{w}a{a}: {} cycles", cycles(w, a));
    }
    let close = |x: f64, y: f64, tol: f64| (x / y - 1.0).abs() < tol;
    assert!(close(cycles(8, 8), 4.0 * cycles(4, 4), 0.1));
    assert!(close(cycles(8, 4), 2.0 * cycles(4, 4), 0.1));
    assert!(close(cycles(6, 6), cycles(8, 8), 0.01));
    assert!(close(cycles(3, 3), cycles(4, 4), 0.05) && cycles(3, 3) <= cycles(4, 4));
    assert!(cycles(2, 2) < 0.8 * cycles(4, 4));
    let energy = |w: u8, a: u8| bf.cost(pw, w, a, 4).energy_j;
    assert!(energy(8, 8) > energy(6, 6) && energy(6, 6) > energy(4, 4));
}

/// HAQ paper Table 4, MobileNet-V1 on BitFusion, fixed-bit PACT: (k, ms, mJ).
const TABLE_4: [(u8, f64, f64); 3] = [(4, 7.86, 13.47), (6, 19.99, 26.80), (8, 20.08, 31.03)];

#[test]
fn mobilenet_v1_within_fifteen_percent_of_table_4() {
    let bf = by_name("bitfusion").unwrap();
    let ls = layers(&ArchConfig::new(Arch::MobileNetV1, 224, 1000));
    let table = build_table(bf.as_ref(), &ls, bf.default_batch());
    let mut worst: f64 = 0.0;
    for (k, paper_ms, paper_mj) in TABLE_4 {
        let cost = table.total(&Policy::uniform(ls.len(), k).bits());
        let (ms, mj) = (cost.latency_s * 1e3, cost.energy_j * 1e3);
        let (e_ms, e_mj) = (ms / paper_ms - 1.0, mj / paper_mj - 1.0);
        println!(
            "uniform:{k}: {ms:.2} ms ({:+.1}%), {mj:.2} mJ ({:+.1}%)",
            e_ms * 100.0,
            e_mj * 100.0
        );
        worst = worst.max(e_ms.abs()).max(e_mj.abs());
    }
    assert!(worst < 0.15, "worst residual {:.1}%", worst * 100.0);
}

#[test]
fn depthwise_layers_use_the_diagonal_units() {
    // Our rule: 16 channels at a time on the diagonal, each unit taking 1, 2 or 4 of the
    // nine taps per cycle at 8, 4 or 2 bits. A depthwise layer therefore costs far more
    // per multiply-accumulate than a pointwise one, and less at fewer bits.
    let bf = by_name("bitfusion").unwrap();
    let ls = layers(&ArchConfig::new(Arch::MobileNetV1, 224, 1000));
    let dw = &ls.iter().find(|l| l.name == "features.6.0").unwrap().shape;
    let pw = &ls.iter().find(|l| l.name == "features.6.3").unwrap().shape;
    assert_eq!(
        (dw.kind, dw.c_in, dw.out_h),
        (LayerKind::Depthwise, 512, 14)
    );
    let per_mac = |l: &LayerShape, b| bf.cost(l, b, b, 1).cycles / l.macs() as f64;
    assert!(per_mac(dw, 8) > 10.0 * per_mac(pw, 8));
    let dw8 = bf.cost(dw, 8, 8, 1).cycles;
    // 14 x 14 pixels x 512 / 16 channel groups x 9 taps: the compute floor at 8 bits.
    assert!(dw8 >= (196 * 32 * 9) as f64);
    assert!(bf.cost(dw, 4, 4, 1).cycles < 0.6 * dw8);
}
