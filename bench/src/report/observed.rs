//! The report's pictures over time: per configuration, its first observed window (request rate,
//! mean and p95 per route, answers by status class, cores per tier), drawn from the raw results'
//! `observed-config-NN.json` into `over-time-config-NN.png`/`.svg`, and the section of README.md
//! that shows them with what Prometheus and its exporters cost.

use crate::observe::matrix::{self, Observed, ObservedWindow};
use crate::observe::{OBSERVERS, RATE_WINDOW, SCRAPE_INTERVAL};
use crate::report::results::ConfigResult;
use crate::report::timeseries::{self, Panel, Picture};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// A configuration's picture, as the section shows it.
pub struct Drawn {
    pub label: String,
    /// The picture's file name without extension; `None`: not observed or nothing to draw.
    pub stem: Option<String>,
    pub repeat: Option<u32>,
    /// Mean cores of Prometheus and the exporters over the timed runs, and of every measured
    /// group together (the topology, the load client and the observers).
    pub cost: Option<(f64, f64)>,
    pub errors: Vec<String>,
}

/// The picture of one window.
pub fn picture(label: &str, w: &ObservedWindow) -> Picture {
    let panel = |title: &str, y: &str, lines: &Vec<crate::observe::series::Series>| Panel {
        title: title.into(),
        y_desc: y.into(),
        lines: lines.clone(),
        spread: 0.0,
    };
    Picture {
        title: format!("{label}: repeat {}'s measured window over time", w.repeat),
        span: (0.0, w.end - w.start),
        panels: vec![
            panel(&format!("Requests/s per route (rate over {RATE_WINDOW}, Prometheus)"), "req/s", &w.rate),
            panel(&format!("Mean per route (over {RATE_WINDOW}, Prometheus)"), "ms", &w.mean_ms),
            panel(&format!("p95 per route (over {RATE_WINDOW}, from the histogram's buckets)"), "ms", &w.p95_ms),
            panel("Answers/s of the web instances by status class (Prometheus)", "answers/s", &w.status),
            panel("Cores per tier (the bench's /proc readings, each tier with its child processes)", "cores", &w.cores),
        ],
        marks: vec![],
    }
}

/// Mean cores of the observers over the repeats that measured them, and of all groups.
fn cost(c: &ConfigResult) -> Option<(f64, f64)> {
    let uses: Vec<_> =
        c.repeats.iter().filter_map(|r| r.cpu.as_ref()).filter(|u| u.cores.contains_key(OBSERVERS)).collect();
    if uses.is_empty() {
        return None;
    }
    let n = uses.len() as f64;
    let obs = uses.iter().map(|u| u.cores[OBSERVERS]).sum::<f64>() / n;
    let all = uses.iter().map(|u| u.cores.values().sum::<f64>()).sum::<f64>() / n;
    Some((obs, all))
}

/// Draws every observed configuration's picture into `out`.
pub fn draw_all(configs: &[ConfigResult], raw_dir: &Path, out: &Path) -> Result<Vec<Drawn>> {
    let mut drawn = Vec::new();
    for c in configs {
        let observed: Option<Observed> = matrix::load(raw_dir, c.index)?;
        let Some(observed) = observed else { continue };
        let label = c.counts.label();
        let first = observed.windows.first();
        let stem = first.map(|_| format!("over-time-config-{:02}", c.index + 1));
        if let (Some(w), Some(stem)) = (first, &stem) {
            let p = picture(&label, w);
            timeseries::draw(&p, &out.join(format!("{stem}.png")), &out.join(format!("{stem}.svg")))?;
        }
        drawn.push(Drawn { label, stem, repeat: first.map(|w| w.repeat), cost: cost(c), errors: observed.errors });
    }
    Ok(drawn)
}

/// The section of README.md, placed before the per-configuration tables; nothing when no
/// configuration was observed.
pub fn section(drawn: &[Drawn]) -> String {
    if drawn.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "## Over time\n\n\
         A configuration run with `[run] observe` had its Prometheus (scraping every {SCRAPE_INTERVAL}, an exporter per \
         server). After each \
         measured window the bench read the window back at a 1 s step: requests/s, mean and p95 per route and the web \
         instances' answers by status class, from the app's histogram over {RATE_WINDOW} windows. The cores per tier \
         are the bench's own /proc readings (each tier's processes with their children, sampled every second), not \
         Prometheus': the exporters' process metrics are the exporters' own. The series are kept in the raw results \
         (`observed-config-NN.json`), from which `report --from` draws them again. Shown: the first repeat.\n\n"
    );
    for d in drawn {
        let _ = writeln!(md, "### {} over time\n", d.label);
        if let Some(stem) = &d.stem {
            let _ = writeln!(md, "![{} over time]({stem}.png)\n\n(SVG: [{stem}.svg]({stem}.svg))\n", d.label);
        }
        if let Some((cores, all)) = d.cost {
            let share = if all > 0.0 { cores / all * 100.0 } else { 0.0 };
            let _ = writeln!(
                md,
                "- Prometheus and its exporters used {cores:.3} cores on average during the timed runs, {share:.1}% of \
                 what the topology, the load client and they used together ({all:.2} cores).",
            );
        }
        for e in &d.errors {
            let _ = writeln!(md, "- **Not read from Prometheus:** {e}");
        }
        md.push('\n');
    }
    md
}

/// `md` with `section` placed before its per-configuration tables (at the end if it has none).
pub fn insert(md: &mut String, section: &str) {
    let at = md.find("## Per configuration\n").unwrap_or(md.len());
    md.insert_str(at, section);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_shows_each_picture_with_what_observing_cost() {
        let drawn = vec![
            Drawn {
                label: "pg1 pool1 web1 nginx1".into(),
                stem: Some("over-time-config-01".into()),
                repeat: Some(1),
                cost: Some((0.025, 0.5)),
                errors: vec![],
            },
            Drawn {
                label: "pg2".into(),
                stem: None,
                repeat: None,
                cost: None,
                errors: vec!["repeat 1: refused".into()],
            },
        ];
        let mut md = "# R\n\n## Reading\n\n## Per configuration\n\nx\n".to_string();
        insert(&mut md, &section(&drawn));
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing: {md}"));
        assert!(at("## Reading") < at("## Over time") && at("## Over time") < at("## Per configuration"));
        assert!(md.contains("![pg1 pool1 web1 nginx1 over time](over-time-config-01.png)"), "{md}");
        assert!(md.contains("used 0.025 cores on average during the timed runs, 5.0% of what"), "{md}");
        assert!(md.contains("- **Not read from Prometheus:** repeat 1: refused"), "{md}");
        assert_eq!(section(&[]), "", "a run without observing keeps its report as it was");
    }
}
