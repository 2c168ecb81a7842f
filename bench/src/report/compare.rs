//! The stages side by side (`shopbench-bench compare`): reads the summary.json of each stage's
//! results folder and compares the operations whose store moved between stages: cart operations
//! with the carts in PostgreSQL (stage pg) against Redis (stage redis), catalogue operations with
//! the catalogue in PostgreSQL against Cassandra (stage cassandra), each beside its storage floor.
//! Writes README.md, comparison.json and a bar chart per comparison (PNG and SVG).
//!
//! Stages run different configurations; they are compared at the same PostgreSQL, pgpool, web
//! and nginx counts (the largest such "base" they share, or `--base`), with every Redis or
//! Cassandra count the other stage ran on that base.

use crate::load::ops::Op;
use crate::matrix::{Counts, Stage};
use crate::report::chart::{self, Bar, ChartData};
use crate::report::stats::OpSummary;
use crate::report::summary::{ConfigSummary, Summary};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A change below this share is called small in the reading.
const SMALL_CHANGE: f64 = 0.05;

/// Where a stage keeps the carts.
pub fn cart_store(stage: Stage) -> &'static str {
    stage.cart_store().label()
}

/// Where a stage keeps the catalogue.
pub fn catalogue_store(stage: Stage) -> &'static str {
    stage.catalogue_store().label()
}

/// Operations whose use case calls the cart port (read from `Op::port_calls`).
pub fn cart_ops() -> Vec<Op> {
    Op::ALL.into_iter().filter(|o| o.port_calls().contains("carts.")).collect()
}

/// Operations on the catalogue alone. Cart changes also read prices from the catalogue; they
/// are in the cart comparison, where the catalogue is in PostgreSQL on both sides.
pub fn catalogue_ops() -> Vec<Op> {
    Op::ALL
        .into_iter()
        .filter(|o| o.port_calls().contains("catalogue.") && !o.port_calls().contains("carts."))
        .collect()
}

/// One stage's results folder.
#[derive(Clone, Debug)]
pub struct StageResults {
    /// Where its summary.json was read from, as given.
    pub source: String,
    pub summary: Summary,
}

impl StageResults {
    pub fn load(dir: &Path) -> Result<StageResults> {
        let path = dir.join("summary.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let summary: Summary = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(StageResults { source: crate::report::results::display_path(&path), summary })
    }
}

/// One configuration of one stage in a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub stage: Stage,
    /// Where the compared store lives in this stage.
    pub store: String,
    pub config: String,
    pub repeats: usize,
}

impl Side {
    /// e.g. "Redis: pg2 pool2 web2 nginx2 redis3".
    pub fn label(&self) -> String {
        format!("{}: {}", self.store, self.config)
    }
    /// The store and the counts beyond `base` (which the chart's title gives), e.g. "Redis redis3".
    pub fn short_label(&self, base: &str) -> String {
        match self.config.strip_prefix(base) {
            Some(rest) if !base.is_empty() => format!("{} {}", self.store, rest.trim()).trim_end().to_string(),
            _ => self.label(),
        }
    }
}

/// One operation of one side: its full-stack and floor means with their spreads, and its median.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cell {
    pub mean_ms: Option<f64>,
    /// The median (p50) averaged over the repeats: a few stalled requests move the mean, not this.
    pub p50_ms: Option<f64>,
    pub floor_mean_ms: Option<f64>,
    /// Lowest and highest per-repeat mean, and how many repeats.
    pub spread: Option<(f64, f64, usize)>,
    pub floor_spread: Option<(f64, f64, usize)>,
    pub requests: u64,
}

impl Cell {
    fn of(o: Option<&OpSummary>) -> Cell {
        let Some(o) = o else { return Cell::default() };
        Cell {
            mean_ms: o.mean_ms,
            p50_ms: o.p50_ms,
            floor_mean_ms: o.floor_mean_ms,
            spread: o.mean_ms_spread.map(|s| (s.min, s.max, s.n)),
            floor_spread: o.floor_mean_ms_spread.map(|s| (s.min, s.max, s.n)),
            requests: o.requests,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub op: String,
    /// One per side, in the order of `Comparison::sides`.
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Names the chart files: carts.png, catalogue.png.
    pub id: String,
    pub title: String,
    /// The PostgreSQL, pgpool, web and nginx counts compared.
    pub base: String,
    /// The baseline first, then the other stage's configurations on the same base.
    pub sides: Vec<Side>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// The base counts both stages ran, in `a`'s order.
fn common_bases(a: &Summary, b: &Summary) -> Vec<Counts> {
    let mut out: Vec<Counts> = Vec::new();
    for c in &a.configurations {
        let base = c.counts().base();
        if !out.contains(&base) && b.configurations.iter().any(|d| d.counts().base() == base) {
            out.push(base);
        }
    }
    out
}

fn largest(s: &Summary) -> Option<&ConfigSummary> {
    s.configurations.iter().max_by_key(|c| c.counts().instances())
}

/// The configurations of each of two stages to compare, the base's label, and notes.
type Chosen<'a> = (Vec<&'a ConfigSummary>, Vec<&'a ConfigSummary>, String, Vec<String>);

/// The configurations of `a` and of `b` to compare, the base's label, and notes.
fn choose<'a>(a: &'a Summary, b: &'a Summary, base: Option<&str>) -> Result<Chosen<'a>> {
    let common = common_bases(a, b);
    let chosen = match base {
        Some(want) => Some(*common.iter().find(|c| c.label() == want).with_context(|| {
            let have: Vec<String> = common.iter().map(|c| c.label()).collect();
            format!("--base {want:?}: stages {} and {} share the bases [{}]", a.stage, b.stage, have.join(", "))
        })?),
        // The largest shared base; among equals the later one (matrix files grow).
        None => common.iter().copied().max_by_key(Counts::instances),
    };
    match chosen {
        Some(base) => {
            let on = |s: &'a Summary| s.configurations.iter().filter(|c| c.counts().base() == base).collect::<Vec<_>>();
            Ok((on(a), on(b), base.label(), vec![]))
        }
        None => {
            let (Some(x), Some(y)) = (largest(a), largest(b)) else { bail!("a stage without configurations") };
            let note = format!(
                "Stages {} and {} share no PostgreSQL/pgpool/web/nginx counts; each stage's largest configuration is \
                 compared ({} against {}), so other counts differ too.",
                a.stage, b.stage, x.label, y.label
            );
            Ok((vec![x], vec![y], String::new(), vec![note]))
        }
    }
}

fn comparison(
    id: &str,
    what: &str,
    ops: &[Op],
    store: fn(Stage) -> &'static str,
    a: &Summary,
    b: &Summary,
    base: Option<&str>,
) -> Result<Comparison> {
    let (xs, ys, base_label, mut notes) = choose(a, b, base)?;
    let side = |s: &Summary, c: &ConfigSummary| Side {
        stage: s.stage,
        store: store(s.stage).to_string(),
        config: c.label.clone(),
        repeats: c.repeats,
    };
    let mut sides: Vec<Side> = xs.iter().map(|&c| side(a, c)).collect();
    sides.extend(ys.iter().map(|&c| side(b, c)));
    let configs: Vec<&ConfigSummary> = xs.iter().chain(ys.iter()).copied().collect();
    let rows = ops
        .iter()
        .map(|op| Row {
            op: op.name().to_string(),
            cells: configs.iter().map(|c| Cell::of(c.operations.iter().find(|o| o.op == op.name()))).collect(),
        })
        .filter(|r| r.cells.iter().any(|c| c.mean_ms.is_some()))
        .collect();
    if id == "carts" && b.stage == Stage::Cassandra {
        notes.push(
            "No Redis-stage results were given: the Redis side is the Cassandra stage, whose catalogue is in Cassandra \
             too, so the cart changes that read prices (add, set quantity, checkout) also show the catalogue's move."
                .into(),
        );
    }
    Ok(Comparison {
        id: id.into(),
        title: format!("{what}: {} (stage {}) vs {} (stage {})", store(a.stage), a.stage, store(b.stage), b.stage),
        base: base_label,
        sides,
        rows,
        notes,
    })
}

/// Every comparison the given stages allow: carts when one stage keeps them in PostgreSQL and
/// another in Redis, the catalogue when one keeps it in PostgreSQL and another in Cassandra.
pub fn build(stages: &[StageResults], base: Option<&str>) -> Result<Vec<Comparison>> {
    let find = |stage: Stage| stages.iter().map(|s| &s.summary).find(|s| s.stage == stage);
    let mut out = Vec::new();
    if let (Some(pg), Some(other)) = (find(Stage::Pg), find(Stage::Redis).or_else(|| find(Stage::Cassandra))) {
        out.push(comparison("carts", "Cart operations", &cart_ops(), cart_store, pg, other, base)?);
    }
    if let (Some(pg), Some(cas)) = (find(Stage::Pg).or_else(|| find(Stage::Redis)), find(Stage::Cassandra)) {
        out.push(comparison("catalogue", "Catalogue operations", &catalogue_ops(), catalogue_store, pg, cas, base)?);
    }
    Ok(out)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn change(from: f64, to: f64) -> f64 {
    (to - from) / from
}

fn pct(c: f64) -> String {
    format!("{:+.0}%", c * 100.0)
}

/// The markdown table of a comparison: per operation, each side's mean, median and floor, and the
/// change of each other side's mean (and median) against the baseline (the first side).
pub fn table(c: &Comparison) -> String {
    let mut md = String::from("| operation |");
    let mut rule = String::from("|---|");
    for (i, s) in c.sides.iter().enumerate() {
        let _ = write!(md, " {} mean ms | p50 ms | floor ms |", s.label());
        rule.push_str("---:|---:|---:|");
        if i > 0 {
            md.push_str(" change |");
            rule.push_str("---:|");
        }
    }
    let mut out = format!("{md}\n{rule}\n");
    for r in &c.rows {
        let mut line = format!("| `{}` |", r.op);
        let first = r.cells.first();
        let of = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => Some(pct(change(a, b))),
            _ => None,
        };
        for (i, cell) in r.cells.iter().enumerate() {
            let _ = write!(line, " {} | {} | {} |", ms(cell.mean_ms), ms(cell.p50_ms), ms(cell.floor_mean_ms));
            if i > 0 {
                let ch = match (
                    of(first.and_then(|c| c.mean_ms), cell.mean_ms),
                    of(first.and_then(|c| c.p50_ms), cell.p50_ms),
                ) {
                    (Some(m), Some(p)) => format!("{m} (p50 {p})"),
                    (Some(m), None) => m,
                    _ => "–".into(),
                };
                let _ = write!(line, " {ch} |");
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// (baseline, other side) means, where both have one.
type Pair = Option<(f64, f64)>;

/// Request-weighted means over the rows both sides have, with the baseline's request counts as
/// weights (the same mix on both sides), for the full stack and for the floor.
fn weighted(c: &Comparison, side: usize) -> (Pair, Pair) {
    let mean = |get: fn(&Cell) -> Option<f64>| {
        let (mut a, mut b, mut w) = (0.0, 0.0, 0.0);
        for r in &c.rows {
            let (x, y) = (&r.cells[0], &r.cells[side]);
            if let (Some(p), Some(q)) = (get(x), get(y)) {
                let weight = x.requests as f64;
                a += p * weight;
                b += q * weight;
                w += weight;
            }
        }
        (w > 0.0).then(|| (a / w, b / w))
    };
    (mean(|c| c.mean_ms), mean(|c| c.floor_mean_ms))
}

fn separated(x: &Cell, y: &Cell) -> Option<bool> {
    match (x.spread, y.spread) {
        (Some((xl, xh, xn)), Some((yl, yh, yn))) if xn > 1 && yn > 1 => Some(xh < yl || yh < xl),
        _ => None,
    }
}

/// Sentences about each comparison, generated from the numbers.
pub fn reading(comparisons: &[Comparison], stages: &[StageResults]) -> Vec<String> {
    let mut out = Vec::new();
    for c in comparisons {
        for i in 1..c.sides.len() {
            out.extend(side_reading(c, i));
        }
    }
    out.extend(disturbed_caution(comparisons, stages));
    out.extend(machine_caution(stages));
    out
}

/// Side `i` of `c` against its first side: the weighted means, the largest change, what got
/// slower, and whether the changes stand out of the repeats' spread.
fn side_reading(c: &Comparison, i: usize) -> Vec<String> {
    let mut out = Vec::new();
    let (base, other) = (&c.sides[0], &c.sides[i]);
    let at = if c.base.is_empty() { String::new() } else { format!(" at {}", c.base) };
    let (full, floor) = weighted(c, i);
    let Some((a, b)) = full else { return out };
    let mut s = format!(
        "{}{at}: {} ({}) {a:.2} ms → {} ({}) {b:.2} ms per operation ({}), weighted by the {} stage's mix",
        c.title.split(':').next().unwrap_or("Operations"),
        base.store,
        base.config,
        other.store,
        other.config,
        pct(change(a, b)),
        base.stage
    );
    if let Some((fa, fb)) = floor {
        let _ = write!(s, "; at the storage floor {fa:.2} → {fb:.2} ms ({})", pct(change(fa, fb)));
    }
    s.push('.');
    out.push(s);

    // Operation, baseline mean, other mean, whether they differ beyond the repeats' spread.
    let changes: Vec<(&str, f64, f64, Option<bool>)> = c
        .rows
        .iter()
        .filter_map(|r| {
            let (x, y) = (&r.cells[0], &r.cells[i]);
            Some((r.op.as_str(), x.mean_ms?, y.mean_ms?, separated(x, y)))
        })
        .filter(|(_, a, _, _)| *a > 0.0)
        .collect();
    if let Some((op, a, b, _)) = changes.iter().max_by(|x, y| change(x.1, x.2).abs().total_cmp(&change(y.1, y.2).abs()))
    {
        out.push(format!("Largest change: `{op}` {a:.2} → {b:.2} ms ({}).", pct(change(*a, *b))));
    }
    let slower: Vec<String> = changes
        .iter()
        .filter(|(_, a, b, _)| change(*a, *b) > SMALL_CHANGE)
        .map(|(op, a, b, _)| format!("`{op}` ({})", pct(change(*a, *b))))
        .collect();
    if !slower.is_empty() {
        out.push(format!("Slower with {} ({}): {}.", other.store, other.config, slower.join(", ")));
    }
    let judged: Vec<bool> = changes.iter().filter_map(|(_, _, _, sep)| *sep).collect();
    if judged.len() == changes.len() && !judged.is_empty() {
        out.push(format!(
            "{} of {} operations differ beyond the spread of the repeats (no overlap of their lowest..highest means).",
            judged.iter().filter(|s| **s).count(),
            judged.len()
        ));
    } else if !changes.is_empty() {
        out.push(
            "Some of these means come from one repeat, so their spread is unknown: treat changes of a few \
             percent as noise."
                .into(),
        );
    }
    out
}

/// A caution naming the compared configurations whose runs other work on the machine disturbed.
fn disturbed_caution(comparisons: &[Comparison], stages: &[StageResults]) -> Option<String> {
    let mut disturbed: Vec<String> = Vec::new();
    for side in comparisons.iter().flat_map(|c| &c.sides) {
        let config = stages
            .iter()
            .filter(|s| s.summary.stage == side.stage)
            .flat_map(|s| &s.summary.configurations)
            .find(|c| c.label == side.config);
        let Some(others) = config.and_then(|c| c.cpu.as_ref()?.others()) else { continue };
        let line = format!("stage {} {} {others:.2} cores", side.stage, side.config);
        if others > crate::report::OTHER_LOAD_WARNING && !disturbed.contains(&line) {
            disturbed.push(line);
        }
    }
    (!disturbed.is_empty()).then(|| {
        format!(
            "Caution: processes outside the topology and the load client were busy during the timed runs of {}; \
             those numbers are disturbed and should be measured again on a quiet machine.",
            disturbed.join(", ")
        )
    })
}

/// Whether the stages ran on one machine, and what that means for their numbers.
fn machine_caution(stages: &[StageResults]) -> Option<String> {
    let machines: Vec<String> = stages.iter().map(|s| s.summary.machine.one_line()).collect();
    if machines.windows(2).any(|w| w[0] != w[1]) {
        Some("Caution: the stages ran on different machines; their numbers do not compare.".into())
    } else {
        stages.first().map(|m| {
            format!(
                "Each stage was measured in its own run on the same machine ({} cores shared by every server and the \
                 load client): other work on the machine during one run shifts that stage's numbers.",
                m.summary.machine.cores
            )
        })
    }
}

/// The chart of a comparison: per operation a bar per side and, in a lighter shade of the same
/// colour, its storage floor beside it.
pub fn chart_data(c: &Comparison, users: usize) -> ChartData {
    let bar = |mean: Option<f64>, spread: Option<(f64, f64, usize)>| {
        let mean = mean?;
        let (lo, hi) = spread.map_or((mean, mean), |(l, h, _)| (l, h));
        Some(Bar { mean, lo, hi, floor: None })
    };
    let mut series: Vec<(String, Vec<Option<Bar>>)> = Vec::new();
    for (i, s) in c.sides.iter().enumerate() {
        let label = s.short_label(&c.base);
        series.push((label.clone(), c.rows.iter().map(|r| bar(r.cells[i].mean_ms, r.cells[i].spread)).collect()));
        series.push((
            format!("{label}, storage floor"),
            c.rows.iter().map(|r| bar(r.cells[i].floor_mean_ms, r.cells[i].floor_spread)).collect(),
        ));
    }
    let at = if c.base.is_empty() { String::new() } else { format!(" at {}", c.base) };
    let what = c.title.split(':').next().unwrap_or_default();
    ChartData {
        title: format!("{what}{at}: mean ms per request, {users} users; lighter bar: storage floor; whiskers: repeats"),
        groups: c.rows.iter().map(|r| r.op.clone()).collect(),
        series,
        paired: true,
    }
}

/// Reads the stages' summary.json files and writes the comparison into `out`.
pub fn write(from: &[PathBuf], out: &Path, base: Option<&str>, command: &str) -> Result<Vec<Comparison>> {
    let stages = from.iter().map(|d| StageResults::load(d)).collect::<Result<Vec<_>>>()?;
    let names: Vec<&str> = stages.iter().map(|s| s.summary.stage.name()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            bail!("stage {n} is given twice");
        }
    }
    if stages.len() < 2 {
        bail!("give two or three stages' results folders (--from docs/results/pg --from docs/results/redis ...)");
    }
    let comparisons = build(&stages, base)?;
    if comparisons.is_empty() {
        bail!("stages {} keep the carts and the catalogue in the same stores: nothing to compare", names.join(", "));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let users = stages[0].summary.method.users;
    for id in ["carts", "catalogue"] {
        let (png, svg) = (out.join(format!("{id}.png")), out.join(format!("{id}.svg")));
        match comparisons.iter().find(|c| c.id == id) {
            Some(c) => chart::draw(&chart_data(c, users), &png, &svg)?,
            None => {
                // A chart of an earlier comparison would sit beside a report that no longer has it.
                let _ = std::fs::remove_file(png);
                let _ = std::fs::remove_file(svg);
            }
        }
    }
    let json = serde_json::json!({
        "generated_at": crate::report::results::now_rfc3339(),
        "command": command,
        "sources": stages.iter().map(|s| &s.source).collect::<Vec<_>>(),
        "comparisons": comparisons,
    });
    std::fs::write(out.join("comparison.json"), serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", out.join("comparison.json").display()))?;
    std::fs::write(out.join("README.md"), markdown(&comparisons, &stages, command))
        .with_context(|| format!("writing {}", out.join("README.md").display()))?;
    crate::page::write_beside(&out.join("README.md"))?;
    Ok(comparisons)
}

pub fn markdown(comparisons: &[Comparison], stages: &[StageResults], command: &str) -> String {
    let mut md = String::from("# The storage stages compared\n\n");
    let _ = writeln!(md, "Generated {} by `{command}` from:\n", crate::report::results::now_rfc3339());
    for s in stages {
        let m = &s.summary.method;
        let _ = writeln!(
            md,
            "- `{}`: stage `{}`, {} configuration(s), {} users, {} s windows x {} repeat(s), generated {}",
            s.source,
            s.summary.stage,
            s.summary.configurations.len(),
            m.users,
            m.secs,
            m.repeats,
            s.summary.generated_at
        );
    }
    let _ = writeln!(
        md,
        "\nEach stage moves one store: `pg` keeps everything in PostgreSQL (through pgpool-II), `redis` moves the \
         carts to Redis, `cassandra` also moves the catalogue to Cassandra. Operations are compared where their store \
         moved, at the same PostgreSQL, pgpool, web and nginx counts; the storage floor is the same use cases called \
         straight on the stage's stores (no HTTP), so the distance from a bar to its floor is what the HTTP stack \
         adds.\n"
    );
    for (id, title, missing) in [
        ("carts", "Cart operations: PostgreSQL vs Redis", "no results of a stage with the carts in Redis"),
        ("catalogue", "Catalogue operations: PostgreSQL vs Cassandra", "no Cassandra-stage results"),
    ] {
        let Some(c) = comparisons.iter().find(|c| c.id == id) else {
            let _ = writeln!(md, "## {title}\n\nNot drawn: {missing} were given.\n");
            continue;
        };
        let _ = writeln!(md, "## {}\n", c.title);
        if !c.base.is_empty() {
            let _ = writeln!(md, "At {} (PostgreSQL, pgpool, web, nginx counts).\n", c.base);
        }
        for n in &c.notes {
            let _ = writeln!(md, "- {n}");
        }
        if !c.notes.is_empty() {
            md.push('\n');
        }
        let _ = writeln!(md, "![{id}]({id}.png)\n\n(SVG: [{id}.svg]({id}.svg))\n");
        md.push_str(&table(c));
        md.push('\n');
    }
    md.push_str(&all_operations(stages));
    let _ = writeln!(md, "## Reading\n\nGenerated from the numbers; for review.\n");
    for line in reading(comparisons, stages) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\nThe same rows are in `comparison.json`.");
    md
}

/// Every operation of each stage at one configuration: the largest base all stages share (or
/// each stage's largest configuration), with the most Redis and Cassandra instances on it.
fn all_operations(stages: &[StageResults]) -> String {
    let mut bases: Option<Vec<Counts>> = None;
    for s in stages {
        let mine: Vec<Counts> = s.summary.configurations.iter().map(|c| c.counts().base()).collect();
        bases = Some(match bases {
            None => mine,
            Some(b) => b.into_iter().filter(|c| mine.contains(c)).collect(),
        });
    }
    let base = bases.unwrap_or_default().into_iter().max_by_key(Counts::instances);
    let picked: Vec<(&Summary, &ConfigSummary)> = stages
        .iter()
        .filter_map(|s| {
            let on_base = s.summary.configurations.iter().filter(|c| base.is_none_or(|b| c.counts().base() == b));
            Some((&s.summary, on_base.max_by_key(|c| c.counts().instances())?))
        })
        .collect();
    let mut md = String::from("## All operations, per stage\n\n");
    match base {
        Some(b) => {
            let _ = writeln!(md, "At {}; mean ms (storage floor ms).\n", b.label());
        }
        None => {
            let _ = writeln!(
                md,
                "The stages share no PostgreSQL/pgpool/web/nginx counts: each stage's largest configuration; mean ms \
                 (storage floor ms).\n"
            );
        }
    }
    md.push_str("| operation |");
    for (s, c) in &picked {
        let _ = write!(md, " {} ({}) |", s.stage, c.label);
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(picked.len()));
    md.push('\n');
    for op in Op::ALL {
        let cells: Vec<String> = picked
            .iter()
            .map(|(_, c)| match config_of_op(c, op) {
                Some(o) if o.mean_ms.is_some() => format!("{} ({})", ms(o.mean_ms), ms(o.floor_mean_ms)),
                _ => "–".into(),
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let _ = writeln!(md, "| `{}` | {} |", op.name(), cells.join(" | "));
    }
    md.push('\n');
    md
}

fn config_of_op(c: &ConfigSummary, op: Op) -> Option<&OpSummary> {
    c.operations.iter().find(|o| o.op == op.name())
}
