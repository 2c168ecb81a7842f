//! `shopbench-bench writes` (issue 15): a cart add's throughput and database-side CPU through
//! one 2-backend pgpool-II, for several builds of the web service side by side in one run, and
//! for pgbench running the adapter's own add statements (the minimal client). It writes numbers
//! (JSON and markdown) and asserts no timing.
//!
//! * [`args`]: the command line; [`topo`]: a side's topology, seeding, users, CPU groups;
//! * [`http`]: the closed loop of adds over HTTP; [`pgbench`]: the minimal client's script and run;
//! * [`results`]: the typed numbers, medians and ratios; [`markdown`]: the report.

pub mod args;
pub mod http;
pub mod markdown;
pub mod pgbench;
pub mod results;
#[cfg(test)]
mod tests;
pub mod topo;

use crate::measure::{cpu, machine::Machine};
use anyhow::{bail, Context, Result};
use args::{WritesArgs, PGBENCH};
use results::{Consistency, PerAdd, Settings, Side, SideKind, Turn, WritesRun};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use topo::Up;

fn check_cancelled() -> Result<()> {
    if crate::cancel::is_cancelled() {
        bail!("interrupted");
    }
    Ok(())
}

fn write(run: &WritesRun, json: &Path, md: &Path) -> Result<()> {
    for p in [json, md] {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
    }
    std::fs::write(json, serde_json::to_string_pretty(run)?).with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(md, markdown::render(run)).with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}

/// Medians, ratios and files from the turns so far.
fn finish(run: &mut WritesRun, a: &WritesArgs) -> Result<()> {
    run.medians = results::medians(&run.sides, &run.turns);
    run.ratios = results::ratios(&run.medians, PGBENCH);
    write(run, &a.json, &a.markdown)
}

pub async fn command(a: WritesArgs, command: String) -> Result<()> {
    a.check()?;
    let builds = a.resolved_builds()?;
    crate::cancel::install_ctrl_c();
    let started = chrono::Local::now();
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => infra::repo_root().join("run/writes").join(started.format("%Y%m%d-%H%M%S").to_string()),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let c = a.concurrency;
    // pgbench's side is seeded by the last build: its schema must be this tree's, whose adapter
    // statements pgbench runs.
    let seeder = builds.last().expect("two builds").clone();
    let pg_topology =
        topo::topology(PGBENCH, a.base_port + topo::PORTS_PER_TOPOLOGY * builds.len() as u16, &seeder.binary)?;
    let free = infra::Sizing::derive(&pg_topology).num_init_children.saturating_sub(4) as usize;
    if c > free {
        bail!("--concurrency {c}: pgbench's pgpool has {free} children free for it (infra's sizing)");
    }

    // Every topology up (each one stopped when its `Up` is dropped: on an error, a panic, Ctrl-C).
    let mut ups: Vec<Up> = Vec::new();
    for (k, b) in builds.iter().enumerate() {
        check_cancelled()?;
        let t = topo::topology(&b.name, a.base_port + topo::PORTS_PER_TOPOLOGY * k as u16, &b.binary)?;
        eprintln!("writes: starting {} ({})", b.name, b.binary.display());
        ups.push(Up::start(&b.name, t, dir.join(&b.name), a.products).await?);
    }
    check_cancelled()?;
    eprintln!("writes: starting {PGBENCH}'s topology (seeded by {})", seeder.name);
    let mut pg = Up::start(PGBENCH, pg_topology, dir.join(PGBENCH), a.products).await?;
    let emails: Vec<String> = (0..a.repeats).flat_map(|r| (0..c).map(move |k| pgbench::email(r, k))).collect();
    pg.sign_up(&emails).await?;
    pg.stop_web()?;
    let endpoint = pg.pgpool_endpoint()?;

    let mut pipelined = true;
    let script_path = |pipelined: bool| dir.join(if pipelined { "pgbench.sql" } else { "pgbench-plain.sql" });
    for p in [true, false] {
        std::fs::write(script_path(p), pgbench::script(a.products, p))?;
    }
    let mut sides: Vec<Side> = builds
        .iter()
        .map(|b| Side {
            name: b.name.clone(),
            kind: SideKind::Web { binary: b.binary.display().to_string() },
            run_dir: dir.join(&b.name).display().to_string(),
        })
        .collect();
    sides.push(Side {
        name: PGBENCH.into(),
        kind: SideKind::Pgbench { script: script_path(true).display().to_string(), pipelined: true },
        run_dir: dir.join(PGBENCH).display().to_string(),
    });
    let mut run = WritesRun {
        command,
        started: started.format("%Y-%m-%d %H:%M").to_string(),
        machine: Machine::describe(),
        settings: Settings {
            concurrency: c,
            warmup_secs: a.warmup_secs,
            secs: a.secs,
            repeats: a.repeats,
            products: a.products,
            seed: a.seed,
        },
        sides,
        turns: vec![],
        medians: vec![],
        ratios: vec![],
        consistency: vec![],
        notes: vec![format!(
            "pgbench's side was seeded by build {}; pgbench looks its user and the products up once per client \
             (`\\gset`), builds each add's id in SQL from a counter and writes quantity 1 \
             (bench/src/writes/pgbench.rs); the HTTP add also reads the user's token hash and the product \
             before the write, pgbench does the write only.",
            seeder.name
        )],
    };
    let (warmup, secs) = (Duration::from_secs(a.warmup_secs), Duration::from_secs(a.secs));

    for rep in 0..a.repeats {
        for k in 0..ups.len() {
            check_cancelled()?;
            let up = &ups[k];
            let emails: Vec<String> = (0..c)
                .map(|i| format!("writes-{}-r{rep}-c{i}-{}@example.com", up.name, uuid::Uuid::now_v7().simple()))
                .collect();
            let users = up.sign_up(&emails).await?;
            let others: Vec<&Up> = ups.iter().filter(|u| u.name != up.name).chain([&pg]).collect();
            let groups = topo::groups(up, &others);
            let seed = a.seed.wrapping_mul(131).wrapping_add((rep * 31 + k) as u64);
            let r = http::run(&up.url, &users, Arc::new(up.products.clone()), warmup, secs, &groups, seed).await?;
            let cpu = topo::turn_cpu(&r.cpu, r.window_secs, true);
            let turn = Turn {
                repeat: rep,
                side: up.name.clone(),
                window_secs: r.window_secs,
                adds: r.adds,
                failures: r.failures,
                failure_reasons: r.failure_reasons,
                adds_per_sec: r.adds as f64 / r.window_secs,
                per_add: PerAdd::of(&cpu, r.adds),
                cpu,
            };
            progress(&turn);
            run.turns.push(turn);
            finish(&mut run, &a)?;
        }
        check_cancelled()?;
        let others: Vec<&Up> = ups.iter().collect();
        let groups = topo::groups(&pg, &others);
        let salt = (rep * 2) as u16;
        if a.warmup_secs > 0 || pipelined {
            let w = a.warmup_secs.max(1);
            if let Err(e) = pgbench::run(&endpoint, &script_path(pipelined), c, w, rep, salt).await {
                if !pipelined {
                    return Err(e);
                }
                eprintln!(
                    "writes: pgbench with pipelines failed through pgpool-II, falling back to plain statements: {e:#}"
                );
                run.notes.push(format!(
                    "pgbench's pipelines failed through pgpool-II, so it ran the statements one round trip each: {e:#}"
                ));
                pipelined = false;
                if let Some(SideKind::Pgbench { pipelined: p, script }) = run.sides.last_mut().map(|s| &mut s.kind) {
                    *p = false;
                    *script = script_path(false).display().to_string();
                }
                pgbench::run(&endpoint, &script_path(false), c, w, rep, salt).await?;
            }
        }
        check_cancelled()?;
        let snap_a = cpu::snapshot(&groups);
        let t0 = Instant::now();
        let (out, what) = pgbench::run(&endpoint, &script_path(pipelined), c, a.secs, rep, salt + 1).await?;
        let snap_b = cpu::snapshot(&groups);
        let lifetime = t0.elapsed().as_secs_f64();
        let cpu = topo::turn_cpu(&cpu::between(&snap_a, &snap_b), lifetime, false);
        let mut failure_reasons = std::collections::BTreeMap::new();
        if out.failed > 0 {
            failure_reasons.insert("pgbench failed transactions".to_string(), out.failed);
        }
        let turn = Turn {
            repeat: rep,
            side: PGBENCH.into(),
            window_secs: a.secs as f64,
            adds: out.processed,
            failures: out.failed,
            failure_reasons,
            adds_per_sec: out.tps,
            per_add: PerAdd::of(&cpu, out.processed),
            cpu,
        };
        if rep == 0 {
            run.notes.push(format!("pgbench's command: `{what}`"));
        }
        progress(&turn);
        run.turns.push(turn);
        finish(&mut run, &a)?;
    }

    // The backends of every topology compared row by row, then every topology stopped.
    for up in ups.iter().chain([&pg]) {
        let report = up.check()?;
        eprintln!("writes: {} backends: {report}", up.name);
        run.consistency.push(Consistency {
            side: up.name.clone(),
            identical: report.is_identical(),
            summary: report.to_string(),
        });
    }
    finish(&mut run, &a)?;
    for up in ups.into_iter().chain([pg]) {
        tokio::task::block_in_place(|| up.running.down())?;
    }
    for m in &run.medians {
        eprintln!(
            "writes: {}: {:.0} adds/s, DB CPU {:.3} ms/add, {} failures",
            m.side, m.adds_per_sec, m.per_add.db_ms, m.failures
        );
    }
    for r in &run.ratios {
        eprintln!("writes: {}: {:.2}x", r.what, r.value);
    }
    eprintln!("writes: written {} and {}", a.json.display(), a.markdown.display());
    if let Some(c) = run.consistency.iter().find(|c| !c.identical) {
        bail!("{}'s backends differ after the runs: {}", c.side, c.summary);
    }
    Ok(())
}

fn progress(t: &Turn) {
    eprintln!(
        "writes: repeat {} {}: {:.0} adds/s ({} adds, {} failures), DB CPU {:.3} ms/add, busy cores {}",
        t.repeat + 1,
        t.side,
        t.adds_per_sec,
        t.adds,
        t.failures,
        t.per_add.db_ms,
        t.cpu.machine_busy_cores.map_or("?".into(), |b| format!("{b:.2}"))
    );
}
