//! `--set KEY=VALUE` overrides: parsing, and setting a value at a dotted path.

use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One `--set KEY=VALUE`: KEY split at dots, VALUE read as YAML (`50` is an integer,
/// `0.5` a float, `true` a boolean, `[a, b]` a list, `foo` a string).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: Vec<String>,
    pub value: serde_yaml::Value,
}

impl Override {
    /// The dotted key, as written.
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    pub(super) fn error(&self, message: impl Into<String>) -> Error {
        Error::Override {
            key: self.key(),
            message: message.into(),
        }
    }

    pub(super) fn json_value(&self) -> Result<Value> {
        if let Some((_, x)) = super::non_finite(&self.value) {
            return Err(self.error(format!("{x:?} is not a finite number; give a number")));
        }
        serde_json::to_value(&self.value)
            .map_err(|e| self.error(format!("the value cannot be used as a parameter: {e}")))
    }
}

impl FromStr for Override {
    type Err = Error;

    fn from_str(text: &str) -> Result<Override> {
        let bad = |message: String| Error::Override {
            key: text.to_owned(),
            message,
        };
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE, e.g. search.episodes=50".into()))?;
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(bad(
                "KEY must be a dotted path without empty parts, e.g. settings.model.width".into(),
            ));
        }
        let value = serde_yaml::from_str(value)
            .map_err(|e| bad(format!("VALUE {value:?} is not a YAML value: {e}")))?;
        Ok(Override { path, value })
    }
}

/// Sets `value` at `path` inside `target`, creating maps along the way; fails where the
/// path runs through something that is not a map.
pub(super) fn set_path(target: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        *target = value;
        return Ok(());
    };
    let mut node = target;
    for (depth, key) in parents.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(not_a_map(&path[..depth], node));
        };
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match node {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        other => Err(not_a_map(parents, other)),
    }
}

fn not_a_map(path: &[String], found: &Value) -> String {
    format!(
        "{} is {found}, not a map, so it has no fields to set",
        if path.is_empty() {
            "the target".to_owned()
        } else {
            path.join(".")
        }
    )
}
