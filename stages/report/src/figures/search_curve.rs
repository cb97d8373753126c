//! The search curve of every search, with its random-search control beside it; of
//! replicated searches, the mean best so far over the replicates with its 95% band.
//! Probes (greedy's sensitivity measurements) are no results and are left out.

use super::*;
use crate::collect::Episode;
use crate::stats::Stat;
use crate::tables::method_name;

pub(super) struct SearchCurve<'a> {
    pub(super) search: &'a Search,
    /// The random search with the same setting, whose best so far is drawn beside.
    pub(super) control: Option<&'a Search>,
}

type EpisodeChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A panel's chart over `n` episodes with its mesh and the green reference line.
fn episode_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    n: f64,
    y: std::ops::Range<f64>,
    y_desc: &str,
    reference: f64,
) -> Result<EpisodeChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, y)?;
    chart
        .configure_mesh()
        .x_label_formatter(&whole)
        .y_label_formatter(&tick)
        .x_desc("episode")
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, reference), (n - 0.5, reference)],
        DARK_GREEN.stroke_width(1),
    ))?;
    Ok(chart)
}

impl SearchCurve<'_> {
    /// One panel: a value per episode (warm-up ones grey), its best so far, the
    /// control's best so far (each where there is one), and a reference line.
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        y_desc: &str,
        values: &[f64],
        best: &[Option<f64>],
        control: &[Option<f64>],
        reference: f64,
    ) -> Drawn<DB> {
        let n = values.len().max(control.len()) as f64;
        let y = padded(
            values
                .iter()
                .chain(control.iter().flatten())
                .copied()
                .chain([reference]),
        );
        let warmup = self.warmup().min(values.len()) as f64;
        let mut chart = episode_chart(area, n, y.clone(), y_desc, reference)?;
        if warmup > 0.0 {
            chart.draw_series([Rectangle::new(
                [(-0.5, y.start), (warmup - 0.5, y.end)],
                GREY.mix(0.15).filled(),
            )])?;
        }
        let line = |v: &[Option<f64>]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i as f64, (*v)?)))
                .collect()
        };
        chart.draw_series(LineSeries::new(line(control), ORANGE.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(line(best), RED.stroke_width(2)))?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            let color = if (i as f64) < warmup { GREY } else { BLUE };
            Circle::new((i as f64, *v), 3, color.filled())
        }))?;
        Ok(())
    }

    fn warmup(&self) -> usize {
        self.search.summary.warmup.unwrap_or(0)
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
        let episodes: Vec<&Episode> = self.search.results().collect();
        let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
        let best_rewards: Vec<Option<f64>> = episodes.iter().map(|e| e.best_reward).collect();
        let accuracies: Vec<f64> = episodes.iter().map(|e| e.accuracy).collect();
        let best_accuracies: Vec<Option<f64>> = running_max(accuracies.iter().copied())
            .into_iter()
            .map(Some)
            .collect();
        let control: Vec<&Episode> = self.control.into_iter().flat_map(|c| c.results()).collect();
        let control_rewards: Vec<Option<f64>> = control.iter().map(|e| e.best_reward).collect();
        let control_accuracies: Vec<Option<f64>> = running_max(control.iter().map(|e| e.accuracy))
            .into_iter()
            .map(Some)
            .collect();
        let (top, charts) = area.split_vertically(legend_height(2));
        let control_entry = self.control.map(|c| {
            (
                format!("random search ({}), best so far", c.stage),
                Mark::Line(ORANGE.to_rgba()),
            )
        });
        // Only DDPG has a warm-up and an agent; other methods' episodes are their own.
        let warmup = self.warmup() > 0;
        let episode = if warmup {
            "episode (agent + exploration)".to_string()
        } else {
            format!("episode ({})", method_name(self.search.method()))
        };
        let warmup_entry = |name: &str, mark: Mark| warmup.then(|| (name.to_string(), mark));
        let entries: Vec<(String, Mark)> = [
            warmup_entry(
                "warm-up episode (random actions)",
                Mark::Circle(GREY.to_rgba()),
            ),
            Some((episode, Mark::Circle(BLUE.to_rgba()))),
            Some(("best so far".into(), Mark::Line(RED.to_rgba()))),
            Some((
                "float model (reward 0)".into(),
                Mark::Line(DARK_GREEN.to_rgba()),
            )),
            warmup_entry("warm-up", Mark::Bar(GREY.mix(0.15))),
            control_entry,
        ]
        .into_iter()
        .flatten()
        .collect();
        legend(&top, &entries)?;
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

/// The best so far of `values`, value by value.
fn running_max(values: impl Iterator<Item = f64>) -> Vec<f64> {
    values
        .scan(f64::NEG_INFINITY, |best, v| {
            *best = best.max(v);
            Some(*best)
        })
        .collect()
}

/// Replicates of one search (and of its control): per episode, the mean over replicates
/// of the best so far, in a band of its 95% confidence interval.
pub(super) struct ReplicateCurves<'a> {
    pub(super) label: String,
    pub(super) searches: Vec<&'a Search>,
    pub(super) controls: Vec<&'a Search>,
}

/// Per episode (as far as every replicate went): the mean and interval of `value`'s
/// best so far over `searches`.
fn best_so_far_stats(searches: &[&Search], value: impl Fn(&Episode) -> f64) -> Vec<Stat> {
    let best: Vec<Vec<f64>> = searches
        .iter()
        .map(|s| running_max(s.results().map(&value)))
        .collect();
    let len = best.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .filter_map(|i| Stat::of(&best.iter().map(|b| b[i]).collect::<Vec<_>>()))
        .collect()
}

impl ReplicateCurves<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        y_desc: &str,
        value: &dyn Fn(&Episode) -> f64,
        reference: f64,
    ) -> Drawn<DB> {
        let curves = [
            (best_so_far_stats(&self.searches, value), RED),
            (best_so_far_stats(&self.controls, value), ORANGE),
        ];
        let n = curves.iter().map(|c| c.0.len()).max().unwrap_or(0) as f64;
        let y = padded(
            curves
                .iter()
                .flat_map(|c| &c.0)
                .flat_map(|s| [s.ci_low.unwrap_or(s.mean), s.ci_high.unwrap_or(s.mean)])
                .chain([reference]),
        );
        let mut chart = episode_chart(area, n, y, y_desc, reference)?;
        for (stats, color) in &curves {
            let at = |i: usize, v: Option<f64>| (i as f64, v.unwrap_or(stats[i].mean));
            let band: Vec<(f64, f64)> = (0..stats.len())
                .map(|i| at(i, stats[i].ci_high))
                .chain((0..stats.len()).rev().map(|i| at(i, stats[i].ci_low)))
                .collect();
            chart.draw_series([Polygon::new(band, color.mix(0.2).filled())])?;
            chart.draw_series(LineSeries::new(
                (0..stats.len()).map(|i| at(i, None)),
                color.stroke_width(2),
            ))?;
        }
        Ok(())
    }
}

impl Plot for ReplicateCurves<'_> {
    fn title(&self) -> String {
        let s = &self.searches[0].summary;
        format!(
            "Search {} ({} replicates): {}, budget {}",
            self.label,
            self.searches.len(),
            s.objective,
            s.budget
        )
    }

    fn size(&self) -> (u32, u32) {
        (1000, 40 + legend_height(2) + 2 * PANEL_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let (top, charts) = area.split_vertically(legend_height(2));
        let mut entries = vec![(
            format!(
                "best so far, mean of {} (band: 95% CI)",
                self.searches.len()
            ),
            Mark::Line(RED.to_rgba()),
        )];
        if !self.controls.is_empty() {
            entries.push((
                format!("random search, mean of {}", self.controls.len()),
                Mark::Line(ORANGE.to_rgba()),
            ));
        }
        entries.push((
            "float model (reward 0)".into(),
            Mark::Line(DARK_GREEN.to_rgba()),
        ));
        legend(&top, &entries)?;
        let (upper, lower) = charts.split_vertically(PANEL_HEIGHT);
        self.panel(&upper, "best reward so far", &|e| e.reward, 0.0)?;
        let float = self.searches[0].summary.float_accuracy;
        self.panel(
            &lower,
            "best search-val top-1 so far (%)",
            &|e| e.accuracy,
            float,
        )
    }
}
