//! The matrix runner: for each configuration a fresh topology (infra), a seeded catalogue, the
//! timed Goose runs with their warm-ups (repeated), the product-GET throughput run, then with the
//! web tier stopped the storage floor and `pgbench -S`; raw results are saved after every phase.
//!
//! The web tier is stopped before the floor and pgbench because each pgpool child serves one
//! client session at a time and the web instances' idle pooled connections hold children; with
//! them gone the floor gets as many connections as the web tier had and pgbench its clients.

use crate::cancel;
use crate::clients::launch::ClientPlace;
use crate::floor::pgbench;
use crate::floor::redisbench;
use crate::floor::{self, FloorSpec};
use crate::load::api;
use crate::load::plan::{seed_catalogue, JourneyConfig};
use crate::load::{self, LoadSpec, Mix};
use crate::matrix::hosts::{self, Machines};
use crate::matrix::progress::{fmt_secs, Progress};
use crate::matrix::{stage_features, stage_stores, web_binary, Counts, MatrixFile, BUILT_STAGE};
use crate::measure::machine::{Machine, RssSampler};
use crate::report::results::{self, ConfigResult, FloorRun, ProductVsPgbench, RepeatResult, RunMeta};
use crate::report::stats::OpStats;
use anyhow::{bail, Context, Result};
use infra::Kind;
use settings::WebSettings;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn check_cancelled() -> Result<()> {
    if cancel::is_cancelled() {
        bail!("interrupted");
    }
    Ok(())
}

pub struct MatrixOptions {
    pub file: PathBuf,
    pub run_dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// Only these configurations (1-based positions in the file).
    pub only: Vec<usize>,
    pub command: String,
}

/// The infra topology of one configuration as the file gives it (`[emulate]` hosts stand in with
/// documentation addresses): for checks of the file; [`topology_on`] runs it.
pub fn topology_for(m: &MatrixFile, c: Counts) -> Result<infra::Topology> {
    topology_on(m, c, &Machines::stand_ins(m)?)
}

/// The infra topology of one configuration on `machines`: the file's `[topology]` with its counts
/// (0 for the stores the configuration does not use), the stage's web binary unless the file names
/// one, and its Prometheus with the exporters when `[run] observe` (crate::observe).
pub fn topology_on(m: &MatrixFile, c: Counts, machines: &Machines) -> Result<infra::Topology> {
    let (text, prometheus) = crate::observe::topology_text(m.run.observe, &m.topology)?;
    let overrides = infra::Overrides {
        postgres: Some(c.postgres),
        pgpool: Some(c.pgpool),
        web: Some(c.web),
        nginx: Some(c.nginx),
        // Sentinels come with Redis (their count is the file's); no Redis, no Sentinels.
        redis: Some(c.redis),
        cassandra: Some(c.cassandra),
        prometheus: Some(prometheus),
        default_web_binary: Some(web_binary(m.stage)),
        ..infra::Overrides::default()
    };
    let t = infra::Topology::parse_with(&text, &overrides).context("[topology] of the matrix file")?;
    machines.place(t).context("[topology] on the matrix's hosts")
}

/// Refuses a matrix this bench cannot run before anything starts: the stage's web binary must
/// exist, and the storage floor needs a bench built with the stage's feature (it builds the
/// stores with the app's own wiring, compiled per stage).
pub fn check_binaries(m: &MatrixFile, file: &Path) -> Result<()> {
    let first = m.configs.first().copied().unwrap_or_default();
    let binary = topology_for(m, first)?.web.binary_or_default();
    // Absolute once the file was read (its own paths) or a default (beside this program).
    let path = std::path::absolute(&binary)?;
    let file = results::display_path(file);
    if !path.is_file() {
        bail!(
            "the web binary {} of stage {} is missing: `scripts/run --file {file}` builds it \
             (cargo build --release -p app{} && cp target/release/shopbench {})",
            binary.display(),
            m.stage,
            stage_features(m.stage),
            binary.display()
        );
    }
    if m.run.floor && m.stage != BUILT_STAGE {
        bail!(
            "this shopbench-bench was built for stage {BUILT_STAGE}, but the storage floor of stage {} needs the \
             app's wiring of that stage: `scripts/run --file {file}` builds it (cargo build --release -p bench{}), \
             or set [run] floor = false",
            m.stage,
            stage_features(m.stage)
        );
    }
    Ok(())
}

/// Runs the matrix, writes the report; returns the results folder.
pub async fn run_matrix(opts: MatrixOptions) -> Result<PathBuf> {
    let m = MatrixFile::load(&opts.file)?;
    check_binaries(&m, &opts.file)?;
    let root = infra::repo_root();
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let run_dir = opts.run_dir.clone().unwrap_or_else(|| root.join("run/bench").join(m.stage.name()).join(stamp));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let run_dir = run_dir.canonicalize()?;
    let out = opts.out.clone().unwrap_or_else(|| root.join("docs/results").join(m.stage.name()));
    crate::report::chart::register_font()?; // fail now rather than after the runs

    let mut meta = RunMeta {
        stage: m.stage,
        command: opts.command.clone(),
        machine: Machine::describe(),
        matrix: m.clone(),
        matrix_file: results::display_path(&opts.file),
        started_at: results::now_rfc3339(),
        finished_at: None,
        git_commit: crate::commit::git_commit(&root),
    };
    results::save_meta(&run_dir, &meta)?;
    let machines = Machines::make(&m, &run_dir.join("hosts"))?;
    let chosen: Vec<(usize, Counts)> = m
        .configs
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| opts.only.is_empty() || opts.only.contains(&(i + 1)))
        .collect();
    eprintln!(
        "bench: {} configuration(s) x {} repeat(s) of {} s (+{} s warm-up), {} users; raw results in {}",
        chosen.len(),
        m.run.repeats,
        m.run.secs,
        m.run.warmup_secs,
        m.run.users,
        results::display_path(&run_dir)
    );
    cancel::install_ctrl_c();
    let started = Instant::now();
    let progress = Progress::new(chosen.len(), m.planned_secs_per_config());
    for (n, (index, counts)) in chosen.iter().enumerate() {
        if cancel::is_cancelled() {
            break;
        }
        progress.start_config(n, &counts.long());
        run_and_save(&m, &machines, (n, *index), *counts, &run_dir, &progress).await?;
        progress.end_config();
    }
    meta.finished_at = Some(results::now_rfc3339());
    results::save_meta(&run_dir, &meta)?;
    // The last topology's data (hundreds of MB) is only worth keeping when something failed.
    // Emulated hosts end here with every process in them; their dirs hold the data, binaries and
    // logs of the last configuration (its logs were fetched into topology/remote/ by `down`).
    let emulated = machines.emulated();
    machines.down()?;
    let (_, saved) = results::load_run(&run_dir)?;
    if !cancel::is_cancelled() && saved.iter().all(|c| c.errors.is_empty()) {
        let _ = std::fs::remove_dir_all(run_dir.join("topology"));
        if emulated {
            let _ = std::fs::remove_dir_all(run_dir.join("hosts"));
        }
    }
    let how = if cancel::is_cancelled() { "interrupted after" } else { "done in" };
    eprintln!(
        "bench: matrix {how} {}; raw results in {}",
        fmt_secs(started.elapsed().as_secs_f64()),
        results::display_path(&run_dir)
    );
    check_cancelled()?;
    let (meta, configs) = results::load_run(&run_dir)?;
    crate::report::write(&meta, &configs, &run_dir, &out)?;
    Ok(out)
}

/// Runs configuration `index` (the `n`th chosen) and saves its results, also when it failed
/// (then with its servers' logs); only a failure to save is an error.
async fn run_and_save(
    m: &MatrixFile,
    machines: &Machines,
    (n, index): (usize, usize),
    counts: Counts,
    run_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let mut res = ConfigResult {
        index,
        counts,
        sizing: serde_json::Value::Null,
        seeded_products: 0,
        repeats: vec![],
        floor: vec![],
        product_vs_pgbench: None,
        redis_benchmark: None,
        capacity: None,
        errors: vec![],
        started_at: results::now_rfc3339(),
        secs_taken: 0.0,
        hosts: vec![],
    };
    let t = Instant::now();
    let mut logs = Vec::new();
    if let Err(e) = run_config(m, machines, &mut res, run_dir, progress, &mut logs).await {
        eprintln!("bench: [config {}] {}: {e:#}", n + 1, counts.label());
        res.errors.push(format!("{e:#}"));
    }
    if !res.errors.is_empty() {
        keep_logs(run_dir, index, &logs);
    }
    res.secs_taken = t.elapsed().as_secs_f64();
    results::save_config(run_dir, &res)
}

/// The components whose CPU use is measured: each kind's instances, and this process (Goose,
/// the floor's tasks, and pgbench, which runs as its child). Servers on machines of their own
/// are not in this machine's /proc: then only the load client.
fn cpu_groups(running: &infra::Running, machines: &Machines) -> Vec<(String, Vec<u32>)> {
    if !machines.local_processes() {
        return vec![("load client".into(), vec![std::process::id()])];
    }
    let mut groups: Vec<(String, Vec<u32>)> = Kind::ALL
        .into_iter()
        .filter(|k| !k.is_observer() && running.topology().count(*k) > 0)
        .map(|k| (k.name().to_string(), running.processes().iter().filter(|p| p.kind == k).map(|p| p.pid).collect()))
        .collect();
    groups.push(("load client".into(), vec![std::process::id()]));
    groups.extend(crate::observe::observer_group(running));
    groups
}

/// Backends that some pgpool no longer uses (detached by a failover), described; each pgpool is
/// asked where it runs (over SSH on hosts).
fn detached_backends(running: &infra::Running) -> Vec<String> {
    running
        .status()
        .pgpools
        .into_iter()
        .flat_map(|(i, view)| match view {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|n| n.status != "up" && n.status != "waiting")
                .map(|n| format!("pgpool {i} sees backend {} ({}:{}) {}", n.node_id, n.host, n.port, n.status))
                .collect(),
            Err(e) => vec![format!("pgpool {i} does not answer: {e}")],
        })
        .collect()
}

/// Fails when a backend was detached during `phase`: from then on the topology has fewer
/// backends than the configuration says, so neither this phase nor the next are its numbers.
fn check_backends(running: &infra::Running, phase: &str) -> Result<()> {
    let gone = tokio::task::block_in_place(|| detached_backends(running));
    if !gone.is_empty() {
        bail!(
            "after {phase}: {}; a failover happened during the run (pgpool's health check under load?), so this \
             phase and the rest of the configuration were not measured",
            gone.join("; ")
        );
    }
    Ok(())
}

fn line(ops: &[OpStats]) -> String {
    let n: u64 = ops.iter().map(|o| o.ok).sum();
    let f: u64 = ops.iter().map(|o| o.failures).sum();
    let class = |reads: bool| {
        let (t, k) = ops
            .iter()
            .filter(|o| crate::load::ops::Op::from_name(&o.op).is_some_and(|op| op.is_read() == reads))
            .fold((0.0, 0u64), |(t, k), o| (t + o.mean_ms.unwrap_or(0.0) * o.ok as f64, k + o.ok));
        if k == 0 {
            "–".to_string()
        } else {
            format!("{:.2} ms", t / k as f64)
        }
    };
    format!("{n} ok, {f} failed; mean read {}, mean write {}", class(true), class(false))
}

/// Copies the servers' logs of a configuration that had errors beside its results (the next
/// configuration's topology reuses the directory).
fn keep_logs(run_dir: &Path, index: usize, logs: &[(String, PathBuf)]) {
    let dir = run_dir.join(format!("logs-config-{:02}", index + 1));
    for (name, path) in logs {
        if std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(path, dir.join(format!("{name}.log")))).is_ok() {
            continue;
        }
        eprintln!("bench: could not keep {}", path.display());
    }
    eprintln!("bench: server logs of the failed configuration kept in {}", results::display_path(&dir));
}

/// The floor's settings: the stores' part of what web instance 0 was given (as infra recorded it
/// in its run state: no listen address, no admin token), with the PostgreSQL pools sized for the
/// whole web tier of `web` instances. The floor then reaches the same stores the same way, with as
/// many connections as the tier had. Sorted, as `FloorRun::settings` records them.
pub fn store_settings(web0: &WebSettings, web: usize) -> Vec<(String, String)> {
    let mut tier = web0.clone();
    tier.postgres.pool_size *= web as u32;
    let mut env = tier.store_env();
    env.sort();
    env
}

/// One configuration, phase after phase; raw results are saved after each.
async fn run_config(
    m: &MatrixFile,
    machines: &Machines,
    res: &mut ConfigResult,
    run_dir: &Path,
    progress: &Progress,
    logs: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let mut run = ConfigRun::start(m, machines, res, run_dir, progress, logs).await?;
    let products = run.seed(res).await?;
    let compare = run.init_pgbench(res).await;
    for repeat in 1..=m.run.repeats {
        run.repeat(res, repeat).await?;
    }
    let clients = m.compare.clients.min(run.running.sizing().num_init_children as usize).max(1);
    // The HTTP half of GET product vs pgbench, while the web tier still runs.
    let product_reads = match compare {
        true => Some(run.product_reads(clients, products).await?),
        false => None,
    };
    run.capacity(res).await?;
    // The floor runs on the web tier's own store settings, read before the tier stops.
    let floor_env = match m.run.floor {
        true => Some(store_settings(
            run.running.web_settings(0).context("infra recorded no settings of web 0")?,
            res.counts.web,
        )),
        false => None,
    };
    // Only the floor and pgbench need the web tier gone (never on hosts: hosts::OFF_ON_HOSTS).
    if floor_env.is_some() || product_reads.is_some() {
        run.stop_web_tier(res.counts)?;
    }
    if let Some(env) = floor_env {
        run.floor(res, env).await?;
    } // The store pools close there, with the last handle on them: pgbench gets the pgpool children.
    if let Some(reads) = product_reads {
        run.pgbench_select(res, clients, reads).await?;
    }
    if m.compare.enabled && res.counts.redis > 0 {
        run.redis_benchmark(res, clients).await?;
    }
    progress.step("stopping the topology");
    tokio::task::block_in_place(|| run.running.down())?;
    Ok(())
}

/// What the HTTP half of GET product vs pgbench measured: the GETs, the CPU they took and the
/// web instances' memory.
type ProductReads = (OpStats, Option<crate::measure::cpu::CpuUse>, Vec<u64>);

/// A configuration's running topology and what each phase of its run needs from it.
struct ConfigRun<'a> {
    m: &'a MatrixFile,
    machines: &'a Machines,
    run_dir: &'a Path,
    progress: &'a Progress,
    running: infra::Running,
    client: reqwest::Client,
    nginx: Vec<String>,
    pgpools: Vec<String>,
    admin: String,
    journey: Arc<JourneyConfig>,
    /// The processes whose CPU time is measured (nginx and web leave with the web tier).
    groups: Vec<(String, Vec<u32>)>,
}

impl<'a> ConfigRun<'a> {
    /// Brings the configuration's topology up and checks that the web instances are a build of
    /// the matrix's stage.
    async fn start(
        m: &'a MatrixFile,
        machines: &'a Machines,
        res: &mut ConfigResult,
        run_dir: &'a Path,
        progress: &'a Progress,
        logs: &mut Vec<(String, PathBuf)>,
    ) -> Result<ConfigRun<'a>> {
        let counts = res.counts;
        let topology = topology_on(m, counts, machines)?;
        let clients: Vec<Option<&str>> = (0..m.run.load_clients).map(|k| hosts::client_host(m, k)).collect();
        res.hosts = machines.placement(&topology, &clients);
        let topo_dir = run_dir.join("topology");
        progress.step(&format!("starting {} (infra)", counts.long()));
        let running = tokio::task::spawn_blocking(move || topology.up(topo_dir)).await??;
        // Read after `down`: a host's logs are then the copies it fetched.
        logs.extend(running.processes().iter().map(|p| (format!("{}{}", p.kind, p.index), running.log_here(p))));
        res.sizing = serde_json::to_value(running.sizing())?;
        let nginx = running.nginx_urls();
        let client = api::client()?;
        api::wait_ready(&client, &nginx, Duration::from_secs(60)).await?;
        let stores = api::ready_stores(&client, &nginx[0]).await?;
        let want = stage_stores(m.stage);
        if stores != want {
            bail!(
                "the web instances run on the stores [{}], stage {} on [{}]: {} is not a build of this stage \
                 (cargo build --release -p app{})",
                stores.join(", "),
                m.stage,
                want.join(", "),
                running.topology().web.binary_or_default().display(),
                stage_features(m.stage)
            );
        }
        check_cancelled()?;
        Ok(ConfigRun {
            m,
            machines,
            run_dir,
            progress,
            pgpools: running.pgpool_endpoints(),
            admin: running.admin_token(),
            journey: Arc::new(m.load.journey(m.catalogue.categories)),
            groups: cpu_groups(&running, machines),
            running,
            client,
            nginx,
        })
    }

    /// The web instances' pids, where this machine can read their memory.
    fn web_pids(&self) -> Vec<u32> {
        if !self.machines.local_processes() {
            return vec![];
        }
        self.running.processes().iter().filter(|p| p.kind == Kind::Web).map(|p| p.pid).collect()
    }

    /// Seeds the catalogue through the API; returns the product ids.
    async fn seed(&self, res: &mut ConfigResult) -> Result<Vec<uuid::Uuid>> {
        let cat = &self.m.catalogue;
        let t = Instant::now();
        let specs = seed_catalogue(cat.products, &crate::load::plan::categories(cat.categories));
        let products =
            api::seed_products(&self.client, &self.nginx, &self.admin, specs, cat.parallel).await.context("seeding")?;
        res.seeded_products = products.len();
        self.progress.step(&format!("seeded {} products in {:.1} s", products.len(), t.elapsed().as_secs_f64()));
        results::save_config(self.run_dir, res)?;
        Ok(products)
    }

    /// `pgbench -i` when the comparison is wanted; whether it can run. The comparison with
    /// pgbench is one number among many: if pgbench cannot run, say so and measure the rest.
    async fn init_pgbench(&self, res: &mut ConfigResult) -> bool {
        if !self.m.compare.enabled {
            return false;
        }
        self.progress.step("pgbench -i (scratch database through pgpool)");
        if let Err(e) = pgbench::init(&self.pgpools[0]).await {
            self.progress.step(&format!("pgbench -i failed, no comparison in this configuration: {e:#}"));
            res.errors.push(format!("pgbench -i: {e:#}"));
            return false;
        }
        true
    }

    /// One timed Goose run of the shop mix, with its warm-up.
    async fn repeat(&self, res: &mut ConfigResult, repeat: u32) -> Result<()> {
        let (m, r) = (self.m, &self.m.run);
        check_cancelled()?;
        let spec = LoadSpec {
            hosts: self.nginx.clone(),
            users: r.users,
            warmup: Duration::from_secs(r.warmup_secs),
            secs: Duration::from_secs(r.secs),
            think: m.load.think(),
            merchant_think: m.load.merchant_think(),
            mix: Mix::Shop { shopper_weight: m.load.shopper_weight, merchant_weight: m.load.merchant_weight },
            journey: self.journey.clone(),
            admin_token: self.admin.clone(),
            goose_report: Some(self.run_dir.join(format!("goose-config-{:02}-repeat-{repeat}.json", res.index + 1))),
            seed: r.seed.wrapping_add(u64::from(repeat)),
            request_timeout_secs: r.request_timeout_secs,
            cpu_groups: self.groups.clone(),
        };
        let phase = format!("repeat {repeat}/{}", r.repeats);
        let sampler = RssSampler::start(self.web_pids(), Duration::from_millis(500));
        let watch = crate::observe::matrix::Watch::start(&self.running, &self.groups);
        let (out, load_clients) = match (r.load_clients, r.client_hosts.is_empty()) {
            (1, true) => (load::run(&spec, Some(self.progress.ticker(phase.clone(), 5))).await, vec![]),
            (n, _) => self.many_clients(&spec, n, res.index, &phase, repeat).await,
        };
        let rss = sampler.finish();
        let out = out?;
        if let Some(watch) = watch {
            watch.finish(self.run_dir, res.index, repeat, out.window)?;
        }
        self.progress.load_finished((2 + r.warmup_secs + r.secs) as f64);
        self.progress.step(&format!("{phase}: {}", line(&out.ops)));
        res.repeats.push(RepeatResult {
            repeat,
            users: r.users,
            window_secs: out.window_secs,
            ops: out.ops,
            goose: out.goose,
            host_moves: out.host_moves,
            web_rss_kib: rss.iter().map(|(_, kib)| *kib).collect(),
            cpu: out.cpu,
            latency: out.latency,
            load_clients,
        });
        if let Err(e) = check_backends(&self.running, &phase) {
            res.repeats.pop();
            return Err(e);
        }
        results::save_config(self.run_dir, res)
    }

    /// The repeat's load as `n` load-client processes (crate::clients), on this machine or on
    /// `[run] client_hosts` over SSH, merged; where they ran.
    async fn many_clients(
        &self,
        spec: &LoadSpec,
        n: usize,
        index: usize,
        phase: &str,
        repeat: u32,
    ) -> (Result<load::LoadResult>, Vec<String>) {
        let places: Vec<ClientPlace> = (0..n)
            .map(|k| match hosts::client_host(self.m, k).and_then(|h| self.machines.named(h)) {
                Some(h) => ClientPlace::Remote(h.clone()),
                None => ClientPlace::Local,
            })
            .collect();
        let dir = self.run_dir.join(format!("clients-config-{:02}-repeat-{repeat}", index + 1));
        let names: Vec<String> = places.iter().map(ClientPlace::describe).collect();
        self.progress.step(&format!("{phase}: {n} load clients on {}", names.join(", ")));
        let run = match std::env::current_exe() {
            Ok(exe) => crate::clients::launch::run_clients(spec, &places, &exe, &dir).await,
            Err(e) => Err(e.into()),
        };
        match run {
            Ok(c) => {
                self.progress.step(&format!("{phase}: windows started within {:.1} ms", c.skew_secs * 1000.0));
                (Ok(c.merged), c.places)
            }
            Err(e) => (Err(e), vec![]),
        }
    }

    /// Product GETs only, at `clients` users without think time.
    async fn product_reads(&self, clients: usize, products: Vec<uuid::Uuid>) -> Result<ProductReads> {
        let (c, r) = (&self.m.compare, &self.m.run);
        check_cancelled()?;
        let spec = LoadSpec {
            hosts: self.nginx.clone(),
            users: clients,
            warmup: Duration::from_secs(2),
            secs: Duration::from_secs(c.secs),
            think: (Duration::ZERO, Duration::ZERO),
            merchant_think: (Duration::ZERO, Duration::ZERO),
            mix: Mix::ProductReads { products: Arc::new(products) },
            journey: self.journey.clone(),
            admin_token: self.admin.clone(),
            goose_report: None,
            seed: r.seed,
            request_timeout_secs: r.request_timeout_secs,
            cpu_groups: self.groups.clone(),
        };
        let sampler = RssSampler::start(self.web_pids(), Duration::from_millis(500));
        let out = load::run(&spec, Some(self.progress.ticker(format!("GET product at c={clients}"), 5))).await;
        let rss: Vec<u64> = sampler.finish().into_iter().map(|(_, kib)| kib).collect();
        let out = out?;
        self.progress.load_finished((4 + c.secs) as f64);
        let get =
            out.ops.into_iter().find(|o| o.op == crate::load::ops::Op::GetProduct.name()).context("no product GETs")?;
        self.progress.step(&format!("GET product at c={clients}: {:.0} req/s, {} failed", get.rps, get.failures));
        check_backends(&self.running, "the product GETs")?;
        Ok((get, out.cpu, rss))
    }

    /// The stepped-rate open-loop run (`crate::capacity`), while the web tier is up.
    async fn capacity(&self, res: &mut ConfigResult) -> Result<()> {
        let target = crate::capacity::Target {
            nginx: &self.nginx,
            admin: &self.admin,
            journey: self.journey.clone(),
            cpu_groups: self.groups.clone(),
        };
        crate::capacity::run(self.m, &target, res, self.run_dir, self.progress).await?;
        check_backends(&self.running, "the capacity steps")
    }

    /// Web tier off: the floor and pgbench get the pgpool children it held.
    fn stop_web_tier(&mut self, counts: Counts) -> Result<()> {
        self.progress.step("stopping nginx and web instances");
        tokio::task::block_in_place(|| -> Result<()> {
            for i in 0..counts.nginx {
                self.running.stop(Kind::Nginx, i)?;
            }
            for i in 0..counts.web {
                self.running.stop(Kind::Web, i)?;
            }
            Ok(())
        })?;
        self.groups.retain(|(name, _)| name != "nginx" && name != "web");
        Ok(())
    }

    /// The storage floor, repeated like the Goose runs, on the web tier's store settings `env`.
    async fn floor(&self, res: &mut ConfigResult, env: Vec<(String, String)>) -> Result<()> {
        let (m, r) = (self.m, &self.m.run);
        let pool_size = self.running.sizing().app_pool_size * res.counts.web as u32;
        let settings = app::Settings::from_sources(None, Some(env.clone())).context("storage floor: settings")?;
        let wiring = app::wiring::wire(&settings).await.context("storage floor: wiring the stores")?;
        let shop = domain::Shop::new(
            wiring.stores,
            Arc::new(domain::ports::SystemClock),
            &domain::models::ApiToken::from_client(&self.admin),
        );
        let spec = FloorSpec {
            users: r.users,
            warmup: Duration::from_secs(r.warmup_secs.min(5)),
            secs: Duration::from_secs(r.secs),
            think: m.load.think(),
            merchant_think: m.load.merchant_think(),
            shopper_weight: m.load.shopper_weight,
            merchant_weight: m.load.merchant_weight,
            journey: self.journey.clone(),
            admin_token: self.admin.clone(),
            seed: r.seed,
            cpu_groups: self.groups.clone(),
        };
        for repeat in 1..=r.repeats {
            check_cancelled()?;
            let phase = format!("storage floor {repeat}/{}", r.repeats);
            let spec = FloorSpec { seed: r.seed.wrapping_add(u64::from(repeat)), ..spec.clone() };
            let (ops, cpu) = floor::run(shop.clone(), &spec, Some(self.progress.ticker(phase.clone(), 5))).await?;
            self.progress.load_finished((spec.warmup + spec.secs).as_secs_f64());
            self.progress.step(&format!("{phase}: {}", line(&ops)));
            check_backends(&self.running, &phase)?;
            res.floor.push(FloorRun {
                repeat,
                tasks: r.users,
                window_secs: spec.secs.as_secs_f64(),
                pool_size,
                endpoints: self.pgpools.clone(),
                settings: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                ops,
                cpu,
            });
            results::save_config(self.run_dir, res)?;
        }
        Ok(())
    }

    /// `pgbench -S` at the clients of the product GETs, held against them.
    async fn pgbench_select(&self, res: &mut ConfigResult, clients: usize, reads: ProductReads) -> Result<()> {
        let c = &self.m.compare;
        let (get, http_cpu, web_rss_kib) = reads;
        check_cancelled()?;
        self.progress
            .step(&format!("pgbench -S -c {clients} -j {} -T {} through {}", c.threads, c.secs, self.pgpools[0]));
        let before = crate::measure::cpu::snapshot(&self.groups);
        let run = pgbench::select_only(&self.pgpools[0], clients, c.threads, c.secs).await;
        let pgbench_cpu = Some(crate::measure::cpu::between(&before, &crate::measure::cpu::snapshot(&self.groups)));
        self.progress.load_finished(c.secs as f64);
        // A failover ends pgbench's sessions and pgbench then fails: name the cause first.
        let outcome = match check_backends(&self.running, "pgbench -S") {
            Err(failover) => Err(failover),
            Ok(()) => run.context("pgbench -S"),
        };
        match outcome {
            Ok(pg) => {
                let ratio = if pg.tps > 0.0 { get.rps / pg.tps } else { 0.0 };
                self.progress.step(&format!("pgbench -S: {:.0} tps; GET product / pgbench = {ratio:.2}", pg.tps));
                res.product_vs_pgbench = Some(ProductVsPgbench {
                    clients,
                    secs: c.secs,
                    http_rps: get.rps,
                    http_mean_ms: get.mean_ms,
                    http_failures: get.failures,
                    pgbench: pg,
                    ratio,
                    http_cpu,
                    web_rss_kib,
                    pgbench_cpu,
                });
            }
            Err(e) => {
                let e = format!("{e:#}");
                self.progress.step(&e);
                res.errors.push(e);
            }
        }
        results::save_config(self.run_dir, res)
    }

    /// Beside pgbench -S, what one Redis node gives a GET at the same concurrency (a replica,
    /// where the cart reads go); a failure costs only this number.
    async fn redis_benchmark(&self, res: &mut ConfigResult, clients: usize) -> Result<()> {
        let c = &self.m.compare;
        check_cancelled()?;
        let i = usize::from(res.counts.redis > 1);
        let (host, port) = self.running.topology().endpoint(Kind::Redis, i);
        let role = if i == 0 { "master" } else { "replica" };
        self.progress.step(&format!("redis-benchmark -t get -c {clients} on {role} {host}:{port}"));
        match redisbench::get(&format!("{host}:{port}"), role, clients, 40_000 * c.secs.max(1)).await {
            Ok(run) => {
                self.progress.step(&format!("redis-benchmark GET: {:.0} req/s", run.rps));
                res.redis_benchmark = Some(run);
            }
            Err(e) => {
                let e = format!("redis-benchmark: {e:#}");
                self.progress.step(&e);
                res.errors.push(e);
            }
        }
        results::save_config(self.run_dir, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_take_the_configuration_counts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("matrix/quick.toml");
        let m = MatrixFile::load(&path).unwrap();
        let t = topology_for(&m, Counts { postgres: 3, pgpool: 2, web: 2, nginx: 1, ..Counts::default() }).unwrap();
        assert_eq!([Kind::Postgres, Kind::Pgpool, Kind::Web, Kind::Nginx].map(|k| t.count(k)), [3, 2, 2, 1]);
        assert_eq!(t.endpoint(Kind::Nginx, 0), ("127.0.0.1".to_string(), 18300));
        t.check_local().unwrap();
        // Observed by default: Prometheus every second, with an exporter per server.
        assert_eq!(t.count(Kind::Prometheus), 1);
        assert_eq!(t.prometheus.as_ref().unwrap().scrape_interval, "1s");
        assert_eq!(t.count(Kind::PostgresExporter) + t.count(Kind::PgpoolExporter) + t.count(Kind::NginxExporter), 6);
        let off = MatrixFile { run: crate::matrix::RunParams { observe: false, ..m.run.clone() }, ..m.clone() };
        let t = topology_for(&off, Counts { postgres: 1, pgpool: 1, web: 1, nginx: 1, ..Counts::default() }).unwrap();
        assert_eq!(t.count(Kind::Prometheus) + t.count(Kind::PostgresExporter), 0, "off: as before, no Prometheus");
    }
}
