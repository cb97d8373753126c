//! Fingerprints decide whether a stage's result can be reused: a hash of what determines
//! it (kind, params, upstream outputs, the stage binary's identity), never of timestamps.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// JSON with object keys sorted at every depth and no whitespace, so equal values give
/// equal text whatever order their keys were written in.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by_key(|&(k, _)| k);
            out.push('{');
            for (n, (k, v)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The blake3 hex digest of a stage run's determining inputs: its kind, canonical params,
/// input name -> upstream artifact digest, and the stage binary's identity.
pub fn fingerprint(
    kind: &str,
    params: &Value,
    inputs: &BTreeMap<String, String>,
    binary_id: &str,
) -> String {
    // One JSON document keeps the fields apart unambiguously; the version tag lets a
    // future change of this recipe invalidate old fingerprints rather than collide.
    let doc = json!({
        "fingerprint": 1,
        "kind": kind,
        "params": params,
        "inputs": inputs,
        "binary": binary_id,
    });
    blake3::hash(canonical_json(&doc).as_bytes())
        .to_hex()
        .to_string()
}

/// What changed between two params objects, one line per dotted path, sorted:
/// `epochs: 10 -> 12`, `lr: (unset) -> 0.1`. Maps are compared key by key; anything else
/// (lists included) as a whole.
pub fn diff_params(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(old, new, "", &mut out);
    out.sort();
    out
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if let (Value::Object(old), Value::Object(new)) = (old, new) {
        for key in old
            .keys()
            .chain(new.keys().filter(|k| !old.contains_key(*k)))
        {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (old.get(key), new.get(key)) {
                (Some(a), Some(b)) => diff_into(a, b, &path, out),
                (a, b) => out.push(format!("{path}: {} -> {}", shown(a), shown(b))),
            }
        }
    } else if old != new {
        let path = if path.is_empty() { "(params)" } else { path };
        out.push(format!(
            "{path}: {} -> {}",
            shown(Some(old)),
            shown(Some(new))
        ));
    }
}

fn shown(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), canonical_json)
}
