//! The search environment: the action-to-bits mapping, the observations, and the policy an
//! episode's actions choose.

use haq_cost::arch::{layers, Arch, ArchConfig, LayerKind};
use haq_cost::env::{BitRange, Env, Mode, N_FEATURES};
use haq_cost::policy::Policy;

#[test]
fn actions_map_to_equal_bins_with_edges_in_the_upper_bin() {
    for (min, max) in [(2, 8), (1, 8), (3, 6), (4, 4)] {
        let range = BitRange::new(min, max).unwrap();
        let n = u32::from(max - min + 1);
        assert_eq!(range.bits(0.0), min, "a = 0 in {min}..={max}");
        assert_eq!(range.bits(1.0), max, "a = 1 in {min}..={max}");
        for k in 1..n {
            let edge = k as f32 / n as f32;
            let below = min + k as u8 - 1;
            assert_eq!(range.bits(edge - 1e-6), below, "just below edge {k}/{n}");
            assert_eq!(
                range.bits(edge + 1e-6),
                below + 1,
                "just above edge {k}/{n}"
            );
            // Where the edge is exact in f32 (n a power of two) it belongs to the upper bin.
            if n.is_power_of_two() {
                assert_eq!(range.bits(edge), below + 1, "at edge {k}/{n}");
            }
        }
        // Actions outside [0, 1] clamp.
        assert_eq!(range.bits(-0.3), min);
        assert_eq!(range.bits(1.7), max);
    }
}

#[test]
fn bit_ranges_outside_one_to_eight_are_rejected() {
    for (min, max) in [(0, 8), (2, 9), (5, 4)] {
        let err = BitRange::new(min, max).unwrap_err().to_string();
        assert!(err.contains("min <= max"), "{err}");
    }
    assert_eq!(
        BitRange::default_for(Mode::Linear),
        BitRange::new(2, 8).unwrap()
    );
    assert_eq!(
        BitRange::default_for(Mode::Kmeans),
        BitRange::new(1, 8).unwrap()
    );
}

#[test]
fn observations_describe_each_layer_scaled_to_the_unit_interval() {
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000));
    let env = Env::new(&ls, Mode::Linear, BitRange::default_for(Mode::Linear)).unwrap();
    assert_eq!(env.steps(), 2 * ls.len());
    let obs: Vec<_> = (0..env.steps())
        .map(|step| env.observation(step, 0.25))
        .collect();
    for (step, o) in obs.iter().enumerate() {
        assert_eq!(o.len(), N_FEATURES);
        assert!(
            o.iter().all(|x| (0.0..=1.0).contains(x)),
            "step {step}: {o:?}"
        );
        // Weight step, then activation step, of the same layer.
        assert_eq!(o[8], if step % 2 == 0 { 1.0 } else { 0.0 });
        assert_eq!(o[9], 0.25);
        assert_eq!(o[..8], obs[step - step % 2][..8]);
    }
    // Min-max scaling: the first layer has index 0, the last index 1; the largest layer by
    // parameters scores 1 on that feature; depthwise layers are flagged.
    assert_eq!(obs[0][0], 0.0);
    assert_eq!(obs[env.steps() - 1][0], 1.0);
    let largest = (0..ls.len()).max_by_key(|&i| ls[i].shape.params).unwrap();
    assert_eq!(obs[2 * largest][7], 1.0);
    for (i, layer) in ls.iter().enumerate() {
        let depthwise = layer.shape.kind == LayerKind::Depthwise;
        assert_eq!(
            obs[2 * i][5],
            if depthwise { 1.0 } else { 0.0 },
            "layer {i}"
        );
        // The largest input feature map (the stem's 224x224) scores 1.
        assert_eq!(obs[2 * i][6] == 1.0, layer.shape.in_h == 224, "layer {i}");
    }
}

#[test]
fn actions_choose_a_policy_with_the_first_layer_pinned_in_linear_mode() {
    let ls = layers(&ArchConfig::new(Arch::ResNet18, 32, 10));
    let n = ls.len();
    let linear = Env::new(&ls, Mode::Linear, BitRange::default_for(Mode::Linear)).unwrap();
    // Layer i's weight action and activation action, chosen to land on known widths.
    let actions: Vec<f32> = (0..n)
        .flat_map(|i| {
            [
                (i % 7) as f32 / 7.0 + 0.01,
                1.0 - (i % 7) as f32 / 7.0 - 0.01,
            ]
        })
        .collect();
    let policy = linear.policy(&actions);
    policy.check(n).unwrap();
    for (i, layer) in policy.layers.iter().enumerate().skip(1) {
        assert_eq!(layer.w_bits, 2 + (i % 7) as u8, "layer {i}");
        assert_eq!(layer.a_bits, Some(8 - (i % 7) as u8), "layer {i}");
    }
    assert_eq!(
        policy.layers[0],
        Policy::uniform(n, 2).layers[0],
        "pinned w8 a8"
    );
    assert_eq!(linear.min_policy(), Policy::uniform(n, 2));

    let kmeans = Env::new(&ls, Mode::Kmeans, BitRange::default_for(Mode::Kmeans)).unwrap();
    assert_eq!(kmeans.steps(), n);
    assert!((0..n).all(|step| kmeans.observation(step, 0.0)[8] == 1.0));
    let policy = kmeans.policy(&vec![0.0; n]);
    assert_eq!(
        policy,
        Policy::uniform_weights(n, 1),
        "nothing pinned in k-means mode"
    );
}
