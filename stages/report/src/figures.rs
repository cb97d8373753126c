//! The report's figures, each drawn once as PNG and once as SVG: per-layer bits of every
//! searched policy (the paper's Figures 3-5), the search curve of every search, test
//! top-1 against cost per hardware, and per-layer operations per byte (the roofline view).
//!
//! PNG text is rendered with DejaVu Sans, loaded at run time ([`load_font`]).

use std::collections::BTreeMap;

use anyhow::Context;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;

use haq_cost::budget::{Budget, Resource};
use haq_cost::hw::{Unit, MODEL_NAMES};

use crate::collect::{Experiments, Finetune, Search};
use crate::roles::{mean_bits, Bits, Role};

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The family every figure's text uses; [`load_font`] registers DejaVu Sans under it.
const FONT: &str = "sans-serif";

/// Registers DejaVu Sans for plotters' text. Once per process: plotters keeps the font for
/// the process's lifetime, so the bytes are leaked on purpose.
pub fn load_font() -> anyhow::Result<()> {
    let bytes = std::fs::read(FONT_PATH).with_context(|| {
        format!("reading the figures' font {FONT_PATH}; install it with `apt-get install fonts-dejavu-core`")
    })?;
    plotters::style::register_font(FONT, FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| {
            anyhow::anyhow!("{FONT_PATH} is not a TrueType font; reinstall fonts-dejavu-core")
        })
}

/// A drawn figure.
pub struct Figure {
    /// The file stem, e.g. `bits-latency-uniform-4`.
    pub name: String,
    pub title: String,
    pub png: Vec<u8>,
    pub svg: String,
}

/// Every figure the experiments support.
pub fn figures(exp: &Experiments) -> anyhow::Result<Vec<Figure>> {
    let roles: Vec<Role> = exp.layers.iter().map(|l| Role::of(&l.shape)).collect();
    let mut out = Vec::new();
    for (name, plot) in policy_groups(exp, &roles) {
        out.push(render(name, &plot)?);
    }
    // A random search is drawn on the curve of the DDPG search it controls, and alone
    // only when it controls none.
    let control_of: Vec<Option<usize>> =
        (0..exp.searches.len()).map(|i| exp.control_of(i)).collect();
    for (i, search) in exp.searches.iter().enumerate() {
        if control_of.contains(&Some(i)) {
            continue;
        }
        let plot = SearchCurve {
            search,
            control: control_of[i].map(|c| &exp.searches[c]),
        };
        out.push(render(format!("search-{}", slug(&search.stage)), &plot)?);
    }
    for (name, plot) in accuracy_cost_plots(exp) {
        out.push(render(name, &plot)?);
    }
    out.push(render("roofline".into(), &Roofline::new(exp, &roles))?);
    Ok(out)
}

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can be drawn on any backend.
trait Plot {
    fn title(&self) -> String;
    fn size(&self) -> (u32, u32);
    /// Draws below the title.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

fn render(name: String, plot: &impl Plot) -> anyhow::Result<Figure> {
    let (w, h) = plot.size();
    let title = plot.title();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw_on(
        BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
        &title,
        plot,
    )
    .with_context(|| format!("drawing {name}.png"))?;
    let mut svg = String::new();
    draw_on(
        SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
        &title,
        plot,
    )
    .with_context(|| format!("drawing {name}.svg"))?;
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&rgb, w, h, ExtendedColorType::Rgb8)
        .with_context(|| format!("encoding {name}.png"))?;
    Ok(Figure {
        name,
        title,
        png,
        svg,
    })
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    plot: &impl Plot,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, 22))?;
    plot.draw(&body)?;
    root.present()?;
    Ok(())
}

/// A file-name-safe form of `text`: lowercase letters, digits and dots, runs of anything
/// else turned into one `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    // No leading dot: a stage called `..` must not become a path.
    out.trim_end_matches('-')
        .trim_start_matches('.')
        .to_string()
}

fn budget_slug(budget: &Budget) -> String {
    slug(&match budget {
        Budget::Ratio(r) => format!("ratio {r}"),
        Budget::Match(spec) => spec.clone(),
        Budget::Absolute { value, unit } => format!("{value} {unit}"),
    })
}

/// Tick labels of a count axis (layers, episodes): integers only.
fn whole(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        String::new()
    }
}

/// Tick labels of a continuous axis: no float noise (0.30000000000000004) and no `-0`.
fn tick(v: &f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6 + 0.0)
}

fn hardware_rank(hardware: &str) -> usize {
    MODEL_NAMES
        .iter()
        .position(|n| *n == hardware)
        .unwrap_or(MODEL_NAMES.len())
}

fn role_color(role: Role) -> RGBColor {
    match role {
        Role::Depthwise => RGBColor(230, 120, 20),
        Role::Pointwise => RGBColor(30, 100, 200),
        Role::Conv => RGBColor(110, 110, 110),
        Role::Linear => RGBColor(40, 160, 70),
    }
}

// ---- Legends: a band of marks and labels above a figure's charts. ----

#[derive(Clone, Copy)]
enum Mark {
    Bar(RGBAColor),
    Line(RGBAColor),
    Circle(RGBAColor),
    Triangle(RGBAColor),
    Square(RGBAColor),
}

const LEGEND_ROW: i32 = 22;

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Mark)],
) -> Drawn<DB> {
    let font: TextStyle = (FONT, 14).into();
    let width = area.dim_in_pixel().0 as i32;
    let (mut x, mut y) = (60, LEGEND_ROW / 2);
    for (label, mark) in entries {
        let text_w = area.estimate_text_size(label, &font)?.0 as i32;
        if x + 26 + text_w > width && x > 60 {
            (x, y) = (60, y + LEGEND_ROW);
        }
        let c = (x + 8, y);
        match *mark {
            Mark::Bar(color) => area.draw(&Rectangle::new(
                [(x, y - 6), (x + 16, y + 6)],
                color.filled(),
            ))?,
            Mark::Line(color) => area.draw(&PathElement::new(
                vec![(x, y), (x + 16, y)],
                color.stroke_width(2),
            ))?,
            Mark::Circle(color) => area.draw(&Circle::new(c, 4, color.filled()))?,
            Mark::Triangle(color) => area.draw(&TriangleMarker::new(c, 6, color.filled()))?,
            Mark::Square(color) => area.draw(&Rectangle::new(
                [(x + 4, y - 4), (x + 12, y + 4)],
                color.filled(),
            ))?,
        }
        area.draw(&Text::new(label.clone(), (x + 22, y - 8), font.clone()))?;
        x += 22 + text_w + 24;
    }
    Ok(())
}

/// The height of a legend band of `rows` rows.
fn legend_height(rows: u32) -> u32 {
    rows * LEGEND_ROW as u32 + 8
}

// ---- Per-layer bits of searched policies (the paper's Figures 3-5). ----

/// One figure per (objective, budget): a panel per search, stacked so that policies on
/// different hardware (edge above cloud) line up layer by layer.
struct PolicyBits<'a> {
    objective: Resource,
    budget: &'a Budget,
    searches: Vec<&'a Search>,
    roles: &'a [Role],
}

fn policy_groups<'a>(exp: &'a Experiments, roles: &'a [Role]) -> Vec<(String, PolicyBits<'a>)> {
    let mut groups: BTreeMap<(u8, String), PolicyBits> = BTreeMap::new();
    for s in exp.searches.iter().filter(|s| !s.is_random()) {
        let rank = match s.summary.objective {
            Resource::Latency => 0,
            Resource::Energy => 1,
            Resource::Size => 2,
        };
        let name = format!(
            "bits-{}-{}",
            s.summary.objective,
            budget_slug(&s.summary.budget)
        );
        groups
            .entry((rank, name))
            .or_insert_with(|| PolicyBits {
                objective: s.summary.objective,
                budget: &s.summary.budget,
                searches: Vec::new(),
                roles,
            })
            .searches
            .push(s);
    }
    groups
        .into_iter()
        .map(|((_, name), mut plot)| {
            plot.searches
                .sort_by_key(|s| (hardware_rank(&s.summary.hardware), s.stage.clone()));
            (name, plot)
        })
        .collect()
}

const PANEL_HEIGHT: u32 = 300;

impl PolicyBits<'_> {
    fn linear(&self) -> bool {
        self.searches[0].policy.is_linear()
    }

    fn legend_entries(&self) -> Vec<(String, Mark)> {
        let mut entries = Vec::new();
        for role in Role::ALL.into_iter().filter(|r| self.roles.contains(r)) {
            let color = role_color(role);
            if self.linear() {
                entries.push((
                    format!("{} activations", role.name()),
                    Mark::Bar(color.to_rgba()),
                ));
                entries.push((
                    format!("{} weights", role.name()),
                    Mark::Bar(color.mix(0.45)),
                ));
            } else {
                entries.push((
                    format!("{} weights", role.name()),
                    Mark::Bar(color.to_rgba()),
                ));
            }
        }
        entries
    }

    fn caption(&self, s: &Search) -> String {
        let mean = |role, bits| {
            mean_bits(&s.policy, self.roles, role, bits).map_or("-".into(), |m| format!("{m:.2}"))
        };
        let bits = if self.linear() {
            Bits::Activations
        } else {
            Bits::Weights
        };
        let which = if self.linear() {
            "activation"
        } else {
            "weight"
        };
        format!(
            "{} ({}): mean {which} bits depthwise {}, pointwise {}",
            s.summary.hardware,
            s.stage,
            mean(Role::Depthwise, bits),
            mean(Role::Pointwise, bits)
        )
    }

    fn panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, s: &Search) -> Drawn<DB> {
        let linear = self.linear();
        let n = s.policy.layers.len() as f64;
        let low = if linear { -8.9 } else { 0.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(self.caption(s), (FONT, 16))
            .margin(6)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5..n - 0.5, low..8.9)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_labels(10)
            .y_label_formatter(&|v: &f64| format!("{}", v.abs()))
            .x_label_formatter(&whole)
            .x_desc("layer (execution order)")
            .y_desc(if linear {
                "bits: weights down, activations up"
            } else {
                "weight bits"
            })
            .label_style((FONT, 13))
            .draw()?;
        let bar = |i: usize, bits: f64, style: ShapeStyle| {
            let x = i as f64;
            Rectangle::new([(x - 0.4, 0.0), (x + 0.4, bits)], style)
        };
        for (i, (layer, role)) in s.policy.layers.iter().zip(self.roles).enumerate() {
            let color = role_color(*role);
            match layer.a_bits {
                Some(a) if linear => {
                    chart
                        .plotting_area()
                        .draw(&bar(i, f64::from(a), color.filled()))?;
                    chart.plotting_area().draw(&bar(
                        i,
                        -f64::from(layer.w_bits),
                        color.mix(0.45).filled(),
                    ))?;
                }
                _ => {
                    chart
                        .plotting_area()
                        .draw(&bar(i, f64::from(layer.w_bits), color.filled()))?
                }
            }
        }
        Ok(())
    }
}

impl Plot for PolicyBits<'_> {
    fn title(&self) -> String {
        format!(
            "Per-layer bits of the {} policies, budget {}",
            self.objective, self.budget
        )
    }

    fn size(&self) -> (u32, u32) {
        (
            1200,
            40 + legend_height(2) + PANEL_HEIGHT * self.searches.len() as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let (top, panels) = area.split_vertically(legend_height(2));
        legend(&top, &self.legend_entries())?;
        for (panel, s) in panels
            .split_evenly((self.searches.len(), 1))
            .iter()
            .zip(&self.searches)
        {
            self.panel(panel, s)?;
        }
        Ok(())
    }
}

// ---- Search curves. ----

struct SearchCurve<'a> {
    search: &'a Search,
    /// The random search with the same setting, whose best so far is drawn beside.
    control: Option<&'a Search>,
}

const BLUE: RGBColor = RGBColor(30, 100, 200);
const RED: RGBColor = RGBColor(200, 30, 40);
const GREY: RGBColor = RGBColor(150, 150, 150);
const DARK_GREEN: RGBColor = RGBColor(30, 130, 60);
const ORANGE: RGBColor = RGBColor(230, 120, 20);

/// `lo..hi` of `values` with 8% of the span as padding, or 5% of the value when they
/// are all equal (half a unit around 0).
fn padded(values: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else if hi != 0.0 {
        hi.abs() * 0.05
    } else {
        0.5
    };
    lo - pad..hi + pad
}

impl SearchCurve<'_> {
    /// One panel: a value per episode (warm-up ones grey), its best so far, the
    /// control's best so far, and a reference line.
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        y_desc: &str,
        values: &[f64],
        best: &[f64],
        control: &[f64],
        reference: f64,
    ) -> Drawn<DB> {
        let n = values.len().max(control.len()) as f64;
        let y = padded(values.iter().chain(control).copied().chain([reference]));
        let warmup = self.search.summary.warmup.min(values.len()) as f64;
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, y.clone())?;
        chart
            .configure_mesh()
            .x_label_formatter(&whole)
            .y_label_formatter(&tick)
            .x_desc("episode")
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .draw()?;
        if warmup > 0.0 {
            chart.draw_series([Rectangle::new(
                [(-0.5, y.start), (warmup - 0.5, y.end)],
                GREY.mix(0.15).filled(),
            )])?;
        }
        chart.draw_series(LineSeries::new(
            [(-0.5, reference), (n - 0.5, reference)],
            DARK_GREEN.stroke_width(1),
        ))?;
        chart.draw_series(LineSeries::new(
            control.iter().enumerate().map(|(i, v)| (i as f64, *v)),
            ORANGE.stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            best.iter().enumerate().map(|(i, v)| (i as f64, *v)),
            RED.stroke_width(2),
        ))?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            let color = if (i as f64) < warmup { GREY } else { BLUE };
            Circle::new((i as f64, *v), 3, color.filled())
        }))?;
        Ok(())
    }
}

impl Plot for SearchCurve<'_> {
    fn title(&self) -> String {
        let s = &self.search.summary;
        // The size model is named like its objective: no "size on size".
        let on = if s.hardware == s.objective.to_string() {
            String::new()
        } else {
            format!(" on {}", s.hardware)
        };
        format!(
            "Search {}: {}{on}, budget {}",
            self.search.stage, s.objective, s.budget
        )
    }

    fn size(&self) -> (u32, u32) {
        (1000, 40 + legend_height(2) + 2 * PANEL_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let episodes = &self.search.episodes;
        let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
        let best_rewards: Vec<f64> = episodes.iter().map(|e| e.best_reward).collect();
        let accuracies: Vec<f64> = episodes.iter().map(|e| e.accuracy).collect();
        let running_max = |values: &[f64]| -> Vec<f64> {
            values
                .iter()
                .scan(f64::NEG_INFINITY, |best, &a| {
                    *best = best.max(a);
                    Some(*best)
                })
                .collect()
        };
        let best_accuracies = running_max(&accuracies);
        let control = self.control.map_or(&[][..], |c| &c.episodes[..]);
        let control_rewards: Vec<f64> = control.iter().map(|e| e.best_reward).collect();
        let control_accuracies =
            running_max(&control.iter().map(|e| e.accuracy).collect::<Vec<_>>());
        let (top, charts) = area.split_vertically(legend_height(2));
        let control_entry = self.control.map(|c| {
            (
                format!("random search ({}), best so far", c.stage),
                Mark::Line(ORANGE.to_rgba()),
            )
        });
        legend(
            &top,
            &[
                (
                    "warm-up episode (random actions)".into(),
                    Mark::Circle(GREY.to_rgba()),
                ),
                (
                    "episode (agent + exploration)".into(),
                    Mark::Circle(BLUE.to_rgba()),
                ),
                ("best so far".into(), Mark::Line(RED.to_rgba())),
                (
                    "float model (reward 0)".into(),
                    Mark::Line(DARK_GREEN.to_rgba()),
                ),
                ("warm-up".into(), Mark::Bar(GREY.mix(0.15))),
            ]
            .into_iter()
            .chain(control_entry)
            .collect::<Vec<_>>(),
        )?;
        let (upper, lower) = charts.split_vertically(PANEL_HEIGHT);
        self.panel(
            &upper,
            "reward",
            &rewards,
            &best_rewards,
            &control_rewards,
            0.0,
        )?;
        self.panel(
            &lower,
            "search-val top-1 (%)",
            &accuracies,
            &best_accuracies,
            &control_accuracies,
            self.search.summary.float_accuracy,
        )
    }
}

// ---- Accuracy against cost. ----

/// Test top-1 of every finetuned policy against its cost on one hardware, in one unit.
struct AccuracyCost<'a> {
    exp: &'a Experiments,
    hardware: String,
    unit: Unit,
}

/// The cost models and units every finetune was costed in, in `haq hw list` order.
fn accuracy_cost_plots(exp: &Experiments) -> Vec<(String, AccuracyCost<'_>)> {
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
        Some(i) if exp.searches[i].is_random() => (
            "Random search (control)".into(),
            Mark::Triangle(GREY.to_rgba()),
        ),
        Some(i) => {
            let objective = exp.searches[i].summary.objective;
            let color = match objective {
                Resource::Latency => RED,
                Resource::Energy => RGBColor(130, 50, 170),
                Resource::Size => DARK_GREEN,
            };
            (
                format!("HAQ, {objective} search"),
                Mark::Square(color.to_rgba()),
            )
        }
    }
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
        }
    }

    fn points(&self) -> Vec<(&Finetune, f64)> {
        let scale = self.axis().1;
        self.exp
            .finetunes
            .iter()
            .filter_map(|f| Some((f, f.cost(&self.hardware, self.unit)? * scale)))
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
        (1000, 40 + legend_height(2) + 520)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let points = self.points();
        let float = self.exp.float.test_top1;
        let mut entries: Vec<(String, Mark)> = Vec::new();
        for (f, _) in &points {
            let s = point_series(self.exp, f);
            if !entries.iter().any(|(name, _)| *name == s.0) {
                entries.push(s);
            }
        }
        entries.push(("float model".into(), Mark::Line(BLACK.to_rgba())));
        let (top, body) = area.split_vertically(legend_height(2));
        legend(&top, &entries)?;

        let x = padded(points.iter().map(|(_, c)| *c));
        let x = x.start.max(0.0)..x.end;
        let y = padded(
            points
                .iter()
                .map(|(f, _)| f.accuracy.test_top1)
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
        let font = (FONT, 12).into_font();
        for (f, cost) in &points {
            let at = (*cost, f.accuracy.test_top1);
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

// ---- Operations per byte (roofline view). ----

/// Per layer, multiply-accumulates per byte moved at 8 bits: MACs / (weights + input
/// activations), one byte each. Depthwise layers sit far below pointwise ones, which is
/// why bandwidth-bound hardware quantizes their activations harder (the paper, §4.2).
struct Roofline<'a> {
    intensity: Vec<f64>,
    roles: &'a [Role],
}

impl<'a> Roofline<'a> {
    fn new(exp: &Experiments, roles: &'a [Role]) -> Self {
        let intensity = exp
            .layers
            .iter()
            .map(|l| {
                let s = &l.shape;
                let bytes = s.params + s.c_in * s.in_h * s.in_w;
                s.macs() as f64 / bytes as f64
            })
            .collect();
        Roofline { intensity, roles }
    }
}

impl Plot for Roofline<'_> {
    fn title(&self) -> String {
        "Operations per byte of every layer at 8 bits (roofline view)".into()
    }

    fn size(&self) -> (u32, u32) {
        (1200, 40 + legend_height(1) + 420)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let entries: Vec<(String, Mark)> = Role::ALL
            .into_iter()
            .filter(|r| self.roles.contains(r))
            .map(|r| (r.name().to_string(), Mark::Bar(role_color(r).to_rgba())))
            .collect();
        let (top, body) = area.split_vertically(legend_height(1));
        legend(&top, &entries)?;
        let lo = self
            .intensity
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .min(1.0)
            * 0.5;
        let hi = self.intensity.iter().copied().fold(1.0, f64::max) * 2.0;
        let n = self.intensity.len() as f64;
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&whole)
            .y_label_formatter(&tick)
            .x_desc("layer (execution order)")
            .y_desc("MACs per byte (weights + input activations)")
            .label_style((FONT, 13))
            .draw()?;
        chart.draw_series(self.intensity.iter().zip(self.roles).enumerate().map(
            |(i, (v, role))| {
                let x = i as f64;
                Rectangle::new([(x - 0.4, lo), (x + 0.4, *v)], role_color(*role).filled())
            },
        ))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("search-latency@bismo-edge"),
            "search-latency-bismo-edge"
        );
        assert_eq!(slug("uniform:4"), "uniform-4");
        assert_eq!(slug("  A/b..c  "), "a-b..c");
        assert_eq!(budget_slug(&Budget::Ratio(0.5)), "ratio-0.5");
    }
}
