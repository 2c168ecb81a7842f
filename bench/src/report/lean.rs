//! The charts' files, lean: plotters draws them, this module writes them smaller than plotters'
//! own backends would, the picture the same.
//!
//! - SVG: plotters writes every element with all its style attributes, and a dashed line as one
//!   `<polyline>` per dash (a fault picture: ~480 of them, ~100 KB). Here lines and polylines
//!   that follow each other with the same stroke become one `<path>` (relative moves, `h`/`v`
//!   for straight steps), other elements that follow each other with the same inherited style
//!   share it on a `<g>`, attributes at their SVG default (opacity 1, black fill, no stroke,
//!   stroke width 1, text-anchor start) are left out, the text's font family is said once on the
//!   `<svg>` and font sizes keep two decimals. Paint order is kept: only neighbours merge. No
//!   `<style>` block: the SVGs are inlined into the HTML pages, where a stylesheet would apply
//!   to the whole page. A third of the size for a fault picture, half for a bar chart.
//! - PNG: a palette of the 256 colours most used in the picture (plotters' lines and text are
//!   anti-aliased: some hundreds of colours, most of them in a few edge pixels), every other
//!   colour drawn as its nearest; the picture's own colours stay exact. A quarter of plotters'
//!   RGB PNG.

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// Draws a picture of `size` with `draw` and writes it as a palette PNG at `path`.
pub fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(&root).with_context(|| format!("drawing {}", path.display()))?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    std::fs::write(path, palette_png(size, &rgb)?).with_context(|| format!("writing {}", path.display()))
}

/// Draws a picture of `size` with `draw` and writes it as a lean SVG at `path`.
pub fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root).with_context(|| format!("drawing {}", path.display()))?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    std::fs::write(path, lean_svg(&svg)).with_context(|| format!("writing {}", path.display()))
}

/// An RGB picture as an indexed PNG: the 256 most used colours (ties: the lower colour), every
/// other colour as the nearest of them.
pub fn palette_png((width, height): (u32, u32), rgb: &[u8]) -> Result<Vec<u8>> {
    let mut counts: HashMap<[u8; 3], u64> = HashMap::new();
    for p in rgb.chunks_exact(3) {
        *counts.entry([p[0], p[1], p[2]]).or_default() += 1;
    }
    let mut by_use: Vec<([u8; 3], u64)> = counts.into_iter().collect();
    by_use.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let palette: Vec<[u8; 3]> = by_use.iter().take(256).map(|c| c.0).collect();
    let mut index: HashMap<[u8; 3], u8> = palette.iter().enumerate().map(|(i, c)| (*c, i as u8)).collect();
    let nearest = |c: [u8; 3]| {
        let distance = |p: &[u8; 3]| (0..3).map(|k| (i32::from(p[k]) - i32::from(c[k])).pow(2)).sum::<i32>();
        (0..palette.len()).min_by_key(|&i| distance(&palette[i])).unwrap_or(0) as u8
    };
    let pixels: Vec<u8> = rgb
        .chunks_exact(3)
        .map(|p| {
            let c = [p[0], p[1], p[2]];
            *index.entry(c).or_insert_with(|| nearest(c))
        })
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(palette.concat());
        encoder.set_compression(png::Compression::Best);
        let mut writer = encoder.write_header().context("encoding a PNG")?;
        writer.write_image_data(&pixels).context("encoding a PNG")?;
        writer.finish().context("encoding a PNG")?;
    }
    Ok(out)
}

/// Attributes whose value children take from a `<g>` around them (presentation attributes that
/// are inherited; `opacity`, `dy` and geometry are not).
const INHERITED: [&str; 8] =
    ["fill", "stroke", "stroke-width", "font-family", "font-size", "font-weight", "font-style", "text-anchor"];

/// Attribute values that are SVG's own defaults, for an element with no inherited value.
const DEFAULTS: [(&str, &str); 5] =
    [("opacity", "1"), ("fill", "#000000"), ("stroke", "none"), ("stroke-width", "1"), ("text-anchor", "start")];

/// What neighbours must share to merge: whether they are strokes, the tag, the shared attributes.
type Key<'a> = (bool, &'a str, Vec<(&'a str, &'a str)>);

/// One element as plotters writes it: `<tag k="v" .../>`, or `<text ...>`, its text, `</text>`.
struct Element<'a> {
    tag: &'a str,
    attrs: Vec<(&'a str, String)>,
    text: Option<&'a str>,
}

impl Element<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// A line or a polyline as its points.
    fn stroke_points(&self) -> Option<Vec<(i64, i64)>> {
        let num = |k: &str| self.get(k)?.parse::<i64>().ok();
        match self.tag {
            "line" => Some(vec![(num("x1")?, num("y1")?), (num("x2")?, num("y2")?)]),
            "polyline" if self.get("fill") == Some("none") => self
                .get("points")?
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect(),
            _ => None,
        }
    }

    /// What neighbours must share to merge: a stroke's look, or another element's tag and
    /// inherited attributes.
    fn key(&self) -> Key<'_> {
        if self.stroke_points().is_some() {
            let look = ["opacity", "stroke", "stroke-width"];
            return (
                true,
                "path",
                self.attrs.iter().filter(|(k, _)| look.contains(k)).map(|(k, v)| (*k, v.as_str())).collect(),
            );
        }
        let inherited = self.attrs.iter().filter(|(k, _)| INHERITED.contains(k)).map(|(k, v)| (*k, v.as_str()));
        (false, self.tag, inherited.collect())
    }
}

/// An element's line: its tag, its attributes and whether its text follows (not closed by `/>`).
type Parsed<'a> = (&'a str, Vec<(&'a str, String)>, bool);

fn parse_element(line: &str) -> Option<Parsed<'_>> {
    let inner = line.strip_prefix('<')?;
    let (inner, open) = match inner.strip_suffix("/>") {
        Some(i) => (i, false),
        None => (inner.strip_suffix('>')?, true),
    };
    let (tag, mut rest) = inner.split_once(' ').unwrap_or((inner, ""));
    let mut attrs = Vec::new();
    while !rest.trim().is_empty() {
        let (key, after) = rest.trim_start().split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        attrs.push((key, value.to_string()));
        rest = after;
    }
    Some((tag, attrs, open))
}

fn attrs(out: &mut String, attrs: &[(&str, impl AsRef<str>)]) {
    for (k, v) in attrs {
        let _ = write!(out, " {k}=\"{}\"", v.as_ref());
    }
}

fn push_element(out: &mut String, e: &Element, keep: impl Fn(&str) -> bool) {
    let kept: Vec<&(&str, String)> = e.attrs.iter().filter(|(k, _)| keep(k)).collect();
    out.push('<');
    out.push_str(e.tag);
    for (k, v) in kept {
        let _ = write!(out, " {k}=\"{v}\"");
    }
    match e.text {
        Some(text) => {
            let _ = writeln!(out, ">\n{text}\n</{}>", e.tag);
        }
        None => out.push_str("/>\n"),
    }
}

/// Path data for strokes: each stroke a subpath, moves relative when that is shorter.
fn path_data(strokes: &[Vec<(i64, i64)>]) -> String {
    let pair = |x: i64, y: i64| if y < 0 { format!("{x}{y}") } else { format!("{x},{y}") };
    let mut d = String::new();
    let mut at: Option<(i64, i64)> = None;
    for points in strokes {
        let Some(&(x, y)) = points.first() else { continue };
        let absolute = format!("M{}", pair(x, y));
        match at {
            Some((ax, ay)) => {
                let relative = format!("m{}", pair(x - ax, y - ay));
                d.push_str(if relative.len() < absolute.len() { &relative } else { &absolute });
            }
            None => d.push_str(&absolute),
        }
        let (mut cx, mut cy) = (x, y);
        for &(x, y) in &points[1..] {
            let _ = match (x - cx, y - cy) {
                (0, dy) => write!(d, "v{dy}"),
                (dx, 0) => write!(d, "h{dx}"),
                (dx, dy) => write!(d, "l{}", pair(dx, dy)),
            };
            (cx, cy) = (x, y);
        }
        at = Some((cx, cy));
    }
    d
}

/// plotters' SVG, leaner (see the module's comment). Input that is not as plotters writes it
/// comes back unchanged.
pub fn lean_svg(svg: &str) -> String {
    try_lean(svg).unwrap_or_else(|| svg.to_string())
}

fn try_lean(svg: &str) -> Option<String> {
    let mut lines = svg.lines();
    let head = lines.next()?;
    if !head.starts_with("<svg ") {
        return None;
    }
    let mut elements: Vec<Element> = Vec::new();
    let mut tail = None;
    while let Some(line) = lines.next() {
        if line == "</svg>" {
            tail = Some(line);
            break;
        }
        let (tag, raw, open) = parse_element(line)?;
        let text = if open {
            let text = lines.next()?;
            (lines.next()? == format!("</{tag}>")).then_some(text)?
        } else {
            ""
        };
        let attrs = raw
            .into_iter()
            .filter(|(k, v)| !DEFAULTS.contains(&(k, v.as_str())))
            .map(|(k, v)| match (k, v.parse::<f64>()) {
                ("font-size", Ok(size)) => {
                    let s = format!("{size:.2}");
                    (k, s.trim_end_matches('0').trim_end_matches('.').to_string())
                }
                _ => (k, v),
            })
            .collect();
        elements.push(Element { tag, attrs, text: open.then_some(text) });
    }
    tail?;
    // The text's most used font family, said once on the <svg>.
    let mut families: Vec<(&str, usize)> = Vec::new();
    for f in elements.iter().filter_map(|e| e.get("font-family")) {
        match families.iter_mut().find(|(g, _)| *g == f) {
            Some((_, n)) => *n += 1,
            None => families.push((f, 1)),
        }
    }
    let family = families.iter().max_by_key(|(_, n)| *n).map(|(f, _)| f.to_string());
    if let Some(f) = &family {
        for e in &mut elements {
            e.attrs.retain(|(k, v)| !(*k == "font-family" && v == f));
        }
    }

    let mut out = String::with_capacity(svg.len() / 2);
    match &family {
        Some(f) => {
            let _ = writeln!(out, "{} font-family=\"{f}\">", head.strip_suffix('>')?);
        }
        None => {
            let _ = writeln!(out, "{head}");
        }
    }
    let mut i = 0;
    while i < elements.len() {
        let key = elements[i].key();
        let run = elements[i..].iter().take_while(|e| e.key() == key).count();
        let group = &elements[i..i + run];
        let (stroke, _, shared) = key;
        if stroke {
            let strokes: Vec<Vec<(i64, i64)>> = group.iter().filter_map(Element::stroke_points).collect();
            out.push_str("<path fill=\"none\"");
            attrs(&mut out, &shared);
            let _ = writeln!(out, " d=\"{}\"/>", path_data(&strokes));
        } else if run == 1 {
            push_element(&mut out, &group[0], |_| true);
        } else {
            out.push_str("<g");
            attrs(&mut out, &shared);
            out.push_str(">\n");
            for e in group {
                push_element(&mut out, e, |k| !INHERITED.contains(&k));
            }
            out.push_str("</g>\n");
        }
        i += run;
    }
    out.push_str("</svg>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLOTTERS: &str = r##"<svg width="100" height="80" viewBox="0 0 100 80" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="0" width="100" height="80" opacity="1" fill="#FFFFFF" stroke="none"/>
<text x="12" y="10" dy="0.76em" text-anchor="start" font-family="sans-serif" font-size="12.903225806451614" opacity="1" fill="#000000">
a &amp; b
</text>
<line opacity="0.2" stroke="#000000" stroke-width="1" x1="72" y1="229" x2="72" y2="65"/>
<line opacity="0.2" stroke="#000000" stroke-width="1" x1="80" y1="229" x2="80" y2="65"/>
<polyline fill="none" opacity="1" stroke="#000000" stroke-width="1" points="71,65 71,70 "/>
<polyline fill="none" opacity="1" stroke="#000000" stroke-width="1" points="71,75 71,80 "/>
<polyline fill="none" opacity="1" stroke="#2EA043" stroke-width="2" points="10,20 23,15 36,15 "/>
<text x="62" y="229" dy="0.5ex" text-anchor="end" font-family="sans-serif" font-size="9.67741935483871" opacity="1" fill="#000000">
0.0
</text>
<text x="62" y="202" dy="0.5ex" text-anchor="end" font-family="sans-serif" font-size="9.67741935483871" opacity="1" fill="#000000">
50.0
</text>
<circle cx="5" cy="6" r="2" opacity="1" fill="#2EA043" stroke="none" stroke-width="1"/>
</svg>
"##;

    #[test]
    fn plotters_svg_comes_out_lean_in_the_same_order() {
        let lean = lean_svg(PLOTTERS);
        let expected = r##"<svg width="100" height="80" viewBox="0 0 100 80" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<rect x="0" y="0" width="100" height="80" fill="#FFFFFF"/>
<text x="12" y="10" dy="0.76em" font-size="12.9">
a &amp; b
</text>
<path fill="none" opacity="0.2" stroke="#000000" d="M72,229v-164m8,164v-164"/>
<path fill="none" stroke="#000000" d="M71,65v5m0,5v5"/>
<path fill="none" stroke="#2EA043" stroke-width="2" d="M10,20l13-5h13"/>
<g text-anchor="end" font-size="9.68">
<text x="62" y="229" dy="0.5ex">
0.0
</text>
<text x="62" y="202" dy="0.5ex">
50.0
</text>
</g>
<circle cx="5" cy="6" r="2" fill="#2EA043"/>
</svg>
"##;
        assert_eq!(lean, expected);
    }

    #[test]
    fn what_is_not_plotters_svg_is_kept_as_it_is() {
        for odd in
            ["<svg><g>", "not svg", "<svg a=\"1\">\n<text x=\"1\">\nno end\n", "<svg a=\"1\">\n<rect x=\"1\"/>\n"]
        {
            assert_eq!(lean_svg(odd), odd);
        }
    }

    #[test]
    fn the_palette_keeps_the_most_used_colours_exact_and_maps_the_rest_to_the_nearest() {
        // 300 greys-to-blues, every second one on two pixels: those and the 106 lowest others
        // make the palette, the 44 left are a step away from a neighbour in it.
        let mut rgb = Vec::new();
        for i in 0..300u32 {
            let v = (i * 255 / 299) as u8;
            for _ in 0..(2 - i % 2) {
                rgb.extend([v, v, 255 - v]);
            }
        }
        let (w, h) = ((rgb.len() / 3) as u32, 1u32);
        let png = palette_png((w, h), &rgb).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().color_type, png::ColorType::Indexed);
        let palette = reader.info().palette.clone().unwrap();
        assert_eq!(palette.len(), 256 * 3);
        assert_eq!(&palette[..3], &[0, 0, 255], "the most used colour first (the lowest of a tie)");
        let mut idx = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut idx).unwrap();
        for (n, p) in rgb.chunks(3).enumerate() {
            let i = idx[n] as usize;
            let got = &palette[i * 3..i * 3 + 3];
            let off: i32 = (0..3).map(|k| (i32::from(got[k]) - i32::from(p[k])).abs()).max().unwrap();
            assert!(off <= 2, "pixel {n}: {p:?} drawn as {got:?}");
        }
    }
}
