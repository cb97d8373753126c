//! Small hand-built experiments for the unit tests: a six-layer MobileNet-like model
//! (stem, depthwise, pointwise, depthwise, pointwise, classifier), PACT 4- and 8-bit and
//! Deep Compression 2-bit baselines, and HAQ searches on bismo-edge, bismo-cloud and size.

use std::collections::BTreeMap;

use haq_cost::arch::{LayerInfo, LayerKind, LayerShape};
use haq_cost::budget::{Budget, Resource};
use haq_cost::hw::Unit;
use haq_cost::method::Method;
use haq_cost::policy::{LayerBits, Policy};

use crate::collect::{
    Accuracy, Details, Episode, Experiments, Finetune, FrontPoint, Replicate, Search, SearchSummary,
};

fn layer(index: usize, kind: LayerKind, c_in: usize, c_out: usize, kernel: usize) -> LayerInfo {
    let groups = if kind == LayerKind::Depthwise {
        c_in
    } else {
        1
    };
    let hw = if kind == LayerKind::Linear { 1 } else { 8 };
    LayerInfo {
        index,
        name: format!("layer{index}"),
        shape: LayerShape {
            kind,
            c_in,
            c_out,
            kernel,
            stride: 1,
            groups,
            in_h: hw,
            in_w: hw,
            out_h: hw,
            out_w: hw,
            params: c_in / groups * c_out * kernel * kernel,
        },
        signed_input: false,
    }
}

/// Linear-mode bits `(w, a)` per layer.
pub fn linear(bits: &[(u8, u8)]) -> Policy {
    Policy {
        layers: bits
            .iter()
            .map(|&(w, a)| LayerBits {
                w_bits: w,
                a_bits: Some(a),
            })
            .collect(),
    }
}

/// k-means-mode weight bits per layer.
pub fn kmeans(bits: &[u8]) -> Policy {
    Policy {
        layers: bits
            .iter()
            .map(|&w| LayerBits {
                w_bits: w,
                a_bits: None,
            })
            .collect(),
    }
}

pub fn search(
    stage: &str,
    hardware: &str,
    objective: Resource,
    budget: &str,
    value: f64,
    policy: Policy,
) -> Search {
    let rewards = [-2.0, -0.5, -1.0, -0.2];
    let mut best = f64::NEG_INFINITY;
    Search {
        stage: stage.into(),
        summary: SearchSummary {
            hardware: hardware.into(),
            objective,
            budget: Budget::Match(budget.into()),
            budget_value: value,
            float_accuracy: 90.0,
            warmup: Some(2),
            method: Method::Ddpg,
            episodes: Some(rewards.len()),
            details: None,
        },
        episodes: rewards
            .iter()
            .map(|&reward| {
                best = best.max(reward);
                Episode {
                    reward,
                    accuracy: 90.0 + 10.0 * reward,
                    best_reward: Some(best),
                    probe: false,
                }
            })
            .collect(),
        policy,
        replicate: Replicate {
            seed: 0,
            params: serde_json::json!({
                "hardware": hardware, "objective": objective, "budget": budget, "method": "ddpg",
                "episodes": rewards.len()
            }),
        },
        seconds: Some(60.0),
    }
}

/// `ddpg`'s search run by `method` instead as stage `stage`: a greedy one scores two
/// probes first and walks a front from 2.0 to 0.9 of `ddpg`'s budget, and like hawq
/// takes none of the episodic methods' params.
pub fn other_method(ddpg: &Search, stage: &str, method: Method) -> Search {
    let mut s = ddpg.clone();
    s.stage = stage.into();
    s.summary.method = method;
    s.replicate.params["method"] = method.as_str().into();
    if !method.is_episodic() {
        s.summary.warmup = None;
        s.replicate
            .params
            .as_object_mut()
            .unwrap()
            .remove("episodes");
    }
    if method == Method::Greedy {
        let probe = Episode {
            reward: -3.0,
            accuracy: 89.5,
            best_reward: None,
            probe: true,
        };
        s.episodes.splice(0..0, [probe.clone(), probe]);
        let budget = s.summary.budget_value;
        s.summary.details = Some(Details {
            front: [(2.0, 89.5), (1.4, 88.0), (0.9, 86.0)]
                .map(|(f, a)| FrontPoint {
                    cost: f * budget,
                    predicted_accuracy: a,
                })
                .to_vec(),
        });
    }
    s.summary.episodes = Some(s.episodes.len());
    s
}

/// `costs` as the finetune stage writes them, from (hardware, unit, value).
fn costs(entries: &[(&str, Unit, f64)]) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for &(hw, unit, value) in entries {
        let table = out.entry(hw.into()).or_default();
        table.insert(unit.quantity().into(), value);
        table.insert("batch".into(), 1.0);
    }
    out
}

pub fn finetune(
    stage: &str,
    search: Option<usize>,
    top1: f64,
    policy: Policy,
    c: &[(&str, Unit, f64)],
) -> Finetune {
    Finetune {
        stage: stage.into(),
        search,
        accuracy: Accuracy {
            test_top1: top1,
            test_top5: 99.0,
        },
        costs: costs(c),
        policy,
        replicate: Replicate {
            seed: 0,
            params: serde_json::json!({ "stage": stage }),
        },
    }
}

/// The edge policy gives depthwise layers a2, a3 and pointwise ones a6, a6; the cloud
/// policy a5, a5 against a4, a4; the size policy w4, w4 against w2, w2. HAQ on the edge
/// beats PACT 4-bit at lower latency and loses exactly 1 point to 8-bit; HAQ on the cloud
/// loses 0.5 points to PACT 4-bit at the same latency.
pub fn experiments() -> Experiments {
    use LayerKind::*;
    let layers = vec![
        layer(0, Conv, 1, 8, 3),
        layer(1, Depthwise, 8, 8, 3),
        layer(2, Conv, 8, 16, 1),
        layer(3, Depthwise, 16, 16, 3),
        layer(4, Conv, 16, 16, 1),
        layer(5, Linear, 16, 10, 1),
    ];
    let uniform = |k| {
        let mut bits = vec![(k, k); 6];
        bits[0] = (8, 8);
        linear(&bits)
    };
    let (edge, cloud, size) = ("bismo-edge", "bismo-cloud", "size");
    let searches = vec![
        search(
            "s-cloud",
            cloud,
            Resource::Latency,
            "uniform:4",
            2.0,
            linear(&[(8, 8), (6, 5), (4, 4), (6, 5), (3, 4), (4, 4)]),
        ),
        search(
            "s-edge",
            edge,
            Resource::Latency,
            "uniform:4",
            1.0,
            linear(&[(8, 8), (6, 2), (4, 6), (6, 3), (3, 6), (4, 4)]),
        ),
        search(
            "s-size",
            size,
            Resource::Size,
            "uniform-w2",
            300.0,
            kmeans(&[3, 4, 2, 4, 2, 3]),
        ),
    ];
    let finetunes = vec![
        finetune(
            "dc@2",
            None,
            80.0,
            kmeans(&[2; 6]),
            &[(size, Unit::Bytes, 300.0)],
        ),
        finetune(
            "haq-cloud",
            Some(0),
            87.5,
            searches[0].policy.clone(),
            &[(edge, Unit::Ms, 1.2), (cloud, Unit::Ms, 2.0)],
        ),
        finetune(
            "haq-edge",
            Some(1),
            89.0,
            searches[1].policy.clone(),
            &[(edge, Unit::Ms, 0.95), (cloud, Unit::Ms, 2.5)],
        ),
        finetune(
            "haq-size",
            Some(2),
            81.0,
            searches[2].policy.clone(),
            &[(size, Unit::Bytes, 290.0)],
        ),
        finetune(
            "pact@4",
            None,
            88.0,
            uniform(4),
            &[(edge, Unit::Ms, 1.0), (cloud, Unit::Ms, 2.0)],
        ),
        finetune(
            "pact@8",
            None,
            90.0,
            uniform(8),
            &[(edge, Unit::Ms, 2.0), (cloud, Unit::Ms, 4.0)],
        ),
    ];
    Experiments {
        layers,
        float: Accuracy {
            test_top1: 91.0,
            test_top5: 99.5,
        },
        searches,
        finetunes,
    }
}

/// `exp` with every search and finetune run at each of `seeds`: replicate `<stage>-<seed>`,
/// a finetune's of the search replicate of its seed, its top-1 `top1(stage, seed)`.
pub fn replicated(
    exp: &Experiments,
    seeds: &[u64],
    top1: impl Fn(&str, u64) -> f64,
) -> Experiments {
    let n = exp.searches.len();
    let mut out = Experiments {
        searches: Vec::new(),
        finetunes: Vec::new(),
        ..exp.clone()
    };
    for (k, &seed) in seeds.iter().enumerate() {
        for s in &exp.searches {
            let mut r = s.clone();
            r.stage = format!("{}-{seed}", s.stage);
            r.replicate.seed = seed;
            out.searches.push(r);
        }
        for f in &exp.finetunes {
            let mut r = f.clone();
            r.stage = format!("{}-{seed}", f.stage);
            r.replicate.seed = seed;
            r.search = f.search.map(|i| k * n + i);
            r.accuracy.test_top1 = top1(&f.stage, seed);
            out.finetunes.push(r);
        }
    }
    out
}
