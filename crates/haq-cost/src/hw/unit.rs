//! The units costs are reported in. A leaf: the crate's error type names a unit.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The unit a cost is reported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Cycles,
    /// Milliseconds of latency.
    Ms,
    /// Millijoules of energy.
    Mj,
    Bytes,
    /// Bit operations.
    Bops,
}

impl Unit {
    pub const ALL: [Unit; 5] = [Unit::Cycles, Unit::Ms, Unit::Mj, Unit::Bytes, Unit::Bops];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Cycles => "cycles",
            Unit::Ms => "ms",
            Unit::Mj => "mj",
            Unit::Bytes => "bytes",
            Unit::Bops => "bops",
        }
    }

    /// The name of the quantity measured in this unit, as finetunes write it in their
    /// `costs` output and metrics and the report reads it.
    pub fn quantity(self) -> &'static str {
        match self {
            Unit::Cycles => "cycles",
            Unit::Ms => "latency_ms",
            Unit::Mj => "energy_mj",
            Unit::Bytes => "size_bytes",
            Unit::Bops => "bops",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
