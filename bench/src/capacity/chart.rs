//! The capacity chart: one bar per configuration, its capacity in requests per second (PNG and
//! SVG, plotters, the report's font).

use crate::report::summary::Summary;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The family `report::chart::register_font` registers.
const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 1100;
const ROW: u32 = 34;

/// One bar: the configuration, its capacity (0 below the first step) and the label to print.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityBar {
    pub label: String,
    pub rps: f64,
    pub text: String,
}

pub fn bars(s: &Summary) -> Vec<CapacityBar> {
    s.configurations
        .iter()
        .filter_map(|c| {
            let cap = c.capacity.as_ref()?;
            Some(CapacityBar { label: c.label.clone(), rps: cap.capacity_rps.unwrap_or(0.0), text: cap.text() })
        })
        .collect()
}

pub fn draw(s: &Summary, png: &Path, svg: &Path) -> Result<()> {
    crate::report::chart::register_font()?;
    let bars = bars(s);
    let p99 = s.configurations.iter().find_map(|c| c.capacity.as_ref()).map_or(50.0, |c| c.params.p99_ms);
    let title = format!(
        "Capacity: highest offered rate held open loop with corrected p99 < {p99:.0} ms and 0 failures (stage {})",
        s.stage
    );
    let size = (WIDTH, 120 + ROW * bars.len().max(1) as u32);
    crate::report::lean::write_png(png, size, |root| draw_on(root, &title, &bars))?;
    crate::report::lean::write_svg(svg, size, |root| draw_on(root, &title, &bars))
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, bars: &[CapacityBar]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let n = bars.len().max(1);
    let x_max = (bars.iter().map(|b| b.rps).fold(0.0, f64::max) * 1.25).max(10.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 15).into_font())
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(200)
        .build_cartesian_2d(0.0..x_max, (n as f64)..0.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("requests per second (offered rate of the highest step that held)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(err)?;
    for (i, b) in bars.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let top = i as f64 + 0.15;
        chart.draw_series([Rectangle::new([(0.0, top), (b.rps, top + 0.7)], color.filled())]).map_err(err)?;
        chart
            .draw_series([Text::new(
                b.text.clone(),
                (b.rps + x_max * 0.006, i as f64 + 0.5),
                (FAMILY, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            )])
            .map_err(err)?;
        let (x, y) = chart.backend_coord(&(0.0, i as f64 + 0.5));
        root.draw(&Text::new(
            b.label.clone(),
            (x - 8, y),
            (FAMILY, 13).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}
