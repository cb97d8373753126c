//! k-means weight sharing: the clustering itself, and the KmeansQuantizer keeping exactly
//! 2^b shared values per layer through training.

use haq_core::quant::kmeans::kmeans;
use haq_core::quant::{KmeansQuantizer, Policy};
use haq_core::rng::seeded_rng;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn distinct(t: &Tensor) -> i64 {
    t.flatten(0, -1).internal_unique(true, false).0.size()[0]
}

fn gaussian(n: i64) -> Vec<f32> {
    Vec::<f32>::try_from(Tensor::randn([n], (Kind::Float, Device::Cpu))).unwrap()
}

#[test]
fn clusters_are_lloyd_fixed_points() {
    let _torch = crate::torch_lock();
    tch::manual_seed(11);
    let values = gaussian(5000);
    for bits in 1..=5u32 {
        let k = 1usize << bits;
        let c = kmeans(&values, k, &mut seeded_rng(3, 0));
        assert_eq!(c.centroids.len(), k);
        assert!(
            c.centroids.windows(2).all(|p| p[0] < p[1]),
            "ascending, distinct"
        );
        for (j, &centroid) in c.centroids.iter().enumerate() {
            let members: Vec<f64> = values
                .iter()
                .zip(&c.assignment)
                .filter(|(_, &a)| a as usize == j)
                .map(|(&v, _)| f64::from(v))
                .collect();
            assert!(!members.is_empty(), "{bits} bits: cluster {j} empty");
            let mean = members.iter().sum::<f64>() / members.len() as f64;
            assert!(
                (mean - f64::from(centroid)).abs() < 1e-5,
                "centroid {j} is its mean"
            );
        }
        // Converged: every value sits with its nearest centroid.
        for (&v, &a) in values.iter().zip(&c.assignment) {
            let own = (v - c.centroids[a as usize]).abs();
            let nearest = c
                .centroids
                .iter()
                .map(|&m| (v - m).abs())
                .fold(f32::MAX, f32::min);
            assert!(own <= nearest + 1e-6, "{v} assigned to {a}, not nearest");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_clusters() {
    let _torch = crate::torch_lock();
    tch::manual_seed(12);
    let values = gaussian(3000);
    let a = kmeans(&values, 16, &mut seeded_rng(5, 2));
    assert_eq!(a, kmeans(&values, 16, &mut seeded_rng(5, 2)));
}

#[test]
fn fewer_distinct_values_than_clusters_gives_one_cluster_each() {
    let _torch = crate::torch_lock();
    let values: Vec<f32> = (0..100).map(|i| (i % 3) as f32 - 1.0).collect();
    let c = kmeans(&values, 8, &mut seeded_rng(0, 0));
    assert_eq!(c.centroids, [-1.0, 0.0, 1.0]);
    for (v, a) in values.iter().zip(&c.assignment) {
        assert_eq!(c.centroids[*a as usize], *v);
    }
}

/// Three layers of a small MLP with their weights; `bits` per layer.
fn mlp(vs: &nn::VarStore) -> (nn::Sequential, Vec<Tensor>) {
    let root = vs.root();
    let (l1, l2, l3) = (
        nn::linear(&root / "l1", 64, 128, Default::default()),
        nn::linear(&root / "l2", 128, 64, Default::default()),
        nn::linear(&root / "l3", 64, 10, Default::default()),
    );
    let weights = vec![
        l1.ws.shallow_clone(),
        l2.ws.shallow_clone(),
        l3.ws.shallow_clone(),
    ];
    let net = nn::seq()
        .add(l1)
        .add_fn(|x| x.relu())
        .add(l2)
        .add_fn(|x| x.relu())
        .add(l3);
    (net, weights)
}

#[test]
fn every_layer_keeps_exactly_2_pow_b_values_through_training() {
    let _torch = crate::torch_lock();
    tch::manual_seed(13);
    let vs = nn::VarStore::new(Device::Cpu);
    let (net, weights) = mlp(&vs);
    let mut policy = Policy::uniform_weights(3, 3);
    policy.layers[0].w_bits = 1;
    policy.layers[2].w_bits = 4;
    let mut quant = KmeansQuantizer::new(
        weights.iter().map(|w| w.shallow_clone()).collect(),
        &policy,
        9,
    )
    .unwrap();
    let counts = |ws: &[Tensor]| ws.iter().map(distinct).collect::<Vec<_>>();
    assert_eq!(counts(&weights), [2, 8, 16]);

    let before: Vec<Tensor> = weights.iter().map(|w| w.copy()).collect();
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, 0.05)
    .unwrap();
    let x = Tensor::randn([32, 64], (Kind::Float, Device::Cpu));
    let labels = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
    opt.backward_step(&net.forward(&x).cross_entropy_for_logits(&labels));
    assert!(
        counts(&weights).iter().zip([2, 8, 16]).all(|(&n, k)| n > k),
        "a step unshares"
    );

    quant.update();
    assert_eq!(counts(&weights), [2, 8, 16]);
    for (w, old) in weights.iter().zip(&before) {
        assert!(!w.equal(old), "the shared values moved");
        // The assignment is kept: weights that shared a value still share one.
        let (values, inverse) = old.flatten(0, -1).internal_unique(true, true);
        let new = w.flatten(0, -1);
        for j in 0..values.size()[0] {
            assert_eq!(distinct(&new.masked_select(&inverse.eq(j))), 1);
        }
    }
}

#[test]
fn clustering_snapped_weights_again_changes_nothing() {
    let _torch = crate::torch_lock();
    // What a resumed finetune relies on: the state rebuilds from the saved weights.
    tch::manual_seed(14);
    let vs = nn::VarStore::new(Device::Cpu);
    let (_, weights) = mlp(&vs);
    let policy = Policy::uniform_weights(3, 2);
    let copies = || weights.iter().map(|w| w.shallow_clone()).collect();
    KmeansQuantizer::new(copies(), &policy, 1).unwrap();
    let snapped: Vec<Tensor> = weights.iter().map(|w| w.copy()).collect();
    KmeansQuantizer::new(copies(), &policy, 2).unwrap();
    assert!(weights.iter().zip(&snapped).all(|(w, s)| w.equal(s)));
}

#[test]
fn a_linear_policy_is_refused() {
    let _torch = crate::torch_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let (_, weights) = mlp(&vs);
    let err = KmeansQuantizer::new(weights, &Policy::uniform(3, 4), 0)
        .err()
        .unwrap();
    assert!(err.to_string().contains("weight-only"), "{err}");
}
