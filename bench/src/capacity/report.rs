//! The report's open-loop parts: per configuration the raw and corrected percentiles of each
//! operation and its capacity steps, and the stage's capacity section with its chart.

use crate::capacity::model::CapacityParams;
use crate::report::summary::{ConfigSummary, Summary};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

/// The per-configuration tables: corrected percentiles, then the capacity steps.
pub fn configuration(md: &mut String, c: &ConfigSummary) {
    if !c.corrected.is_empty() {
        let _ = writeln!(
            md,
            "Coordinated omission: raw and corrected percentiles, from the repeats' histograms merged (3 significant \
             digits). Corrected: each answer longer than the user's mean think time also counts for the requests \
             the user did not send meanwhile (HdrHistogram's `record_correct`).\n\n\
             | operation | requests | raw p50 ms | raw p99 ms | corrected p99 ms | corrected entries |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for o in &c.corrected {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} |",
                o.op,
                o.requests,
                ms(o.raw_p50_ms),
                ms(o.raw_p99_ms),
                ms(o.corrected_p99_ms),
                o.corrected_count
            );
        }
        let _ = writeln!(md);
    }
    if let Some(cap) = &c.capacity {
        let _ = writeln!(
            md,
            "Capacity steps (open loop, {} users; times of all operations together): capacity **{}**.\n\n\
             | offered req/s | achieved req/s | requests | failures | raw p50 ms | raw p99 ms | corrected p99 ms | held |\n\
             |---:|---:|---:|---:|---:|---:|---:|---|",
            cap.params.users,
            cap.text()
        );
        for s in &cap.steps {
            let held = match (s.sustained, s.retried) {
                (true, _) => "yes".to_string(),
                (false, false) => format!("no: {}", s.reasons.join("; ")),
                (false, true) => format!("no, retried: {}", s.reasons.join("; ")),
            };
            let _ = writeln!(
                md,
                "| {:.0} | {:.1} | {} | {} | {} | {} | {} | {held} |",
                s.offered_rps,
                s.achieved_rps,
                s.requests,
                s.failures,
                ms(s.raw_p50_ms),
                ms(s.raw_p99_ms),
                ms(s.corrected_p99_ms)
            );
        }
        let _ = writeln!(md);
    }
}

/// Whether any configuration has a capacity run.
fn measured(s: &Summary) -> Option<&CapacityParams> {
    s.configurations.iter().find_map(|c| c.capacity.as_ref().map(|c| &c.params))
}

/// The stage's capacity section: how it was measured, the chart and a table per configuration.
pub fn section(md: &mut String, s: &Summary) {
    let Some(p) = measured(s) else { return };
    let _ = writeln!(
        md,
        "## Capacity (open loop)\n\n\
         The closed-loop times above slow their own load down when the stack stalls (coordinated omission). Here \
         the load is open loop: {} Goose users send the shop mix (no think time) at an offered rate together, \
         each request at its scheduled time, and its time counts from that schedule, so a stall or a queue shows \
         as long times. The rate starts at {:.0} req/s and rises ×{} per step ({} s warm-up, {} s measured); a step \
         holds when at least {:.0}% of the offered rate completed, the corrected p99 over all operations is under \
         {:.0} ms and no request failed. A step that did not hold is run once more at \
         its rate and then only the retry counts (one stall of a busy machine should not end the climb). The \
         capacity is the highest step that held, every lower one holding too; the run stops when a retry does \
         not hold either (or at {:.0} req/s).\n\n\
         ![capacity](capacity.png)\n\n(SVG: [capacity.svg](capacity.svg))\n\n\
         | configuration | capacity | steps run | first step that did not hold |\n|---|---:|---:|---|",
        p.users,
        p.start_rps,
        p.factor,
        p.warmup_secs,
        p.step_secs,
        p.min_achieved * 100.0,
        p.p99_ms,
        p.max_rps
    );
    for c in &s.configurations {
        let Some(cap) = &c.capacity else { continue };
        let first_bad = cap.steps.iter().find(|st| !st.sustained && !st.retried);
        let why =
            first_bad.map_or("–".to_string(), |st| format!("{:.0} req/s: {}", st.offered_rps, st.reasons.join("; ")));
        let _ = writeln!(md, "| {} | {} | {} | {why} |", c.label, cap.text(), cap.steps.len());
    }
    let _ = writeln!(md);
}

/// Draws capacity.png and capacity.svg into `out` when any configuration has a capacity run.
pub fn draw(s: &Summary, out: &Path) -> Result<()> {
    if measured(s).is_none() {
        return Ok(());
    }
    crate::capacity::chart::draw(s, &out.join("capacity.png"), &out.join("capacity.svg"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::model::{CapacityRun, StepResult};
    use crate::capacity::summary::{corrected_ops, CapacitySummary};
    use crate::latency::{Hist, OpLatency};
    use crate::report::results::ConfigResult;
    use crate::report::summary::{build, tests as fixtures};
    use std::time::Duration;

    fn hist(ms: &[u64], interval_ms: u64) -> Hist {
        let mut h = Hist::default();
        for &t in ms {
            h.record_correct(Duration::from_millis(t), Duration::from_millis(interval_ms));
        }
        h
    }

    /// 2% of the requests at `p99_ms`, the rest at 2 ms.
    fn step(offered: f64, done: u64, p99_ms: u64) -> StepResult {
        let slow = done as usize / 50;
        let mut times = vec![2; done as usize - slow];
        times.extend(vec![p99_ms; slow]);
        StepResult {
            offered_rps: offered,
            users: 64,
            window_secs: 10.0,
            ok: done,
            raw: hist(&times, 0),
            corrected: hist(&times, 0),
            ..StepResult::default()
        }
    }

    /// The fixtures, with histograms in every repeat and a capacity run in the first configuration.
    fn configs() -> Vec<ConfigResult> {
        let mut configs = fixtures::two_configs();
        for c in &mut configs {
            for (i, r) in c.repeats.iter_mut().enumerate() {
                // Repeat 2 of each has one product GET stalled for 500 ms (users think 50 ms).
                let mut times = vec![2; 99];
                times.push(if i == 1 { 500 } else { 3 });
                r.latency = vec![OpLatency {
                    op: "GET /products/{product_id}".into(),
                    raw: hist(&times, 0),
                    corrected: hist(&times, 50),
                }];
            }
        }
        let params = CapacityParams { start_rps: 100.0, factor: 2.0, max_rps: 1000.0, ..CapacityParams::default() };
        let steps = vec![step(100.0, 1000, 10), step(200.0, 2000, 20), step(400.0, 2600, 300)];
        configs[0].capacity = Some(CapacityRun { params, steps });
        configs
    }

    #[test]
    fn corrected_percentiles_merge_the_repeats_and_show_the_stall() {
        let c = corrected_ops(&configs()[0]);
        assert_eq!(c.len(), 1);
        let get = &c[0];
        assert_eq!(get.requests, 200);
        // 500 ms at 50 ms intervals: 9 backfilled (450 .. 50 ms).
        assert_eq!(get.corrected_count, 209);
        assert!((get.raw_p50_ms.unwrap() - 2.0).abs() < 0.01);
        assert!(get.raw_p99_ms.unwrap() < 4.0, "{get:?}");
        assert!(get.corrected_p99_ms.unwrap() >= 50.0, "{get:?}");
    }

    #[test]
    fn the_summary_has_the_capacity_and_its_steps() {
        let s = build(&fixtures::meta(), &configs(), "x");
        let cap = s.configurations[0].capacity.as_ref().unwrap();
        assert_eq!((cap.capacity_rps, cap.reached_limit), (Some(200.0), false));
        assert_eq!(cap.text(), "200 req/s");
        let last = cap.steps.last().unwrap();
        assert!(!last.sustained && last.achieved_rps == 260.0, "{last:?}");
        assert_eq!(last.reasons.len(), 2, "too slow and too few: {:?}", last.reasons);
        assert!(s.configurations[1].capacity.is_none());
        let none = CapacitySummary { capacity_rps: None, steps: cap.steps.clone(), ..cap.clone() };
        assert_eq!(none.text(), "< 100 req/s");
        let all = CapacitySummary { capacity_rps: Some(800.0), reached_limit: true, ..cap.clone() };
        assert_eq!(all.text(), "≥ 800 req/s (the limit)");
    }

    #[test]
    fn the_markdown_has_the_section_and_the_tables() {
        let s = build(&fixtures::meta(), &configs(), "x");
        let mut md = String::new();
        section(&mut md, &s);
        assert!(md.contains("![capacity](capacity.png)"), "{md}");
        assert!(md.contains("| pg1 pool1 web1 nginx1 | 200 req/s | 3 | 400 req/s: achieved 260 of 400"), "{md}");
        assert!(!md.contains("pg2 pool2"), "a configuration without a run has no row: {md}");
        let mut md = String::new();
        configuration(&mut md, &s.configurations[0]);
        assert!(md.contains("| `GET /products/{product_id}` | 200 | 2.00 | "), "{md}");
        assert!(md.contains("capacity **200 req/s**"), "{md}");
        assert!(md.contains("| 200 | 200.0 | 2000 | 0 | 2.00 | "), "{md}");
        // Without histograms or steps (older raw results) nothing is added.
        let old = build(&fixtures::meta(), &fixtures::two_configs(), "x");
        let (mut a, mut b) = (String::new(), String::new());
        section(&mut a, &old);
        configuration(&mut b, &old.configurations[0]);
        assert!(a.is_empty() && b.is_empty());
    }
}
