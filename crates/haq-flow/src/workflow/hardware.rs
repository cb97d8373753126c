//! The workflow's `hardware:` entries: cost models measured on a device, each a table file
//! (docs/hardware.md). A stage whose `hardware` param names an entry (a name, or a list of
//! names) gets the file as a `deps:` file, so editing it reruns exactly those stages, and
//! the param `hardware_tables: {<name>: <file>}`, so it knows which of its `file:` inputs
//! to read.

use serde_json::{Map, Value};

use super::raw::{OrderedMap, RawHardware};
use super::{is_stage_word, key, Doc, StageSpec};
use crate::error::Result;

/// The param a stage receives its entries' files in.
pub const TABLES_PARAM: &str = "hardware_tables";

/// The entries as (name, table file), checked.
pub(super) fn entries(
    doc: &Doc,
    raw: Option<&OrderedMap<RawHardware>>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, entry) in raw.into_iter().flat_map(|m| &m.0) {
        let at = [key("hardware"), key(name)];
        if !is_stage_word(name) {
            return Err(doc.invalid(
                &at,
                true,
                format!("hardware name {name:?} is not allowed: use lowercase letters, digits, '_' and '-'"),
            ));
        }
        if entry.table.trim().is_empty() {
            return Err(doc.invalid(
                &[key("hardware"), key(name), key("table")],
                false,
                "empty: name the cost table file, e.g. table: hw/phone-latency.csv (docs/hardware.md)",
            ));
        }
        out.push((name.clone(), entry.table.clone()));
    }
    Ok(out)
}

/// Gives every stage whose `hardware` param names an entry that entry's file as a dep
/// and in its `hardware_tables` param.
pub(super) fn attach(stages: &mut [StageSpec], entries: &[(String, String)]) {
    for stage in stages {
        let named: Vec<&str> = match stage.params.get("hardware") {
            Some(Value::String(name)) => vec![name.as_str()],
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let mut tables = Map::new();
        for (name, file) in entries.iter().filter(|(n, _)| named.contains(&n.as_str())) {
            if !stage.deps.contains(file) {
                stage.deps.push(file.clone());
            }
            tables.insert(name.clone(), Value::String(file.clone()));
        }
        if !tables.is_empty() {
            let params = stage.params.as_object_mut().expect("params are a map");
            params.insert(TABLES_PARAM.into(), Value::Object(tables));
        }
    }
}
