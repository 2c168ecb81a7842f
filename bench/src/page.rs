//! A markdown report as one self-contained HTML page beside it (README.md -> report.html,
//! faults.md -> faults.html): the markdown with its tables, every chart inside the page and a
//! small inline stylesheet, so the page works offline, opened from file://, and alone.
//!
//! A chart is inlined as SVG (its own `<svg>` element): an image that is an SVG, or a PNG with
//! an SVG twin beside it (the bench draws every chart as both, [`crate::report::lean`]; the SVG
//! stays sharp when zoomed and is the smaller: a fault picture's SVG ~35 KB against ~75 KB for
//! its palette PNG, ~100 KB as a data: URI). A PNG without a twin becomes a data: URI. A chart
//! that is missing is an error, not a broken picture in a page that looks finished.
//!
//! Every page inlines its charts, faults.html too (43 fault pictures, ~1.2 MB with the lean
//! SVGs): linking the pictures beside it would break a page saved or sent alone.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use pulldown_cmark_escape::escape_html;
use std::path::{Path, PathBuf};

const STYLE: &str = "body{font-family:system-ui,sans-serif;line-height:1.45;max-width:80rem;margin:2rem auto;\
padding:0 1rem;color:#1b1b1b}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}\
th,td{border:1px solid #ccc;padding:.25rem .5rem}th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}\
td[style*=right]{font-variant-numeric:tabular-nums}code{background:#f2f2f2;padding:0 .2rem;border-radius:3px}\
pre{background:#f2f2f2;padding:.5rem;overflow-x:auto}.chart{display:block;margin:1rem 0}\
.chart svg,.chart img{max-width:100%;height:auto;border:1px solid #ddd}";

/// The committed markdown reports under docs/results that have a page.
pub const REPORTS: [&str; 7] = [
    "pg/README.md",
    "redis/README.md",
    "cassandra/README.md",
    "compare/README.md",
    "faults.md",
    "hosts/pg/README.md",
    "hosts/redis/README.md",
];

/// Where the page of a markdown report goes: README.md -> report.html, x.md -> x.html.
pub fn page_path(markdown: &Path) -> PathBuf {
    let name = match markdown.file_stem().and_then(|s| s.to_str()) {
        Some("README") | None => "report",
        Some(stem) => stem,
    };
    markdown.with_file_name(format!("{name}.html"))
}

/// Writes the page of the markdown report at `markdown` beside it; returns the page's path.
pub fn write_beside(markdown: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(markdown).with_context(|| format!("reading {}", markdown.display()))?;
    let dir = markdown.parent().unwrap_or(Path::new("."));
    let page = render(&text, dir).with_context(|| format!("the page of {}", markdown.display()))?;
    let out = page_path(markdown);
    std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The page of `markdown`, its relative chart paths read from `dir`.
pub fn render(markdown: &str, dir: &Path) -> Result<String> {
    let mut events = Parser::new_ext(markdown, Options::ENABLE_TABLES).peekable();
    let mut body: Vec<Event> = Vec::new();
    let mut title = None;
    while let Some(event) = events.next() {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                // The alt text is the image's inner text, up to its end.
                let mut alt = String::new();
                for inner in events.by_ref() {
                    match inner {
                        Event::End(TagEnd::Image) => break,
                        Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                        _ => {}
                    }
                }
                body.push(Event::Html(CowStr::from(chart(&dest_url, &alt, dir)?)));
            }
            Event::Start(Tag::Heading { .. }) if title.is_none() => {
                let mut text = String::new();
                body.push(event);
                while let Some(Event::Text(t) | Event::Code(t)) = events.peek() {
                    text.push_str(t);
                    body.push(events.next().expect("peeked"));
                }
                title = Some(text);
            }
            other => body.push(other),
        }
    }
    let mut content = String::new();
    html::push_html(&mut content, body.into_iter());
    let mut head_title = String::new();
    escape_html(&mut head_title, title.as_deref().unwrap_or("shopbench report")).expect("writing to a String");
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{head_title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{content}</body>\n</html>\n"
    ))
}

/// One chart as inline HTML: its SVG, or a PNG as a data: URI.
fn chart(dest: &str, alt: &str, dir: &Path) -> Result<String> {
    if dest.contains("://") || dest.starts_with("data:") || dest.starts_with('/') {
        bail!("chart {dest}: only charts beside the report can be inlined");
    }
    let path = dir.join(dest);
    let mut label = String::new();
    escape_html(&mut label, alt).expect("writing to a String");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let twin = path.with_extension("svg");
    if ext == "svg" || (ext == "png" && twin.is_file()) {
        let svg = std::fs::read_to_string(&twin).with_context(|| format!("reading chart {}", twin.display()))?;
        // The element alone: an XML prolog or doctype has no place inside HTML.
        let Some(start) = svg.find("<svg") else { bail!("chart {}: no <svg> element", twin.display()) };
        return Ok(format!(
            "<span class=\"chart\" role=\"img\" aria-label=\"{label}\">{}</span>",
            svg[start..].trim_end()
        ));
    }
    let mime = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => bail!("chart {dest}: not an SVG, PNG, JPEG or GIF"),
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading chart {}", path.display()))?;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(format!("<span class=\"chart\"><img alt=\"{label}\" src=\"data:{mime};base64,{data}\"></span>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bench-page-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tables_and_every_kind_of_chart_are_inside_the_page() {
        let d = dir("kinds");
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"5\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"10\" height=\"5\"/></svg>\n";
        std::fs::write(d.join("a.svg"), svg).unwrap();
        std::fs::write(d.join("b.png"), [0x89, b'P', b'N', b'G']).unwrap();
        std::fs::write(d.join("c.png"), b"png with a twin").unwrap();
        std::fs::write(d.join("c.svg"), svg.replace("width=\"10\"", "width=\"11\"")).unwrap();
        let md = "# Results & `x`\n\n| a | b |\n|---|--:|\n| `x` | 1 |\n\n![the a](a.svg)\n\n![b & c](b.png)\n\n![c](c.png)\n";
        let page = render(md, &d).unwrap();
        assert!(page.contains("<title>Results &amp; x</title>"), "{page}");
        assert!(page.contains("<table>") && page.contains("<td><code>x</code></td>"), "{page}");
        assert!(page.contains("aria-label=\"the a\"><svg width=\"10\""), "{page}");
        assert!(!page.contains("<?xml"), "the prolog stays out of the HTML");
        assert!(page.contains("<img alt=\"b &amp; c\" src=\"data:image/png;base64,iVBORw==\">"), "{page}");
        assert!(page.contains("<svg width=\"11\""), "a PNG's SVG twin is inlined instead: {page}");
        assert!(!page.contains("src=\"b.png\"") && !page.contains("c.png"), "{page}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_or_remote_chart_is_an_error() {
        let d = dir("missing");
        let err = render("![x](gone.png)\n", &d).unwrap_err();
        assert!(format!("{err:#}").contains("gone.png"), "{err:#}");
        assert!(render("![x](https://example.org/x.png)\n", &d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pages_are_named_for_their_markdown() {
        assert_eq!(page_path(Path::new("docs/results/pg/README.md")), Path::new("docs/results/pg/report.html"));
        assert_eq!(page_path(Path::new("docs/results/faults.md")), Path::new("docs/results/faults.html"));
    }

    /// The committed pages are what their committed markdown and charts make today.
    #[test]
    fn the_committed_pages_are_up_to_date() {
        let results = infra::repo_root().join("docs/results");
        for md in REPORTS {
            let md = results.join(md);
            let page = std::fs::read_to_string(page_path(&md)).unwrap_or_default();
            let text = std::fs::read_to_string(&md).unwrap();
            assert!(
                page == render(&text, md.parent().unwrap()).unwrap(),
                "{} is not the page of {}: run `shopbench-bench pages`",
                page_path(&md).display(),
                md.display()
            );
        }
    }
}
