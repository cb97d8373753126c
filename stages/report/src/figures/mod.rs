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

use crate::collect::{replicates_label, Experiments, Finetune, Search};
use crate::roles::{mean_bits, Bits, Role};

mod accuracy_cost;
mod bits;
mod roofline;
mod search_curve;

use accuracy_cost::accuracy_cost_plots;
use bits::policy_groups;
use roofline::Roofline;
use search_curve::{ReplicateCurves, SearchCurve};

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
    // only when it controls none; replicates as one figure of their means.
    let controls = exp.controls();
    for g in exp.search_groups() {
        if controls.iter().any(|c| c.other == g) {
            continue;
        }
        let control = controls.iter().find(|c| c.ddpg == g).map(|c| &c.other[..]);
        let searches: Vec<&Search> = g.iter().map(|i| &exp.searches[*i]).collect();
        let controls: Vec<&Search> = control
            .unwrap_or_default()
            .iter()
            .map(|i| &exp.searches[*i])
            .collect();
        let label = replicates_label(
            &searches
                .iter()
                .map(|s| s.stage.as_str())
                .collect::<Vec<_>>(),
        );
        let name = format!("search-{}", slug(&label));
        if searches.len() == 1 && controls.len() <= 1 {
            let plot = SearchCurve {
                search: searches[0],
                control: controls.first().copied(),
            };
            out.push(render(name, &plot)?);
        } else {
            let plot = ReplicateCurves {
                label,
                searches,
                controls,
            };
            out.push(render(name, &plot)?);
        }
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

impl Mark {
    fn color(self) -> RGBAColor {
        match self {
            Mark::Bar(c)
            | Mark::Line(c)
            | Mark::Circle(c)
            | Mark::Triangle(c)
            | Mark::Square(c) => c,
        }
    }
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

/// The height of one panel: a search's policy bits, or one of a search curve's two plots.
const PANEL_HEIGHT: u32 = 300;

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
