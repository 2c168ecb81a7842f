//! Bar charts of the mean time of each request per configuration (reads and writes apart), with
//! the spread over repeats as error bars and the storage floor as a tick on each bar.
//! PNG and SVG, drawn with plotters; text uses DejaVu Sans (Debian's fonts-dejavu-core), loaded
//! at run time because plotters' `ab_glyph` backend has no font of its own.

use crate::report::lean;
use crate::report::summary::Summary;
use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FAMILY: &str = "sans-serif";

#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub mean: f64,
    /// Lowest and highest per-repeat mean (equal to `mean` for one repeat).
    pub lo: f64,
    pub hi: f64,
    pub floor: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChartData {
    pub title: String,
    /// One group of bars per operation.
    pub groups: Vec<String>,
    /// One series per configuration: its label and a bar per group (`None`: no successful request).
    pub series: Vec<(String, Vec<Option<Bar>>)>,
    /// Series come in pairs (a measurement and its storage floor): one colour per pair, the
    /// second of each pair in a lighter shade.
    pub paired: bool,
}

impl ChartData {
    pub fn max_value(&self) -> f64 {
        self.series
            .iter()
            .flat_map(|(_, bars)| bars.iter().flatten())
            .map(|b| b.hi.max(b.mean).max(b.floor.unwrap_or(0.0)))
            .fold(0.0, f64::max)
    }
}

/// The reads (or writes) chart of a summary: operations that ran in some configuration.
pub fn chart_data(summary: &Summary, reads: bool) -> ChartData {
    let mut groups: Vec<String> = Vec::new();
    for op in crate::load::ops::Op::ALL.iter().filter(|o| o.is_read() == reads) {
        let ran = summary
            .configurations
            .iter()
            .any(|c| c.operations.iter().any(|o| o.op == op.name() && o.mean_ms.is_some()));
        if ran {
            groups.push(op.name().to_string());
        }
    }
    let series = summary
        .configurations
        .iter()
        .map(|c| {
            let bars = groups
                .iter()
                .map(|g| {
                    let o = c.operations.iter().find(|o| &o.op == g)?;
                    let mean = o.mean_ms?;
                    let (lo, hi) = o.mean_ms_spread.map_or((mean, mean), |s| (s.min, s.max));
                    Some(Bar { mean, lo, hi, floor: o.floor_mean_ms })
                })
                .collect();
            (c.label.clone(), bars)
        })
        .collect();
    let kind = if reads { "Reads" } else { "Writes" };
    ChartData {
        title: format!(
            "{kind}: mean time per request ({} users, stage {}) - bars: min..max over repeats, black tick: storage floor",
            summary.method.users, summary.stage
        ),
        groups,
        series,
        paired: false,
    }
}

/// The colour of series `s`: its own, or its pair's (lighter for the second of a pair).
fn series_color(s: usize, paired: bool) -> RGBAColor {
    if !paired {
        return Palette99::pick(s).to_rgba();
    }
    let RGBAColor(r, g, b, a) = Palette99::pick(s / 2).to_rgba();
    if s.is_multiple_of(2) {
        RGBAColor(r, g, b, a)
    } else {
        let light = |c: u8| c + (255 - c) / 2;
        RGBAColor(light(r), light(g), light(b), a)
    }
}

static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Registers DejaVu Sans (or `$SHOPBENCH_FONT`) with plotters, once.
pub fn register_font() -> Result<()> {
    FONT.get_or_init(|| {
        let path = std::env::var("SHOPBENCH_FONT").unwrap_or_else(|_| FONT_PATH.to_string());
        let bytes = std::fs::read(&path).map_err(|e| {
            format!("reading the chart font {path}: {e} (install Debian's fonts-dejavu-core, or set SHOPBENCH_FONT to a TTF)")
        })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FAMILY, style, bytes).map_err(|_| format!("{path} is not a usable TTF font"))?;
        }
        Ok(())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

const ROW: u32 = 16;
const GROUP_GAP: u32 = 14;
const WIDTH: u32 = 1100;
const LABEL_AREA: u32 = 330;

fn height(data: &ChartData) -> u32 {
    let rows = data.groups.len().max(1) as u32 * (data.series.len().max(1) as u32 * ROW + GROUP_GAP);
    rows + 130 + 18 * data.series.len() as u32
}

/// Draws the chart as PNG and SVG.
pub fn draw(data: &ChartData, png: &Path, svg: &Path) -> Result<()> {
    register_font()?;
    let size = (WIDTH, height(data));
    lean::write_png(png, size, |root| draw_on(root, data))?;
    lean::write_svg(svg, size, |root| draw_on(root, data))
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &ChartData) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let n_series = data.series.len().max(1);
    let n_groups = data.groups.len().max(1);
    // Room on the right for the value labels and the legend (taller for the paired series).
    let headroom = if data.paired { 1.7 } else { 1.4 };
    let x_max = (data.max_value() * headroom).max(0.1);
    // y: one unit per group, drawn top-down; each series takes 0.8 / n of a group.
    let mut chart = ChartBuilder::on(root)
        .caption(&data.title, (FAMILY, 15).into_font())
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(LABEL_AREA)
        .build_cartesian_2d(0.0..x_max, (n_groups as f64)..0.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("milliseconds (mean of the repeats' means)")
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(err)?;

    let band = 0.8 / n_series as f64;
    for (s, (label, bars)) in data.series.iter().enumerate() {
        let color = series_color(s, data.paired);
        let rects = bars.iter().enumerate().filter_map(|(g, b)| {
            let b = b.as_ref()?;
            let top = g as f64 + 0.1 + s as f64 * band;
            Some(Rectangle::new([(0.0, top), (b.mean, top + band * 0.9)], color.filled()))
        });
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        for (g, b) in bars.iter().enumerate() {
            let Some(b) = b else { continue };
            let mid = g as f64 + 0.1 + s as f64 * band + band * 0.45;
            draw_marks(&mut chart, b, mid, band * 0.45, x_max)?;
        }
    }
    // Operation names in the label area, at each group's centre.
    for (g, name) in data.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, g as f64 + 0.5));
        root.draw(&Text::new(
            name.clone(),
            (x - 8, y),
            (FAMILY, 13).into_font().color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FAMILY, 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A bar's marks around its centre line `mid`: the spread of the repeats, the storage floor (a
/// tick `half` high each way) and the value.
fn draw_marks<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    b: &Bar,
    mid: f64,
    half: f64,
    x_max: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    if b.hi > b.lo {
        chart
            .draw_series([ErrorBar::new_horizontal(mid, b.lo, b.mean, b.hi, BLACK.stroke_width(1), 6)])
            .map_err(err)?;
    }
    if let Some(f) = b.floor {
        chart
            .draw_series([PathElement::new(vec![(f, mid - half), (f, mid + half)], BLACK.stroke_width(3))])
            .map_err(err)?;
    }
    chart
        .draw_series([Text::new(
            format!("{:.2}", b.mean),
            (b.hi.max(b.mean).max(b.floor.unwrap_or(0.0)) + x_max * 0.006, mid),
            (FAMILY, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        )])
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{build, tests as fixtures};

    #[test]
    fn chart_inputs_split_reads_and_writes_per_configuration() {
        let s = build(&fixtures::meta(), &fixtures::two_configs(), "x");
        let reads = chart_data(&s, true);
        assert_eq!(reads.groups, vec!["GET /products/{product_id}"]);
        assert_eq!(reads.series.len(), 2);
        assert_eq!(reads.series[0].0, "pg1 pool1 web1 nginx1");
        let bar = reads.series[0].1[0].clone().unwrap();
        assert!((bar.mean - 2.1).abs() < 1e-9);
        assert_eq!((bar.lo, bar.hi, bar.floor), (2.0, 2.2, Some(0.5)));
        let writes = chart_data(&s, false);
        assert_eq!(writes.groups, vec!["POST /users"], "operations without a success are left out");
        assert!(writes.title.starts_with("Writes"));
        assert!((writes.max_value() - 8.2).abs() < 1e-9);
    }

    #[test]
    fn draws_png_and_svg() {
        register_font().expect("the chart font (Debian package fonts-dejavu-core)");
        let s = build(&fixtures::meta(), &fixtures::two_configs(), "x");
        let dir = std::env::temp_dir().join(format!("bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (png, svg) = (dir.join("reads.png"), dir.join("reads.svg"));
        draw(&chart_data(&s, true), &png, &svg).unwrap();
        let png_bytes = std::fs::read(&png).unwrap();
        assert_eq!(&png_bytes[1..4], b"PNG");
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("GET /products/{product_id}") && svg_text.contains("pg2 pool2 web2 nginx2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
