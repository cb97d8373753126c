//! Fingerprints: canonical JSON, stability under key order, sensitivity to every input.

use std::collections::BTreeMap;

use haq_flow::{canonical_json, diff_params, fingerprint};
use serde_json::{json, Value};

#[test]
fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
    let v: Value = serde_json::from_str(
        r#"{"b": 1, "a": {"z": [3, {"y": 1, "x": "s\"q"}], "c": null}, "é": 0.5}"#,
    )
    .unwrap();
    assert_eq!(
        canonical_json(&v),
        r#"{"a":{"c":null,"z":[3,{"x":"s\"q","y":1}]},"b":1,"é":0.5}"#
    );
}

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn fingerprint_ignores_key_order() {
    let a: Value =
        serde_json::from_str(r#"{"epochs": 10, "model": {"arch": "mbv2", "width": 0.5}}"#).unwrap();
    let b: Value =
        serde_json::from_str(r#"{"model": {"width": 0.5, "arch": "mbv2"}, "epochs": 10}"#).unwrap();
    let ins = inputs(&[("model", "abc"), ("tables", "def")]);
    let fa = fingerprint("search", &a, &ins, "bin1");
    assert_eq!(fa, fingerprint("search", &b, &ins, "bin1"));
    assert_eq!(fa.len(), 64);
    assert!(fa.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn fingerprint_changes_with_every_input() {
    let params = json!({"epochs": 10, "model": {"width": 0.5}});
    let ins = inputs(&[("model", "abc")]);
    let base = fingerprint("search", &params, &ins, "bin1");
    let changed = [
        fingerprint("finetune", &params, &ins, "bin1"),
        fingerprint(
            "search",
            &json!({"epochs": 11, "model": {"width": 0.5}}),
            &ins,
            "bin1",
        ),
        fingerprint(
            "search",
            &json!({"epochs": 10, "model": {"width": 0.75}}),
            &ins,
            "bin1",
        ),
        fingerprint(
            "search",
            &json!({"epochs": 10.0, "model": {"width": 0.5}}),
            &ins,
            "bin1",
        ),
        fingerprint(
            "search",
            &json!({"epochs": 10, "model": {"width": 0.5}, "x": null}),
            &ins,
            "bin1",
        ),
        fingerprint("search", &params, &inputs(&[("model", "abd")]), "bin1"),
        fingerprint("search", &params, &inputs(&[("weights", "abc")]), "bin1"),
        fingerprint("search", &params, &inputs(&[]), "bin1"),
        fingerprint("search", &params, &ins, "bin2"),
    ];
    for (i, f) in changed.iter().enumerate() {
        assert_ne!(*f, base, "change {i} left the fingerprint unchanged");
    }
    assert_eq!(base, fingerprint("search", &params, &ins, "bin1"));
}

#[test]
fn diff_params_names_each_changed_path() {
    let old = json!({"epochs": 10, "model": {"arch": "mbv2", "width": 0.5}, "gone": true, "list": [1, 2]});
    let new =
        json!({"epochs": 12, "model": {"arch": "mbv2", "width": 0.75}, "lr": 0.1, "list": [1, 3]});
    assert_eq!(
        diff_params(&old, &new),
        [
            "epochs: 10 -> 12",
            "gone: true -> (unset)",
            "list: [1,2] -> [1,3]",
            "lr: (unset) -> 0.1",
            "model.width: 0.5 -> 0.75",
        ]
    );
    assert!(diff_params(&old, &old).is_empty());
    assert_eq!(
        diff_params(&json!({"m": {"a": 1}}), &json!({"m": "x"})),
        [r#"m: {"a":1} -> "x""#]
    );
}

mod why_stale {
    use std::collections::BTreeMap;

    use haq_flow::fingerprint::{explain, why_stale, Basis, Change, StaleReason};
    use haq_store::Digest;
    use serde_json::json;

    fn digests(pairs: &[(&str, &str)]) -> BTreeMap<String, Digest> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Digest(v.to_string())))
            .collect()
    }

    #[test]
    fn names_every_difference_by_what_it_is() {
        let old_params = json!({"epochs": 10, "lr": 0.1});
        let new_params = json!({"epochs": 12, "lr": 0.1, "seed": 1});
        let old_inputs = digests(&[
            ("pretrain/weights", "a"),
            ("file:policy.json", "p"),
            ("file:gone.txt", "g"),
        ]);
        let new_inputs = digests(&[
            ("pretrain/weights", "b"),
            ("file:policy.json", "p"),
            ("calibrate/clips", "c"),
        ]);
        let old = Basis {
            kind: "finetune",
            params: &old_params,
            inputs: &old_inputs,
            binary_id: "x",
        };
        let new = Basis {
            kind: "search",
            params: &new_params,
            inputs: &new_inputs,
            binary_id: "y",
        };
        assert_eq!(
            why_stale(&old, &new),
            [
                StaleReason::KindChanged {
                    from: "finetune".into(),
                    to: "search".into()
                },
                StaleReason::Param("epochs: 10 -> 12".into()),
                StaleReason::Param("seed: (unset) -> 1".into()),
                StaleReason::UpstreamInput {
                    stage: "calibrate".into(),
                    input: "calibrate/clips".into(),
                    change: Change::Added
                },
                StaleReason::DepsFile {
                    path: "gone.txt".into(),
                    change: Change::Removed
                },
                StaleReason::UpstreamInput {
                    stage: "pretrain".into(),
                    input: "pretrain/weights".into(),
                    change: Change::Changed
                },
                StaleReason::BinaryRebuilt {
                    kind: "search".into(),
                    changes: Vec::new(),
                },
            ]
        );
    }

    #[test]
    fn identical_bases_blame_the_fingerprint_recipe() {
        let params = json!({"a": 1});
        let inputs = digests(&[("u/out", "d")]);
        let basis = Basis {
            kind: "k",
            params: &params,
            inputs: &inputs,
            binary_id: "b",
        };
        assert_eq!(why_stale(&basis, &basis), [StaleReason::FingerprintChanged]);
    }

    #[test]
    fn reasons_read_as_one_line_each() {
        let line = |r: StaleReason| r.to_string();
        assert_eq!(line(StaleReason::NeverRun), "never run");
        assert_eq!(
            line(StaleReason::Upstream {
                stage: "pretrain".into(),
                state: "running"
            }),
            "upstream pretrain is running"
        );
        assert_eq!(
            line(StaleReason::MoreUpstream(1)),
            "1 more upstream stage not fresh"
        );
        assert_eq!(
            line(StaleReason::MoreUpstream(15)),
            "15 more upstream stages not fresh"
        );
        assert_eq!(
            line(StaleReason::DepsFile {
                path: "p.json".into(),
                change: Change::Changed
            }),
            "deps: file p.json changed"
        );
        assert_eq!(
            line(StaleReason::BinaryRebuilt {
                kind: "search".into(),
                changes: Vec::new(),
            }),
            "stage binary haq-search was rebuilt from different sources"
        );
    }

    #[test]
    fn a_rebuilt_binary_names_what_changed_in_its_build() {
        let params = json!({});
        let inputs = digests(&[]);
        let id = "sources=aa lock=bb build=cc libtorch=2.13.0+cpu";
        let reason = |new: &str| {
            let basis = |binary_id| Basis {
                kind: "search",
                params: &params,
                inputs: &inputs,
                binary_id,
            };
            explain(&why_stale(&basis(id), &basis(new)))
        };
        for (new, says) in [
            (
                "sources=a2 lock=bb build=cc libtorch=2.13.0+cpu",
                "sources changed",
            ),
            (
                "sources=aa lock=b2 build=cc libtorch=2.13.0+cpu",
                "Cargo.lock changed",
            ),
            (
                "sources=aa lock=bb build=c2 libtorch=2.13.0+cpu",
                "build scripts, manifests or build flags changed",
            ),
            (
                "sources=aa lock=bb build=cc libtorch=2.14.0+cpu",
                "libtorch 2.13.0+cpu -> 2.14.0+cpu",
            ),
        ] {
            assert_eq!(
                reason(new),
                format!("stage binary haq-search was rebuilt: {says}")
            );
        }
        // An identity from before the parts existed is a plain rebuild.
        assert_eq!(
            reason("0123456789abcdef0123456789abcdef"),
            "stage binary haq-search was rebuilt from different sources"
        );
    }
}
