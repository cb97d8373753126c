//! Finds the line and column of a node of the workflow file by its field path, for errors
//! found after parsing (a missing stage, a cycle, ...).
//!
//! serde_yaml exposes positions only on errors, and stamps an error with the position of
//! the node being read when it is raised. So we re-read the source, skip everything off the
//! path, and raise a marker error on the node we want; the error then carries its position.
//! This runs only when reporting an error.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a field path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a field path the way serde_yaml does: `stages.search.needs[0]`.
pub(super) fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) if out.is_empty() => out.push_str(key),
            Seg::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

const FOUND: &str = "\u{1}haq: located\u{1}";

/// The 1-based (line, column) of the node at `path`, or of the key naming it when `at_key`;
/// where the path does not exist in the source, that of its nearest existing ancestor.
pub(super) fn locate(source: &str, path: &[Seg], at_key: bool) -> Option<(usize, usize)> {
    (0..=path.len())
        .rev()
        .find_map(|n| locate_exact(source, &path[..n], at_key && n == path.len()))
}

pub(super) fn locate_exact(source: &str, path: &[Seg], at_key: bool) -> Option<(usize, usize)> {
    let deserializer = serde_yaml::Deserializer::from_str(source);
    match (Seek { path, at_key }).deserialize(deserializer) {
        Err(err) if err.to_string().contains(FOUND) => {
            err.location().map(|at| (at.line(), at.column()))
        }
        _ => None,
    }
}

/// Walks down `path`; every visit it does not implement (a scalar where a map was
/// expected, say) ends the walk with an ordinary error, which means "not found".
struct Seek<'p> {
    path: &'p [Seg],
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            deserializer.deserialize_any(Found)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the path being located")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Seg::Key(want) = &self.path[0] else {
            return Ok(());
        };
        let rest = &self.path[1..];
        let fail_on_match = self.at_key && rest.is_empty();
        while let Some(matched) = map.next_key_seed(KeyMatch {
            want,
            fail_on_match,
        })? {
            if matched {
                return map.next_value_seed(Seek {
                    path: rest,
                    at_key: self.at_key,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Seg::Index(want) = self.path[0] else {
            return Ok(());
        };
        for _ in 0..want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek {
            path: &self.path[1..],
            at_key: self.at_key,
        })
        .map(drop)
    }
}

/// Compares a map key with the wanted one; raises the marker on a match when the key
/// itself is the target.
struct KeyMatch<'w> {
    want: &'w str,
    fail_on_match: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        let matched = key == self.want;
        if matched && self.fail_on_match {
            return Err(E::custom(FOUND));
        }
        Ok(matched)
    }

    // Numeric keys appear in params as their decimal text.
    fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }
}

/// Raises the marker on whatever node it is asked to read: every visit falls back to
/// serde's "invalid type ... expected {expecting}" error, and `expecting` is the marker.
struct Found;

impl Visitor<'_> for Found {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(FOUND)
    }
}
