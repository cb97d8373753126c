//! Test top-1 of every finetuned policy against its cost, per hardware and unit; the
//! replicates of one experiment as one point at their means, the 95% confidence interval
//! of their top-1 as an error bar. A search that walked an accuracy-cost front (greedy's)
//! has the front drawn as a line, at the top-1 its walk predicted.

use super::*;
use crate::stats::Stat;
use crate::tables::method_name;
use haq_cost::method::Method;

/// Test top-1 of every finetuned policy against its cost on one hardware, in one unit.
pub(super) struct AccuracyCost<'a> {
    exp: &'a Experiments,
    hardware: String,
    unit: Unit,
}

/// The cost models and units every finetune was costed in, in `haq hw list` order.
pub(super) fn accuracy_cost_plots(exp: &Experiments) -> Vec<(String, AccuracyCost<'_>)> {
    let mut keys: Vec<(usize, String, usize, Unit)> = Vec::new();
    for f in &exp.finetunes {
        for hardware in f.costs.keys() {
            for (rank, unit) in [Unit::Ms, Unit::Mj, Unit::Bytes].into_iter().enumerate() {
                if f.cost(hardware, unit).is_some() {
                    keys.push((hardware_rank(hardware), hardware.clone(), rank, unit));
                }
            }
        }
    }
    keys.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    keys.dedup();
    keys.into_iter()
        .map(|(_, hardware, _, unit)| {
            let what = unit.quantity().split('_').next().unwrap_or_default();
            let name = if hardware == what {
                format!("accuracy-vs-{what}")
            } else {
                format!("accuracy-vs-{what}-{}", slug(&hardware))
            };
            (
                name,
                AccuracyCost {
                    exp,
                    hardware,
                    unit,
                },
            )
        })
        .collect()
}

/// How a point is drawn: its series' name, colour and marker.
fn point_series(exp: &Experiments, f: &Finetune) -> (String, Mark) {
    match f.search {
        None if f.policy.is_linear() => ("PACT (fixed bits)".into(), Mark::Circle(BLUE.to_rgba())),
        None => (
            "Deep Compression (fixed bits)".into(),
            Mark::Triangle(ORANGE.to_rgba()),
        ),
        Some(i) => match exp.searches[i].method() {
            Method::Random => (
                "Random search (control)".into(),
                Mark::Triangle(GREY.to_rgba()),
            ),
            Method::Greedy => (
                method_name(Method::Greedy).into(),
                Mark::Circle(TEAL.to_rgba()),
            ),
            Method::Hawq => (
                method_name(Method::Hawq).into(),
                Mark::Triangle(BROWN.to_rgba()),
            ),
            Method::Ddpg => haq_series(exp.searches[i].summary.objective),
        },
    }
}

const TEAL: RGBColor = RGBColor(0, 140, 140);
const BROWN: RGBColor = RGBColor(140, 90, 40);

/// HAQ's points, coloured by the objective searched on.
fn haq_series(objective: Resource) -> (String, Mark) {
    let color = match objective {
        Resource::Latency => RED,
        Resource::Energy => RGBColor(130, 50, 170),
        Resource::Size => DARK_GREEN,
        Resource::Bops => RGBColor(40, 110, 200),
    };
    (
        format!("HAQ, {objective} search"),
        Mark::Square(color.to_rgba()),
    )
}

/// A short label for a point: a fixed policy's bits, a HAQ policy's search hardware.
fn point_label(exp: &Experiments, f: &Finetune) -> String {
    match f.search {
        Some(i) => exp.searches[i].summary.hardware.clone(),
        None => {
            let rest = &f.policy.layers[usize::from(f.policy.is_linear())..];
            match rest.first() {
                Some(l) if rest.iter().all(|x| x == l) => l.to_string().replace(' ', ""),
                _ => "mixed".into(),
            }
        }
    }
}

impl AccuracyCost<'_> {
    fn axis(&self) -> (&'static str, f64) {
        match self.unit {
            Unit::Ms => ("latency (ms)", 1.0),
            Unit::Mj => ("energy (mJ)", 1.0),
            Unit::Bytes => ("model size (MiB)", 1.0 / f64::from(1 << 20)),
            Unit::Cycles => ("cycles", 1.0),
            Unit::Bops => ("bit operations (G)", 1e-9),
        }
    }

    /// One point per experiment: its first replicate (for the series and label), the mean
    /// cost, and the top-1 over its replicates.
    fn points(&self) -> Vec<(&Finetune, f64, Stat)> {
        let scale = self.axis().1;
        self.exp
            .finetune_groups()
            .iter()
            .filter_map(|g| {
                let members: Vec<&Finetune> = g.iter().map(|i| &self.exp.finetunes[*i]).collect();
                let costs: Option<Vec<f64>> = members
                    .iter()
                    .map(|f| Some(f.cost(&self.hardware, self.unit)? * scale))
                    .collect();
                let top1: Vec<f64> = members.iter().map(|f| f.accuracy.test_top1).collect();
                Some((members[0], Stat::of(&costs?)?.mean, Stat::of(&top1)?))
            })
            .collect()
    }

    /// The fronts walked by searches on this hardware and unit, scaled to the axis, each
    /// cut to the points' cost range (a walk starts at the all-widest policy, far beyond).
    fn fronts(&self, x: &std::ops::Range<f64>) -> Vec<Vec<(f64, f64)>> {
        let scale = self.axis().1;
        self.exp
            .searches
            .iter()
            .filter(|s| {
                s.summary.hardware == self.hardware && s.summary.objective.unit() == self.unit
            })
            .map(|s| {
                s.front()
                    .iter()
                    .map(|p| (p.cost * scale, p.predicted_accuracy))
                    .filter(|(cost, _)| x.contains(cost))
                    .collect::<Vec<_>>()
            })
            .filter(|front| !front.is_empty())
            .collect()
    }
}

impl Plot for AccuracyCost<'_> {
    fn title(&self) -> String {
        let what = self.axis().0;
        if self.unit == Unit::Bytes {
            // Model size is the same on any hardware.
            return format!("Test top-1 against {what}");
        }
        let batch = self
            .exp
            .finetunes
            .iter()
            .find_map(|f| f.batch(&self.hardware))
            .unwrap_or(1.0);
        format!(
            "Test top-1 against {what} on {} (batch {batch})",
            self.hardware
        )
    }

    fn size(&self) -> (u32, u32) {
        (1000, 40 + legend_height(3) + 520)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let points = self.points();
        let float = self.exp.float.test_top1;
        let mut entries: Vec<(String, Mark)> = Vec::new();
        for (f, _, _) in &points {
            let s = point_series(self.exp, f);
            if !entries.iter().any(|(name, _)| *name == s.0) {
                entries.push(s);
            }
        }
        entries.push(("float model".into(), Mark::Line(BLACK.to_rgba())));
        let x = padded(points.iter().map(|(_, c, _)| *c));
        let x = x.start.max(0.0)..x.end;
        let fronts = self.fronts(&x);
        if !fronts.is_empty() {
            entries.push((
                "greedy walk's front (predicted search-val top-1)".into(),
                Mark::Line(TEAL.mix(0.6)),
            ));
        }
        let (top, body) = area.split_vertically(legend_height(3));
        legend(&top, &entries)?;

        let y = padded(
            points
                .iter()
                .flat_map(|(_, _, t)| [t.ci_low.unwrap_or(t.mean), t.ci_high.unwrap_or(t.mean)])
                .chain(fronts.iter().flatten().map(|p| p.1))
                .chain([float]),
        );
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x.clone(), y)?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc(self.axis().0)
            .y_desc("test top-1 (%)")
            .label_style((FONT, 13))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(x.start, float), (x.end, float)],
            BLACK.stroke_width(1),
        ))?;
        for front in fronts {
            chart.draw_series(LineSeries::new(front, TEAL.mix(0.6).stroke_width(2)))?;
        }
        let font = (FONT, 12).into_font();
        for (f, cost, top1) in &points {
            let at = (*cost, top1.mean);
            // Replicates: the 95% confidence interval of the mean top-1.
            if let (Some(low), Some(high)) = (top1.ci_low, top1.ci_high) {
                let color = point_series(self.exp, f).1.color();
                chart.draw_series([PathElement::new(
                    vec![(*cost, low), (*cost, high)],
                    color.stroke_width(2),
                )])?;
            }
            let point =
                EmptyElement::at(at) + Text::new(point_label(self.exp, f), (7, -14), font.clone());
            match point_series(self.exp, f).1 {
                Mark::Circle(c) => {
                    chart.draw_series([point + Circle::new((0, 0), 5, c.filled())])?
                }
                Mark::Triangle(c) => {
                    chart.draw_series([point + TriangleMarker::new((0, 0), 7, c.filled())])?
                }
                Mark::Square(c) | Mark::Bar(c) | Mark::Line(c) => {
                    chart.draw_series([point + Rectangle::new([(-5, -5), (5, 5)], c.filled())])?
                }
            };
        }
        Ok(())
    }
}
