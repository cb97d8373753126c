//! Lookup tables, policies and model names.

use std::io::Write;

use haq_core::arch::{layers, Arch, ArchConfig};
use haq_core::hw::{build_table, by_name, BitsPolicy, CostTable, LayerBits, MODEL_NAMES};

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
        let uniform = |k| table.total(&BitsPolicy::uniform(ls.len(), k, k).bits());
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
fn policies_parse_from_specs_and_files() {
    let uniform = BitsPolicy::parse("uniform:4", 5).unwrap();
    assert_eq!(uniform.bits(), [(8, 8), (4, 4), (4, 4), (4, 4), (4, 4)]);
    let mixed = BitsPolicy::parse("uniform-w6a4", 3).unwrap();
    assert_eq!(mixed.bits(), [(8, 8), (6, 4), (6, 4)]);

    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        r#"{{"layers": [{{"w_bits": 8, "a_bits": 8}}, {{"w_bits": 3, "a_bits": 5}}], "note": "extra fields are ignored"}}"#
    )
    .unwrap();
    let path = file.path().to_str().unwrap();
    let from_file = BitsPolicy::parse(path, 2).unwrap();
    assert_eq!(
        from_file.layers[1],
        LayerBits {
            w_bits: 3,
            a_bits: 5
        }
    );

    let err = |spec: &str, n| BitsPolicy::parse(spec, n).unwrap_err().to_string();
    assert!(err(path, 3).contains("has 2 layers but the network has 3"));
    assert!(err("uniform:9", 3).contains("1..=8"));
    assert!(err("uniform-w6", 3).contains("uniform-wWaA"));
    assert!(err("no/such/policy.json", 3).contains("policy JSON file"));
    let mut bad = tempfile::NamedTempFile::new().unwrap();
    write!(bad, r#"{{"layers": [{{"w_bits": 8}}]}}"#).unwrap();
    assert!(err(bad.path().to_str().unwrap(), 1).contains("a_bits"));
}
