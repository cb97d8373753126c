//! `matrix:` expansion and `${matrix.KEY}` substitution.

use std::collections::BTreeMap;

use serde_json::Value;

use super::locate::Seg;

/// One combination of matrix values: key -> value.
pub(super) type Combo = BTreeMap<String, Value>;

/// A problem at a path relative to the stage, with what to do about it.
pub(super) type Problem = (Vec<Seg>, String);

/// The cartesian product of the matrix, keys in declaration order (the first key varies
/// slowest), each with the name suffix it gives: values as plain text joined by `-`.
/// The most stages one matrix expands to: beyond it a typo, not a sweep.
pub(super) const MAX_EXPANSIONS: usize = 10_000;

pub(super) fn expand(
    keys: &[(String, Vec<serde_yaml::Value>)],
) -> Result<Vec<(String, Combo)>, Problem> {
    if keys.is_empty() {
        return Err((
            vec![Seg::Key("matrix".into())],
            "empty matrix: give at least one key with a list of values, e.g. matrix: {hardware: [bismo-edge, bismo-cloud]}, or remove matrix:".into(),
        ));
    }
    let count = keys
        .iter()
        .try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()))
        .filter(|&n| n <= MAX_EXPANSIONS);
    if count.is_none() {
        let sizes: Vec<String> = keys
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.len()))
            .collect();
        return Err((
            vec![Seg::Key("matrix".into())],
            format!(
                "expands to more than {MAX_EXPANSIONS} stages ({}); split the sweep into \
                 several workflows or fewer values",
                sizes.join(" x ")
            ),
        ));
    }
    let mut combos = vec![(Vec::<String>::new(), Combo::new())];
    for (key, values) in keys {
        let at = |i: Option<usize>| {
            let mut path = vec![Seg::Key("matrix".into()), Seg::Key(key.clone())];
            path.extend(i.map(Seg::Index));
            path
        };
        if values.is_empty() {
            return Err((
                at(None),
                format!("matrix key {key:?} has no values: list at least one, e.g. {key}: [a, b]"),
            ));
        }
        let mut rendered = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let json = serde_json::to_value(value).map_err(|e| (at(Some(i)), e.to_string()))?;
            let text = plain_text(&json).filter(|t| is_name_part(t)).ok_or_else(|| {
                (
                    at(Some(i)),
                    format!(
                        "matrix value {} cannot be part of a stage name: use a string, number or boolean made of letters, digits, '_', '.', '+' or '-'",
                        serde_json::to_string(&json).unwrap_or_default()
                    ),
                )
            })?;
            rendered.push((text, json));
        }
        combos = combos
            .into_iter()
            .flat_map(|(parts, combo)| {
                rendered.iter().map(move |(text, json)| {
                    let mut parts = parts.clone();
                    parts.push(text.clone());
                    let mut combo = combo.clone();
                    combo.insert(key.clone(), json.clone());
                    (parts, combo)
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .map(|(parts, combo)| (parts.join("-"), combo))
        .collect())
}

fn is_name_part(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}

/// A scalar as plain text (strings without quotes); None for null, lists and maps.
fn plain_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

const OPEN: &str = "${matrix.";

/// Replaces `${matrix.KEY}` in every string of `value` (map values and list items, at any
/// depth). `combo` is None for a stage without a matrix, where any reference is an error.
pub(super) fn substitute(
    value: &Value,
    combo: Option<&Combo>,
    at: &mut Vec<Seg>,
) -> Result<Value, Problem> {
    Ok(match value {
        Value::String(s) => substitute_str(s, combo).map_err(|message| (at.clone(), message))?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    at.push(Seg::Index(i));
                    let out = substitute(item, combo, at);
                    at.pop();
                    out
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    at.push(Seg::Key(key.clone()));
                    let out = substitute(item, combo, at).map(|v| (key.clone(), v));
                    at.pop();
                    out
                })
                .collect::<Result<_, _>>()?,
        ),
        scalar => scalar.clone(),
    })
}

/// A string that is exactly one reference takes the value with its type; references
/// embedded in text are replaced by the value's plain text.
fn substitute_str(s: &str, combo: Option<&Combo>) -> Result<Value, String> {
    if let Some(key) = s.strip_prefix(OPEN).and_then(|r| r.strip_suffix('}')) {
        if !key.contains('}') {
            return lookup(key, combo).cloned();
        }
    }
    substitute_text(s, combo).map(Value::String)
}

/// Replaces every reference in `s` by its value's plain text.
pub(super) fn substitute_text(s: &str, combo: Option<&Combo>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated {OPEN}...: close the reference with }}"))?;
        let value = lookup(&after[..end], combo)?;
        out.push_str(&plain_text(value).unwrap_or_else(|| value.to_string()));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup<'c>(key: &str, combo: Option<&'c Combo>) -> Result<&'c Value, String> {
    let combo = combo.ok_or_else(|| {
        format!("{OPEN}{key}}} is used in a stage without matrix:; declare matrix: {{{key}: [...]}} in this stage or remove the reference")
    })?;
    combo.get(key).ok_or_else(|| {
        let known: Vec<&str> = combo.keys().map(String::as_str).collect();
        format!(
            "unknown matrix key {key:?}; this stage's matrix keys: {}",
            known.join(", ")
        )
    })
}
