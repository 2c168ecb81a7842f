//! `shopbench-bench faults` (issue #7): the shopaholic load against a full topology while one
//! instance of each kind in turn is SIGKILLed and restarted, with what the clients saw and the
//! data checks after each fault.
//!
//! Per fault (bench/faults/<stage>.toml says which and how long), a fresh Goose run of the same
//! plans as the matrix, with every request also kept on a [`timeline::Timeline`]:
//! steady load, SIGKILL of the instance (`infra::Running::kill`), load on the survivors, the
//! restart (`infra::Running::restart`: a backend is rejoined), load again. Then, with no write
//! in flight: the consistency check of the PostgreSQL backends (a difference is reported, then
//! repaired by a rejoin so the next fault starts clean), every acknowledged order looked up on
//! every backend directly, and every cart the clients know read from the stage's cart store.
//! The rows go to docs/results/faults.json (rows of other stages kept) and faults.md.
//!
//! Issue 11 added faults beyond a clean SIGKILL ([`FaultKind`]: a hang of a whole process tree,
//! a backend's connection slots exhausted, a kill during a rejoin, pgpool's main process alone,
//! both pgpools at once; see [`inject`]) and the race workload ([`crate::race`]) beside the
//! shopaholic load, whose lost cart changes and doubled order lines join the data checks, and
//! each row's `error_window_s` (first to last client-visible error of either client).
//!
//! Issue 13 added network partitions: a file with `[hosts] emulate = N` runs its topology on N
//! emulated hosts the runner makes (and tears down, also on an error), and its `cut` faults
//! drop the traffic between instances on different hosts for a while, then heal
//! ([`schedule`]); the same load and data checks, read over the hosts' network.

pub mod analysis;
pub mod audit;
pub mod file;
pub mod inject;
mod one;
pub mod pictures;
mod schedule;
pub mod stage;
pub mod table;
pub mod timeline;

pub use file::{FaultKind, FaultSpec, FaultsFile, Target};
pub use table::FaultRow;

use crate::cancel;
use crate::load::api;
use crate::load::plan::{categories, seed_catalogue};
use crate::matrix::progress::fmt_secs;
use crate::measure::machine::Machine;
use anyhow::{bail, Context, Result};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::{Kind, Running, Topology};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    pub file: FaultsFile,
    /// Where faults.json and faults.md go (docs/results).
    pub out: PathBuf,
    /// The topology's run dir (run/faults/<stage>).
    pub run_dir: PathBuf,
    /// The command line, for the report.
    pub command: String,
}

type Shared = Arc<Mutex<Running>>;

/// Runs infra work (blocking) on the running topology without stalling the load.
async fn with_running<T: Send + 'static>(
    running: &Shared,
    f: impl FnOnce(&mut Running) -> Result<T> + Send + 'static,
) -> Result<T> {
    let running = running.clone();
    tokio::task::spawn_blocking(move || f(&mut running.lock().unwrap_or_else(|e| e.into_inner()))).await?
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The commit the binaries were presumably built from (crate::commit).
fn git_commit() -> Option<String> {
    crate::commit::git_commit(&infra::repo_root())
}

/// Every process up and every pgpool seeing every backend up: the state each fault starts from.
fn healthy(running: &Running) -> Result<()> {
    let status = running.status();
    let mut wrong: Vec<String> =
        status.processes.iter().filter(|p| !p.up).map(|p| format!("{} {} is down", p.kind, p.index)).collect();
    for (i, view) in &status.pgpools {
        match view {
            Ok(nodes) => wrong.extend(
                nodes
                    .iter()
                    .filter(|n| n.status != "up")
                    .map(|n| format!("pgpool {i} sees backend {} {}", n.node_id, n.status)),
            ),
            Err(e) => wrong.push(format!("pgpool {i} does not answer: {e}")),
        }
    }
    if wrong.is_empty() {
        // A replica resyncing after a failover settles within seconds: give it that long.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            wrong = stage::settled(running);
            if wrong.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    if !wrong.is_empty() {
        bail!("the topology is not whole: {}", wrong.join("; "));
    }
    Ok(())
}

/// Which instance a target means now.
fn resolve(target: &Target, running: &Running) -> Result<(Kind, usize)> {
    match target {
        Target::Instance { kind, index } => Ok((*kind, *index)),
        Target::Role { kind, role } => Ok((*kind, stage::instance_with_role(running, *kind, role)?)),
    }
}

/// The error logs of `kind` (nginx's error.log, the web instances' log), marked at how far they
/// were written: what the servers logged during a fault is the evidence behind the errors clients
/// got. Read through infra (over SSH for another host's), as on a real host.
async fn server_logs(running: &Shared, kind: Kind) -> Result<Vec<infra::LogMark>> {
    let file = (kind == Kind::Nginx).then_some("logs/error.log");
    with_running(running, move |r| Ok(r.log_marks(kind, file))).await
}

/// What the marked logs got since, copied into `into` (the run dir's log-copies/fault-NN/).
async fn logs_since(running: &Shared, marks: Vec<infra::LogMark>, into: PathBuf) -> Result<Vec<PathBuf>> {
    with_running(running, move |r| Ok(r.logs_since(&marks, &into))).await
}

/// What the web instances said when they answered 503: their "store unavailable" warnings in
/// `logs`, counted by cause ("127.0.0.1:17220: no connection within 1s": 1).
fn web_messages(logs: &[PathBuf]) -> Vec<(String, u64)> {
    count_lines(logs, |line| {
        let plain: String = strip_ansi(line);
        let (_, cause) = plain.split_once("store unavailable")?;
        let cause = cause.trim().trim_start_matches("error=");
        // The driver's error chain that follows is left out: the cause is counted by what failed.
        let cause = cause.split_once(" error.sources=").map_or(cause, |(what, _)| what).trim_matches('"');
        Some(cause.to_string())
    })
}

/// Terminal colour codes out (the app colours its log lines).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The lines of `logs` (what the servers wrote during a fault), each turned into a message by
/// `message` (`None`: not counted), counted, most frequent first.
fn count_lines(logs: &[PathBuf], message: impl Fn(&str) -> Option<String>) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for path in logs {
        let Ok(bytes) = std::fs::read(path) else { continue };
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Some(m) = message(line) {
                *counts.entry(m).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v
}

/// The messages nginx logged in `logs`, counted ("no live upstreams while connecting to
/// upstream": 683), most frequent first.
fn nginx_messages(logs: &[PathBuf]) -> Vec<(String, u64)> {
    count_lines(logs, |line| {
        // "2026/11/26 09:08:41 [error] 2323#2323: *1234 no live upstreams while ..., client: ..."
        let (_, rest) = line.split_once("] ")?;
        let rest = rest.split_once(": ").map_or(rest, |(_, m)| m);
        let rest = if rest.starts_with('*') { rest.split_once(' ').map_or(rest, |(_, m)| m) } else { rest };
        Some(rest.split(", client:").next().unwrap_or(rest).trim().to_string())
    })
}

fn summary(r: &FaultRow) -> String {
    let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
    let reasons: Vec<String> =
        r.error_reasons.iter().map(|e| format!("{} x {} ({})", e.count, e.reason, e.op)).collect();
    let race = r.race.as_ref().map_or(String::new(), |x| {
        format!(
            "; race {} rounds, {} failed requests, {} lost, {} doubled",
            x.rounds, x.failed, x.lost_cart_changes, x.doubled_order_lines
        )
    });
    format!(
        "{} errors{} over {:.1} s; recovery {}, restart took {} then {}; {} acked orders, {} lost, {} duplicated; \
         carts {} checked, {} lost, {} contradicted{race}; {}",
        r.client_errors,
        if reasons.is_empty() { String::new() } else { format!(" [{}]", reasons.join(", ")) },
        r.error_window_s.unwrap_or(0.0),
        s(r.recovery_s),
        s(r.restart_s),
        s(r.restart_recovery_s),
        r.acked_orders,
        r.lost_orders,
        r.duplicated_orders,
        r.carts_checked,
        r.lost_cart_changes,
        r.cart_contradictions,
        r.consistency
    )
}

/// How this stage's rows were made (the machine, the command, the topology, the schedule); the
/// method common to every stage is [`table::METHOD`].
fn setup(f: &FaultsFile, topology: &Topology, command: &str) -> String {
    let counts: Vec<String> =
        Kind::ALL.iter().filter(|k| topology.count(**k) > 0).map(|k| format!("{} {k}", topology.count(*k))).collect();
    let r = &f.run;
    let held: Vec<String> = f
        .faults
        .iter()
        .filter(|s| s.secs.is_some())
        .map(|s| format!("{:?} {} {} s", s.kind, s.target, r.down(s)).to_lowercase())
        .collect();
    let held = if held.is_empty() { String::new() } else { format!(" (the fault's own length: {})", held.join(", ")) };
    let on = if topology.is_remote() {
        format!(
            "on {} emulated hosts (network namespaces with their own sshd, driven over SSH; {}), the load and the \
             checks from this machine",
            topology.hosts.len(),
            placement(topology)
        )
    } else {
        "on loopback".to_string()
    };
    let race = if f.race.users == 0 {
        String::new()
    } else {
        format!(" Beside the load, {} race user(s) on {} products.", f.race.users, f.race.products)
    };
    format!(
        "ran as `{command}` on {}. Topology: {} {on}. Per fault: {} users (think {}-{} ms), {} s warm-up, \
         {} s steady, the fault, {} s on the survivors{held}, the restart (its budget: {}), then {}+ s more.{race}",
        Machine::describe().one_line(),
        counts.join(", "),
        r.users,
        f.load.think_ms[0],
        f.load.think_ms[1],
        r.warmup_secs,
        r.before_secs,
        r.down_secs,
        budgets(f),
        r.after_secs,
    )
}

/// The faults' restart budgets, e.g. "8 s for postgres 1 and postgres main; 4 s for the others".
fn budgets(f: &FaultsFile) -> String {
    let mut by: Vec<(u64, Vec<&str>)> = Vec::new();
    for spec in &f.faults {
        match by.iter_mut().find(|(b, _)| *b == spec.restart_budget_secs) {
            Some((_, targets)) => targets.push(&spec.target),
            None => by.push((spec.restart_budget_secs, vec![&spec.target])),
        }
    }
    by.sort_by_key(|(_, targets)| targets.len());
    let Some((common, _)) = by.pop() else { return String::new() };
    let mut parts: Vec<String> = by.iter().map(|(b, t)| format!("{b} s for {}", t.join(" and "))).collect();
    parts.push(if parts.is_empty() { format!("{common} s") } else { format!("{common} s for the others") });
    parts.join("; ")
}

/// Starts the topology, runs every fault, writes faults.json and faults.md, stops everything.
/// Fails (after writing what was measured) when an acknowledged write was lost, an order
/// duplicated or a restart failed.
pub async fn run(opts: Options) -> Result<Vec<FaultRow>> {
    let f = &opts.file;
    let topology = f.topology()?;
    let started = Instant::now();
    eprintln!(
        "faults: stage {}: {} fault(s), about {} of load and checks after the start; topology in {}",
        f.stage,
        f.faults.len(),
        fmt_secs(f.planned_secs() as f64),
        crate::report::results::display_path(&opts.run_dir)
    );
    let run_dir = opts.run_dir.clone();
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    // Declared before the topology, so dropped after it: its servers stop before their hosts go.
    let (hosts, topology) = place(f, topology, &run_dir).await?;
    let setup = setup(f, &topology, &opts.command);
    let running = tokio::task::spawn_blocking(move || topology.up(run_dir)).await??;
    if running.topology().is_remote() {
        // The data checks' own psql sessions log in to the backends as infra's do on the hosts
        // (this machine is among the topology's clients). Set before any load task runs.
        std::env::set_var("PGPASSFILE", running.run_dir().join(infra::secrets::PGPASS_FILE));
    }
    let nginx = running.nginx_urls();
    let admin = running.admin_token();
    anyhow::ensure!(!nginx.is_empty(), "the faults topology needs nginx (and web) instances");
    let running: Shared = Arc::new(Mutex::new(running));

    let client = api::client()?;
    api::wait_ready(&client, &nginx, Duration::from_secs(60)).await?;
    ensure_stage_stores(&client, &nginx[0], f.stage).await?;
    wait_scraped(&running).await?;
    let specs = seed_catalogue(f.catalogue.products, &categories(f.catalogue.categories));
    let t = Instant::now();
    let ids = api::seed_products(&client, &nginx, &admin, specs, f.catalogue.parallel).await.context("seeding")?;
    eprintln!("faults: seeded {} products in {:.1} s", ids.len(), t.elapsed().as_secs_f64());

    let stack = one::Stack { nginx: &nginx, admin: &admin, products: &ids };
    let (mut rows, series, stopped) = run_each(f, &running, &stack).await?;
    let running = Arc::try_unwrap(running).map_err(|_| anyhow::anyhow!("the topology is still shared"))?;
    let running = running.into_inner().unwrap_or_else(|e| e.into_inner());
    tokio::task::spawn_blocking(move || running.down()).await??;
    if let Some(hosts) = hosts {
        let dir = emulated_dir(&opts.run_dir);
        tokio::task::spawn_blocking(move || hosts.down()).await??;
        // Their data (the backends' directories); the logs were fetched into the run dir.
        let _ = std::fs::remove_dir_all(&dir);
    }

    for row in &mut rows {
        row.setup = setup.clone();
    }
    let on_hosts = f.hosts.is_some();
    pictures::save(&opts.out, f.stage, on_hosts, &mut rows, &series)?;
    table::write(&opts.out, f.stage, on_hosts, rows.clone())?;
    eprintln!(
        "faults: done in {}; {} and {} written",
        fmt_secs(started.elapsed().as_secs_f64()),
        crate::report::results::display_path(&opts.out.join("faults.json")),
        crate::report::results::display_path(&opts.out.join("faults.md"))
    );
    judge(&rows, stopped)?;
    Ok(rows)
}

/// Where the emulated hosts of a run live: beside its run dir (which `up` clears of anything
/// that is not its own).
fn emulated_dir(run_dir: &Path) -> PathBuf {
    let name = run_dir.file_name().map_or("faults".into(), |n| n.to_string_lossy().into_owned());
    run_dir.with_file_name(format!("{name}-emulated"))
}

/// With `[hosts] emulate = N`: N emulated hosts (torn down when the value goes, also on an
/// error) and the topology placed on them, this machine among its clients (the load, the data
/// checks); every cut of the file resolved on it, so a cut within one host fails here.
async fn place(f: &FaultsFile, topology: Topology, run_dir: &Path) -> Result<(Option<EmulatedHosts>, Topology)> {
    let Some(h) = &f.hosts else { return Ok((None, topology)) };
    let (dir, n) = (emulated_dir(run_dir), h.emulate);
    let t = Instant::now();
    let hosts = tokio::task::spawn_blocking(move || EmulatedHosts::create(&dir, n)).await??;
    let machines: Vec<SshHost> =
        hosts.hosts().into_iter().map(|h| SshHost { dir: h.dir.join("shopbench"), ..h }).collect();
    let topology = topology.with_hosts(machines, vec![hosts.control_address()])?;
    for spec in &f.faults {
        for c in &spec.cut {
            c.resolve(&topology).with_context(|| format!("cut {c} of fault {:?}", spec.target))?;
        }
    }
    eprintln!("faults: {n} emulated hosts made in {:.1} s", t.elapsed().as_secs_f64());
    Ok((Some(hosts), topology))
}

/// Where each host's instances are, e.g. "host0: postgres 0, pgpool 0; host1: ...".
fn placement(t: &Topology) -> String {
    let hosts: Vec<String> = t
        .used_machines()
        .iter()
        .map(|h| {
            let on: Vec<String> = Kind::ALL
                .iter()
                .flat_map(|k| t.instances_on(*k, Some(h.name.as_str())).into_iter().map(move |i| format!("{k} {i}")))
                .collect();
            format!("{}: {}", h.name, on.join(", "))
        })
        .collect();
    hosts.join("; ")
}

/// A web binary of another stage would measure other stores under this stage's name: refuses
/// the run when the stores the instance behind `url` is ready on are not `stage`'s.
async fn ensure_stage_stores(client: &reqwest::Client, url: &str, stage: crate::matrix::Stage) -> Result<()> {
    let stores = api::ready_stores(client, url).await?;
    let want = crate::matrix::stage_stores(stage);
    if stores != want {
        bail!(
            "the web instances run on the stores [{}], stage {} on [{}]: the web binary is not a build of this stage",
            stores.join(", "),
            stage,
            want.join(", ")
        );
    }
    Ok(())
}

/// Runs the faults one after another while the topology is healthy before each; returns their
/// rows and, when one found it unhealthy, why the rest were not run (noted on the last row).
/// The faults' series over time (one per row) come back beside the rows.
async fn run_each(
    f: &FaultsFile,
    running: &Shared,
    stack: &one::Stack<'_>,
) -> Result<(Vec<FaultRow>, Vec<Option<crate::observe::faults::FaultSeries>>, Option<String>)> {
    let mut rows: Vec<FaultRow> = Vec::new();
    let mut series = Vec::new();
    let mut stopped = None;
    for n in 0..f.faults.len() {
        if cancel::is_cancelled() {
            bail!("interrupted");
        }
        if let Err(e) = with_running(running, |r| healthy(r)).await {
            stopped = Some(format!("before fault {}: {e:#}", n + 1));
            break;
        }
        let (row, observed) = one::run_fault(f, n, running, stack).await?;
        eprintln!("faults: [{}/{}] {}: {}", n + 1, f.faults.len(), row.target, summary(&row));
        rows.push(row);
        series.push(observed);
    }
    if let Some(why) = &stopped {
        eprintln!("faults: stopped: {why}");
        if let Some(last) = rows.last_mut() {
            last.problems.push(format!("the remaining faults were not run: {why}"));
        }
    }
    Ok((rows, series, stopped))
}

/// Waits (up to 30 s) until the run's Prometheus, if any, has scraped every target: a fault's
/// pictures start from a full view instead of a ramp of targets coming up.
async fn wait_scraped(running: &Shared) -> Result<()> {
    let Some(api) = running.lock().unwrap_or_else(|e| e.into_inner()).prometheus_api() else {
        return Ok(());
    };
    let missing =
        tokio::task::spawn_blocking(move || crate::observe::wait_until_scraped(&api, Duration::from_secs(30))).await?;
    if !missing.is_empty() {
        eprintln!("faults: Prometheus has not scraped {} yet; going on", missing.join(", "));
    }
    Ok(())
}

/// The run's verdict once its rows are written: an error when not every fault ran, or when one
/// lost or duplicated acknowledged data or its restart failed.
fn judge(rows: &[FaultRow], stopped: Option<String>) -> Result<()> {
    let bad: Vec<&FaultRow> = rows
        .iter()
        .filter(|r| {
            r.lost_orders
                + r.duplicated_orders
                + r.lost_cart_changes
                + r.lost_product_writes
                + r.doubled_order_lines
                + r.cart_contradictions
                > 0
                || r.restart_s.is_none()
        })
        .collect();
    if let Some(why) = stopped {
        bail!("not every fault was run: {why}");
    }
    if !bad.is_empty() {
        let names: Vec<&str> = bad.iter().map(|r| r.target.as_str()).collect();
        bail!("acknowledged data lost or duplicated, or a restart failed, in: {} (see faults.md)", names.join(", "));
    }
    Ok(())
}

/// The command: reads the file, runs, prints where the results are.
pub async fn command(file: &Path, out: Option<PathBuf>, run_dir: Option<PathBuf>, command: String) -> Result<()> {
    let file = FaultsFile::load(file)?;
    let root = infra::repo_root();
    let out = out.unwrap_or_else(|| root.join("docs/results"));
    let name = match file.hosts {
        Some(_) => format!("{}-hosts", file.stage.name()),
        None => file.stage.name().to_string(),
    };
    let run_dir = run_dir.unwrap_or_else(|| root.join("run/faults").join(name));
    cancel::install_ctrl_c();
    run(Options { file, out, run_dir, command }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (The logs are copies of what was written from the fault's start on: infra::LogMark.)
    #[test]
    fn nginx_and_web_messages_are_counted_by_cause() {
        let dir = std::env::temp_dir().join(format!("shopbench-nginx-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("error.log");
        let new = "2026/11/26 09:08:41 [error] 2323#2323: *1234 no live upstreams while connecting to upstream, \
                   client: 127.0.0.1, server: , request: \"GET / HTTP/1.1\"\n\
                   2026/11/26 09:08:42 [error] 2323#2323: *1240 no live upstreams while connecting to upstream, \
                   client: 127.0.0.1\n\
                   2026/11/26 09:08:43 [warn] 2323#2323: *1 upstream server temporarily disabled while reading \
                   response header from upstream, client: 127.0.0.1\n";
        std::fs::write(&log, new).unwrap();
        let counted = nginx_messages(std::slice::from_ref(&log));
        let web =
            "\u{1b}[2m2026-11-26T09:29:23.972663Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m app::error: store unavailable \
                   \u{1b}[3merror\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:17220: no connection within 1s\nINFO other\n\
                   WARN app::error: store unavailable error=127.0.0.1:17220: no connection within 1s \
                   \u{1b}[3merror\u{1b}[0m\u{1b}[3m.sources\u{1b}[0m\u{1b}[2m=\u{1b}[0m[timed out]\n";
        std::fs::write(&log, web).unwrap();
        let web = web_messages(&[log]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(web, [("127.0.0.1:17220: no connection within 1s".to_string(), 2)]);
        assert_eq!(
            counted,
            [
                ("no live upstreams while connecting to upstream".to_string(), 2),
                ("upstream server temporarily disabled while reading response header from upstream".to_string(), 1)
            ]
        );
    }
}
