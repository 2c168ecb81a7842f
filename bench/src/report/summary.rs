//! `docs/results/<stage>/summary.json`: per configuration and operation, the numbers over all
//! repeats, the GET-product-vs-pgbench ratio, and the targets with whether each was reached.

use crate::load::ops::Op;
use crate::matrix::hosts::HostUse;
use crate::measure::cpu::CpuUse;
use crate::measure::machine::Machine;
use crate::report::results::{ConfigResult, ProductVsPgbench, RunMeta};
use crate::report::stats::{mean, OpStats, OpSummary, Spread};
use serde::{Deserialize, Serialize};

/// The targets of issue #4.
pub const TARGET_PGBENCH_RATIO: f64 = 0.5;
pub const TARGET_OVERHEAD_MS: f64 = 1.0;
pub const TARGET_OVERHEAD_USERS: usize = 16;
pub const TARGET_WEB_RSS_MIB: f64 = 64.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub stage: crate::matrix::Stage,
    pub generated_at: String,
    pub command: String,
    pub machine: Machine,
    /// Where the raw results are (outside git).
    pub raw_results: String,
    pub method: Method,
    pub configurations: Vec<ConfigSummary>,
    pub get_product_vs_pgbench: PgbenchSummary,
    pub targets: Vec<Target>,
    /// On hosts: each host with everything that ran on it over the configurations (each
    /// configuration's own placement is in its `hosts`); absent on loopback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostUse>,
    /// The hosts were network namespaces of this one machine (`[emulate]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hosts_emulated: bool,
    /// How many load clients shared the timed runs and where; absent for one inside the runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_clients: Option<LoadClients>,
    /// Phases that were off because the servers ran on hosts, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases_off: Vec<String>,
}

/// The load clients of the timed runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadClients {
    pub count: usize,
    /// Where they ran ("loopback", or a host's name) and how many there.
    pub on: Vec<ClientsOn>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientsOn {
    pub host: String,
    pub count: usize,
}

impl LoadClients {
    /// From where each client ran, in client order (none: one client inside the runner).
    pub fn of(places: &[String]) -> Option<LoadClients> {
        let mut on: Vec<ClientsOn> = Vec::new();
        for p in places {
            match on.iter_mut().find(|c| &c.host == p) {
                Some(c) => c.count += 1,
                None => on.push(ClientsOn { host: p.clone(), count: 1 }),
            }
        }
        (!places.is_empty()).then_some(LoadClients { count: places.len(), on })
    }

    /// "1 on load1, 1 on load2".
    pub fn where_(&self) -> String {
        self.on.iter().map(|c| format!("{} on {}", c.count, c.host)).collect::<Vec<_>>().join(", ")
    }
}

/// Every host of the configurations with all that ran on it, in order of appearance.
fn hosts_over(configs: &[ConfigResult]) -> Vec<HostUse> {
    let mut all: Vec<HostUse> = Vec::new();
    for u in configs.iter().flat_map(|c| &c.hosts) {
        match all.iter_mut().find(|a| a.name == u.name) {
            Some(a) => {
                for r in &u.ran {
                    if !a.ran.contains(r) {
                        a.ran.push(r.clone());
                    }
                }
            }
            None => all.push(u.clone()),
        }
    }
    all
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub users: usize,
    pub warmup_secs: u64,
    pub secs: u64,
    pub repeats: u32,
    pub think_ms: [u64; 2],
    pub shopper_weight: usize,
    pub merchant_weight: usize,
    pub products: usize,
    pub categories: usize,
    pub timing: String,
    /// Where each load client ran when several shared the users (`[run] load_clients`); empty:
    /// one, inside the runner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_clients: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ConfigSummary {
    pub fn counts(&self) -> crate::matrix::Counts {
        crate::matrix::Counts {
            postgres: self.postgres,
            pgpool: self.pgpool,
            web: self.web,
            nginx: self.nginx,
            redis: self.redis,
            cassandra: self.cassandra,
        }
    }
}

/// Reads or writes of a configuration taken together: the time of the average request of the
/// class (total time over request count), per repeat, then averaged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    pub mean_ms: Option<f64>,
    pub mean_ms_spread: Option<Spread>,
    pub rps: f64,
    pub floor_mean_ms: Option<f64>,
    /// The typical request of the class: its operations' medians weighted by their request
    /// counts, per repeat, then averaged. A stall of a few requests moves the mean, not this.
    /// (Absent in summaries written before it was added.)
    #[serde(default)]
    pub typical_ms: Option<f64>,
    #[serde(default)]
    pub typical_ms_spread: Option<Spread>,
}

/// A repeat whose reads or writes mean is this many times its configuration's middle repeat's
/// is called stalled: other work on the machine or a pause, not the topology.
pub const STALL_FACTOR: f64 = 2.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    pub label: String,
    pub postgres: usize,
    pub pgpool: usize,
    pub web: usize,
    pub nginx: usize,
    /// Redis instances (1 master + replicas) and Cassandra nodes, in the stages that use them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redis: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cassandra: usize,
    pub repeats: usize,
    /// Repeats (numbered from 1) whose reads or writes mean was over `STALL_FACTOR` times the
    /// middle repeat's; judged with 3 or more repeats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalled_repeats: Vec<u32>,
    pub operations: Vec<OpSummary>,
    pub reads: ClassSummary,
    pub writes: ClassSummary,
    pub requests: u64,
    pub failures: u64,
    /// Requests-weighted mean of (full-stack mean - floor mean) over the operations with a floor.
    pub http_overhead_ms: Option<f64>,
    /// Peak VmRSS of each web instance over all repeats and the product GETs, MiB.
    pub web_rss_peak_mib: Vec<f64>,
    /// Goose's own request and failure counts (its window starts after user launch, so they
    /// include the warm-up), a cross-check of ours.
    pub goose_requests: u64,
    pub goose_failures: u64,
    /// Users that moved to another nginx after a failed connection.
    pub host_moves: u64,
    /// Cores each component used during the timed runs (mean over repeats).
    pub cpu: Option<CpuUse>,
    pub get_product_vs_pgbench: Option<ProductVsPgbench>,
    /// `redis-benchmark -t get` on a Redis node at the product GETs' concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_benchmark: Option<crate::floor::redisbench::RedisBenchRun>,
    pub errors: Vec<String>,
    /// Per operation, raw and coordinated-omission-corrected percentiles from the repeats'
    /// merged histograms (absent for runs recorded before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrected: Vec<crate::latency::CorrectedOp>,
    /// The stepped-rate open-loop run's capacity (absent when not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::summary::CapacitySummary>,
    /// On hosts: what ran on each in this configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostUse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgbenchSummary {
    pub target_ratio: f64,
    pub concurrency: Option<usize>,
    pub min_ratio: Option<f64>,
    pub max_ratio: Option<f64>,
    pub per_configuration: Vec<PgbenchEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgbenchEntry {
    pub label: String,
    pub clients: usize,
    pub http_rps: f64,
    pub pgbench_tps: f64,
    pub ratio: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub target: String,
    pub measured: String,
    /// `None`: not evaluated in this run (the reason is in `measured`).
    pub reached: Option<bool>,
}

/// Whether `o` is an operation of the class: reads (`reads`) or writes (`!reads`).
fn in_class(o: &OpStats, reads: bool) -> bool {
    Op::from_name(&o.op).is_some_and(|op| op.is_read() == reads)
}

/// The time of the average request among `ops` of one run (`None` without successes).
fn class_mean(ops: &[OpStats], reads: bool) -> Option<f64> {
    let chosen = ops.iter().filter(|o| in_class(o, reads));
    let (total, n) = chosen.fold((0.0, 0u64), |(t, n), o| (t + o.mean_ms.unwrap_or(0.0) * o.ok as f64, n + o.ok));
    (n > 0).then(|| total / n as f64)
}

/// The request-weighted mean of the medians of `ops`' operations of one run.
fn class_typical(ops: &[OpStats], reads: bool) -> Option<f64> {
    let chosen = ops.iter().filter(|o| in_class(o, reads));
    let (total, n) = chosen.fold((0.0, 0u64), |(t, n), o| match o.p50_ms {
        Some(p50) => (t + p50 * o.ok as f64, n + o.ok),
        None => (t, n),
    });
    (n > 0).then(|| total / n as f64)
}

/// Repeats whose reads or writes mean is over `STALL_FACTOR` times the middle repeat's.
fn stalled_repeats(c: &ConfigResult) -> Vec<u32> {
    let mut out = Vec::new();
    for reads in [true, false] {
        let means: Vec<(u32, f64)> =
            c.repeats.iter().filter_map(|r| Some((r.repeat, class_mean(&r.ops, reads)?))).collect();
        if means.len() < 3 {
            continue;
        }
        let mut sorted: Vec<f64> = means.iter().map(|m| m.1).collect();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted[sorted.len() / 2];
        out.extend(means.iter().filter(|m| m.1 > STALL_FACTOR * middle).map(|m| m.0));
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn class_summary(c: &ConfigResult, reads: bool) -> ClassSummary {
    let means: Vec<f64> = c.repeats.iter().filter_map(|r| class_mean(&r.ops, reads)).collect();
    let typicals: Vec<f64> = c.repeats.iter().filter_map(|r| class_typical(&r.ops, reads)).collect();
    let floors: Vec<f64> = c.floor.iter().filter_map(|f| class_mean(&f.ops, reads)).collect();
    let rps: Vec<f64> =
        c.repeats.iter().map(|r| r.ops.iter().filter(|o| in_class(o, reads)).map(|o| o.rps).sum()).collect();
    ClassSummary {
        mean_ms: mean(&means),
        mean_ms_spread: Spread::of(&means),
        rps: mean(&rps).unwrap_or(0.0),
        floor_mean_ms: mean(&floors),
        typical_ms: mean(&typicals),
        typical_ms_spread: Spread::of(&typicals),
    }
}

/// Component by component, the mean of several measurements.
pub fn mean_cpu<'a>(uses: impl Iterator<Item = &'a CpuUse>) -> Option<CpuUse> {
    let uses: Vec<&CpuUse> = uses.collect();
    if uses.is_empty() {
        return None;
    }
    let mut cores = std::collections::BTreeMap::new();
    for u in &uses {
        for (g, c) in &u.cores {
            *cores.entry(g.clone()).or_insert(0.0) += c / uses.len() as f64;
        }
    }
    Some(CpuUse { cores, machine_busy: mean(&uses.iter().filter_map(|u| u.machine_busy).collect::<Vec<_>>()) })
}

fn config_summary(c: &ConfigResult) -> ConfigSummary {
    let operations: Vec<OpSummary> = Op::ALL
        .iter()
        .map(|op| {
            let pick = |ops: &'_ [OpStats]| ops.iter().find(|o| o.op == op.name()).cloned();
            let http: Vec<OpStats> = c.repeats.iter().filter_map(|r| pick(&r.ops)).collect();
            let floor: Vec<OpStats> = c.floor.iter().filter_map(|f| pick(&f.ops)).collect();
            OpSummary::of(op.name(), &http.iter().collect::<Vec<_>>(), &floor.iter().collect::<Vec<_>>())
        })
        .filter(|s| s.requests > 0)
        .collect();
    let (weighted, weight) = operations.iter().fold((0.0, 0u64), |(t, n), o| match o.overhead_ms() {
        Some(d) => (t + d * (o.requests - o.failures) as f64, n + o.requests - o.failures),
        None => (t, n),
    });
    // Every sampled run: the timed repeats and the product GETs at full speed.
    let samples: Vec<&Vec<u64>> =
        c.repeats.iter().map(|r| &r.web_rss_kib).chain(c.product_vs_pgbench.iter().map(|p| &p.web_rss_kib)).collect();
    let instances = samples.iter().map(|s| s.len()).max().unwrap_or(0);
    let web_rss_peak_mib = (0..instances)
        .map(|i| samples.iter().filter_map(|s| s.get(i)).copied().max().unwrap_or(0) as f64 / 1024.0)
        .collect();
    ConfigSummary {
        label: c.counts.label(),
        postgres: c.counts.postgres,
        pgpool: c.counts.pgpool,
        web: c.counts.web,
        nginx: c.counts.nginx,
        redis: c.counts.redis,
        cassandra: c.counts.cassandra,
        repeats: c.repeats.len(),
        stalled_repeats: stalled_repeats(c),
        reads: class_summary(c, true),
        writes: class_summary(c, false),
        requests: operations.iter().map(|o| o.requests).sum(),
        failures: operations.iter().map(|o| o.failures).sum(),
        operations,
        http_overhead_ms: (weight > 0).then(|| weighted / weight as f64),
        web_rss_peak_mib,
        goose_requests: c.repeats.iter().map(|r| r.goose.requests).sum(),
        goose_failures: c.repeats.iter().map(|r| r.goose.failures).sum(),
        host_moves: c.repeats.iter().map(|r| r.host_moves).sum(),
        cpu: mean_cpu(c.repeats.iter().filter_map(|r| r.cpu.as_ref())),
        get_product_vs_pgbench: c.product_vs_pgbench.clone(),
        redis_benchmark: c.redis_benchmark.clone(),
        errors: c.errors.clone(),
        corrected: crate::capacity::summary::corrected_ops(c),
        capacity: c.capacity.as_ref().map(crate::capacity::summary::CapacitySummary::of),
        hosts: c.hosts.clone(),
    }
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.2}{unit}"))
}

fn targets(meta: &RunMeta, configs: &[ConfigSummary], pg: &PgbenchSummary) -> Vec<Target> {
    let mut out = Vec::new();

    let per: Vec<String> = pg.per_configuration.iter().map(|e| format!("{}: {:.2}", e.label, e.ratio)).collect();
    out.push(Target {
        id: "get_product_vs_pgbench".into(),
        target: format!(
            "GET /products/{{product_id}} throughput >= {:.0}% of pgbench -S through the same pgpool at the same concurrency",
            TARGET_PGBENCH_RATIO * 100.0
        ),
        measured: if per.is_empty() {
            "not measured".into()
        } else {
            format!("ratio {} (lowest {})", per.join(", "), fmt_opt(pg.min_ratio, ""))
        },
        reached: pg.min_ratio.map(|r| r >= TARGET_PGBENCH_RATIO),
    });

    let users = meta.matrix.run.users;
    let overheads: Vec<(String, f64)> =
        configs.iter().filter_map(|c| Some((c.label.clone(), c.http_overhead_ms?))).collect();
    let worst = overheads.iter().map(|(_, v)| *v).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    out.push(Target {
        id: "http_overhead_ms".into(),
        target: format!(
            "HTTP-stack overhead (full-stack mean - storage-floor mean, per request of the mix) <= {TARGET_OVERHEAD_MS} ms at {TARGET_OVERHEAD_USERS} users"
        ),
        measured: if overheads.is_empty() {
            "no storage floor in this run".into()
        } else {
            let list: Vec<String> = overheads.iter().map(|(l, v)| format!("{l}: {v:.2} ms")).collect();
            format!("{} at {users} users", list.join(", "))
        },
        reached: if users == TARGET_OVERHEAD_USERS { worst.map(|w| w <= TARGET_OVERHEAD_MS) } else { None },
    });

    let rss: Vec<f64> = configs.iter().flat_map(|c| c.web_rss_peak_mib.iter().copied()).collect();
    let peak = rss.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    out.push(Target {
        id: "web_rss_mib".into(),
        target: format!("each web instance under {TARGET_WEB_RSS_MIB} MiB resident (VmRSS) under load"),
        measured: match peak {
            Some(p) if p > 0.0 => format!("highest peak {p:.1} MiB (over {} web instances in all)", rss.len()),
            _ => "not sampled".into(),
        },
        reached: peak.filter(|p| *p > 0.0).map(|p| p < TARGET_WEB_RSS_MIB),
    });

    let failures: u64 = configs.iter().map(|c| c.failures).sum::<u64>()
        + configs.iter().filter_map(|c| c.get_product_vs_pgbench.as_ref()).map(|p| p.http_failures).sum::<u64>();
    let requests: u64 = configs.iter().map(|c| c.requests).sum();
    out.push(Target {
        id: "failed_requests".into(),
        target: "0 failed requests in a run without faults".into(),
        measured: format!("{failures} failed of {requests} requests"),
        reached: (requests > 0).then_some(failures == 0),
    });
    out
}

pub fn build(meta: &RunMeta, configs: &[ConfigResult], raw_dir: &str) -> Summary {
    let configurations: Vec<ConfigSummary> = configs.iter().map(config_summary).collect();
    let per_configuration: Vec<PgbenchEntry> = configurations
        .iter()
        .filter_map(|c| {
            let p = c.get_product_vs_pgbench.as_ref()?;
            Some(PgbenchEntry {
                label: c.label.clone(),
                clients: p.clients,
                http_rps: p.http_rps,
                pgbench_tps: p.pgbench.tps,
                ratio: p.ratio,
            })
        })
        .collect();
    let ratios: Vec<f64> = per_configuration.iter().map(|e| e.ratio).collect();
    let get_product_vs_pgbench = PgbenchSummary {
        target_ratio: TARGET_PGBENCH_RATIO,
        concurrency: per_configuration.first().map(|e| e.clients),
        min_ratio: ratios.iter().copied().reduce(f64::min),
        max_ratio: ratios.iter().copied().reduce(f64::max),
        per_configuration,
    };
    let m = &meta.matrix;
    let places: Vec<String> = configs
        .iter()
        .flat_map(|c| &c.repeats)
        .map(|r| r.load_clients.clone())
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let hosts = hosts_over(configs);
    let phases_off = match hosts.is_empty() {
        true => vec![],
        false => crate::matrix::hosts::OFF_ON_HOSTS
            .iter()
            .map(|o| format!("{} ({} = false): {}", o.phase, o.setting, o.reason))
            .collect(),
    };
    Summary {
        stage: meta.stage,
        generated_at: crate::report::results::now_rfc3339(),
        command: meta.command.clone(),
        machine: meta.machine.clone(),
        raw_results: raw_dir.to_string(),
        method: Method {
            users: m.run.users,
            warmup_secs: m.run.warmup_secs,
            secs: m.run.secs,
            repeats: m.run.repeats,
            think_ms: m.load.think_ms,
            shopper_weight: m.load.shopper_weight,
            merchant_weight: m.load.merchant_weight,
            products: m.catalogue.products,
            categories: m.catalogue.categories,
            timing: "request sent until the whole response body is read, successful requests only; \
                     failures counted apart; per-repeat values averaged over repeats"
                .into(),
            load_clients: places.clone(),
        },
        hosts_emulated: !hosts.is_empty() && m.emulate.is_some(),
        hosts,
        load_clients: LoadClients::of(&places),
        phases_off,
        targets: targets(meta, &configurations, &get_product_vs_pgbench),
        configurations,
        get_product_vs_pgbench,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::floor::pgbench::PgbenchRun;
    use crate::load::GooseTotals;
    use crate::matrix::{Counts, MatrixFile};
    use crate::measure::machine::Machine;
    use crate::report::results::{FloorRun, RepeatResult};
    use std::collections::BTreeMap;

    pub fn op(name: &str, micros: &[u32], failures: u64) -> OpStats {
        let reasons = if failures > 0 { BTreeMap::from([("status 503".into(), failures)]) } else { BTreeMap::new() };
        OpStats::from_samples(name, micros.to_vec(), reasons, 1.0)
    }

    pub fn meta() -> RunMeta {
        let matrix = MatrixFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("matrix/quick.toml"))
            .expect("quick.toml");
        RunMeta {
            stage: crate::matrix::Stage::Pg,
            command: "shopbench-bench matrix --file bench/matrix/quick.toml".into(),
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                memory_gib: 24.0,
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                kernel: "6.1".into(),
            },
            matrix,
            matrix_file: "bench/matrix/quick.toml".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            git_commit: None,
        }
    }

    /// A configuration whose product GETs take `get_ms` and sign-ups `post_ms` in both repeats.
    pub fn config(index: usize, counts: Counts, get_ms: u32, post_ms: u32) -> ConfigResult {
        let repeat = |r: u32, jitter: u32| RepeatResult {
            repeat: r,
            users: 16,
            window_secs: 1.0,
            ops: vec![
                op("GET /products/{product_id}", &[get_ms * 1000 + jitter; 10], 0),
                op("POST /users", &[post_ms * 1000 + jitter; 2], 0),
                op("POST /products", &[], 0),
            ],
            goose: GooseTotals { requests: 14, failures: 0, duration_secs: 2, users: 16 },
            host_moves: 0,
            web_rss_kib: vec![20_000 + jitter as u64, 30_000],
            cpu: Some(CpuUse {
                cores: [("web".to_string(), 0.5 + f64::from(jitter) / 1000.0), ("postgres".to_string(), 0.8)].into(),
                machine_busy: Some(1.9),
            }),
            latency: vec![],
            load_clients: vec![],
        };
        ConfigResult {
            index,
            counts,
            sizing: serde_json::Value::Null,
            seeded_products: 500,
            repeats: vec![repeat(1, 0), repeat(2, 200)],
            floor: vec![FloorRun {
                repeat: 1,
                tasks: 16,
                window_secs: 1.0,
                pool_size: 8,
                endpoints: vec!["127.0.0.1:19820".into()],
                settings: vec![],
                ops: vec![op("GET /products/{product_id}", &[500; 5], 0), op("POST /users", &[1000; 5], 0)],
                cpu: None,
            }],
            product_vs_pgbench: Some(ProductVsPgbench {
                clients: 8,
                secs: 5,
                http_rps: 3000.0,
                http_mean_ms: Some(2.6),
                http_failures: 0,
                pgbench: PgbenchRun {
                    endpoint: "127.0.0.1:19820".into(),
                    clients: 8,
                    threads: 2,
                    secs: 5,
                    tps: 10000.0,
                    command: "pgbench -S".into(),
                },
                ratio: 0.3,
                http_cpu: None,
                web_rss_kib: vec![25_000, 40_000],
                pgbench_cpu: None,
            }),
            redis_benchmark: None,
            capacity: None,
            errors: vec![],
            started_at: "2026-01-01T00:00:00Z".into(),
            secs_taken: 60.0,
            hosts: vec![],
        }
    }

    pub fn two_configs() -> Vec<ConfigResult> {
        vec![
            config(0, Counts { postgres: 1, pgpool: 1, web: 1, nginx: 1, ..Counts::default() }, 2, 4),
            config(1, Counts { postgres: 2, pgpool: 2, web: 2, nginx: 2, ..Counts::default() }, 1, 8),
        ]
    }

    #[test]
    fn summary_json_has_the_promised_shape() {
        let s = build(&meta(), &two_configs(), "run/bench/pg/x");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["stage"], "pg");
        assert_eq!(v["machine"]["cores"], 2);
        assert!(v["command"].as_str().unwrap().contains("matrix --file"));
        let c = &v["configurations"][0];
        for k in ["postgres", "pgpool", "web", "nginx"] {
            assert_eq!(c[k], 1, "{k}");
        }
        let get = c["operations"].as_array().unwrap().iter().find(|o| o["op"] == "GET /products/{product_id}").unwrap();
        for k in ["mean_ms", "p50_ms", "p95_ms", "p99_ms", "rps", "requests", "failures", "floor_mean_ms"] {
            assert!(!get[k].is_null(), "{k} missing in {get}");
        }
        assert!((get["mean_ms"].as_f64().unwrap() - 2.1).abs() < 1e-9, "mean of 2.0 and 2.2");
        assert_eq!(get["floor_mean_ms"], 0.5);
        assert_eq!(get["requests"], 20);
        let ops: Vec<&str> = c["operations"].as_array().unwrap().iter().map(|o| o["op"].as_str().unwrap()).collect();
        assert!(!ops.contains(&"POST /products"), "operations that never ran are left out: {ops:?}");
        assert_eq!(v["get_product_vs_pgbench"]["per_configuration"][1]["ratio"], 0.3);
        assert_eq!(v["get_product_vs_pgbench"]["concurrency"], 8);
    }

    #[test]
    fn classes_and_overhead_are_request_weighted() {
        let s = build(&meta(), &two_configs(), "x");
        let c = &s.configurations[0];
        // Repeat 1: reads 2.0 ms; repeat 2: 2.2 ms.
        assert!((c.reads.mean_ms.unwrap() - 2.1).abs() < 1e-9);
        assert!((c.writes.mean_ms.unwrap() - 4.1).abs() < 1e-9);
        assert_eq!(c.reads.floor_mean_ms, Some(0.5));
        // GET: 2.1 - 0.5 = 1.6 over 20 requests; POST /users: 4.1 - 1.0 = 3.1 over 4.
        assert!((c.http_overhead_ms.unwrap() - (1.6 * 20.0 + 3.1 * 4.0) / 24.0).abs() < 1e-9);
        assert_eq!(c.web_rss_peak_mib.len(), 2);
        assert!((c.web_rss_peak_mib[0] - 25_000.0 / 1024.0).abs() < 1e-9, "the product GETs' peak is higher");
        assert!((c.web_rss_peak_mib[1] - 40_000.0 / 1024.0).abs() < 1e-9);
        let cpu = c.cpu.as_ref().unwrap();
        assert!((cpu.cores["web"] - 0.6).abs() < 1e-9, "mean of 0.5 and 0.7: {cpu:?}");
        assert_eq!(cpu.machine_busy, Some(1.9));
    }

    #[test]
    fn a_stall_moves_the_mean_not_the_typical_request_and_is_named() {
        let mut c = config(0, Counts { postgres: 1, pgpool: 1, web: 1, nginx: 1, ..Counts::default() }, 2, 4);
        let mut third = c.repeats[0].clone();
        third.repeat = 3;
        // 9 product GETs at 2 ms and one stalled for 200 ms: the mean goes to 21.8 ms.
        let mut micros = vec![2000; 9];
        micros.push(200_000);
        third.ops[0] = op("GET /products/{product_id}", &micros, 0);
        c.repeats.push(third);
        let s = build(&meta(), &[c.clone()], "x");
        let reads = &s.configurations[0].reads;
        assert!(reads.mean_ms.unwrap() > 8.0, "{reads:?}");
        assert!((reads.typical_ms.unwrap() - (2.0 + 2.2 + 2.0) / 3.0).abs() < 1e-9, "{reads:?}");
        assert_eq!(reads.typical_ms_spread.unwrap().n, 3);
        assert_eq!(s.configurations[0].stalled_repeats, vec![3]);

        // Without the stall nothing is named; with two repeats nothing can be.
        c.repeats[2].ops[0] = op("GET /products/{product_id}", &[2100; 10], 0);
        assert!(build(&meta(), &[c.clone()], "x").configurations[0].stalled_repeats.is_empty());
        c.repeats[2].ops[0] = op("GET /products/{product_id}", &micros, 0);
        c.repeats.remove(0);
        assert!(build(&meta(), &[c], "x").configurations[0].stalled_repeats.is_empty());
    }

    #[test]
    fn summaries_written_before_the_typical_request_still_load() {
        let s = build(&meta(), &two_configs(), "x");
        let mut v = serde_json::to_value(&s).unwrap();
        for c in v["configurations"].as_array_mut().unwrap() {
            for class in ["reads", "writes"] {
                let o = c[class].as_object_mut().unwrap();
                o.remove("typical_ms");
                o.remove("typical_ms_spread");
            }
        }
        let old: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(old.configurations[0].reads.typical_ms, None);
        assert_eq!(old.configurations[0].reads.mean_ms, s.configurations[0].reads.mean_ms);
    }

    #[test]
    fn targets_say_what_was_reached() {
        let s = build(&meta(), &two_configs(), "x");
        let t = |id: &str| s.targets.iter().find(|t| t.id == id).unwrap().clone();
        assert_eq!(t("get_product_vs_pgbench").reached, Some(false), "0.3 < 0.5");
        assert_eq!(t("http_overhead_ms").reached, Some(false));
        assert_eq!(t("web_rss_mib").reached, Some(true));
        assert_eq!(t("failed_requests").reached, Some(true));

        let mut failing = two_configs();
        failing[1].repeats[0].ops[0] = op("GET /products/{product_id}", &[1000], 3);
        let s = build(&meta(), &failing, "x");
        let f = s.targets.iter().find(|t| t.id == "failed_requests").unwrap();
        assert_eq!(f.reached, Some(false));
        assert!(f.measured.starts_with("3 failed"), "{}", f.measured);
    }

    #[test]
    fn overhead_target_is_only_judged_at_16_users() {
        let mut m = meta();
        m.matrix.run.users = 4;
        let s = build(&m, &two_configs(), "x");
        let t = s.targets.iter().find(|t| t.id == "http_overhead_ms").unwrap();
        assert_eq!(t.reached, None);
        assert!(t.measured.contains("at 4 users"));
    }
}
