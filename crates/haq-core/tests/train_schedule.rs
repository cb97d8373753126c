//! The cosine learning-rate schedule with linear warm-up.

use haq_core::train::CosineSchedule;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn warms_up_linearly_then_decays_by_cosine() {
    let s = CosineSchedule {
        base_lr: 0.4,
        final_lr: 0.0,
        warmup_steps: 4,
        total_steps: 14,
    };
    let lrs: Vec<f64> = (0..14).map(|i| s.lr(i)).collect();
    for (i, want) in [0.1, 0.2, 0.3, 0.4].iter().enumerate() {
        assert!(close(lrs[i], *want), "warm-up step {i}: {}", lrs[i]);
    }
    // Nine decay steps after warm-up: the middle one is at half the rate, the last at 0.
    assert!(close(lrs[4], 0.4));
    assert!(close(
        lrs[8],
        0.2 + 0.2 * (std::f64::consts::PI * 4.0 / 9.0).cos()
    ));
    assert!(close(lrs[13], 0.0));
    assert!(lrs[4..].windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    // Past the end it stays at the final rate.
    assert!(close(s.lr(100), 0.0));
}

#[test]
fn without_warm_up_starts_at_the_base_rate_and_ends_at_the_final_one() {
    let s = CosineSchedule {
        base_lr: 0.1,
        final_lr: 0.001,
        warmup_steps: 0,
        total_steps: 3,
    };
    assert!(close(s.lr(0), 0.1));
    assert!(close(s.lr(1), 0.001 + 0.099 * 0.5));
    assert!(close(s.lr(2), 0.001));
    let one_step = CosineSchedule {
        base_lr: 0.1,
        final_lr: 0.0,
        warmup_steps: 0,
        total_steps: 1,
    };
    assert!(close(one_step.lr(0), 0.1));
}
