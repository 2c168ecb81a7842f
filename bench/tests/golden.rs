//! Golden test: the report of a stage, the comparison of the stages and the faults table, rendered
//! from small raw results kept in `tests/data/golden/` (see its README.md), must come out byte for
//! byte as the expected files in `tests/data/golden/expected/`.
//!
//! It goes through the entry points the command line uses (`report --from`, `compare`,
//! `faults --redraw`): `results::load_run` + `report::write`, `compare::write` and
//! `faults::table::redraw`, so a restructuring of bench that keeps what they write keeps this
//! test green. The generated-at time is the only part masked (any RFC 3339 time within a day of
//! now becomes `<generated>`). The SVG charts are compared too (plotters writes text as `<text>`
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

/// `text` with every RFC 3339 time (`2026-12-04T20:31:05Z`) within a day of now replaced: the
/// times the outputs stamp when they are generated. Times in the inputs are older and stay.
fn masked(text: &str) -> String {
    const LEN: usize = "2026-12-04T20:31:05Z".len();
    let now = Utc::now();
    let recent =
        |s: &str| DateTime::parse_from_rfc3339(s).is_ok_and(|t| (now - t.with_timezone(&Utc)).num_hours().abs() <= 24);
    let (mut out, mut copied, mut pos) = (String::with_capacity(text.len()), 0, 0);
    while let Some(t) = text[pos..].find('T').map(|i| pos + i) {
        pos = t + 1;
        let Some(start) = t.checked_sub(10).filter(|&s| s >= copied) else { continue };
        if text.get(start..start + LEN).is_some_and(recent) {
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
fn check(actual: &Path, expected: &Path, name: &str) -> Option<String> {
    let got = masked(&std::fs::read_to_string(actual.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}")));
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

fn check_all(actual: &Path, expected: &Path, names: &[&str]) {
    let diffs: Vec<String> = names.iter().filter_map(|n| check(actual, expected, n)).collect();
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
    let out = Scratch::new("report");
    report::write(&meta, &configs, &raw, &out.0).unwrap();
    check_all(
        &out.0,
        &data().join("expected/report"),
        &["README.md", "summary.json", "reads.svg", "writes.svg", "over-time-config-01.svg"],
    );
    assert!(!out.0.join("over-time-config-02.png").exists(), "configuration 2 was not observed");
}

#[test]
fn the_comparison_of_the_stages_renders_as_before() {
    let from: Vec<PathBuf> = ["pg", "redis", "cassandra"].iter().map(|s| data().join("compare").join(s)).collect();
    let out = Scratch::new("compare");
    let command = "shopbench-bench compare --from pg --from redis --from cassandra";
    let comparisons = compare::write(&from, &out.0, None, command).unwrap();
    assert_eq!(comparisons.len(), 2, "carts and catalogue");
    check_all(
        &out.0,
        &data().join("expected/compare"),
        &["README.md", "comparison.json", "carts.svg", "catalogue.svg"],
    );
}

#[test]
fn the_comparison_without_a_cassandra_stage_renders_as_before() {
    let from: Vec<PathBuf> = ["pg", "redis"].iter().map(|s| data().join("compare").join(s)).collect();
    let out = Scratch::new("compare-two");
    let comparisons = compare::write(&from, &out.0, None, "shopbench-bench compare --from pg --from redis").unwrap();
    assert_eq!(comparisons.len(), 1, "carts only");
    check_all(&out.0, &data().join("expected/compare-two"), &["README.md", "comparison.json"]);
}

#[test]
fn the_fault_table_renders_as_before() {
    let out = Scratch::new("faults");
    std::fs::copy(data().join("faults.json"), out.0.join("faults.json")).unwrap();
    assert_eq!(table::redraw(&out.0).unwrap(), 7, "the golden rows");
    check_all(&out.0, &data().join("expected"), &["faults.md"]);
}

#[test]
fn the_mask_hides_only_times_of_now() {
    let now = results::now_rfc3339();
    let text = format!("T {now}, {now}\nfrom 2026-01-01T00:00:00Z; Ten: 10:00T, é{now}");
    assert_eq!(masked(&text), "T <generated>, <generated>\nfrom 2026-01-01T00:00:00Z; Ten: 10:00T, é<generated>");
}
