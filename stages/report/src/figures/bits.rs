//! Per-layer bits of the searched policies (the paper's Figures 3-5).

use super::*;

/// One figure per (objective, budget): a panel per search, stacked so that policies on
/// different hardware (edge above cloud) line up layer by layer.
pub(super) struct PolicyBits<'a> {
    objective: Resource,
    budget: &'a Budget,
    searches: Vec<&'a Search>,
    roles: &'a [Role],
}

pub(super) fn policy_groups<'a>(
    exp: &'a Experiments,
    roles: &'a [Role],
) -> Vec<(String, PolicyBits<'a>)> {
    let mut groups: BTreeMap<(u8, String), PolicyBits> = BTreeMap::new();
    for s in exp.searches.iter().filter(|s| !s.is_random()) {
        let rank = match s.summary.objective {
            Resource::Latency => 0,
            Resource::Energy => 1,
            Resource::Size => 2,
            Resource::Bops => 3,
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
