//! The results folder (docs/results/<stage>/): summary.json, README.md with a table per
//! configuration and a reading generated from the numbers, and the charts beside it.

pub mod chart;
pub mod compare;
pub mod lean;
pub mod observed;
pub mod results;
pub mod stats;
pub mod summary;
pub mod timeseries;

use crate::load::ops::Op;
use crate::matrix::Stage;
use crate::report::results::{ConfigResult, RunMeta};
use crate::report::stats::Spread;
use crate::report::summary::{ClassSummary, ConfigSummary, Summary, STALL_FACTOR};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Cores used by foreign processes above which the reading warns that the run was disturbed.
pub(crate) const OTHER_LOAD_WARNING: f64 = 0.25;

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn pct(from: f64, to: f64) -> String {
    if from <= 0.0 {
        return "n/a".into();
    }
    format!("{:+.0}%", (to - from) / from * 100.0)
}

/// How sure a difference between two values over repeats is, in words.
fn confidence(a: Option<Spread>, b: Option<Spread>) -> &'static str {
    match (a, b) {
        (Some(x), Some(y)) if x.n > 1 && y.n > 1 => {
            if x.max < y.min || y.max < x.min {
                "outside the spread of the repeats"
            } else {
                "within the spread of the repeats, so not a shown difference"
            }
        }
        _ => "one repeat only, so the spread is unknown: treat a few percent as noise",
    }
}

/// The change of the mean and, where both have it, of the typical request (medians): a stall
/// in one repeat moves a mean and leaves "within the spread", while the medians still show
/// the effect of the count.
fn change(what: &str, a: &ClassSummary, b: &ClassSummary) -> Option<String> {
    let (x, y) = (a.mean_ms?, b.mean_ms?);
    let mut text = format!(
        "{what} {x:.2} → {y:.2} ms ({}; {:.0} → {:.0} req/s), {}",
        pct(x, y),
        a.rps,
        b.rps,
        confidence(a.mean_ms_spread, b.mean_ms_spread)
    );
    if let (Some(x), Some(y)) = (a.typical_ms, b.typical_ms) {
        let _ = write!(
            text,
            " (typical {what}, from the medians: {x:.2} → {y:.2} ms, {}, {})",
            pct(x, y),
            confidence(a.typical_ms_spread, b.typical_ms_spread)
        );
    }
    Some(text)
}

/// The change of reads and of writes from `a` to `b`, where both have a mean.
fn read_write_changes(a: &ConfigSummary, b: &ConfigSummary) -> Vec<String> {
    [change("reads", &a.reads, &b.reads), change("writes", &a.writes, &b.writes)].into_iter().flatten().collect()
}

/// Sentences about what the instance counts did, generated from the numbers.
pub fn reading(s: &Summary) -> Vec<String> {
    let cs = &s.configurations;
    if cs.is_empty() {
        return vec!["No configuration finished; there is nothing to read.".into()];
    }
    let mut out = count_effects(cs);
    let best = |f: fn(&ConfigSummary) -> Option<f64>| {
        cs.iter().filter_map(|c| Some((c.label.as_str(), f(c)?))).min_by(|x, y| x.1.total_cmp(&y.1))
    };
    if let (Some((r, rv)), Some((w, wv))) = (best(|c| c.reads.mean_ms), best(|c| c.writes.mean_ms)) {
        out.push(format!("Fastest reads: {r} ({rv:.2} ms per read); fastest writes: {w} ({wv:.2} ms per write)."));
    }
    out.extend(cs.iter().filter_map(http_overhead));
    for c in cs.iter().filter(|c| !c.stalled_repeats.is_empty()) {
        let which: Vec<String> = c.stalled_repeats.iter().map(u32::to_string).collect();
        out.push(format!(
            "Caution: {}: repeat {} had a reads or writes mean over {STALL_FACTOR:.0}× the middle repeat's, a stall (other \
             work on the machine, a pause) rather than the topology. It pulls this configuration's means up and widens \
             their spread; the typical times, from the medians, are not moved by it.",
            c.label,
            which.join(", ")
        ));
    }
    let others: Vec<f64> = cs.iter().filter_map(|c| c.cpu.as_ref()?.others()).collect();
    if let Some(worst) = others.iter().copied().reduce(f64::max).filter(|w| *w > OTHER_LOAD_WARNING) {
        out.push(format!(
            "Caution: processes outside the topology and the load client used up to {worst:.2} cores during the timed \
             runs (other work on the machine); the numbers are disturbed by it and should be measured again on a quiet machine."
        ));
    }
    out.push(machines_sentence(s));
    out
}

/// What the machines were, and so what the numbers can show.
fn machines_sentence(s: &Summary) -> String {
    let cores = s.machine.cores;
    match (s.hosts.len(), s.hosts_emulated) {
        (0, _) => format!(
            "Every server and the load generator share this machine's {cores} cores: adding an instance adds processes \
             that compete for the same cores, so these numbers show contention on one machine rather than scale-out \
             over machines."
        ),
        (n, true) => format!(
            "The {n} hosts are network namespaces of this one machine: every server and load client still shares its \
             {cores} cores, and a request crosses veth pairs and a bridge (its own TCP/IP stack per host) where the \
             loopback runs stay in one; SSH carries only the control. These numbers show that request path, not \
             scale-out over machines."
        ),
        (n, false) => format!(
            "The servers ran on {n} machines of their own: the cores above are this machine's and the load clients' \
             (the servers' CPU and memory are not read over SSH)."
        ),
    }
}

/// The effect of each count: every configuration against the nearest earlier one that differs
/// from it in that count alone, or, when none does, against the first.
fn count_effects(cs: &[ConfigSummary]) -> Vec<String> {
    let mut out = Vec::new();
    for (j, b) in cs.iter().enumerate() {
        let Some((a, (kind, from, to))) =
            cs[..j].iter().rev().find_map(|a| Some((a, a.counts().single_difference(&b.counts())?)))
        else {
            continue;
        };
        let parts = read_write_changes(a, b);
        if !parts.is_empty() {
            out.push(format!(
                "{kind} {from} → {to} ({} → {}, other counts equal): {}.",
                a.label,
                b.label,
                parts.join("; ")
            ));
        }
    }
    // Configurations not reached by a one-count step are compared with the first.
    if out.is_empty() && cs.len() > 1 {
        let a = &cs[0];
        for b in &cs[1..] {
            let parts = read_write_changes(a, b);
            if !parts.is_empty() {
                out.push(format!(
                    "{} → {} (several counts changed at once, so the effect cannot be given to one of them): {}.",
                    a.label,
                    b.label,
                    parts.join("; ")
                ));
            }
        }
    }
    out
}

/// What the HTTP stack added over the storage floor in configuration `c`, where both were measured.
fn http_overhead(c: &ConfigSummary) -> Option<String> {
    let (Some(o), Some(full), Some(floor)) = (c.http_overhead_ms, c.reads.mean_ms, c.reads.floor_mean_ms) else {
        return None;
    };
    let added = if o > 0.0 {
        format!(
            "the HTTP stack (nginx, actix-web, JSON, one more network hop) added {o:.2} ms per request of the \
             mix over the storage floor"
        )
    } else {
        format!(
            "the full stack was not slower than the storage floor ({o:.2} ms per request of the mix): the \
             HTTP stack's cost is below what this run resolves"
        )
    };
    Some(format!("{}: {added}; a read took {full:.2} ms in full and {floor:.2} ms at the floor.", c.label))
}

fn spread_text(s: Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.2}–{:.2}", s.min, s.max),
        _ => "–".into(),
    }
}

fn reached(r: Option<bool>) -> &'static str {
    match r {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not evaluated",
    }
}

/// What the storage floor of a stage runs on (the app's wiring, with the web tier's settings).
pub fn floor_stores(stage: Stage) -> &'static str {
    match stage {
        Stage::Pg => "the PostgreSQL adapter through the same pgpool endpoints",
        Stage::Redis => {
            "the stage's stores, wired by the app's own code with the web tier's settings: PostgreSQL through the same \
             pgpool endpoints, the carts on Redis through the same Sentinels"
        }
        Stage::Cassandra => {
            "the stage's stores, wired by the app's own code with the web tier's settings: PostgreSQL through the same \
             pgpool endpoints, the carts on Redis through the same Sentinels, the catalogue on the same Cassandra nodes"
        }
    }
}

pub fn markdown(s: &Summary, meta: &RunMeta) -> String {
    let mut md = String::new();
    header(&mut md, s, meta);
    method(&mut md, s);
    targets_charts_reading(&mut md, s);
    crate::capacity::report::section(&mut md, s);
    let _ = writeln!(md, "## Per configuration\n");
    for c in &s.configurations {
        configuration(&mut md, s, c);
    }
    port_calls(&mut md);
    md
}

/// Title, where the numbers come from and how to draw this again.
fn header(md: &mut String, s: &Summary, meta: &RunMeta) {
    let _ = writeln!(md, "# Results: stage `{}`\n", s.stage);
    if !meta.matrix.description.is_empty() {
        let _ = writeln!(md, "{}\n", meta.matrix.description);
    }
    let _ = writeln!(
        md,
        "Generated {} from the raw results in `{}` (kept out of git).\n\n\
         - Command: `{}`\n- Re-draw from the raw results: `shopbench-bench report --from {}`\n\
         - Machine: {}\n- Run started {}{}\n",
        s.generated_at,
        s.raw_results,
        s.command,
        s.raw_results,
        s.machine.one_line(),
        meta.started_at,
        meta.git_commit.as_ref().map(|c| format!(", commit `{c}`")).unwrap_or_default()
    );
}

/// What was measured: the load, the timing and the floor.
fn method(md: &mut String, s: &Summary) {
    let m = &s.method;
    let _ = writeln!(md, "## What was measured\n");
    if let Some(c) = &s.load_clients {
        let _ = writeln!(
            md,
            "- The timed runs' load came from {} load-client processes ({}), each with its own users and started \
             at one instant; their counts, exact samples and histograms are merged (means are total time over total \
             count), and their CPU added up is the load client tier.",
            c.count,
            c.where_()
        );
    }
    hosts(md, s);
    let _ = writeln!(
        md,
        "- {} Goose users ({} shoppers to {} merchant by weight), think time {}–{} ms, spread round-robin over the \
         nginx instances; {} s warm-up, then a {} s measured window, {} repeat(s) per configuration.\n\
         - A shopper signs up, browses category pages and product pages, changes the cart many times (adds, quantity \
         changes, removals), views it, checks out with an Idempotency-Key, looks at its orders and sometimes pays; then \
         the next shopper signs up. A merchant (admin token) browses, creates and edits products.\n\
         - Catalogue seeded through the API: {} products in {} categories, on a fresh topology per configuration.\n\
         - Time of a request: {}. The rows **all reads** and **all writes** give the class's mean and, in the p50 \
         column, its typical request: the operations' medians weighted by their requests. Goose is a closed-loop client (coordinated omission): a stall shows up as fewer \
         requests, so read the times together with req/s; each configuration's table of corrected p99 and the \
         open-loop capacity section correct for it.\n\
         - Storage floor: the same plans, as many tasks as users, calling the use cases straight on {} with as \
         many connections as the whole web tier (web instances stopped meanwhile). Full-stack mean minus floor mean \
         is what nginx, actix-web and JSON cost.\n\
         - GET product vs pgbench: product GETs over HTTP by c users without think time, against \
         `pgbench -S -c c -j 2 -n` through the first pgpool (scratch database `pgbench`, scale 1), in the same topology.\n",
        m.users,
        m.shopper_weight,
        m.merchant_weight,
        m.think_ms[0],
        m.think_ms[1],
        m.warmup_secs,
        m.secs,
        m.repeats,
        m.products,
        m.categories,
        m.timing,
        floor_stores(s.stage)
    );
}

/// On hosts: which host ran what, and the phases that were off there.
fn hosts(md: &mut String, s: &Summary) {
    if s.hosts.is_empty() {
        return;
    }
    let how = match s.hosts_emulated {
        true => "emulated on this machine: a network namespace each, with its own sshd, on one private bridge",
        false => "machines of their own, reached over SSH",
    };
    let _ = writeln!(
        md,
        "- The servers and load clients ran on {} hosts ({how}), started and stopped over SSH by infra and the \
         runner; the runner itself (seeding, the timing of the windows) ran on this machine. What ran where, over \
         all configurations:\n\n  | host | address | ran there |\n  |---|---|---|",
        s.hosts.len()
    );
    for h in &s.hosts {
        let _ = writeln!(md, "  | {} | {} | {} |", h.name, h.address, h.ran.join(", "));
    }
    let _ = writeln!(md);
    for off in &s.phases_off {
        let _ = writeln!(md, "- Off on hosts: {off}.");
    }
}

/// The targets, the charts and the generated reading.
fn targets_charts_reading(md: &mut String, s: &Summary) {
    let _ = writeln!(md, "## Targets\n\n| target | measured | reached |\n|---|---|---|");
    for t in &s.targets {
        let _ = writeln!(md, "| {} | {} | {} |", t.target, t.measured, reached(t.reached));
    }
    let _ = writeln!(
        md,
        "\n## Charts\n\nMean time per request, one bar per configuration; error bars: lowest and highest mean over the \
         repeats; black tick: storage floor.\n\n![reads](reads.png)\n\n![writes](writes.png)\n\n\
         (SVG: [reads.svg](reads.svg), [writes.svg](writes.svg))\n"
    );
    let _ = writeln!(md, "## Reading\n\nGenerated from the numbers; for review.\n");
    for line in reading(s) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md);
}

/// One configuration: its table of operations, then what else was measured on it.
fn configuration(md: &mut String, s: &Summary, c: &ConfigSummary) {
    let _ = writeln!(md, "### {} ({})\n", c.label, c.counts().long().replace(' ', ", "));
    let _ = writeln!(
        md,
        "| operation | mean ms | spread ms | p50 ms | p95 ms | p99 ms | req/s | requests | failures | floor mean ms | HTTP overhead ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for o in &c.operations {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            o.op,
            ms(o.mean_ms),
            spread_text(o.mean_ms_spread),
            ms(o.p50_ms),
            ms(o.p95_ms),
            ms(o.p99_ms),
            o.rps,
            o.requests,
            o.failures,
            ms(o.floor_mean_ms),
            ms(o.overhead_ms())
        );
    }
    let _ = writeln!(
        md,
        "| **all reads** | {} | {} | {} | | | {:.1} | | | {} | |\n| **all writes** | {} | {} | {} | | | {:.1} | | | {} | |\n",
        ms(c.reads.mean_ms),
        spread_text(c.reads.mean_ms_spread),
        ms(c.reads.typical_ms),
        c.reads.rps,
        ms(c.reads.floor_mean_ms),
        ms(c.writes.mean_ms),
        spread_text(c.writes.mean_ms_spread),
        ms(c.writes.typical_ms),
        c.writes.rps,
        ms(c.writes.floor_mean_ms)
    );
    crate::capacity::report::configuration(md, c);
    beside_the_table(md, s, c);
}

/// A configuration's counts, memory, CPU, the pgbench and redis-benchmark comparisons, errors.
fn beside_the_table(md: &mut String, s: &Summary, c: &ConfigSummary) {
    let rss: Vec<String> = c.web_rss_peak_mib.iter().map(|v| format!("{v:.1}")).collect();
    let _ = writeln!(
        md,
        "- {} requests, {} failed; web instances' peak VmRSS: {} MiB; users that moved to another nginx: {}.",
        c.requests,
        c.failures,
        if rss.is_empty() { "not sampled".into() } else { rss.join(", ") },
        c.host_moves
    );
    let _ = writeln!(
        md,
        "- Goose's own count (from user launch, warm-up included): {} requests, {} failed.",
        c.goose_requests, c.goose_failures
    );
    if !c.hosts.is_empty() {
        let placed: Vec<String> = c.hosts.iter().map(|h| format!("{}: {}", h.name, h.ran.join(", "))).collect();
        let _ = writeln!(md, "- On the hosts: {}.", placed.join("; "));
    }
    if let Some(cpu) = &c.cpu {
        let _ = writeln!(md, "- Cores used during the timed runs (of {}): {}.", s.machine.cores, cpu.one_line());
    }
    if let Some(p) = &c.get_product_vs_pgbench {
        let _ = writeln!(
            md,
            "- GET product at c={}: {:.0} req/s over HTTP (mean {} ms, {} failed) vs pgbench -S {:.0} tps: ratio {:.2}.",
            p.clients,
            p.http_rps,
            ms(p.http_mean_ms),
            p.http_failures,
            p.pgbench.tps,
            p.ratio
        );
        for (what, cpu) in [("the HTTP product GETs", &p.http_cpu), ("pgbench -S", &p.pgbench_cpu)] {
            if let Some(cpu) = cpu {
                let _ = writeln!(md, "  - Cores used during {what}: {}.", cpu.one_line());
            }
        }
    }
    if let Some(r) = &c.redis_benchmark {
        let _ = writeln!(
            md,
            "- redis-benchmark GET at c={} on the {} {}: {:.0} req/s (mean {} ms), the Redis node's own limit beside \
             pgbench's.",
            r.clients,
            r.role,
            r.endpoint,
            r.rps,
            ms(r.mean_ms)
        );
    }
    for e in &c.errors {
        let _ = writeln!(md, "- **Error:** {e}");
    }
    let _ = writeln!(md);
}

/// The port calls behind each operation, which the floor makes too.
fn port_calls(md: &mut String) {
    let _ = writeln!(
        md,
        "## Storage floor: the port calls behind each operation\n\n\
         Read from `domain::service`; the floor runs the same use cases, so each operation makes exactly these calls.\n\n\
         | operation | port calls |\n|---|---|"
    );
    for op in Op::ALL {
        let _ = writeln!(md, "| `{}` | {} |", op.name(), op.port_calls());
    }
}

/// Fractions cut to 4 decimals (0.1 µs in milliseconds): the file is read by people and diffed.
fn rounded(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            serde_json::Number::from_f64((x * 1e4).round() / 1e4).map_or(Value::Number(n), Value::Number)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// Writes summary.json, the charts, README.md and its page report.html into `out`.
pub fn write(meta: &RunMeta, configs: &[ConfigResult], raw_dir: &Path, out: &Path) -> Result<Summary> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let raw = crate::report::results::display_path(raw_dir);
    let s = summary::build(meta, configs, &raw);
    let json = rounded(serde_json::to_value(&s)?);
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", out.join("summary.json").display()))?;
    for (reads, name) in [(true, "reads"), (false, "writes")] {
        let data = chart::chart_data(&s, reads);
        chart::draw(&data, &out.join(format!("{name}.png")), &out.join(format!("{name}.svg")))?;
    }
    crate::capacity::report::draw(&s, out)?;
    let mut md = markdown(&s, meta);
    observed::insert(&mut md, &observed::section(&observed::draw_all(configs, raw_dir, out)?));
    std::fs::write(out.join("README.md"), md)
        .with_context(|| format!("writing {}", out.join("README.md").display()))?;
    crate::page::write_beside(&out.join("README.md"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Counts;
    use crate::report::summary::{build, tests as fixtures};

    #[test]
    fn the_reading_attributes_single_count_changes_and_is_careful() {
        let mut configs = fixtures::two_configs();
        configs.push(fixtures::config(
            2,
            Counts { postgres: 3, pgpool: 2, web: 2, nginx: 2, ..Counts::default() },
            1,
            12,
        ));
        let s = build(&fixtures::meta(), &configs, "x");
        let lines = reading(&s);
        let postgres = lines.iter().find(|l| l.starts_with("postgres 2 → 3")).expect("a one-count step");
        assert!(postgres.contains("writes 8.10 → 12.10 ms (+49%"), "{postgres}");
        assert!(postgres.contains("within the spread") || postgres.contains("outside the spread"), "{postgres}");
        assert!(postgres.contains("(typical writes, from the medians: 8.10 → 12.10 ms, +49%, "), "{postgres}");
        assert!(lines.iter().any(|l| l.starts_with("Fastest reads: pg2 pool2 web2 nginx2")));
        assert!(lines.iter().any(|l| l.contains("share this machine's 2 cores")));
        // The fixtures' machine was 1.9 cores busy, the components used about 1.4.
        let caution = lines.iter().find(|l| l.starts_with("Caution")).expect("a warning about foreign load");
        assert!(caution.contains("up to 0.50 cores"), "{caution}");
    }

    #[test]
    fn a_floor_slower_than_the_full_stack_is_not_called_an_overhead() {
        let mut configs = fixtures::two_configs();
        configs[0].floor[0].ops =
            vec![fixtures::op("GET /products/{product_id}", &[3000; 5], 0), fixtures::op("POST /users", &[5000; 5], 0)];
        let lines = reading(&build(&fixtures::meta(), &configs, "x"));
        let first = lines.iter().find(|l| l.starts_with("pg1 pool1 web1 nginx1: ")).unwrap();
        assert!(first.contains("was not slower than the storage floor (-0.90 ms"), "{first}");
        let second = lines.iter().find(|l| l.starts_with("pg2 pool2 web2 nginx2: ")).unwrap();
        assert!(second.contains("the HTTP stack (nginx, actix-web, JSON, one more network hop) added"), "{second}");
    }

    #[test]
    fn a_stalled_repeat_is_named_and_the_medians_still_show_the_change() {
        let mut configs = fixtures::two_configs();
        for c in &mut configs {
            let mut third = c.repeats[0].clone();
            third.repeat = 3;
            c.repeats.push(third);
        }
        // The second configuration's third repeat: one product GET of 10 stalls for 300 ms.
        let get = configs[1].repeats[2].ops[0].clone();
        let mut micros = vec![(get.p50_ms.unwrap() * 1000.0) as u32; 9];
        micros.push(300_000);
        configs[1].repeats[2].ops[0] = fixtures::op(&get.op, &micros, 0);
        let s = build(&fixtures::meta(), &configs, "x");
        let lines = reading(&s);
        let stall =
            lines.iter().find(|l| l.starts_with("Caution: pg2 pool2 web2 nginx2: repeat 3 had")).expect("named");
        assert!(stall.contains("the typical times, from the medians, are not moved"), "{stall}");
        let reads = lines[0].split("; writes").next().unwrap();
        assert!(reads.contains("within the spread of the repeats, so not a shown difference (typical"), "{reads}");
        assert!(
            reads.contains("from the medians: 2.07 → 1.07 ms, -48%, outside the spread of the repeats)"),
            "{reads}"
        );
    }

    #[test]
    fn a_quiet_machine_gets_no_caution() {
        let mut configs = fixtures::two_configs();
        for c in &mut configs {
            for r in &mut c.repeats {
                r.cpu.as_mut().unwrap().machine_busy = Some(1.4);
            }
        }
        let lines = reading(&build(&fixtures::meta(), &configs, "x"));
        assert!(!lines.iter().any(|l| l.starts_with("Caution")), "{lines:?}");
    }

    #[test]
    fn several_changed_counts_are_not_attributed() {
        let s = build(&fixtures::meta(), &fixtures::two_configs(), "x");
        let lines = reading(&s);
        assert!(lines[0].contains("several counts changed at once"), "{lines:?}");
        assert!(lines[0].contains("reads 2.10 → 1.10 ms (-48%"), "{}", lines[0]);
    }

    #[test]
    fn the_markdown_has_targets_tables_and_the_command() {
        let meta = fixtures::meta();
        let s = build(&meta, &fixtures::two_configs(), "run/bench/pg/x");
        let md = markdown(&s, &meta);
        assert!(md.contains("`shopbench-bench matrix --file bench/matrix/quick.toml`"));
        assert!(md.contains("2 cores (Test CPU), 24.0 GiB memory, Debian GNU/Linux 12 (bookworm)"));
        assert!(md.contains("| `GET /products/{product_id}` | 2.10 | 2.00–2.20 | "), "{md}");
        assert!(md.contains("| **all reads** | 2.10 | 2.00–2.20 | 2.10 | "), "{md}");
        assert!(md.contains("![reads](reads.png)") && md.contains("![writes](writes.png)"));
        assert!(md.contains("| 0 failed requests in a run without faults | 0 failed of 48 requests | yes |"), "{md}");
        assert!(md.contains("ratio 0.30"));
        assert!(md.contains("| `POST /users/{user_id}/orders` | users.token_hash, orders.find_by_key"));
    }

    #[test]
    fn writes_the_results_folder() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        let out = dir.join("docs/results/pg");
        write(&fixtures::meta(), &fixtures::two_configs(), &dir.join("raw"), &out).unwrap();
        for f in ["summary.json", "README.md", "report.html", "reads.png", "reads.svg", "writes.png", "writes.svg"] {
            assert!(out.join(f).metadata().unwrap().len() > 100, "{f}");
        }
        let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["configurations"].as_array().unwrap().len(), 2);
        assert_eq!(v["configurations"][0]["web_rss_peak_mib"][0], 24.4141, "rounded from 25000/1024");
        assert_eq!(v["configurations"][0]["requests"], 24, "integers stay integers");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
