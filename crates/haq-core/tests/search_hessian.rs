//! Hutchinson's Hessian traces: against the exact traces of a quadratic, and on a small
//! MobileNet-V2 per layer, deterministic for a seed and ranking the layers alike across
//! seeds.

use haq_core::arch::{Arch, ArchConfig};
use haq_core::models::Model;
use haq_core::rng::seeded_rng;
use haq_core::search::hessian::{hutchinson, layer_traces, LayerTraces};
use haq_core::stats::spearman;
use rand::Rng;
use tch::{Device, Tensor};

/// Hutchinson's estimates for L = ½ xᵀAx + bᵀx, x = (x1 of 3 entries, x2 of 4), whose
/// Hessian is A: the traces of its two diagonal blocks.
fn quadratic_traces(a: &[f64], probes: usize) -> Vec<f64> {
    let a = Tensor::from_slice(a).reshape([7, 7]);
    let b = Tensor::from_slice(&[0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 1.0]);
    let x1 = Tensor::from_slice(&[1.0, -2.0, 0.5]).set_requires_grad(true);
    let x2 = Tensor::from_slice(&[0.3, 0.0, -1.0, 2.0]).set_requires_grad(true);
    let x = Tensor::cat(&[&x1, &x2], 0);
    let loss = 0.5 * x.dot(&a.mv(&x)) + b.dot(&x);
    let traces = hutchinson(&loss, &[x1, x2], probes, &mut seeded_rng(3, 0));
    assert_eq!(traces.per_probe.len(), probes);
    assert!(traces.per_probe.iter().all(|e| e.len() == 2));
    traces.mean
}

#[test]
fn hutchinson_matches_the_block_traces_of_a_quadratic() {
    // A symmetric A with a dominant diagonal and off-diagonal entries up to 2 in size, so
    // that every probe's estimate is noisy; those across the blocks must not bias them.
    let mut rng = seeded_rng(11, 0);
    let mut a = [0.0; 49];
    for i in 0..7 {
        a[i * 7 + i] = rng.gen_range(2.0..10.0);
        for j in 0..i {
            let v = rng.gen_range(-2.0..2.0);
            a[i * 7 + j] = v;
            a[j * 7 + i] = v;
        }
    }
    let exact = [
        (0..3).map(|i| a[i * 7 + i]).sum::<f64>(),
        (3..7).map(|i| a[i * 7 + i]).sum::<f64>(),
    ];
    let estimate = quadratic_traces(&a, 2000);
    eprintln!("hutchinson, 2000 probes: block traces {estimate:?}, exact {exact:?}");
    for (e, x) in estimate.iter().zip(exact) {
        assert!((e / x - 1.0).abs() < 0.03, "{e} vs exact {x}");
    }
    // Each probe's estimate alone is far off: the agreement is the average's.
    let one = quadratic_traces(&a, 1);
    assert!(one
        .iter()
        .zip(exact)
        .any(|(e, x)| (e / x - 1.0).abs() > 0.03));

    // A diagonal Hessian: v_i² = 1, so every probe is exact.
    let mut diagonal = [0.0; 49];
    for i in 0..7 {
        diagonal[i * 7 + i] = a[i * 7 + i];
    }
    for probes in [1, 3] {
        let estimate = quadratic_traces(&diagonal, probes);
        for (e, x) in estimate.iter().zip(exact) {
            assert!((e - x).abs() < 1e-12, "{probes} probes: {e} vs exact {x}");
        }
    }
}

#[test]
fn spearman_ranks_with_ties() {
    let a = [1.0, 5.0, 2.0, 8.0];
    assert!((spearman(&a, &[10.0, 50.0, 20.0, 80.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&a, &[4.0, 2.0, 3.0, 1.0]) + 1.0).abs() < 1e-12);
    // Ranks (0, 2, 1, 3) against (0.5, 2, 0.5, 3): 4.5 / sqrt(5 * 4.5).
    let tied = spearman(&a, &[1.0, 3.0, 1.0, 4.0]);
    assert!((tied - 4.5 / 22.5f64.sqrt()).abs() < 1e-12, "{tied}");
}

/// Probes per estimate on the small model.
const PROBES: usize = 4;

/// A MobileNet-V2 at width 0.25 on 28 px greyscale (53 layers) with fresh weights, and 4
/// random images and labels: small, as every layer takes its own Hessian-vector product
/// (at 16 px, the last blocks' 1 x 1 maps starve the weights' gradients).
fn small_model() -> (Model, Tensor, Tensor) {
    // Hundreds of small backward passes: a second thread costs more than it brings, and
    // ten times as much on a loaded machine.
    tch::set_num_threads(1);
    let config = ArchConfig {
        width: 0.25,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    };
    let model = Model::new(&config, Device::Cpu, 5).unwrap();
    let mut rng = seeded_rng(5, 0);
    let pixels: Vec<f32> = (0..4 * 28 * 28).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let images = Tensor::from_slice(&pixels).reshape([4, 1, 28, 28]);
    let labels: Vec<i64> = (0..4).map(|_| rng.gen_range(0..10)).collect();
    (model, images, Tensor::from_slice(&labels))
}

fn traces(model: &Model, images: &Tensor, labels: &Tensor, seed: u64) -> LayerTraces {
    layer_traces(model, images, labels, PROBES, seed).unwrap()
}

#[test]
fn layer_traces_are_finite_per_layer_and_deterministic() {
    let _torch = crate::torch_lock();
    let (model, images, labels) = small_model();
    let n = model.layers().len();
    let start = std::time::Instant::now();
    let t = traces(&model, &images, &labels, 1);
    eprintln!(
        "layer traces: {n} layers, {PROBES} probes in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!((t.weights.len(), t.inputs.len()), (n, n));
    assert_eq!(t.per_probe.len(), PROBES);
    assert!(t.per_probe.iter().all(|e| e.len() == 2 * n));
    assert!(t.weights.iter().chain(&t.inputs).all(|v| v.is_finite()));
    // Each block of a piecewise-linear network under cross-entropy is a Gauss-Newton
    // term, positive semi-definite: the estimates scatter about non-negative traces. (At
    // these fresh weights the activations shrink with depth: the traces are tiny.)
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!(
        "layer traces: mean over layers, weights {:.4e}, inputs {:.4e}",
        mean(&t.weights),
        mean(&t.inputs)
    );
    assert!(mean(&t.weights) > 0.0 && mean(&t.inputs) > 0.0);
    // The inputs seen are each layer's, in the shapes of arch::layers.
    for (x, layer) in t.inputs_seen.iter().zip(model.layers()) {
        assert_eq!(x.size()[0], 4, "{}", layer.name);
        assert!(!x.requires_grad());
    }
    assert!(t.inputs_seen[0].equal(&images));
    // No gradient is left in the weights for an optimiser to pick up.
    assert!((0..n).all(|i| !model.layer_weight(i).grad().defined()));

    let again = traces(&model, &images, &labels, 1);
    assert_eq!(again.weights, t.weights);
    assert_eq!(again.inputs, t.inputs);
}

#[test]
fn layer_traces_rank_layers_alike_across_seeds() {
    let _torch = crate::torch_lock();
    let (model, images, labels) = small_model();
    let (a, b) = (
        traces(&model, &images, &labels, 1),
        traces(&model, &images, &labels, 2),
    );
    let (weights, inputs) = (
        spearman(&a.weights, &b.weights),
        spearman(&a.inputs, &b.inputs),
    );
    eprintln!(
        "layer traces, {PROBES} probes, seeds 1 and 2: Spearman over {} layers, \
         weights {weights:.3}, inputs {inputs:.3}",
        a.weights.len()
    );
    assert!(weights > 0.8 && inputs > 0.8);
}
