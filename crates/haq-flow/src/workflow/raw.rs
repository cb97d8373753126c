//! The workflow file as written, before expansion: serde types that reject unknown keys,
//! wrong types and duplicated keys, with serde_yaml's line and column.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::executor::RawExecutor;

/// The top level of a workflow file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a workflow: a map with stages: and optionally name:, store:, seed:, device:, jobs:, executor:, settings:, hardware:"
)]
pub(super) struct RawWorkflow {
    pub name: Option<String>,
    pub store: Option<String>,
    pub seed: Option<u64>,
    pub device: Option<String>,
    pub jobs: Option<usize>,
    pub executor: Option<RawExecutor>,
    pub settings: Option<serde_yaml::Mapping>,
    pub hardware: Option<OrderedMap<RawHardware>>,
    pub stages: OrderedMap<RawStage>,
}

/// One entry under `hardware:`: a cost model measured on a device, as a table file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a hardware entry: a map with table: (a cost table file, docs/hardware.md)")]
pub(super) struct RawHardware {
    pub table: String,
}

/// One entry under `stages:`. `run` is optional here only so that its absence gets a
/// message of our own that says what to write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a stage: a map with run: and optionally needs:, deps:, params:, matrix:, executor:"
)]
pub(super) struct RawStage {
    pub run: Option<String>,
    pub needs: Option<Vec<String>>,
    pub deps: Option<Vec<String>>,
    pub params: Option<serde_yaml::Mapping>,
    pub matrix: Option<OrderedMap<Vec<serde_yaml::Value>>>,
    pub executor: Option<RawExecutor>,
}

/// A map with string keys that keeps declaration order and rejects a repeated key (serde's
/// own maps would keep one of the two silently). A null value reads as an empty map, so an
/// empty `stages:` or `matrix:` gets the specific message rather than a type error.
#[derive(Debug)]
pub(super) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedMapVisitor(PhantomData))
    }
}

struct OrderedMapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedMapVisitor<V> {
    type Value = OrderedMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(OrderedMap(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(UniqueKey { seen: &mut seen })? {
            entries.push((key, map.next_value()?));
        }
        Ok(OrderedMap(entries))
    }
}

/// Reads a key and fails on a repeat while the parser stands on it, so the error carries
/// the repeated key's own line and column.
struct UniqueKey<'s> {
    seen: &'s mut HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for UniqueKey<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl Visitor<'_> for UniqueKey<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if !self.seen.insert(key.to_owned()) {
            return Err(E::custom(format!(
                "duplicate key {key:?}: each name may appear only once here; rename or remove one"
            )));
        }
        Ok(key.to_owned())
    }
}
