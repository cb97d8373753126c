//! Policy: `uniform:k`, the JSON shape, spec parsing and every check error.

use haq_cost::error::Error;
use haq_cost::policy::{LayerBits, Policy};

fn bits(w_bits: u8, a_bits: Option<u8>) -> LayerBits {
    LayerBits { w_bits, a_bits }
}

fn message(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(e @ Error::Policy(_)) => e.to_string(),
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn uniform_pins_the_first_layer_at_w8a8() {
    let p = Policy::uniform(4, 3);
    assert_eq!(p.layers[0], bits(8, Some(8)));
    assert!(p.layers[1..].iter().all(|l| *l == bits(3, Some(3))));
    p.check(4).unwrap();
}

#[test]
fn json_round_trip_has_the_documented_shape() {
    let p = Policy::uniform_wa(3, 6, 4);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        json,
        r#"{"layers":[{"w_bits":8,"a_bits":8},{"w_bits":6,"a_bits":4},{"w_bits":6,"a_bits":4}]}"#
    );
    assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);

    // Extra top-level fields are ignored; a_bits may be null or absent (k-means mode).
    let kmeans: Policy = serde_json::from_str(
        r#"{"mode":"kmeans","layers":[{"w_bits":2,"a_bits":null},{"w_bits":3}]}"#,
    )
    .unwrap();
    assert_eq!(kmeans.layers, vec![bits(2, None), bits(3, None)]);
    assert!(!kmeans.is_linear());
    kmeans.check(2).unwrap();
    assert_eq!(
        serde_json::to_string(&kmeans).unwrap(),
        r#"{"layers":[{"w_bits":2},{"w_bits":3}]}"#
    );
}

#[test]
fn parses_uniform_specs_and_files() {
    assert_eq!(
        Policy::parse("uniform:5", 6).unwrap(),
        Policy::uniform(6, 5)
    );
    assert_eq!(
        Policy::parse("uniform-w6a4", 6).unwrap(),
        Policy::uniform_wa(6, 6, 4)
    );
    assert_eq!(
        Policy::parse("uniform-w3", 6).unwrap(),
        Policy::uniform_weights(6, 3)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    let mixed = Policy {
        layers: vec![bits(8, Some(8)), bits(2, Some(7)), bits(5, Some(3))],
    };
    std::fs::write(&path, serde_json::to_string(&mixed).unwrap()).unwrap();
    assert_eq!(Policy::parse(path.to_str().unwrap(), 3).unwrap(), mixed);

    // A file is checked against the model like any other policy.
    let err = message(Policy::parse(path.to_str().unwrap(), 4));
    assert!(
        err.contains("3 layers") && err.contains("4 quantizable"),
        "{err}"
    );
}

#[test]
fn unreadable_specs_say_what_is_accepted() {
    for spec in ["uniform:x", "uniform-w6b4", "uniform"] {
        let err = message(Policy::parse(spec, 3));
        assert!(err.contains(spec) && err.contains("uniform-wWaA"), "{err}");
    }
    let err = message(Policy::parse("/nonexistent/policy.json", 3));
    assert!(err.contains("/nonexistent/policy.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, r#"{"layers":[{"a_bits":8}]}"#).unwrap();
    let err = message(Policy::parse(path.to_str().unwrap(), 1));
    assert!(err.contains("w_bits") && err.contains("bad.json"), "{err}");
}

#[test]
fn check_names_the_layer_the_field_and_the_range() {
    let err = message(Policy::uniform(5, 4).check(7));
    assert!(
        err.contains("5 layers") && err.contains("7 quantizable"),
        "{err}"
    );

    for (layer, bad, field) in [
        (2, bits(0, Some(4)), "w_bits = 0"),
        (1, bits(4, Some(9)), "a_bits = 9"),
    ] {
        let mut p = Policy::uniform(4, 4);
        p.layers[layer] = bad;
        let err = message(p.check(4));
        assert!(
            err.contains(&format!("layer {layer}")) && err.contains(field) && err.contains("1..=8"),
            "{err}"
        );
    }
    // k-means policies are range-checked too.
    let mut p = Policy::uniform_weights(3, 2);
    p.layers[2].w_bits = 12;
    let err = message(p.check(3));
    assert!(
        err.contains("layer 2") && err.contains("w_bits = 12"),
        "{err}"
    );
}

#[test]
fn check_rejects_a_changed_pinned_layer_and_mixed_modes() {
    let mut p = Policy::uniform(4, 4);
    p.layers[0] = bits(4, Some(8));
    let err = message(p.check(4));
    assert!(
        err.contains("layer 0") && err.contains("w4 a8") && err.contains("w8 a8"),
        "{err}"
    );

    // k-means mode pins nothing: Deep Compression clusters every layer.
    Policy::uniform_weights(4, 2).check(4).unwrap();

    let mut p = Policy::uniform(4, 4);
    p.layers[3].a_bits = None;
    let err = message(p.check(4));
    assert!(err.contains("layer 3 lacks a_bits"), "{err}");
    let mut p = Policy::uniform_weights(4, 4);
    p.layers[1].a_bits = Some(4);
    let err = message(p.check(4));
    assert!(err.contains("layer 1 has a_bits"), "{err}");
}
