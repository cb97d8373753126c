//! `haq hw`: the hardware cost models, their lookup tables and a policy's cost, so anyone
//! can check a model against published numbers.

use std::io::{self, BufWriter, Write};

use anyhow::{bail, Context};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use haq_cost::arch::{layers, Arch, ArchConfig, LayerInfo};
use haq_cost::hw::{
    build_table, by_name, write_csv, CostModel, LayerCost, MeasuredCosts, Unit, BITS, MODEL_NAMES,
};
use haq_cost::policy::Policy;

#[derive(Subcommand)]
pub enum HwCommand {
    /// List the cost models and their parameters.
    List,
    /// Print a network's lookup table: every layer at every (w, a) in 1..8 x 1..8.
    Table {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
    /// Print the cost of a whole network under a policy; the number alone is the last line.
    Cost {
        #[command(flatten)]
        target: Target,
        /// `uniform:K` (first layer w8a8, others K bits), `uniform-wWaA` (e.g.
        /// uniform-w6a4), `uniform-wW` (k-means: weights only, activations costed at
        /// 8 bits), or a policy JSON file.
        #[arg(long)]
        policy: String,
    },
}

/// A network on a cost model.
#[derive(Args)]
pub struct Target {
    /// The architecture, with torchvision's layer order.
    #[arg(long, value_parser = PossibleValuesParser::new(Arch::ALL.map(Arch::as_str))
        .map(|s| s.parse::<Arch>().expect("a listed architecture")))]
    arch: Arch,
    /// Input height and width in pixels (at most 64 selects the small-input variant).
    #[arg(long)]
    input_size: usize,
    #[arg(long)]
    num_classes: usize,
    /// Width multiplier.
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Input image channels.
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// The cost model: bismo-edge, bismo-cloud, bitfusion, size, bops, or the path of a
    /// cost table measured on a device (CSV, docs/hardware.md), as a workflow's
    /// `hardware:` entry names it.
    #[arg(long)]
    hardware: String,
    /// Batch size [default: the model's own: bismo-edge 1, bismo-cloud 16, bitfusion 4, a
    /// measured table its own].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65536))]
    batch: Option<u64>,
    /// Unit of the values [default: the model's main one: ms, or bytes for size].
    #[arg(long, value_parser = PossibleValuesParser::new(Unit::ALL.map(Unit::as_str))
        .map(|s| s.parse::<Unit>().expect("a listed unit")))]
    unit: Option<Unit>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// The network, its cost model, and the batch and unit to report.
struct Resolved {
    layers: Vec<LayerInfo>,
    model: Box<dyn CostModel>,
    batch: usize,
    unit: Unit,
}

impl Target {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        let cfg = ArchConfig {
            width: self.width,
            in_channels: self.in_channels,
            ..ArchConfig::new(self.arch, self.input_size, self.num_classes)
        };
        cfg.validate()?;
        let layers = layers(&cfg);
        let model = self.model()?;
        // A measured table costs only the shapes and bits it has rows for.
        model.covers(&layers)?;
        let unit = self.unit.unwrap_or(model.units()[0]);
        if !model.units().contains(&unit) {
            let known: Vec<&str> = model.units().iter().map(|u| u.as_str()).collect();
            bail!(
                "{} does not report {unit}; use --unit {}",
                model.name(),
                known.join(" or --unit ")
            );
        }
        let batch = self.batch.map_or(model.default_batch(), |b| b as usize);
        Ok(Resolved {
            layers,
            model,
            batch,
            unit,
        })
    }

    /// The built-in model named by `--hardware`, else the table file it names.
    fn model(&self) -> anyhow::Result<Box<dyn CostModel>> {
        let name = &self.hardware;
        if MODEL_NAMES.contains(&name.as_str()) {
            return Ok(by_name(name)?);
        }
        let bytes = std::fs::read(name).with_context(|| {
            format!(
                "--hardware {name}: not a cost model ({}) and no cost table file can be read \
                 there",
                MODEL_NAMES.join(", ")
            )
        })?;
        Ok(Box::new(MeasuredCosts::read(name, name, bytes)?))
    }
}

/// One row of `haq hw table`.
#[derive(Serialize)]
struct Row<'a> {
    layer: usize,
    name: &'a str,
    kind: &'a str,
    w_bits: u8,
    a_bits: u8,
    value: f64,
}

pub fn run(cmd: HwCommand) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    match cmd {
        HwCommand::List => list(&mut out),
        HwCommand::Table { target, format } => {
            target.resolve().and_then(|r| table(&mut out, &r, format))
        }
        HwCommand::Cost { target, policy } => cost(&mut out, &target, &policy),
    }
    .and_then(|()| out.flush().context("writing to stdout"))
}

fn list(out: &mut impl Write) -> anyhow::Result<()> {
    for name in MODEL_NAMES {
        let model = by_name(name)?;
        let units: Vec<&str> = model.units().iter().map(|u| u.as_str()).collect();
        writeln!(
            out,
            "{name}  (batch {}, units: {})",
            model.default_batch(),
            units.join(", ")
        )?;
        for (key, value) in model.describe() {
            writeln!(out, "    {key:<18} {value}")?;
        }
    }
    Ok(())
}

fn table(out: &mut impl Write, r: &Resolved, format: Format) -> anyhow::Result<()> {
    let table = &build_table(r.model.as_ref(), &r.layers, r.batch);
    match format {
        // The measured-table format (docs/hardware.md): a template to measure a device with.
        Format::Csv => write_csv(out, &r.layers, table, r.unit)?,
        Format::Json => {
            let rows: Vec<Row> = r
                .layers
                .iter()
                .flat_map(|l| {
                    (1..=BITS).flat_map(move |w| {
                        (1..=BITS).map(move |a| Row {
                            layer: l.index,
                            name: &l.name,
                            kind: l.shape.kind.as_str(),
                            w_bits: w,
                            a_bits: a,
                            value: table.get(l.index, w, a).value(r.unit),
                        })
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn cost(out: &mut impl Write, target: &Target, spec: &str) -> anyhow::Result<()> {
    let r = target.resolve()?;
    let policy = Policy::parse(spec, r.layers.len())?;
    let total: LayerCost = r
        .layers
        .iter()
        .zip(policy.bits())
        .map(|(l, (w, a))| r.model.cost(&l.shape, w, a, r.batch))
        .sum();
    let value = total.value(r.unit);
    writeln!(
        out,
        "{} at {} px, {} classes, on {} (batch {}), policy {spec}, in {}:",
        target.arch,
        target.input_size,
        target.num_classes,
        r.model.name(),
        r.batch,
        r.unit
    )?;
    writeln!(out, "{value}")?;
    Ok(())
}
