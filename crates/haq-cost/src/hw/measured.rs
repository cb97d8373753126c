//! Cost tables measured on a device, in a CSV file: one row per layer shape and bit pair.
//!
//! The format (docs/hardware.md says how to measure one): a header naming the columns, then
//! one row per (layer shape, w_bits, a_bits); blank lines and lines starting with `#` are
//! skipped. Columns, in any order:
//! - `kind` (conv, depthwise, linear), `c_in`, `c_out`, `kernel`, `stride`, `groups`,
//!   `in_h`, `in_w`, `out_h`, `out_w`: the layer's shape, which rows are matched by, so one
//!   table serves every network whose layers it covers;
//! - `batch`: images per measurement, the same on every row;
//! - `w_bits`, `a_bits`: 1 to 8;
//! - `value`: what the layer costs for the whole batch, at least 0, never falling as either
//!   bit width rises;
//! - `unit`: `ms`, `mJ`, `cycles@<clock>` (e.g. `cycles@200MHz`), `bytes` or `bops`, the
//!   same on every row;
//! - optionally `layer` and `name`, where a row came from (`haq hw table` writes them); not
//!   read.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{CostModel, CostTable, LayerCost, Unit, BITS};
use crate::arch::{LayerInfo, LayerKind, LayerShape};
use crate::error::{Error, Result};

/// Every column, in the order `haq hw table --format csv` writes them.
pub const CSV_COLUMNS: [&str; 17] = [
    "layer", "name", "kind", "c_in", "c_out", "kernel", "stride", "groups", "in_h", "in_w",
    "out_h", "out_w", "batch", "w_bits", "a_bits", "value", "unit",
];

/// How much a cost may fall as a bit width rises: measurement noise, and the simulators'
/// own tiling effects (BISMO cloud at w5 costs a few parts in 10^4 less than at w4 on some
/// layers).
const NOISE: f64 = 0.01;

/// Columns that only say where a row came from.
const INFORMATIONAL: [&str; 2] = ["layer", "name"];

/// The shape columns after `kind`, in [`shape_numbers`] order.
const SHAPE_NUMBERS: [&str; 9] = [
    "c_in", "c_out", "kernel", "stride", "groups", "in_h", "in_w", "out_h", "out_w",
];

const KINDS: [LayerKind; 3] = [LayerKind::Conv, LayerKind::Depthwise, LayerKind::Linear];

/// What rows are matched by: a layer's kind and its shape's numbers.
type ShapeKey = (&'static str, [usize; 9]);

fn shape_numbers(s: &LayerShape) -> [usize; 9] {
    [
        s.c_in, s.c_out, s.kernel, s.stride, s.groups, s.in_h, s.in_w, s.out_h, s.out_w,
    ]
}

fn shape_key(s: &LayerShape) -> ShapeKey {
    (s.kind.as_str(), shape_numbers(s))
}

/// The unit of a table's values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TableUnit {
    Plain(Unit),
    /// Clock cycles at this frequency, so latency is known too.
    Cycles {
        clock_hz: f64,
    },
}

impl TableUnit {
    fn parse(s: &str) -> Option<TableUnit> {
        let lower = s.to_ascii_lowercase();
        if let Some(clock) = lower.strip_prefix("cycles@") {
            let (number, scale) = [("ghz", 1e9), ("mhz", 1e6), ("khz", 1e3), ("hz", 1.0)]
                .into_iter()
                .find_map(|(suffix, scale)| Some((clock.strip_suffix(suffix)?, scale)))?;
            let clock_hz = number.trim().parse::<f64>().ok()? * scale;
            return (clock_hz.is_finite() && clock_hz > 0.0)
                .then_some(TableUnit::Cycles { clock_hz });
        }
        match lower.as_str() {
            "ms" => Some(TableUnit::Plain(Unit::Ms)),
            "mj" => Some(TableUnit::Plain(Unit::Mj)),
            "bytes" => Some(TableUnit::Plain(Unit::Bytes)),
            "bops" => Some(TableUnit::Plain(Unit::Bops)),
            _ => None,
        }
    }

    fn units(self) -> &'static [Unit] {
        match self {
            TableUnit::Plain(Unit::Mj) => &[Unit::Mj],
            TableUnit::Plain(Unit::Bytes) => &[Unit::Bytes],
            TableUnit::Plain(Unit::Bops) => &[Unit::Bops],
            TableUnit::Plain(_) => &[Unit::Ms],
            TableUnit::Cycles { .. } => &[Unit::Ms, Unit::Cycles],
        }
    }

    fn cost(self, value: f64) -> LayerCost {
        let mut cost = LayerCost::default();
        match self {
            TableUnit::Plain(Unit::Ms) => cost.latency_s = value / 1e3,
            TableUnit::Plain(Unit::Mj) => cost.energy_j = value / 1e3,
            TableUnit::Plain(Unit::Bytes) => cost.bytes = value,
            TableUnit::Plain(Unit::Bops) => cost.bops = value,
            TableUnit::Plain(Unit::Cycles) => unreachable!("cycles are read with a clock"),
            TableUnit::Cycles { clock_hz } => {
                cost.cycles = value;
                cost.latency_s = value / clock_hz;
            }
        }
        cost
    }

    fn label(self) -> String {
        match self {
            TableUnit::Plain(Unit::Mj) => "mJ".into(),
            TableUnit::Plain(unit) => unit.as_str().into(),
            TableUnit::Cycles { clock_hz } => format!("cycles@{}MHz", clock_hz / 1e6),
        }
    }
}

/// One row's value and the line it is on.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f64,
    line: usize,
}

/// A cost model read from a measured table. Costs at another batch than the table's are
/// scaled in proportion (calibrate asks for the table's own).
#[derive(Debug, Clone)]
pub struct MeasuredCosts {
    name: String,
    file: String,
    unit: TableUnit,
    batch: usize,
    rows: BTreeMap<(ShapeKey, u8, u8), Entry>,
}

impl MeasuredCosts {
    /// Reads the table file `file` from its bytes, as [`MeasuredCosts::parse`] once they
    /// are UTF-8 text.
    pub fn read(name: &str, file: &str, bytes: Vec<u8>) -> Result<MeasuredCosts> {
        let text = String::from_utf8(bytes).map_err(|_| Error::CostTable {
            location: file.into(),
            problem: "not UTF-8 text; a cost table is a CSV file (docs/hardware.md)".into(),
        })?;
        MeasuredCosts::parse(name, file, &text)
    }

    /// Reads the table `text` of the file `file` as the cost model called `name`. Errors
    /// name the file, the line and the column.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<MeasuredCosts> {
        let bad = |line: Option<usize>, column: Option<&str>, problem: String| {
            let mut location = file.to_string();
            if let Some(line) = line {
                location.push_str(&format!(":{line}"));
            }
            if let Some(column) = column {
                location.push_str(&format!(": column {column}"));
            }
            Error::CostTable { location, problem }
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (header_line, header) = lines.next().ok_or_else(|| {
            bad(
                None,
                None,
                format!(
                    "no header; the first line names the columns: {}",
                    CSV_COLUMNS.join(",")
                ),
            )
        })?;
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        for (i, c) in columns.iter().enumerate() {
            if !CSV_COLUMNS.contains(c) {
                return Err(bad(
                    Some(header_line),
                    Some(c),
                    format!("unknown column; the columns are {}", CSV_COLUMNS.join(",")),
                ));
            }
            if columns[..i].contains(c) {
                return Err(bad(Some(header_line), Some(c), "named twice".into()));
            }
        }
        let missing: Vec<&str> = CSV_COLUMNS
            .into_iter()
            .filter(|c| !INFORMATIONAL.contains(c) && !columns.contains(c))
            .collect();
        if let Some(first) = missing.first() {
            return Err(bad(
                Some(header_line),
                Some(first),
                format!("missing from the header (missing: {})", missing.join(",")),
            ));
        }
        let at = |name: &str| columns.iter().position(|c| *c == name).expect("checked");

        let mut table: Option<(TableUnit, usize, usize)> = None; // unit, batch, their line
        let mut rows = BTreeMap::new();
        for (n, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != columns.len() {
                return Err(bad(
                    Some(n),
                    None,
                    format!(
                        "{} fields where the header names {}",
                        fields.len(),
                        columns.len()
                    ),
                ));
            }
            let field = |name: &str| fields[at(name)];
            let int = |name: &str, min: usize, max: usize| -> Result<usize> {
                let text = field(name);
                match text.parse::<usize>() {
                    Ok(v) if (min..=max).contains(&v) => Ok(v),
                    _ => Err(bad(
                        Some(n),
                        Some(name),
                        format!("`{text}` is not a whole number in {min}..={max}"),
                    )),
                }
            };
            let kind = KINDS
                .into_iter()
                .find(|k| k.as_str() == field("kind"))
                .ok_or_else(|| {
                    bad(
                        Some(n),
                        Some("kind"),
                        format!("`{}`; expected conv, depthwise or linear", field("kind")),
                    )
                })?;
            let mut numbers = [0; 9];
            for (slot, name) in numbers.iter_mut().zip(SHAPE_NUMBERS) {
                *slot = int(name, 1, 1 << 24)?;
            }
            let batch = int("batch", 1, 1 << 20)?;
            let w = int("w_bits", 1, usize::from(BITS))? as u8;
            let a = int("a_bits", 1, usize::from(BITS))? as u8;
            let text = field("value");
            let value = match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                Ok(v) if v < 0.0 => {
                    return Err(bad(
                        Some(n),
                        Some("value"),
                        format!("{text} is negative; a cost is at least 0"),
                    ))
                }
                _ => {
                    return Err(bad(
                        Some(n),
                        Some("value"),
                        format!("`{text}` is not a finite number"),
                    ))
                }
            };
            let unit = TableUnit::parse(field("unit")).ok_or_else(|| {
                bad(
                    Some(n),
                    Some("unit"),
                    format!(
                        "`{}`; expected ms, mJ, cycles@<clock> (e.g. cycles@200MHz), bytes \
                         or bops",
                        field("unit")
                    ),
                )
            })?;
            let (first_unit, first_batch, first) = *table.get_or_insert((unit, batch, n));
            if unit != first_unit {
                return Err(bad(
                    Some(n),
                    Some("unit"),
                    format!(
                        "{} where line {first} has {}: one unit per table",
                        unit.label(),
                        first_unit.label()
                    ),
                ));
            }
            if batch != first_batch {
                return Err(bad(
                    Some(n),
                    Some("batch"),
                    format!("{batch} where line {first} has {first_batch}: one batch per table"),
                ));
            }
            let key = ((kind.as_str(), numbers), w, a);
            match rows.get(&key) {
                // Layers of one shape repeat in a network; `haq hw table` writes each.
                Some(Entry { value: v, line }) if *v != value => {
                    return Err(bad(
                        Some(n),
                        Some("value"),
                        format!("{value} where line {line} has {v} for the same shape and bits"),
                    ))
                }
                Some(_) => {}
                None => {
                    rows.insert(key, Entry { value, line: n });
                }
            }
        }
        let Some((unit, batch, _)) = table else {
            return Err(bad(None, None, "no rows after the header".into()));
        };
        // The budget sweep raises bit widths until the budget is spent, so a cost that falls
        // as bits rise would mislead it; a fall within measurement noise does not.
        for (&(shape, w, a), low) in &rows {
            for (w2, a2) in [(w + 1, a), (w, a + 1)] {
                if let Some(high) = rows.get(&(shape, w2, a2)) {
                    if high.value < low.value * (1.0 - NOISE) {
                        return Err(bad(
                            Some(high.line),
                            Some("value"),
                            format!(
                                "{} at w{w2} a{a2} is below {} at w{w} a{a} (line {}): a cost \
                                 must not fall by more than {}% as bits rise",
                                high.value,
                                low.value,
                                low.line,
                                NOISE * 100.0
                            ),
                        ));
                    }
                }
            }
        }
        Ok(MeasuredCosts {
            name: name.into(),
            file: file.into(),
            unit,
            batch,
            rows,
        })
    }
}

impl CostModel for MeasuredCosts {
    fn name(&self) -> &str {
        &self.name
    }

    fn default_batch(&self) -> usize {
        self.batch
    }

    fn units(&self) -> &'static [Unit] {
        self.unit.units()
    }

    /// # Panics
    /// If the table has no row for the layer and bits: check with [`CostModel::covers`].
    fn cost(&self, layer: &LayerShape, w_bits: u8, a_bits: u8, batch: usize) -> LayerCost {
        let entry = self.rows[&(shape_key(layer), w_bits, a_bits)];
        self.unit
            .cost(entry.value * batch as f64 / self.batch as f64)
    }

    fn fp32_cost(&self, _layer: &LayerShape, _batch: usize) -> Option<LayerCost> {
        None
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("file", self.file.clone()),
            ("unit", self.unit.label()),
            ("rows", self.rows.len().to_string()),
        ]
    }

    fn covers(&self, layers: &[LayerInfo]) -> Result<()> {
        for layer in layers {
            let key = shape_key(&layer.shape);
            let missing = |what: String| Error::CostTable {
                location: self.file.clone(),
                problem: format!(
                    "{what} of layer {} ({}: {} {}); measure it, or start from `haq hw table \
                     --format csv`",
                    layer.index,
                    layer.name,
                    key.0,
                    SHAPE_NUMBERS
                        .iter()
                        .zip(key.1)
                        .map(|(c, v)| format!("{c}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            };
            if !self.rows.keys().any(|(k, _, _)| *k == key) {
                return Err(missing("no row for the shape".into()));
            }
            for w in 1..=BITS {
                for a in 1..=BITS {
                    if !self.rows.contains_key(&(key, w, a)) {
                        return Err(missing(format!("no row at w_bits {w}, a_bits {a}")));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes `table` (built for `layers`) in the measured-table format, its values in `unit`:
/// the template a measured table starts from, and the same numbers `MeasuredCosts` reads.
pub fn write_csv(
    out: &mut impl Write,
    layers: &[LayerInfo],
    table: &CostTable,
    unit: Unit,
) -> io::Result<()> {
    let label = match unit {
        // Latency and cycles grow together, so their ratio is the model's clock.
        Unit::Cycles => {
            let (cycles, seconds) = table
                .costs
                .iter()
                .flatten()
                .fold((0.0, 0.0), |(c, s), x| (c + x.cycles, s + x.latency_s));
            TableUnit::Cycles {
                clock_hz: (cycles / seconds).round(),
            }
            .label()
        }
        _ => TableUnit::Plain(unit).label(),
    };
    writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    for (i, l) in layers.iter().enumerate() {
        let s = &l.shape;
        let shape = shape_numbers(s).map(|v| v.to_string()).join(",");
        for w in 1..=BITS {
            for a in 1..=BITS {
                let value = table.get(i, w, a).value(unit);
                writeln!(
                    out,
                    "{},{},{},{shape},{},{w},{a},{value},{label}",
                    l.index,
                    l.name,
                    s.kind.as_str(),
                    table.batch
                )?;
            }
        }
    }
    Ok(())
}
