//! Per-layer operations per byte moved (the roofline view).

use super::*;

/// Per layer, multiply-accumulates per byte moved at 8 bits: MACs / (weights + input
/// activations), one byte each. Depthwise layers sit far below pointwise ones, which is
/// why bandwidth-bound hardware quantizes their activations harder (the paper, §4.2).
pub(super) struct Roofline<'a> {
    intensity: Vec<f64>,
    roles: &'a [Role],
}

impl<'a> Roofline<'a> {
    pub(super) fn new(exp: &Experiments, roles: &'a [Role]) -> Self {
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
