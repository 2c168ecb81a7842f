//! The run as markdown: the medians, the ratios, every turn, the backends' check, the setup.

use super::results::{SideKind, WritesRun};
use std::fmt::Write;

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}

fn opt(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

fn cores(v: f64) -> String {
    format!("{v:.2}")
}

fn rate(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.0}")
    }
}

pub fn render(r: &WritesRun) -> String {
    let s = &r.settings;
    let mut md = String::new();
    let _ = writeln!(md, "# Cart adds through pgpool-II: builds side by side (`shopbench-bench writes`)\n");
    let _ = writeln!(
        md,
        "Measured {} on {}. c={}, {} s warm-up + {} s measured per turn, {} repeat(s), {} products. \
         Medians of the repeats; the ratios hold only within this run.\n",
        r.started,
        r.machine.one_line(),
        s.concurrency,
        s.warmup_secs,
        s.secs,
        s.repeats,
        s.products
    );
    let _ = writeln!(md, "## Medians\n");
    let _ = writeln!(
        md,
        "| c={} | adds/s | DB CPU per add (ms) | of which PostgreSQL | of which pgpool-II | web CPU per add (ms) | failures | busy cores |",
        s.concurrency
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for m in &r.medians {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.side,
            rate(m.adds_per_sec),
            ms(m.per_add.db_ms),
            ms(m.per_add.postgres_ms),
            ms(m.per_add.pgpool_ms),
            opt(m.per_add.web_ms, ms),
            m.failures,
            opt(m.machine_busy_cores, cores)
        );
    }
    let _ = writeln!(md);
    for ratio in &r.ratios {
        let _ = writeln!(md, "- **{}: {:.2}x**", ratio.what, ratio.value);
    }
    let _ = writeln!(md, "\n## Per turn\n");
    let _ = writeln!(
        md,
        "| repeat | side | adds/s | adds | failures | DB CPU per add (ms) | PostgreSQL | pgpool-II | web | busy cores | of which other processes |"
    );
    let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for t in &r.turns {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.repeat + 1,
            t.side,
            rate(t.adds_per_sec),
            t.adds,
            t.failures,
            ms(t.per_add.db_ms),
            ms(t.per_add.postgres_ms),
            ms(t.per_add.pgpool_ms),
            opt(t.per_add.web_ms, ms),
            opt(t.cpu.machine_busy_cores, cores),
            opt(t.cpu.other_cores, cores)
        );
    }
    let reasons: Vec<String> = r
        .turns
        .iter()
        .flat_map(|t| {
            t.failure_reasons.iter().map(move |(why, n)| format!("{} #{}: {n} x {why}", t.side, t.repeat + 1))
        })
        .collect();
    if !reasons.is_empty() {
        let _ = writeln!(md, "\nFailures (whole turns, warm-up included): {}.", reasons.join("; "));
    }
    let _ = writeln!(md, "\n## Backends compared row by row after the runs\n");
    for c in &r.consistency {
        let _ = writeln!(md, "- {}: {}", c.side, c.summary);
    }
    let _ = writeln!(md, "\n## Setup\n");
    let _ = writeln!(md, "`{}`\n", r.command);
    for side in &r.sides {
        let what = match &side.kind {
            SideKind::Web { binary } => format!("web build `{binary}`"),
            SideKind::Pgbench { pipelined, .. } => format!(
                "pgbench `-M prepared -c {} -j {}`, the adapter's add statements {}",
                s.concurrency,
                s.concurrency.min(2),
                if *pipelined { "in two `\\startpipeline` round trips" } else { "one round trip each (no pipeline)" }
            ),
        };
        let _ = writeln!(md, "- **{}**: {what}; topology in `{}`", side.name, side.run_dir);
    }
    let _ = writeln!(
        md,
        "\nEach side has its own topology, all up at once: 2 PostgreSQL 15 backends, 1 pgpool-II (native \
         replication, infra's pgpool.conf and sizing), 1 web instance, no nginx. A build's turn: {c} fresh \
         users, each with its own keep-alive HTTP connection, `POST /users/{{id}}/cart/items` (quantity 1, a \
         product drawn at random) in a closed loop. pgbench's topology was seeded by its web instance, which \
         was then stopped. Turns interleaved (the builds in order, then pgbench) per repeat. CPU from /proc \
         (utime+stime of each process tree) over the measured window (pgbench: its whole measured run); DB \
         CPU = PostgreSQL + pgpool-II. Busy cores: the whole machine's, other processes included.",
        c = s.concurrency
    );
    if !r.notes.is_empty() {
        let _ = writeln!(md);
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}
