//! The matrix file: which configurations to run and how (see bench/matrix/*.toml).

pub mod hosts;
pub mod progress;
pub mod runner;

use crate::load::plan::{categories, JourneyConfig};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The storage stages (settings::Stage): which stores the shop runs on (the app's build features).
pub use settings::{Stage, Store};

/// The stage this bench binary's storage floor can build: the app's wiring is compiled with the
/// same stage feature (`cargo build -p bench --features stage-redis`).
pub const BUILT_STAGE: Stage = app::STAGE;

/// The web binary of a stage when the file names none: `shopbench-<stage>` beside this program
/// (`scripts/run` builds the app with the stage's feature and copies `target/release/shopbench`
/// there), not in the repository this program was compiled in.
pub fn web_binary(stage: Stage) -> PathBuf {
    infra::beside_program(&format!("shopbench-{stage}"))
}

/// The cargo features that build a stage (none for pg, whose feature is the default).
pub fn stage_features(stage: Stage) -> String {
    match stage {
        Stage::Pg => String::new(),
        Stage::Redis | Stage::Cassandra => format!(" --features {}", stage.feature()),
    }
}

/// The stores a stage's service names in `GET /health/ready` (sorted): a web binary of another
/// stage is caught before it is measured.
pub fn stage_stores(stage: Stage) -> Vec<&'static str> {
    let mut names: Vec<&str> = stage.stores().iter().map(|s| s.name()).collect();
    names.sort_unstable();
    names
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// The storage stage ("pg", "redis" or "cassandra"); it names the web binary
    /// (target/release/shopbench-<stage>) and the results folders: docs/results/<stage>/ and
    /// run/bench/<stage>/.
    pub stage: Stage,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub run: RunParams,
    #[serde(default)]
    pub load: LoadParams,
    #[serde(default)]
    pub catalogue: CatalogueParams,
    #[serde(default)]
    pub compare: CompareParams,
    /// The stepped-rate open-loop run per configuration (on unless `enabled = false`).
    #[serde(default)]
    pub capacity: crate::capacity::model::CapacityParams,
    /// An infra topology (ports, hosts, web binary, admin token); each configuration sets its
    /// counts. Its `[topology.prometheus]` is started only with `[run] observe`.
    pub topology: toml::Table,
    /// Machines the matrix makes on this one for its run (hosts::Emulate), instead of the
    /// topology's `[[topology.hosts]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate: Option<hosts::Emulate>,
    #[serde(rename = "config")]
    pub configs: Vec<Counts>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunParams {
    /// Concurrent Goose users (and floor tasks).
    pub users: usize,
    pub warmup_secs: u64,
    /// The measured window of each repeat.
    pub secs: u64,
    pub repeats: u32,
    /// Run the storage floor (same plans straight through the PostgreSQL adapter).
    pub floor: bool,
    pub request_timeout_secs: u64,
    /// Seeds every simulated person's random choices.
    pub seed: u64,
    /// Start Prometheus (1 s scrapes) and the exporters with each configuration and keep its
    /// measured windows over time for the report (bench/src/observe); needs
    /// `[topology.prometheus] port`. Off: no Prometheus, as before.
    pub observe: bool,
    /// Load-client processes sharing the timed runs' users (crate::clients); 1: the load runs in
    /// this process, as before. Left out of the saved matrix at 1, so older results read the same.
    #[serde(skip_serializing_if = "is_one")]
    pub load_clients: usize,
    /// Hosts of the topology the load clients run on over SSH, client k on `client_hosts[k %
    /// len]`; empty: on this machine.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_hosts: Vec<String>,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Default for RunParams {
    fn default() -> Self {
        RunParams {
            users: 16,
            warmup_secs: 10,
            secs: 60,
            repeats: 3,
            floor: true,
            request_timeout_secs: 10,
            seed: 1,
            observe: true,
            load_clients: 1,
            client_hosts: vec![],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadParams {
    pub shopper_weight: usize,
    pub merchant_weight: usize,
    /// Shopper think time between requests, [min, max] milliseconds.
    pub think_ms: [u64; 2],
    pub merchant_think_ms: [u64; 2],
    pub list_pages: [u32; 2],
    pub views_per_page: [u32; 2],
    pub cart_changes: [u32; 2],
    pub pay_percent: u32,
    pub page_limit: u32,
}

impl Default for LoadParams {
    fn default() -> Self {
        let j = JourneyConfig::default();
        LoadParams {
            shopper_weight: 15,
            merchant_weight: 1,
            think_ms: [20, 80],
            merchant_think_ms: [50, 200],
            list_pages: [j.list_pages.0, j.list_pages.1],
            views_per_page: [j.views_per_page.0, j.views_per_page.1],
            cart_changes: [j.cart_changes.0, j.cart_changes.1],
            pay_percent: j.pay_percent,
            page_limit: j.page_limit,
        }
    }
}

impl LoadParams {
    pub fn journey(&self, categories_count: usize) -> JourneyConfig {
        JourneyConfig {
            categories: categories(categories_count),
            page_limit: self.page_limit,
            list_pages: (self.list_pages[0], self.list_pages[1]),
            views_per_page: (self.views_per_page[0], self.views_per_page[1]),
            cart_changes: (self.cart_changes[0], self.cart_changes[1]),
            pay_percent: self.pay_percent,
            email_tag: "bench".into(),
        }
    }
    pub fn think(&self) -> (Duration, Duration) {
        (Duration::from_millis(self.think_ms[0]), Duration::from_millis(self.think_ms[1]))
    }
    pub fn merchant_think(&self) -> (Duration, Duration) {
        (Duration::from_millis(self.merchant_think_ms[0]), Duration::from_millis(self.merchant_think_ms[1]))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueParams {
    pub products: usize,
    pub categories: usize,
    /// Seeding requests in flight.
    pub parallel: usize,
}

impl Default for CatalogueParams {
    fn default() -> Self {
        CatalogueParams { products: 500, categories: 10, parallel: 8 }
    }
}

/// GET /products/{id} through nginx + app + pgpool against `pgbench -S` through one pgpool, at
/// the same concurrency, in the same topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareParams {
    pub enabled: bool,
    /// Concurrency c: Goose users without think time, and pgbench clients (-c).
    pub clients: usize,
    /// pgbench -j.
    pub threads: usize,
    pub secs: u64,
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams { enabled: true, clients: 8, threads: 2, secs: 10 }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Instance counts of one configuration. `redis` (1 master + replicas) and `cassandra` (nodes)
/// are 0 in the stages that do not use those stores, and then left out of files and labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub postgres: usize,
    pub pgpool: usize,
    pub web: usize,
    pub nginx: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redis: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cassandra: usize,
}

impl Counts {
    /// Short label for charts and tables, e.g. "pg2 pool2 web2 nginx2" or
    /// "pg2 pool2 web2 nginx2 redis3 cas3".
    pub fn label(&self) -> String {
        let mut l = self.base_label();
        if self.redis > 0 {
            l += &format!(" redis{}", self.redis);
        }
        if self.cassandra > 0 {
            l += &format!(" cas{}", self.cassandra);
        }
        l
    }
    fn base_label(&self) -> String {
        format!("pg{} pool{} web{} nginx{}", self.postgres, self.pgpool, self.web, self.nginx)
    }
    pub fn long(&self) -> String {
        let mut l = format!("postgres={} pgpool={} web={} nginx={}", self.postgres, self.pgpool, self.web, self.nginx);
        if self.redis > 0 {
            l += &format!(" redis={}", self.redis);
        }
        if self.cassandra > 0 {
            l += &format!(" cassandra={}", self.cassandra);
        }
        l
    }
    /// The counts every stage has (PostgreSQL, pgpool, web, nginx): configurations of different
    /// stages with the same base are compared with each other.
    pub fn base(&self) -> Counts {
        Counts { redis: 0, cassandra: 0, ..*self }
    }
    /// The total of instances (the largest configuration is the default of a comparison).
    pub fn instances(&self) -> usize {
        self.postgres + self.pgpool + self.web + self.nginx + self.redis + self.cassandra
    }
    /// The one count in which two configurations differ, if exactly one differs.
    pub fn single_difference(&self, other: &Counts) -> Option<(&'static str, usize, usize)> {
        let pairs = [
            ("postgres", self.postgres, other.postgres),
            ("pgpool", self.pgpool, other.pgpool),
            ("web", self.web, other.web),
            ("nginx", self.nginx, other.nginx),
            ("redis", self.redis, other.redis),
            ("cassandra", self.cassandra, other.cassandra),
        ];
        let mut diffs = pairs.into_iter().filter(|(_, a, b)| a != b);
        match (diffs.next(), diffs.next()) {
            (Some(d), None) => Some(d),
            _ => None,
        }
    }
}

impl MatrixFile {
    pub fn parse(text: &str) -> Result<MatrixFile> {
        let m: MatrixFile = toml::from_str(text).context("invalid matrix file")?;
        m.validate()?;
        Ok(m)
    }

    /// Reads the file; the relative paths of its `[topology]` are taken from its directory
    /// (infra::topology::anchor_paths).
    pub fn load(path: &Path) -> Result<MatrixFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = infra::topology::file_dir(path)?;
        let parsed = toml::from_str::<MatrixFile>(&text).context("invalid matrix file").and_then(|mut m| {
            infra::topology::anchor_paths(&mut m.topology, &base);
            m.validate().map(|()| m)
        });
        parsed.with_context(|| format!("in {}", path.display()))
    }

    fn validate(&self) -> Result<()> {
        if self.configs.is_empty() {
            bail!("no [[config]]: nothing to run");
        }
        for c in &self.configs {
            if c.postgres == 0 || c.pgpool == 0 || c.web == 0 || c.nginx == 0 {
                bail!("config {}: every count must be at least 1", c.long());
            }
            // Each stage's stores, no more: a count the stage does not use would start servers
            // nothing talks to.
            for (store, n) in [(Store::Redis, c.redis), (Store::Cassandra, c.cassandra)] {
                let (used, name) = (self.stage.uses(store), store.name());
                if used && n == 0 {
                    bail!("config {}: stage {} needs {name} = 1 or more", c.long(), self.stage);
                }
                if !used && n > 0 {
                    bail!("config {}: stage {} does not use {name}; leave it out", c.long(), self.stage);
                }
            }
        }
        let r = &self.run;
        crate::observe::check_topology(r.observe, &self.topology)?;
        if r.users == 0 || r.secs == 0 || r.repeats == 0 {
            bail!("[run] users, secs and repeats must be at least 1");
        }
        if r.load_clients == 0 || r.load_clients > r.users {
            bail!("[run] load_clients = {} must be between 1 and users = {}", r.load_clients, r.users);
        }
        hosts::validate(self)?;
        if self.load.shopper_weight == 0 {
            bail!("[load] shopper_weight must be at least 1");
        }
        for (name, [lo, hi]) in [("think_ms", self.load.think_ms), ("merchant_think_ms", self.load.merchant_think_ms)] {
            if lo > hi {
                bail!("[load] {name}: min {lo} above max {hi}");
            }
        }
        if self.catalogue.categories == 0 {
            bail!("[catalogue] categories must be at least 1");
        }
        if self.compare.enabled && (self.compare.clients == 0 || self.compare.secs == 0) {
            bail!("[compare] clients and secs must be at least 1");
        }
        self.capacity.validate()
    }

    /// Planned seconds of load in one configuration (for the time-left estimate).
    pub fn planned_secs_per_config(&self) -> u64 {
        let r = &self.run;
        // A Goose run lasts its user launch (1 s), warm-up, window and 1 s of margin.
        let http = u64::from(r.repeats) * (2 + r.warmup_secs + r.secs);
        let floor = if r.floor { u64::from(r.repeats) * (r.warmup_secs.min(5) + r.secs) } else { 0 };
        let compare = if self.compare.enabled { 2 * self.compare.secs + 4 } else { 0 };
        http + floor + compare + self.capacity.planned_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
stage = "pg"
[topology]
name = "bench"
[topology.postgres]
base_port = 19800
[topology.prometheus]
port = 19890
[[config]]
postgres = 1
pgpool = 1
web = 1
nginx = 1
"#;

    #[test]
    fn defaults_fill_a_minimal_file() {
        let m = MatrixFile::parse(MINIMAL).unwrap();
        assert_eq!(m.run, RunParams::default());
        assert_eq!(m.run.users, 16);
        assert_eq!(m.configs, vec![Counts { postgres: 1, pgpool: 1, web: 1, nginx: 1, ..Counts::default() }]);
        assert_eq!(m.load.journey(3).categories, vec!["category-00", "category-01", "category-02"]);
        // The capacity steps count with every step up to the limit: 14 of 15 s.
        assert_eq!(m.planned_secs_per_config(), 3 * 72 + 3 * 65 + 24 + 14 * 15);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let zero = MINIMAL.replace("nginx = 1", "nginx = 0");
        assert!(format!("{:#}", MatrixFile::parse(&zero).unwrap_err()).contains("at least 1"));
        let unknown = MINIMAL.replace("stage = \"pg\"", "stage = \"pg\"\nusers = 3");
        assert!(MatrixFile::parse(&unknown).is_err());
        let bad_think = MINIMAL.replace("[topology]\n", "[load]\nthink_ms = [10, 5]\n[topology]\n");
        assert!(format!("{:#}", MatrixFile::parse(&bad_think).unwrap_err()).contains("above max"));
    }

    #[test]
    fn load_clients_default_to_one_and_never_outnumber_the_users() {
        assert_eq!(MatrixFile::parse(MINIMAL).unwrap().run.load_clients, 1);
        let with = |n: &str| MINIMAL.replace("[topology]\n", &format!("[run]\nusers = 4\n{n}\n[topology]\n"));
        assert_eq!(MatrixFile::parse(&with("load_clients = 4")).unwrap().run.load_clients, 4);
        for bad in ["load_clients = 5", "load_clients = 0"] {
            let e = format!("{:#}", MatrixFile::parse(&with(bad)).unwrap_err());
            assert!(e.contains("between 1 and users = 4"), "{bad}: {e}");
        }
        // Saved results of one client read and write as before (no new key).
        let text = serde_json::to_string(&RunParams::default()).unwrap();
        assert!(!text.contains("load_clients"), "{text}");
    }

    #[test]
    fn stages_take_their_own_store_counts_only() {
        let redis = MINIMAL.replace("stage = \"pg\"", "stage = \"redis\"");
        let err = format!("{:#}", MatrixFile::parse(&redis).unwrap_err());
        assert!(err.contains("stage redis needs redis = 1 or more"), "{err}");
        let m = MatrixFile::parse(&redis.replace("nginx = 1", "nginx = 1\nredis = 3")).unwrap();
        assert_eq!((m.configs[0].redis, m.configs[0].cassandra), (3, 0));
        let stray = MINIMAL.replace("nginx = 1", "nginx = 1\ncassandra = 3");
        let err = format!("{:#}", MatrixFile::parse(&stray).unwrap_err());
        assert!(err.contains("stage pg does not use cassandra"), "{err}");
        let unknown = MINIMAL.replace("stage = \"pg\"", "stage = \"mongo\"");
        let err = format!("{:#}", MatrixFile::parse(&unknown).unwrap_err());
        assert!(err.contains("unknown stage \"mongo\": one of pg, redis, cassandra"), "{err}");
    }

    #[test]
    fn labels_name_the_store_counts_a_stage_uses() {
        let c = Counts { postgres: 2, pgpool: 2, web: 2, nginx: 1, redis: 3, cassandra: 0 };
        assert_eq!(c.label(), "pg2 pool2 web2 nginx1 redis3");
        assert_eq!(c.long(), "postgres=2 pgpool=2 web=2 nginx=1 redis=3");
        assert_eq!(Counts { cassandra: 3, ..c }.label(), "pg2 pool2 web2 nginx1 redis3 cas3");
        assert_eq!(c.base().label(), "pg2 pool2 web2 nginx1");
        assert_eq!(c.single_difference(&Counts { redis: 2, ..c }), Some(("redis", 3, 2)));
        // Files of the PostgreSQL stage keep their shape.
        let json = serde_json::to_value(c.base()).unwrap();
        assert_eq!(json, serde_json::json!({"postgres": 2, "pgpool": 2, "web": 2, "nginx": 1}));
    }

    #[test]
    fn the_shipped_matrix_files_parse() {
        for (f, stage) in [
            ("matrix/pg.toml", Stage::Pg),
            ("matrix/quick.toml", Stage::Pg),
            ("matrix/redis.toml", Stage::Redis),
            ("matrix/cassandra.toml", Stage::Cassandra),
            ("matrix/hosts-pg.toml", Stage::Pg),
            ("matrix/hosts-redis.toml", Stage::Redis),
            ("matrix/hosts-cassandra.toml", Stage::Cassandra),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            let m = MatrixFile::load(&path).unwrap();
            assert_eq!(m.stage, stage, "{f}");
        }
        let quick = MatrixFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("matrix/quick.toml")).unwrap();
        assert_eq!(quick.configs.len(), 2);
        assert_eq!(quick.run.repeats, 1);
    }

    #[test]
    fn single_differences_are_found() {
        let a = Counts { postgres: 1, pgpool: 1, web: 1, nginx: 1, ..Counts::default() };
        let b = Counts { postgres: 2, ..a };
        assert_eq!(a.single_difference(&b), Some(("postgres", 1, 2)));
        assert_eq!(a.single_difference(&a), None);
        assert_eq!(a.single_difference(&Counts { web: 2, ..b }), None);
        assert_eq!(b.label(), "pg2 pool1 web1 nginx1");
    }
}
