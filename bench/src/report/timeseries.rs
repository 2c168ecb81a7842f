//! Time-series pictures: panels stacked over one time axis (seconds), a line per series with a
//! gap where a series has no point, the legend beside each panel, and vertical marks for events
//! (a fault's kill and restart). PNG and SVG, with the bar charts' font and palette ([`super::chart`]).

use crate::observe::series::Series;
use crate::report::chart::register_font;
use crate::report::lean;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 1200;
const LEGEND: u32 = 330;
const PANEL: u32 = 230;
const TITLE: u32 = 36;
const ROW: i32 = 14;

pub struct Panel {
    pub title: String,
    pub y_desc: String,
    pub lines: Vec<Series>,
    /// Each line drawn this much above the previous one: states (0/1) that would hide each other.
    pub spread: f64,
}

pub struct Picture {
    pub title: String,
    /// The time axis, seconds.
    pub span: (f64, f64),
    pub panels: Vec<Panel>,
    /// (seconds, label): a dashed vertical line through every panel.
    pub marks: Vec<(f64, String)>,
}

impl Picture {
    /// A colour per series name, the same in every panel.
    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for l in self.panels.iter().flat_map(|p| &p.lines) {
            if !names.contains(&l.name.as_str()) {
                names.push(&l.name);
            }
        }
        names
    }
}

/// Draws `p` as PNG and SVG.
pub fn draw(p: &Picture, png: &Path, svg: &Path) -> Result<()> {
    register_font()?;
    let size = (WIDTH, TITLE + PANEL * p.panels.len().max(1) as u32);
    lean::write_png(png, size, |root| draw_on(root, p))?;
    lean::write_svg(svg, size, |root| draw_on(root, p))
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Picture) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let (title, rest) = root.split_vertically(TITLE);
    title
        .draw(&Text::new(p.title.clone(), (12, 10), (FAMILY, 16).into_font().color(&BLACK)))
        .map_err(|e| anyhow!("{e:?}"))?;
    let names = p.names();
    let areas = rest.split_evenly((p.panels.len().max(1), 1));
    for (i, (panel, area)) in p.panels.iter().zip(areas).enumerate() {
        let (plot, legend) = area.split_horizontally(WIDTH - LEGEND);
        draw_panel(&plot, panel, p, &names, i == 0)?;
        draw_legend(&legend, panel, &names)?;
    }
    Ok(())
}

fn color(names: &[&str], name: &str) -> RGBColor {
    // Outcomes keep one meaning in every picture: green fine, orange refused, red failed.
    match name {
        "ok" | "2xx" => return RGBColor(46, 160, 67),
        "4xx" => return RGBColor(240, 140, 0),
        "5xx" => return RGBColor(215, 25, 28),
        "timeout" => return RGBColor(120, 60, 170),
        "no answer" => return RGBColor(40, 40, 40),
        _ => {}
    }
    let RGBAColor(r, g, b, _) = Palette99::pick(names.iter().position(|n| *n == name).unwrap_or(0)).to_rgba();
    RGBColor(r, g, b)
}

/// Runs of points without a gap longer than 1.5 steps (a missing scrape, a silent target).
fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for &pt in points {
        match out.last_mut() {
            Some(run) if pt.0 - run.last().map_or(pt.0, |l| l.0) <= 1.5 => run.push(pt),
            _ => out.push(vec![pt]),
        }
    }
    out
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    p: &Picture,
    names: &[&str],
    label_marks: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let shift = |i: usize| i as f64 * panel.spread;
    let top = panel.lines.iter().enumerate().filter_map(|(i, l)| Some(l.max()? + shift(i))).fold(0.0, f64::max);
    let y_max = if top > 0.0 { top * 1.12 } else { 1.0 };
    let (x0, x1) = (p.span.0, p.span.1.max(p.span.0 + 1.0));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 14).into_font())
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(panel.y_desc.as_str())
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 12))
        .max_light_lines(0)
        .draw()
        .map_err(err)?;
    for (t, what) in &p.marks {
        let dash = DashedLineSeries::new(vec![(*t, 0.0), (*t, y_max)], 6, 4, BLACK.stroke_width(1));
        chart.draw_series(dash).map_err(err)?;
        if label_marks {
            let style = (FAMILY, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top));
            chart.draw_series([Text::new(what.clone(), (*t + (x1 - x0) * 0.004, y_max), style)]).map_err(err)?;
        }
    }
    if panel.lines.iter().all(|l| l.points.is_empty()) {
        let style = (FAMILY, 13).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series([Text::new("no data", ((x0 + x1) / 2.0, y_max / 2.0), style)]).map_err(err)?;
    }
    for (i, line) in panel.lines.iter().enumerate() {
        let c = color(names, &line.name);
        for run in segments(&line.points) {
            let run: Vec<(f64, f64)> = run.into_iter().map(|(t, v)| (t, v + shift(i))).collect();
            if run.len() == 1 {
                chart.draw_series([Circle::new(run[0], 2, c.filled())]).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(run, c.stroke_width(2))).map_err(err)?;
            }
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel, names: &[&str]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let fits = ((PANEL as i32 - 40) / ROW) as usize;
    let style = (FAMILY, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, line) in panel.lines.iter().enumerate().take(fits) {
        let y = 30 + i as i32 * ROW;
        let text = if i + 1 == fits && panel.lines.len() > fits {
            format!("... and {} more", panel.lines.len() - fits + 1)
        } else {
            area.draw(&Rectangle::new([(4, y - 4), (18, y + 4)], color(names, &line.name).filled())).map_err(err)?;
            line.name.clone()
        };
        area.draw(&Text::new(text, (24, y), style.clone())).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_split_lines() {
        let pts = [(1.0, 1.0), (2.0, 1.0), (5.0, 0.0), (6.0, 0.0), (9.0, 2.0)];
        let runs = segments(&pts);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[1], vec![(5.0, 0.0), (6.0, 0.0)]);
    }
}
