//! The integer program that picks one option per layer: optimal against brute force on
//! small random problems, a clear error when nothing fits, and its solve time at the size
//! of ResNet-50 and MobileNet-V2 (54 and 53 layers, 6 x 6 bit pairs each).

use std::time::Instant;

use haq_core::error::Error;
use haq_core::rng::seeded_rng;
use haq_core::search::ilp::{choose, Choice};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Bit widths 3..=8 of weights and activations: 36 options per layer.
const BITS: std::ops::RangeInclusive<u32> = 3..=8;

/// Options like a mixed-precision search's: each layer's cost is its MACs (log-uniform
/// over three decades) times its weight and activation bits, its sensitivity a random
/// trace times 4^-bits for weights and for activations (the noise of a uniform quantizer).
fn realistic(rng: &mut ChaCha8Rng, layers: usize) -> Vec<Vec<Choice>> {
    (0..layers)
        .map(|_| {
            let macs = 10f64.powf(rng.gen_range(5.0..8.0));
            let (tw, ta) = (rng.gen_range(0.1..10.0), rng.gen_range(0.1..10.0));
            BITS.flat_map(|w| BITS.map(move |a| (w, a)))
                .map(|(w, a)| Choice {
                    cost: macs * f64::from(w * a),
                    sensitivity: tw * 4f64.powi(-(w as i32)) + ta * 4f64.powi(-(a as i32)),
                })
                .collect()
        })
        .collect()
}

fn totals(options: &[Vec<Choice>], picks: &[usize]) -> (f64, f64) {
    options
        .iter()
        .zip(picks)
        .fold((0.0, 0.0), |(c, s), (l, &j)| {
            (c + l[j].cost, s + l[j].sensitivity)
        })
}

/// The least total sensitivity within `budget` over every combination, if any fits.
fn brute_force(options: &[Vec<Choice>], budget: f64) -> Option<f64> {
    let mut picks = vec![0; options.len()];
    let mut best: Option<f64> = None;
    loop {
        let (cost, sensitivity) = totals(options, &picks);
        if cost <= budget && best.is_none_or(|b| sensitivity < b) {
            best = Some(sensitivity);
        }
        // The next combination, as an odometer.
        let mut i = 0;
        loop {
            if i == options.len() {
                return best;
            }
            picks[i] += 1;
            if picks[i] < options[i].len() {
                break;
            }
            picks[i] = 0;
            i += 1;
        }
    }
}

/// A budget a fraction `t` of the way from the cheapest total to the dearest.
fn budget_between(options: &[Vec<Choice>], t: f64) -> f64 {
    let sum = |pick: fn(f64, f64) -> f64| -> f64 {
        options
            .iter()
            .map(|l| l.iter().map(|c| c.cost).reduce(pick).unwrap())
            .sum()
    };
    let (least, most) = (sum(f64::min), sum(f64::max));
    least + t * (most - least)
}

#[test]
fn matches_brute_force_on_small_random_problems() {
    for seed in 0..8 {
        let mut rng = seeded_rng(seed, 0);
        let options: Vec<Vec<Choice>> = (0..4)
            .map(|_| {
                (0..6)
                    .map(|_| Choice {
                        cost: rng.gen_range(1.0..100.0),
                        sensitivity: rng.gen_range(0.0..1.0),
                    })
                    .collect()
            })
            .collect();
        for t in [0.0, 0.1, 0.3, 0.5, 0.8, 1.0] {
            let budget = budget_between(&options, t);
            let picks = choose(&options, budget).unwrap();
            assert_eq!(picks.len(), 4);
            let (cost, sensitivity) = totals(&options, &picks);
            let best = brute_force(&options, budget).unwrap();
            assert!(cost <= budget, "seed {seed}, t {t}: cost {cost} > {budget}");
            assert!(
                (sensitivity - best).abs() <= 1e-9 * best.max(1.0),
                "seed {seed}, t {t}: {sensitivity} vs brute force {best}"
            );
        }
    }
}

#[test]
fn a_budget_below_the_cheapest_options_is_an_error_naming_their_cost() {
    let options = vec![
        vec![
            Choice {
                cost: 2.0,
                sensitivity: 1.0,
            },
            Choice {
                cost: 5.0,
                sensitivity: 0.0,
            },
        ],
        vec![Choice {
            cost: 1.5,
            sensitivity: 0.0,
        }],
    ];
    let err = choose(&options, 3.0).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("3.5"), "{err}");
    // At exactly the cheapest total, the cheapest options are the answer.
    assert_eq!(choose(&options, 3.5).unwrap(), [0, 0]);
    // With room for the dearer option, it wins on sensitivity.
    assert_eq!(choose(&options, 6.5).unwrap(), [1, 0]);
}

/// Solves a realistic problem of `layers` x 36 options at a budget midway and prints the
/// time taken.
fn solve_timed(name: &str, layers: usize) {
    let options = realistic(&mut seeded_rng(7, 0), layers);
    let budget = budget_between(&options, 0.5);
    let start = Instant::now();
    let picks = choose(&options, budget).unwrap();
    let elapsed = start.elapsed();
    let (cost, sensitivity) = totals(&options, &picks);
    eprintln!(
        "ilp {name}: {layers} layers x 36 options solved in {:.3} s \
         (cost {cost:.4e} of budget {budget:.4e}, sensitivity {sensitivity:.4e})",
        elapsed.as_secs_f64()
    );
    assert_eq!(picks.len(), layers);
    assert!(picks.iter().all(|&j| j < 36));
    assert!(cost <= budget);
}

#[test]
fn solves_resnet50_and_mobilenetv2_sized_problems() {
    solve_timed("resnet-50", 54);
    solve_timed("mobilenet-v2", 53);
}
