//! Golden test: the report of a stage, the comparison of the stages and the faults table, rendered
//! from small raw results kept in `tests/data/golden/` (see its README.md), must come out byte for
//! byte as the expected files in `tests/data/golden/expected/`.
//!
//! It goes through the entry points the command line uses (`report --from`, `compare`,
//! `faults --redraw`): `results::load_run` + `report::write`, `compare::write` and
//! `faults::table::redraw`, so a restructuring of bench that keeps what they write keeps this
//! test green. The generated-at time is the only part masked (any RFC 3339 time between the start
//! of the test and now becomes `<generated>`; times in the inputs are older, whatever day the test
//! runs on). The SVG charts are compared too (plotters writes text as `<text>`
//! with positions from the font's metrics: they depend on the chart font, DejaVu Sans from Debian's
//! fonts-dejavu-core, or `$SHOPBENCH_FONT`); the PNGs are not (binary, drawn by the same code).
//!
//! When an output changes on purpose: `UPDATE_GOLDEN=1 cargo test -p bench --test golden`
//! rewrites the expected files; review their diff before committing it.

use bench::faults::table;
use bench::report::{self, compare, results};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// A fresh scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bench-golden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text` with every RFC 3339 time (`2026-12-04T20:31:05Z`) from `since` (whole seconds) to now
/// replaced: the times the outputs stamp while the test renders them. Times in the inputs are
/// older and stay, even when the inputs were made the same day.
fn masked(text: &str, since: DateTime<Utc>) -> String {
    const LEN: usize = "2026-12-04T20:31:05Z".len();
    let (from, to) = (since.timestamp() - 1, Utc::now().timestamp() + 1);
    let of_now = |s: &str| DateTime::parse_from_rfc3339(s).is_ok_and(|t| (from..=to).contains(&t.timestamp()));
    let (mut out, mut copied, mut pos) = (String::with_capacity(text.len()), 0, 0);
    while let Some(t) = text[pos..].find('T').map(|i| pos + i) {
        pos = t + 1;
        let Some(start) = t.checked_sub(10).filter(|&s| s >= copied) else { continue };
        if text.get(start..start + LEN).is_some_and(of_now) {
            out.push_str(&text[copied..start]);
            out.push_str("<generated>");
            copied = start + LEN;
            pos = copied;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Compares `actual/name` (masked) with `expected/name`, or rewrites the expected file when
/// UPDATE_GOLDEN is set. Returns a line describing the first difference, if any.
fn check(actual: &Path, expected: &Path, name: &str, since: DateTime<Utc>) -> Option<String> {
    let got =
        masked(&std::fs::read_to_string(actual.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}")), since);
    let want_path = expected.join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(expected).unwrap();
        std::fs::write(&want_path, &got).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(&want_path).unwrap_or_else(|e| panic!("reading {}: {e}", want_path.display()));
    if got == want {
        return None;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let at = (0..g.len().max(w.len())).find(|&i| g.get(i) != w.get(i)).unwrap_or(0);
    Some(format!(
        "{}: differs at line {}:\n  expected: {:?}\n  rendered: {:?}\n  ({} lines expected, {} rendered)",
        want_path.display(),
        at + 1,
        w.get(at).unwrap_or(&"<end of file>"),
        g.get(at).unwrap_or(&"<end of file>"),
        w.len(),
        g.len()
    ))
}

/// `since`: when the test began rendering (see [`masked`]).
fn check_all(actual: &Path, expected: &Path, names: &[&str], since: DateTime<Utc>) {
    let diffs: Vec<String> = names.iter().filter_map(|n| check(actual, expected, n, since)).collect();
    assert!(
        diffs.is_empty(),
        "rendered output differs from the golden files (if on purpose: UPDATE_GOLDEN=1 and review the diff):\n{}",
        diffs.join("\n")
    );
}

#[test]
fn the_report_of_a_stage_renders_as_before() {
    let raw = data().join("raw-pg");
    let (meta, configs) = results::load_run(&raw).unwrap();
    assert_eq!(configs.len(), 2, "the golden run has two configurations");
    let since = Utc::now();
    let out = Scratch::new("report");
    report::write(&meta, &configs, &raw, &out.0).unwrap();
    check_all(
        &out.0,
        &data().join("expected/report"),
        &["README.md", "summary.json", "reads.svg", "writes.svg", "capacity.svg", "over-time-config-01.svg"],
        since,
    );
    assert!(!out.0.join("over-time-config-02.png").exists(), "configuration 2 was not observed");
}

#[test]
fn the_comparison_of_the_stages_renders_as_before() {
    let from: Vec<PathBuf> = ["pg", "redis", "cassandra"].iter().map(|s| data().join("compare").join(s)).collect();
    let since = Utc::now();
    let out = Scratch::new("compare");
    let command = "shopbench-bench compare --from pg --from redis --from cassandra";
    let comparisons = compare::write(&from, &out.0, None, command).unwrap();
    assert_eq!(comparisons.len(), 2, "carts and catalogue");
    check_all(
        &out.0,
        &data().join("expected/compare"),
        &["README.md", "comparison.json", "carts.svg", "catalogue.svg"],
        since,
    );
}

#[test]
fn the_comparison_without_a_cassandra_stage_renders_as_before() {
    let from: Vec<PathBuf> = ["pg", "redis"].iter().map(|s| data().join("compare").join(s)).collect();
    let since = Utc::now();
    let out = Scratch::new("compare-two");
    let comparisons = compare::write(&from, &out.0, None, "shopbench-bench compare --from pg --from redis").unwrap();
    assert_eq!(comparisons.len(), 1, "carts only");
    check_all(&out.0, &data().join("expected/compare-two"), &["README.md", "comparison.json"], since);
}

#[test]
fn the_fault_table_renders_as_before() {
    let since = Utc::now();
    let out = Scratch::new("faults");
    std::fs::copy(data().join("faults.json"), out.0.join("faults.json")).unwrap();
    assert_eq!(table::redraw(&out.0).unwrap(), 7, "the golden rows");
    check_all(&out.0, &data().join("expected"), &["faults.md"], since);
}

#[test]
fn the_mask_hides_only_times_of_now() {
    let since = Utc::now();
    let now = results::now_rfc3339();
    // An input made earlier the same day (as the faults rows were) is not a time of now.
    let earlier = (since - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let text = format!("T {now}, {now}\nfrom 2026-01-01T00:00:00Z; {earlier} Ten: 10:00T, é{now}");
    assert_eq!(
        masked(&text, since),
        format!("T <generated>, <generated>\nfrom 2026-01-01T00:00:00Z; {earlier} Ten: 10:00T, é<generated>")
    );
}

/// Writes the open-loop parts of `raw-pg` (each repeat's histograms, each configuration's
/// capacity steps) from the numbers already there, deterministically; run by hand when they
/// change: `cargo test -p bench --test golden -- --ignored make_open_loop_data`.
#[test]
#[ignore = "rewrites test data; run by hand"]
fn make_open_loop_data() {
    use bench::capacity::{CapacityParams, CapacityRun, StepResult};
    use bench::latency::{Hist, OpLatency};
    use std::time::Duration;

    /// `n` times spread over the quantile curve through the given (quantile, ms) points.
    fn spread(n: u64, points: &[(f64, f64)]) -> Vec<Duration> {
        (0..n)
            .map(|i| {
                let q = (i as f64 + 0.5) / n as f64;
                let k = points.windows(2).position(|w| q <= w[1].0).unwrap_or(points.len() - 2);
                let ((q0, v0), (q1, v1)) = (points[k], points[k + 1]);
                Duration::from_secs_f64((v0 + (v1 - v0) * (q - q0) / (q1 - q0)) / 1000.0)
            })
            .collect()
    }
    let step = |offered: f64, done: u64, failures: u64, raw_p99: f64, late_p99: f64| {
        let mut s = StepResult {
            offered_rps: offered,
            users: 64,
            window_secs: 10.0,
            ok: done - failures,
            failures,
            ..StepResult::default()
        };
        if failures > 0 {
            s.failure_reasons.insert("status 503".into(), failures);
        }
        for t in spread(done - failures, &[(0.0, 0.4), (0.5, 2.0), (0.99, raw_p99), (1.0, raw_p99 * 2.0)]) {
            s.raw.record(t);
        }
        for t in spread(done - failures, &[(0.0, 0.4), (0.5, 2.5), (0.99, late_p99), (1.0, late_p99 * 2.0)]) {
            s.corrected.record(t);
        }
        s
    };
    let raw = data().join("raw-pg");
    let (_, mut configs) = results::load_run(&raw).unwrap();
    for c in &mut configs {
        for r in &mut c.repeats {
            r.latency = r
                .ops
                .iter()
                .filter(|o| o.ok > 0)
                .map(|o| {
                    let at = |v: Option<f64>| v.unwrap();
                    let curve = [
                        (0.0, at(o.min_ms)),
                        (0.5, at(o.p50_ms)),
                        (0.95, at(o.p95_ms)),
                        (0.99, at(o.p99_ms)),
                        (1.0, at(o.max_ms)),
                    ];
                    let mut l = OpLatency { op: o.op.clone(), raw: Hist::default(), corrected: Hist::default() };
                    for t in spread(o.ok, &curve) {
                        l.raw.record(t);
                        // A shopper's mean think time, 50 ms, as its expected interval.
                        l.corrected.record_correct(t, Duration::from_millis(50));
                    }
                    l
                })
                .collect();
        }
        // Configuration 1 holds up to 376 req/s, configuration 2 up to 527 (then 3 failures).
        let held: &[f64] = if c.index == 0 {
            &[50.0, 70.0, 98.0, 137.0, 192.0, 269.0, 376.0]
        } else {
            &[50.0, 70.0, 98.0, 137.0, 192.0, 269.0, 376.0, 527.0]
        };
        let mut steps: Vec<StepResult> =
            held.iter().map(|&r| step(r, (r * 10.0) as u64, 0, 4.0 + r / 40.0, 6.0 + r / 20.0)).collect();
        steps.push(if c.index == 0 { step(527.0, 4810, 0, 38.0, 240.0) } else { step(738.0, 7100, 3, 30.0, 48.0) });
        c.capacity = Some(CapacityRun { params: CapacityParams::default(), steps });
        results::save_config(&raw, c).unwrap();
    }
}
