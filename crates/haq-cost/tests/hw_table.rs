//! Lookup tables, policies and model names.

use std::collections::BTreeMap;

use haq_cost::arch::{layers, Arch, ArchConfig};
use haq_cost::hw::{build_table, by_name, policy_costs, CostTable, MODEL_NAMES};
use haq_cost::policy::Policy;

#[test]
fn tables_hold_every_layer_at_every_bit_pair() {
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10));
    for name in MODEL_NAMES {
        let model = by_name(name).unwrap();
        assert_eq!(model.name(), name);
        let table = build_table(model.as_ref(), &ls, 2);
        assert_eq!(
            (table.model.as_str(), table.batch, table.layers()),
            (name, 2, ls.len())
        );
        for (i, l) in ls.iter().enumerate() {
            for (w, a) in [(1, 1), (2, 7), (8, 3), (8, 8)] {
                assert_eq!(
                    table.get(i, w, a),
                    model.cost(&l.shape, w, a, 2),
                    "{name} layer {i}"
                );
            }
        }
        // A network's total is the sum of its layers' entries.
        let bits: Vec<(u8, u8)> = (0..ls.len())
            .map(|i| (1 + i as u8 % 8, 8 - i as u8 % 8))
            .collect();
        let total = table.total(&bits);
        let summed: f64 = bits
            .iter()
            .zip(&ls)
            .map(|(&(w, a), l)| model.cost(&l.shape, w, a, 2).cycles)
            .sum();
        assert!(
            (total.cycles - summed).abs() <= 1e-9 * summed.max(1.0),
            "{name}"
        );
        // Fewer bits never cost more.
        let uniform = |k| table.total(&Policy::uniform(ls.len(), k).bits());
        for k in 2..=8 {
            let (low, high) = (uniform(k - 1), uniform(k));
            assert!(
                low.latency_s <= high.latency_s && low.bytes <= high.bytes,
                "{name} at {k}"
            );
        }
    }
}

#[test]
fn tables_round_trip_through_json() {
    let ls = layers(&ArchConfig::new(Arch::MobileNetV1, 28, 10));
    let table = build_table(by_name("bitfusion").unwrap().as_ref(), &ls, 1);
    let json = serde_json::to_string(&table).unwrap();
    let back: CostTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, table);
}

#[test]
fn unknown_model_names_list_the_known_ones() {
    let err = by_name("eyeriss").err().unwrap().to_string();
    for name in MODEL_NAMES {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn policies_cost_what_their_bits_look_up() {
    assert_eq!(
        Policy::parse("uniform:4", 5).unwrap().bits(),
        [(8, 8), (4, 4), (4, 4), (4, 4), (4, 4)]
    );
    assert_eq!(
        Policy::parse("uniform-w6a4", 3).unwrap().bits(),
        [(8, 8), (6, 4), (6, 4)]
    );
    // k-means mode pins nothing and costs its float activations at 8 bits.
    let kmeans = Policy::parse("uniform-w3", 3).unwrap();
    assert_eq!(kmeans.bits(), [(3, 8), (3, 8), (3, 8)]);

    // A policy file costs the same as the spec it spells out, on every model.
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 32, 10));
    let mixed = Policy::uniform_wa(ls.len(), 5, 3);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    serde_json::to_writer(&mut file, &mixed).unwrap();
    let from_file = Policy::parse(file.path().to_str().unwrap(), ls.len()).unwrap();
    for name in MODEL_NAMES {
        let table = build_table(by_name(name).unwrap().as_ref(), &ls, 1);
        let spec = Policy::parse("uniform-w5a3", ls.len()).unwrap();
        assert_eq!(
            table.total(&from_file.bits()),
            table.total(&spec.bits()),
            "{name}"
        );
    }
    // Model size does not depend on activations, so weight-only policies cost the same
    // there as any linear policy with the same weight bits.
    let size = build_table(by_name("size").unwrap().as_ref(), &ls, 1);
    let weights_only = Policy::uniform_weights(ls.len(), 5).bits();
    let mut linear = mixed.bits();
    linear[0].0 = 5;
    assert_eq!(size.total(&weights_only), size.total(&linear));

    let err = Policy::parse(file.path().to_str().unwrap(), ls.len() + 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(file.path().to_str().unwrap()) && err.contains("quantizable layers"),
        "{err}"
    );
}

#[test]
fn a_policy_is_costed_on_every_table_by_quantity_name() {
    let ls = layers(&ArchConfig::new(Arch::MobileNetV2, 28, 10));
    let tables: BTreeMap<String, CostTable> = MODEL_NAMES
        .iter()
        .map(|&name| {
            let table = build_table(by_name(name).unwrap().as_ref(), &ls, 3);
            (name.to_string(), table)
        })
        .collect();
    let bits = Policy::uniform(ls.len(), 4).bits();
    let costs = policy_costs(&tables, &bits).unwrap();
    assert_eq!(costs.len(), MODEL_NAMES.len());
    for (name, cost) in &costs {
        let model = by_name(name).unwrap();
        let quantities: Vec<&str> = cost.totals.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = model.units().iter().map(|u| u.quantity()).collect();
        expected.sort();
        assert_eq!(quantities, expected, "{name}");
        assert_eq!(cost.batch, 3);
        let total = tables[name].total(&bits);
        for &unit in model.units() {
            assert_eq!(
                cost.totals[unit.quantity()],
                total.value(unit),
                "{name} {unit}"
            );
        }
    }
    // As the stages write it: the batch beside the quantities, e.g. bitfusion's energy_mj.
    let json = serde_json::to_value(&costs["bitfusion"]).unwrap();
    assert_eq!(json["batch"], 3);
    assert!(json["energy_mj"].as_f64().unwrap() > 0.0, "{json}");

    let err = policy_costs(&tables, &bits[1..]).unwrap_err().to_string();
    assert!(err.contains("rerun the calibrate stage"), "{err}");
}
