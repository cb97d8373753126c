//! The budget: its three forms, the rejection of budgets no policy can meet, and the sweep
//! that brings a policy within budget, checked over random policies and budgets on real
//! cost models of MobileNet-V2's layers.

use haq_core::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_core::error::CostError as Error;
use haq_core::hw::{build_table, by_name, CostTable, Unit};
use haq_core::quant::{LayerBits, Policy};
use haq_core::rng::seeded_rng;
use haq_core::search::{BitRange, Budget, Constraint, CostFunction, Env, Mode, Repair};
use rand::Rng;

/// A real cost model on `layers`, as the search stage uses it: a lookup table of every
/// layer at every bit pair, and the paper's reference cost.
struct Costs {
    table: CostTable,
    unit: Unit,
    reference: f64,
}

impl Costs {
    fn new(model: &str, unit: Unit, mode: Mode, layers: &[LayerInfo]) -> Costs {
        let model = by_name(model).unwrap();
        let table = build_table(model.as_ref(), layers, model.default_batch());
        let mut costs = Costs {
            table,
            unit,
            reference: 0.0,
        };
        costs.reference = match mode {
            // Size: fp32 weights, beyond the table's 1..=8 bits.
            Mode::Kmeans => layers
                .iter()
                .map(|l| model.cost(&l.shape, 32, 32, 1).value(unit))
                .sum(),
            Mode::Linear => costs.cost(&Policy::uniform(layers.len(), 8)),
        };
        costs
    }

    fn cost(&self, policy: &Policy) -> f64 {
        policy
            .layers
            .iter()
            .enumerate()
            // Weight-only (k-means) policies are costed by the size model, which ignores
            // activation bits.
            .map(|(i, l)| {
                self.table
                    .get(i, l.w_bits, l.a_bits.unwrap_or(8))
                    .value(self.unit)
            })
            .sum()
    }

    fn cost_function(&self) -> CostFunction<'_> {
        CostFunction {
            cost: Box::new(|p| self.cost(p)),
            unit: self.unit,
            reference: Some(self.reference),
        }
    }
}

fn mobilenet_v2() -> Vec<LayerInfo> {
    layers(&ArchConfig::new(Arch::MobileNetV2, 224, 1000))
}

/// The three objectives of the paper: latency (BISMO edge), energy (BitFusion) and size.
const OBJECTIVES: [(&str, Unit, Mode); 3] = [
    ("bismo-edge", Unit::Ms, Mode::Linear),
    ("bitfusion", Unit::Mj, Mode::Linear),
    ("size", Unit::Bytes, Mode::Kmeans),
];

fn random_policy(env: &Env, rng: &mut impl Rng) -> Policy {
    let actions: Vec<f32> = (0..env.steps()).map(|_| rng.gen()).collect();
    env.policy(&actions)
}

#[test]
fn the_sweep_ends_within_budget_and_leaves_the_pinned_layer_alone() {
    let ls = mobilenet_v2();
    let mut rng = seeded_rng(7, 0);
    for (model, unit, mode) in OBJECTIVES {
        for range in [BitRange::default_for(mode), BitRange::new(3, 6).unwrap()] {
            let env = Env::new(&ls, mode, range).unwrap();
            let costs = Costs::new(model, unit, mode, &ls);
            let min = costs.cost(&env.min_policy());
            let max = costs.cost(&env.policy(&vec![1.0; env.steps()]));
            let (mut swept, mut first_pass) = (0, 0);
            for trial in 0..40 {
                // Budgets from the cheapest policy to above the dearest.
                let value = min + rng.gen::<f64>() * 1.1 * (max - min);
                let budget = Budget::Absolute { value, unit };
                let constraint = Constraint::new(costs.cost_function(), &budget, &env)
                    .unwrap_or_else(|e| panic!("{model} budget {value}: {e}"));
                let before = random_policy(&env, &mut rng);
                let mut after = before.clone();
                let cost = constraint.enforce(&mut after).unwrap();
                let what = format!("{model} {range:?} trial {trial}: budget {value}");
                assert_eq!(cost, constraint.cost(&after), "{what}");
                assert!(cost <= value, "{what}: cost {cost}");
                after.check(ls.len()).unwrap();
                if constraint.cost(&before) <= value {
                    assert_eq!(after, before, "{what}: a policy within budget is kept");
                    continue;
                }
                swept += 1;
                if mode == Mode::Linear {
                    assert_eq!(after.layers[0], before.layers[0], "{what}: pinned layer");
                }
                for (i, (b, a)) in before.layers.iter().zip(&after.layers).enumerate() {
                    let lowered = |x: u8, y: u8| y <= x && (y == x || y >= range.min);
                    assert!(lowered(b.w_bits, a.w_bits), "{what}: layer {i} {b} -> {a}");
                    let (ba, aa) = (b.a_bits.unwrap_or(0), a.a_bits.unwrap_or(0));
                    assert!(lowered(ba, aa), "{what}: layer {i} {b} -> {a}");
                }
                // The sweep stops at the first fit. Where it stopped within its first pass
                // (no bit lowered twice), the last step was on the frontmost changed layer,
                // its weights if they changed, and undoing it must exceed the budget.
                let single_pass = before.layers.iter().zip(&after.layers).all(|(b, a)| {
                    b.w_bits - a.w_bits <= 1 && b.a_bits.unwrap_or(0) - a.a_bits.unwrap_or(0) <= 1
                });
                if single_pass {
                    first_pass += 1;
                    let first = (0..ls.len())
                        .find(|&i| before.layers[i] != after.layers[i])
                        .unwrap();
                    let mut undone = after.clone();
                    let l = &mut undone.layers[first];
                    if l.w_bits < before.layers[first].w_bits {
                        l.w_bits += 1;
                    } else {
                        l.a_bits = l.a_bits.map(|a| a + 1);
                    }
                    assert!(constraint.cost(&undone) > value, "{what}: lowered too far");
                }
            }
            assert!(
                swept > 10,
                "{model}: only {swept} of 40 trials needed the sweep"
            );
            assert!(
                first_pass > 3,
                "{model}: only {first_pass} sweeps ended in their first pass"
            );
        }
    }
}

#[test]
fn a_budget_below_the_cheapest_policy_is_rejected_naming_the_minimum() {
    let ls = mobilenet_v2();
    for (model, unit, mode) in OBJECTIVES {
        let env = Env::new(&ls, mode, BitRange::default_for(mode)).unwrap();
        let costs = Costs::new(model, unit, mode, &ls);
        let minimum = costs.cost(&env.min_policy());
        let budget = Budget::Absolute {
            value: minimum * 0.999,
            unit,
        };
        let err = Constraint::new(costs.cost_function(), &budget, &env)
            .err()
            .expect("infeasible");
        assert!(
            matches!(err, Error::Budget { minimum: m, .. } if m == minimum),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("{minimum} {unit}")), "{message}");

        // Exactly the minimum is feasible, and the sweep then reaches the least cost (a
        // policy as cheap as the cheapest: a bit more may cost nothing, e.g. where fetching
        // rather than computing bounds a layer's latency).
        let budget = Budget::Absolute {
            value: minimum,
            unit,
        };
        let constraint = Constraint::new(costs.cost_function(), &budget, &env).unwrap();
        let mut policy = env.policy(&vec![1.0; env.steps()]);
        assert_eq!(constraint.enforce(&mut policy).unwrap(), minimum);
    }
}

#[test]
fn budgets_resolve_from_a_ratio_a_matched_policy_or_an_absolute_cost() {
    let ls = mobilenet_v2();
    let n = ls.len();
    let linear = Env::new(&ls, Mode::Linear, BitRange::default_for(Mode::Linear)).unwrap();
    let kmeans = Env::new(&ls, Mode::Kmeans, BitRange::default_for(Mode::Kmeans)).unwrap();
    let cloud = Costs::new("bismo-cloud", Unit::Ms, Mode::Linear, &ls);
    let bytes = Costs::new("size", Unit::Bytes, Mode::Kmeans, &ls);
    let latency = || cloud.cost_function();
    let size = || bytes.cost_function();
    let parse = |json: &str| -> Budget { serde_json::from_str(json).unwrap() };

    let (w8, w4) = (
        cloud.cost(&Policy::uniform(n, 8)),
        cloud.cost(&Policy::uniform(n, 4)),
    );
    let ratio = Constraint::new(latency(), &parse(r#"{"ratio": 0.5}"#), &linear).unwrap();
    assert_eq!(ratio.budget(), 0.5 * w8);
    let matched = Constraint::new(latency(), &parse(r#"{"match": "uniform:4"}"#), &linear).unwrap();
    assert_eq!(matched.budget(), w4);
    let absolute = parse(r#"{"absolute": {"value": 125.5, "unit": "ms"}}"#);
    assert_eq!(
        Constraint::new(latency(), &absolute, &linear)
            .unwrap()
            .budget(),
        125.5
    );

    // Size ratios are fractions of the fp32 model; MobileNet-V2's is 13.37 MiB (HAQ Table 6).
    let fp32 = Constraint::new(size(), &Budget::Ratio(1.0), &kmeans).unwrap();
    assert!(
        (fp32.budget() / (1 << 20) as f64 - 13.37).abs() < 0.01,
        "{}",
        fp32.budget()
    );
    let w2 = Policy::uniform_weights(n, 2);
    let matched = Constraint::new(size(), &Budget::Match("uniform-w2".into()), &kmeans).unwrap();
    assert_eq!(matched.budget(), matched.cost(&w2));

    // Mistakes name what to fix.
    let wrong_unit = Constraint::new(size(), &absolute, &kmeans).err().unwrap();
    assert!(
        wrong_unit.to_string().contains("give it in bytes"),
        "{wrong_unit}"
    );
    let wrong_mode = Constraint::new(size(), &parse(r#"{"match": "uniform:4"}"#), &kmeans)
        .err()
        .unwrap();
    assert!(wrong_mode.to_string().contains("same mode"), "{wrong_mode}");
    let negative = Constraint::new(latency(), &Budget::Ratio(-1.0), &linear)
        .err()
        .unwrap();
    assert!(negative.to_string().contains("positive"), "{negative}");
    assert!(serde_json::from_str::<Budget>(r#"{"ratio": 0.5, "match": "x"}"#).is_err());

    // The pinned first layer stays w8 a8 even under the tightest budget.
    let tight = Constraint::new(latency(), &Budget::Match("uniform:2".into()), &linear).unwrap();
    let mut policy = Policy::uniform(n, 8);
    assert_eq!(tight.enforce(&mut policy).unwrap(), tight.budget());
    assert_eq!(
        policy.layers[0],
        LayerBits {
            w_bits: 8,
            a_bits: Some(8)
        }
    );
}

/// The widest-first repair ends within budget on real cost models, only lowers bits
/// within the range, and leaves the pinned layer alone.
#[test]
fn the_widest_first_repair_ends_within_budget() {
    let ls = mobilenet_v2();
    let mut rng = seeded_rng(11, 0);
    let mut repaired = 0;
    for (model, unit, mode) in OBJECTIVES {
        let range = BitRange::new(3, 8).unwrap();
        let env = Env::new(&ls, mode, range).unwrap();
        let costs = Costs::new(model, unit, mode, &ls);
        let min = costs.cost(&env.min_policy());
        let max = costs.cost(&env.policy(&vec![1.0; env.steps()]));
        for trial in 0..20 {
            let value = min + rng.gen::<f64>() * (max - min);
            let budget = Budget::Absolute { value, unit };
            let constraint = Constraint::new(costs.cost_function(), &budget, &env).unwrap();
            let before = random_policy(&env, &mut rng);
            let mut after = before.clone();
            let cost = constraint.repair(&mut after, Repair::Widest).unwrap();
            let what = format!("{model} trial {trial}: budget {value}");
            assert!(
                cost <= value && cost == constraint.cost(&after),
                "{what}: {cost}"
            );
            after.check(ls.len()).unwrap();
            if constraint.cost(&before) <= value {
                assert_eq!(after, before, "{what}: a policy within budget is kept");
                continue;
            }
            repaired += 1;
            if mode == Mode::Linear {
                assert_eq!(after.layers[0], before.layers[0], "{what}: pinned layer");
            }
            for (b, a) in before.layers.iter().zip(&after.layers) {
                let lowered = a.w_bits <= b.w_bits && a.w_bits >= range.min.min(b.w_bits);
                assert!(lowered, "{what}: {b} -> {a}");
                assert!(a.a_bits <= b.a_bits, "{what}: {b} -> {a}");
            }
        }
    }
    assert!(repaired >= 20, "only {repaired} trials needed a repair");
}

/// Where every bit costs the same, widest-first is water-filling from the top: after it
/// no width exceeds the narrowest lowered one by more than a bit, and it lowers exactly as
/// many bits as the excess.
#[test]
fn the_widest_first_repair_lowers_the_widest_bits_first() {
    let ls = mobilenet_v2();
    let range = BitRange::new(2, 8).unwrap();
    let env = Env::new(&ls, Mode::Linear, range).unwrap();
    let bits = |p: &Policy| -> f64 {
        p.bits()
            .iter()
            .map(|&(w, a)| f64::from(w) + f64::from(a))
            .sum()
    };
    let mut rng = seeded_rng(12, 0);
    for trial in 0..10 {
        let before = random_policy(&env, &mut rng);
        let excess = 20.0 + f64::from(trial) * 10.0;
        let value = bits(&before) - excess;
        let cost_function = CostFunction {
            cost: Box::new(bits),
            unit: Unit::Bops,
            reference: Some(bits(&Policy::uniform(ls.len(), 8))),
        };
        let budget = Budget::Absolute {
            value,
            unit: Unit::Bops,
        };
        let constraint = Constraint::new(cost_function, &budget, &env).unwrap();
        let mut widest = before.clone();
        assert_eq!(
            constraint.repair(&mut widest, Repair::Widest).unwrap(),
            value
        );
        let lowered: Vec<u8> = before.bits()[1..]
            .iter()
            .zip(&widest.bits()[1..])
            .flat_map(|(b, a)| [(b.0, a.0), (b.1, a.1)])
            .filter(|(b, a)| a < b)
            .map(|(_, a)| a)
            .collect();
        let floor = *lowered.iter().min().unwrap();
        let top = widest.bits()[1..]
            .iter()
            .flat_map(|&(w, a)| [w, a])
            .max()
            .unwrap();
        assert!(top <= floor + 1, "trial {trial}: {top} left above {floor}");
    }
}

#[test]
fn the_fill_spends_what_the_sweep_left_and_stops_where_no_bit_fits() {
    let ls = mobilenet_v2();
    let mut rng = seeded_rng(9, 0);
    for (model, unit, mode) in OBJECTIVES {
        let range = BitRange::default_for(mode);
        let env = Env::new(&ls, mode, range).unwrap();
        let costs = Costs::new(model, unit, mode, &ls);
        let min = costs.cost(&env.min_policy());
        let max = costs.cost(&env.policy(&vec![1.0; env.steps()]));
        let mut free_seen = 0;
        for trial in 0..10 {
            let value = min + rng.gen::<f64>() * (max - min);
            let budget = Budget::Absolute { value, unit };
            let constraint = Constraint::new(costs.cost_function(), &budget, &env).unwrap();
            let mut policy = random_policy(&env, &mut rng);
            let swept = constraint.enforce(&mut policy).unwrap();
            let before = policy.clone();
            let cost = constraint.fill(&mut policy, range.max);
            let what = format!("{model} trial {trial}: budget {value}");
            assert_eq!(cost, constraint.cost(&policy), "{what}");
            assert!(swept <= cost && cost <= value, "{what}: {swept} -> {cost}");
            policy.check(ls.len()).unwrap();
            if mode == Mode::Linear {
                assert_eq!(policy.layers[0], before.layers[0], "{what}: pinned layer");
            }
            // Only raised, never beyond the range.
            for (b, a) in before.layers.iter().zip(&policy.layers) {
                assert!(b.w_bits <= a.w_bits && a.w_bits <= range.max, "{what}");
                assert!(b.a_bits <= a.a_bits && a.a_bits.unwrap_or(0) <= range.max);
            }
            // Maximal: no single bit more fits the budget.
            for i in usize::from(mode == Mode::Linear)..ls.len() {
                let mut raised = policy.clone();
                if raised.layers[i].w_bits < range.max {
                    raised.layers[i].w_bits += 1;
                    assert!(constraint.cost(&raised) > value, "{what}: layer {i} w");
                }
                let mut raised = policy.clone();
                if let Some(a) = raised.layers[i].a_bits.filter(|&a| a < range.max) {
                    raised.layers[i].a_bits = Some(a + 1);
                    assert!(constraint.cost(&raised) > value, "{what}: layer {i} a");
                }
            }
            // On BISMO edge, raising one operand of a memory-bound layer costs nothing: the
            // fill takes every such increase.
            if model == "bismo-edge" {
                free_seen += policy
                    .layers
                    .iter()
                    .zip(&before.layers)
                    .filter(|(a, b)| a != b)
                    .count();
            }
        }
        if model == "bismo-edge" {
            assert!(free_seen > 0, "the fill raised nothing on bismo-edge");
        }
    }
}

#[test]
fn baselines_and_searches_pin_the_same_layer() {
    let ls = mobilenet_v2();
    let n = ls.len();
    let env = Env::new(&ls, Mode::Linear, BitRange::default_for(Mode::Linear)).unwrap();
    // The first layer, and only it, is pinned at w8 a8: in every fixed-bit baseline ...
    for k in 2..=8 {
        for spec in [format!("uniform:{k}"), format!("uniform-w{k}a{k}")] {
            let p = Policy::parse(&spec, n).unwrap();
            assert_eq!(p.layers[0].to_string(), "w8 a8", "{spec}");
            assert!(p.layers[1..]
                .iter()
                .all(|l| l.w_bits == k && l.a_bits == Some(k)));
        }
    }
    // ... and in every searched policy, whatever the agent's actions, budget sweep and fill.
    for actions in [vec![0.0; env.steps()], vec![1.0; env.steps()]] {
        let p = env.policy(&actions);
        assert_eq!(p.layers[0].to_string(), "w8 a8");
        if actions[0] == 0.0 {
            assert_eq!(
                p.layers[n - 1].to_string(),
                "w2 a2",
                "the classifier is searched"
            );
        }
    }
    assert!((0..n).all(|i| Mode::Linear.is_pinned(i) == (i == 0)));
    // k-means (size) policies pin nothing: Deep Compression clusters every layer.
    assert!((0..n).all(|i| !Mode::Kmeans.is_pinned(i)));
    let costs = Costs::new("bismo-edge", Unit::Ms, Mode::Linear, &ls);
    let budget = Budget::Match("uniform:3".into());
    let constraint = Constraint::new(costs.cost_function(), &budget, &env).unwrap();
    let mut p = env.policy(&vec![1.0; env.steps()]);
    constraint.enforce(&mut p).unwrap();
    constraint.fill(&mut p, 8);
    assert_eq!(p.layers[0].to_string(), "w8 a8");
}
