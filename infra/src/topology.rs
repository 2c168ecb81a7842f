//! The topology file: how many instances of each server, on which ports and hosts.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod cassandra;
mod placement;
mod sentinel;

pub use cassandra::CassandraSection;
pub use placement::Tier;

use crate::hosts::SshHost;
pub use sentinel::SentinelSection;

/// Server kinds, in start order (`down` stops them in reverse). The exporters start after the
/// servers they observe and before the Prometheus that scrapes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Postgres,
    Pgpool,
    Redis,
    Sentinel,
    Cassandra,
    Web,
    Nginx,
    /// prometheus-postgres-exporter, one per PostgreSQL backend.
    PostgresExporter,
    /// prometheus-postgres-exporter asking a pgpool for its node and process state.
    PgpoolExporter,
    /// prometheus-redis-exporter, one per Redis instance.
    RedisExporter,
    /// prometheus-redis-exporter, one per Sentinel.
    SentinelExporter,
    /// prometheus-nginx-exporter (nginx's stub_status), one per nginx.
    NginxExporter,
    Prometheus,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Postgres,
        Kind::Pgpool,
        Kind::Redis,
        Kind::Sentinel,
        Kind::Cassandra,
        Kind::Web,
        Kind::Nginx,
        Kind::PostgresExporter,
        Kind::PgpoolExporter,
        Kind::RedisExporter,
        Kind::SentinelExporter,
        Kind::NginxExporter,
        Kind::Prometheus,
    ];

    /// The exporter processes, in start order (Cassandra's is a java agent inside each node).
    pub const EXPORTERS: [Kind; 5] = [
        Kind::PostgresExporter,
        Kind::PgpoolExporter,
        Kind::RedisExporter,
        Kind::SentinelExporter,
        Kind::NginxExporter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Pgpool => "pgpool",
            Kind::Redis => "redis",
            Kind::Sentinel => "sentinel",
            Kind::Cassandra => "cassandra",
            Kind::Web => "web",
            Kind::Nginx => "nginx",
            Kind::PostgresExporter => "postgres_exporter",
            Kind::PgpoolExporter => "pgpool_exporter",
            Kind::RedisExporter => "redis_exporter",
            Kind::SentinelExporter => "sentinel_exporter",
            Kind::NginxExporter => "nginx_exporter",
            Kind::Prometheus => "prometheus",
        }
    }

    /// The server kind an exporter kind observes (instance i observes instance i).
    pub fn observed(self) -> Option<Kind> {
        match self {
            Kind::PostgresExporter => Some(Kind::Postgres),
            Kind::PgpoolExporter => Some(Kind::Pgpool),
            Kind::RedisExporter => Some(Kind::Redis),
            Kind::SentinelExporter => Some(Kind::Sentinel),
            Kind::NginxExporter => Some(Kind::Nginx),
            _ => None,
        }
    }

    /// Processes that only observe the others (Prometheus and the exporters), as opposed to the
    /// shop's own servers.
    pub fn is_observer(self) -> bool {
        self == Kind::Prometheus || self.observed().is_some()
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .with_context(|| format!("unknown kind {s:?} (one of {})", Kind::ALL.map(Kind::name).join(", ")))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One `[section]` of the file: `count` instances, instance i on `hosts[i % len]:(base_port + i)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default)]
    pub count: usize,
    pub base_port: u16,
    /// Where the instances live (round-robin): with `[[hosts]]` in the topology, names of those
    /// hosts; without, loopback addresses (default 127.0.0.1).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Extra server settings, `[postgres.settings]` only (lines added to postgresql.conf), e.g.
    /// `fsync = "off"` for a throwaway test server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

impl Section {
    pub fn host(&self, i: usize) -> String {
        if self.hosts.is_empty() {
            "127.0.0.1".to_string()
        } else {
            self.hosts[i % self.hosts.len()].clone()
        }
    }

    pub fn port(&self, i: usize) -> u16 {
        self.base_port + i as u16
    }

    pub fn addr(&self, i: usize) -> String {
        format!("{}:{}", self.host(i), self.port(i))
    }
}

/// `[pgpool]`: a [`Section`] plus `pcp_base_port` (pcp, the control port of instance i, is
/// `pcp_base_port + i`; default `base_port + 100`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PgpoolRaw", into = "PgpoolRaw")]
pub struct PgpoolSection {
    pub section: Section,
    pub pcp_base_port: Option<u16>,
    /// As the file says; none: [`Topology::pgpool_failover`] decides.
    pub failover: Option<Failover>,
}

/// Whether a pgpool-II takes a backend out of service on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failover {
    /// Each pgpool detaches a backend it cannot reach (health check, a failed connect) or that
    /// answered differently, by itself, and writes on without it. Safe with one pgpool, or with
    /// pgpools that always see the same failures (one machine).
    Alone,
    /// No pgpool detaches a backend by itself: one that cannot reach every backend refuses the
    /// session or fails the statement (the app retries on another pgpool), and only an operator
    /// detaches a node, on every pgpool at once (`rejoin`). With two pgpools and no watchdog
    /// (pgpool-II refuses quorum failover in native replication), a network partition between
    /// one pgpool and one backend otherwise makes them write to different sets of backends
    /// (infra/tests/partition.rs).
    Never,
}

// serde's `flatten` cannot be combined with `deny_unknown_fields`, so the file form is spelled out.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PgpoolRaw {
    #[serde(default)]
    count: usize,
    base_port: u16,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pcp_base_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failover: Option<Failover>,
}

impl From<PgpoolRaw> for PgpoolSection {
    fn from(r: PgpoolRaw) -> Self {
        PgpoolSection {
            section: Section { count: r.count, base_port: r.base_port, hosts: r.hosts, settings: BTreeMap::new() },
            pcp_base_port: r.pcp_base_port,
            failover: r.failover,
        }
    }
}

impl From<PgpoolSection> for PgpoolRaw {
    fn from(p: PgpoolSection) -> Self {
        PgpoolRaw {
            count: p.section.count,
            base_port: p.section.base_port,
            hosts: p.section.hosts,
            pcp_base_port: p.pcp_base_port,
            failover: p.failover,
        }
    }
}

impl PgpoolSection {
    pub fn pcp_port(&self, i: usize) -> u16 {
        self.pcp_base_port.unwrap_or(self.section.base_port + 100) + i as u16
    }
}

/// `[web]`: a [`Section`] plus the `shopbench` binary to run (a relative path is taken from the
/// directory of the file that names it: [`anchor_paths`]) and the admin token handed to every
/// instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "WebRaw", into = "WebRaw")]
pub struct WebSection {
    pub section: Section,
    /// As the file (or an override) names it; none: [`WebSection::binary_or_default`].
    pub binary: Option<PathBuf>,
    pub admin_token: String,
}

impl WebSection {
    /// The binary to run: the one named, else `shopbench` beside the running program (the same
    /// target dir as `shopbench-infra`).
    pub fn binary_or_default(&self) -> PathBuf {
        self.binary.clone().unwrap_or_else(|| crate::paths::beside_program("shopbench"))
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebRaw {
    #[serde(default)]
    count: usize,
    base_port: u16,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<PathBuf>,
    #[serde(default = "default_admin_token")]
    admin_token: String,
}

impl From<WebRaw> for WebSection {
    fn from(r: WebRaw) -> Self {
        let section = Section { count: r.count, base_port: r.base_port, hosts: r.hosts, settings: BTreeMap::new() };
        WebSection { section, binary: r.binary, admin_token: r.admin_token }
    }
}

impl From<WebSection> for WebRaw {
    fn from(w: WebSection) -> Self {
        let s = w.section;
        WebRaw { count: s.count, base_port: s.base_port, hosts: s.hosts, binary: w.binary, admin_token: w.admin_token }
    }
}

fn default_admin_token() -> String {
    "admin-dev-token".to_string()
}

/// The paths of this machine a topology names (the hosts' `dir` is a path on the host): where a
/// file gives one relatively, it is taken from the file's directory, wherever the program was
/// compiled and whatever the current directory. A path not read from a file (`--web-binary`) is
/// taken from the current directory; none named: the binary beside the running program.
pub const PATH_KEYS: [&str; 3] = ["[web] binary", "[[hosts]] key", "[[hosts]] known_hosts"];

/// The same as [`Topology::anchor_paths`] on a topology still in its file's TOML (a bench file's
/// `[topology]`, before each configuration sets its counts).
pub fn anchor_paths(table: &mut toml::Table, base: &Path) {
    let anchor = |v: Option<&mut toml::Value>| {
        if let Some(toml::Value::String(s)) = v {
            if Path::new(s.as_str()).is_relative() {
                *s = base.join(s.as_str()).display().to_string();
            }
        }
    };
    if let Some(toml::Value::Table(web)) = table.get_mut("web") {
        anchor(web.get_mut("binary"));
    }
    if let Some(toml::Value::Array(hosts)) = table.get_mut("hosts") {
        for h in hosts.iter_mut().filter_map(toml::Value::as_table_mut) {
            anchor(h.get_mut("key"));
            anchor(h.get_mut("known_hosts"));
        }
    }
}

/// The directory of the file at `path`, absolute (from the current directory when `path` is
/// relative).
pub fn file_dir(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("the path of {}", path.display()))?;
    Ok(abs.parent().map(Path::to_path_buf).unwrap_or(abs))
}

/// `[prometheus]`: one Prometheus scraping every web instance and, unless `exporters = false`,
/// an exporter per server (docs/observability.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSection {
    /// 0 or 1.
    #[serde(default = "one")]
    pub count: usize,
    pub port: u16,
    #[serde(default = "loopback")]
    pub host: String,
    #[serde(default = "default_scrape")]
    pub scrape_interval: String,
    /// Start the exporters of every server kind (and Cassandra's java agent) with Prometheus.
    #[serde(default = "yes")]
    pub exporters: bool,
    /// The exporters' ports, one block in [`Kind::EXPORTERS`] order (the postgres exporters
    /// first, then pgpool's, ...), each on the host of the server it observes; default `port + 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter_base_port: Option<u16>,
}

impl PrometheusSection {
    pub fn exporter_base_port(&self) -> u16 {
        self.exporter_base_port.unwrap_or(self.port.saturating_add(1))
    }
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}
fn loopback() -> String {
    "127.0.0.1".to_string()
}
fn default_scrape() -> String {
    "5s".to_string()
}

fn empty_section(base_port: u16) -> Section {
    Section { count: 0, base_port, hosts: vec![], settings: BTreeMap::new() }
}

/// A parsed topology file (see infra/topologies/default.toml).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub name: String,
    /// Absent (count 0) for a topology of other stores only, e.g. scripts/test's Redis set.
    #[serde(default = "no_postgres")]
    pub postgres: Section,
    #[serde(default = "no_pgpool")]
    pub pgpool: PgpoolSection,
    /// Instance 0 starts as the master, the others as its read-only replicas.
    #[serde(default = "no_redis")]
    pub redis: Section,
    #[serde(default = "SentinelSection::none")]
    pub sentinel: SentinelSection,
    /// The catalogue's ring: node i on `hosts[i]`, the same ports on every node.
    #[serde(default = "CassandraSection::none")]
    pub cassandra: CassandraSection,
    #[serde(default = "no_web")]
    pub web: WebSection,
    #[serde(default = "no_nginx")]
    pub nginx: Section,
    #[serde(default)]
    pub prometheus: Option<PrometheusSection>,
    /// The machines the sections place their instances on, reached over SSH (`[[hosts]]`); none:
    /// everything on this machine's loopback, no SSH.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<SshHost>,
    /// Addresses outside `hosts` that may also connect to PostgreSQL and pgpool-II (e.g. the
    /// control machine running a test suite against the pgpools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<IpAddr>,
}

fn no_postgres() -> Section {
    empty_section(15432)
}
fn no_redis() -> Section {
    empty_section(16379)
}
fn no_pgpool() -> PgpoolSection {
    PgpoolSection { section: empty_section(19999), pcp_base_port: None, failover: None }
}
fn no_web() -> WebSection {
    WebSection { section: empty_section(18080), binary: None, admin_token: default_admin_token() }
}
fn no_nginx() -> Section {
    empty_section(18000)
}

/// Counts given on the command line replace the file's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub postgres: Option<usize>,
    pub pgpool: Option<usize>,
    /// Redis instances (1 master + replicas); `Some(0)` also drops the sentinels unless given.
    pub redis: Option<usize>,
    pub sentinel: Option<usize>,
    pub cassandra: Option<usize>,
    pub web: Option<usize>,
    pub nginx: Option<usize>,
    pub prometheus: Option<usize>,
    /// Only the stores: PostgreSQL, pgpool-II, Redis and its sentinels.
    pub only_db: bool,
    pub web_binary: Option<PathBuf>,
    /// The web binary when neither the file nor `web_binary` names one (the bench: the stage's).
    pub default_web_binary: Option<PathBuf>,
}

impl Topology {
    pub fn parse(text: &str) -> Result<Topology> {
        let t: Topology = toml::from_str(text).context("invalid topology file")?;
        t.validate()?;
        Ok(t)
    }

    /// Parses a topology whose counts `o` completes (a bench file gives the ports, each of its
    /// configurations the counts), and checks the result.
    pub fn parse_with(text: &str, o: &Overrides) -> Result<Topology> {
        let t: Topology = toml::from_str(text).context("invalid topology file")?;
        t.with_overrides(o)
    }

    /// A topology file: TOML, or JSON (`.json`: what the control machine ships to each host). Its
    /// relative paths are taken from its directory ([`anchor_paths`]).
    pub fn from_file(path: &Path) -> Result<Topology> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading topology {}", path.display()))?;
        let base = file_dir(path)?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<Topology>(&text).context("invalid topology file")
        } else {
            toml::from_str::<Topology>(&text).context("invalid topology file")
        };
        parsed
            .and_then(|mut t| {
                t.anchor_paths(&base);
                t.validate().map(|()| t)
            })
            .with_context(|| format!("in {}", path.display()))
    }

    /// Takes the relative paths of this machine that a file named ([`PATH_KEYS`]) from `base`,
    /// the directory of that file.
    pub fn anchor_paths(&mut self, base: &Path) {
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(b) = &mut self.web.binary {
            anchor(b);
        }
        for h in &mut self.hosts {
            anchor(&mut h.key);
            if let Some(k) = &mut h.known_hosts {
                anchor(k);
            }
        }
    }

    pub fn with_overrides(mut self, o: &Overrides) -> Result<Topology> {
        if let Some(n) = o.postgres {
            self.postgres.count = n;
        }
        if let Some(n) = o.pgpool {
            self.pgpool.section.count = n;
        }
        if let Some(n) = o.redis {
            self.redis.count = n;
            if n == 0 && o.sentinel.is_none() {
                self.sentinel.section.count = 0;
            }
        }
        if let Some(n) = o.sentinel {
            self.sentinel.section.count = n;
        }
        if let Some(n) = o.cassandra {
            self.cassandra.count = n;
        }
        if let Some(n) = o.web {
            self.web.section.count = n;
        }
        if let Some(n) = o.nginx {
            self.nginx.count = n;
        }
        if let Some(n) = o.prometheus {
            match &mut self.prometheus {
                Some(p) => p.count = n,
                None if n > 0 => {
                    bail!("--prometheus {n}: the topology has no [prometheus] section (it gives the port)")
                }
                None => {}
            }
        }
        if let Some(b) = &o.web_binary {
            self.web.binary = Some(b.clone());
        }
        if self.web.binary.is_none() {
            self.web.binary.clone_from(&o.default_web_binary);
        }
        if o.only_db {
            self.web.section.count = 0;
            self.nginx.count = 0;
            if let Some(p) = &mut self.prometheus {
                p.count = 0;
            }
        }
        self.validate()?;
        Ok(self)
    }

    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Postgres => self.postgres.count,
            Kind::Pgpool => self.pgpool.section.count,
            Kind::Redis => self.redis.count,
            Kind::Sentinel => self.sentinel.section.count,
            Kind::Cassandra => self.cassandra.count,
            Kind::Web => self.web.section.count,
            Kind::Nginx => self.nginx.count,
            Kind::Prometheus => self.prometheus.as_ref().map_or(0, |p| p.count),
            exporter => match exporter.observed() {
                Some(observed) if self.exporters_on() => self.count(observed),
                _ => 0,
            },
        }
    }

    /// Are exporters started with this topology (a Prometheus that wants them)?
    pub fn exporters_on(&self) -> bool {
        self.prometheus.as_ref().is_some_and(|p| p.count > 0 && p.exporters)
    }

    /// The port of exporter `i` of `kind`: its place in the exporters' block.
    fn exporter_port(&self, kind: Kind, i: usize) -> u16 {
        let base = self.prometheus.as_ref().map_or(0, PrometheusSection::exporter_base_port) as usize;
        let before: usize = Kind::EXPORTERS.iter().take_while(|k| **k != kind).map(|k| self.count(*k)).sum();
        (base + before + i).min(u16::MAX as usize) as u16
    }

    /// The pgpools' failover: as `[pgpool] failover` says; by default [`Failover::Never`] when
    /// two or more pgpools run on machines of `[[hosts]]` (a network between them can fail for
    /// one pgpool and not the other), else [`Failover::Alone`] (loopback, or one pgpool).
    pub fn pgpool_failover(&self) -> Failover {
        self.pgpool.failover.unwrap_or(if !self.hosts.is_empty() && self.count(Kind::Pgpool) > 1 {
            Failover::Never
        } else {
            Failover::Alone
        })
    }

    /// Host and port of instance `i` of `kind`; a host named in `[[hosts]]` gives its address.
    pub fn endpoint(&self, kind: Kind, i: usize) -> (String, u16) {
        let (host, port) = self.endpoint_as_written(kind, i);
        (self.machine_named(&host).map_or(host, |m| m.address.to_string()), port)
    }

    /// [`Topology::endpoint`] as "host:port" (a host of `[[hosts]]` by its address).
    pub fn addr(&self, kind: Kind, i: usize) -> String {
        let (host, port) = self.endpoint(kind, i);
        format!("{host}:{port}")
    }

    fn endpoint_as_written(&self, kind: Kind, i: usize) -> (String, u16) {
        match kind {
            Kind::Postgres => (self.postgres.host(i), self.postgres.port(i)),
            Kind::Pgpool => (self.pgpool.section.host(i), self.pgpool.section.port(i)),
            Kind::Redis => (self.redis.host(i), self.redis.port(i)),
            Kind::Sentinel => (self.sentinel.section.host(i), self.sentinel.section.port(i)),
            Kind::Cassandra => (self.cassandra.host(i), self.cassandra.native_port),
            Kind::Web => (self.web.section.host(i), self.web.section.port(i)),
            Kind::Nginx => (self.nginx.host(i), self.nginx.port(i)),
            Kind::Prometheus => {
                let p = self.prometheus.as_ref().expect("no prometheus section");
                (p.host.clone(), p.port)
            }
            exporter => {
                let observed = exporter.observed().expect("every other kind is an exporter");
                (self.endpoint(observed, i).0, self.exporter_port(exporter, i))
            }
        }
    }

    fn validate(&self) -> Result<()> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("name {:?}: use letters, digits, '-' and '_' (it names the run dir)", self.name);
        }
        if !self.nginx.settings.is_empty() || !self.redis.settings.is_empty() {
            bail!("settings are read for [postgres] only");
        }
        let bad_key = self
            .postgres
            .settings
            .keys()
            .find(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        if let Some(k) = bad_key {
            bail!("[postgres.settings]: {k:?} is not a setting name");
        }
        if Kind::ALL.iter().all(|k| self.count(*k) == 0) {
            bail!("the topology starts nothing: every count is 0");
        }
        if self.pgpool.section.count > 0 && self.postgres.count == 0 {
            bail!("pgpool-II needs at least one [postgres] backend");
        }
        sentinel::validate(self)?;
        cassandra::validate(self)?;
        placement::validate(self)?;
        if self.pgpool.section.count > 0 && self.postgres.count > 128 {
            bail!("pgpool-II supports at most 128 backends");
        }
        if self.web.section.count > 0 && self.pgpool.section.count == 0 {
            bail!("web instances need at least one pgpool (they reach PostgreSQL only through pgpool-II)");
        }
        if self.nginx.count > 0 && self.web.section.count == 0 {
            bail!("nginx instances need at least one web instance to balance over");
        }
        if self.prometheus.as_ref().is_some_and(|p| p.count > 1) {
            bail!("[prometheus] count is 0 or 1");
        }
        let mut ports: Vec<(String, u16, String)> = Vec::new();
        for kind in Kind::ALL {
            for i in 0..self.count(kind) {
                let (host, port) = self.endpoint(kind, i);
                if port == 0 || (port as u32) + 1 > u16::MAX as u32 {
                    bail!("{kind} {i}: port {port} out of range");
                }
                ports.push((host.clone(), port, format!("{kind} {i}")));
                if kind == Kind::Pgpool {
                    ports.push((host, self.pgpool.pcp_port(i), format!("pgpool {i} (pcp)")));
                }
                if kind == Kind::Cassandra {
                    ports.extend(self.cassandra_other_ports(i));
                    if self.exporters_on() {
                        ports.push(self.cassandra_metrics_addr(i));
                    }
                }
            }
        }
        for (a, (ha, pa, wa)) in ports.iter().enumerate() {
            if let Some((_, _, wb)) = ports[a + 1..].iter().find(|(hb, pb, _)| hb == ha && pb == pa) {
                bail!("port {ha}:{pa} is given to both {wa} and {wb}");
            }
        }
        Ok(())
    }

    /// Instances this machine must start: every host must be a loopback address (a topology with
    /// `[[hosts]]` is started over SSH instead: remote.rs).
    pub fn check_local(&self) -> Result<()> {
        for kind in Kind::ALL {
            for i in 0..self.count(kind) {
                let (host, _) = self.endpoint(kind, i);
                let local = host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback());
                if !local {
                    bail!(
                        "{kind} {i} is on host {host}: this launcher starts processes on loopback (127.0.0.0/8) \
                         only; start that instance on its machine with the rendered configs"
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = include_str!("../topologies/default.toml");

    #[test]
    fn default_topology_parses() {
        let t = Topology::parse(DEFAULT).unwrap();
        assert_eq!(t.name, "default");
        assert_eq!(
            [Kind::Postgres, Kind::Pgpool, Kind::Web, Kind::Nginx, Kind::Prometheus].map(|k| t.count(k)),
            [2, 2, 2, 2, 1]
        );
        assert_eq!(t.endpoint(Kind::Postgres, 1), ("127.0.0.1".to_string(), 15433));
        assert_eq!(t.pgpool.pcp_port(1), 20100);
        t.check_local().unwrap();
    }

    #[test]
    fn overrides_and_only_db() {
        let t = Topology::parse(DEFAULT).unwrap();
        let o = Overrides { postgres: Some(3), pgpool: Some(1), only_db: true, ..Default::default() };
        let t = t.with_overrides(&o).unwrap();
        assert_eq!(t.count(Kind::Postgres), 3);
        assert_eq!(t.count(Kind::Pgpool), 1);
        assert_eq!(t.count(Kind::Web) + t.count(Kind::Nginx) + t.count(Kind::Prometheus), 0);
    }

    #[test]
    fn hosts_round_robin_and_non_loopback_refused() {
        let t = Topology::parse(
            "name = \"x\"\n[postgres]\ncount = 3\nbase_port = 5000\nhosts = [\"127.0.0.2\", \"db.example\"]\n",
        )
        .unwrap();
        assert_eq!(t.endpoint(Kind::Postgres, 2), ("127.0.0.2".to_string(), 5002));
        let err = t.check_local().unwrap_err().to_string();
        assert!(err.contains("postgres 1 is on host db.example"), "{err}");
    }

    #[test]
    fn pgpools_on_machines_never_fail_over_alone_unless_told() {
        let two = "name = \"x\"\n[postgres]\ncount = 2\nbase_port = 5000\n[pgpool]\ncount = 2\nbase_port = 5100\n";
        assert_eq!(Topology::parse(two).unwrap().pgpool_failover(), Failover::Alone, "loopback");
        let host = |n: &str| SshHost {
            name: n.into(),
            address: "192.0.2.7".parse().unwrap(),
            user: "root".into(),
            port: 22,
            key: "/k".into(),
            known_hosts: None,
            dir: "/d".into(),
        };
        let mut t = Topology::parse(two).unwrap();
        t.hosts = vec![host("a")];
        assert_eq!(t.pgpool_failover(), Failover::Never, "two pgpools on machines");
        t.pgpool.section.count = 1;
        assert_eq!(t.pgpool_failover(), Failover::Alone, "one pgpool");
        let told = format!("{two}failover = \"alone\"\n");
        let mut t = Topology::parse(&told).unwrap();
        t.hosts = vec![host("a")];
        assert_eq!(t.pgpool_failover(), Failover::Alone);
        assert!(Topology::parse(&format!("{two}failover = \"sometimes\"\n")).is_err());
    }

    #[test]
    fn postgres_settings() {
        let t = Topology::parse(include_str!("../topologies/test-pg.toml")).unwrap();
        assert_eq!(t.postgres.settings.get("fsync").map(String::as_str), Some("off"));
        let bad = "name = \"x\"\n[postgres]\ncount = 1\nbase_port = 5000\n[postgres.settings]\n\"a b\" = \"1\"\n";
        assert!(Topology::parse(bad).unwrap_err().to_string().contains("not a setting name"));
        let misplaced = "name = \"x\"\n[postgres]\ncount = 1\nbase_port = 5000\n[nginx]\nbase_port = 6000\n[nginx.settings]\na = \"1\"\n";
        assert!(Topology::parse(misplaced).unwrap_err().to_string().contains("[postgres] only"));
    }

    #[test]
    fn clashing_ports_and_bad_counts_are_refused() {
        let clash = "name = \"x\"\n[postgres]\ncount = 2\nbase_port = 5000\n[pgpool]\ncount = 1\nbase_port = 5001\n";
        let err = Topology::parse(clash).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:5001 is given to both postgres 1 and pgpool 0"), "{err}");
        let no_pool = "name = \"x\"\n[postgres]\ncount = 1\nbase_port = 5000\n[web]\ncount = 1\nbase_port = 6000\n";
        assert!(Topology::parse(no_pool).unwrap_err().to_string().contains("need at least one pgpool"));
        let unknown = "name = \"x\"\n[postgres]\ncount = 1\nbase_port = 5000\nport = 3\n";
        assert!(Topology::parse(unknown).is_err());
    }

    /// A file of ports only (a bench file) becomes a topology once its counts are given; the web
    /// binary it names wins over a default one.
    #[test]
    fn counts_and_a_default_web_binary_complete_a_file_of_ports() {
        let ports =
            "name = \"b\"\n[postgres]\nbase_port = 19800\n[pgpool]\nbase_port = 19810\n[web]\nbase_port = 19820\n\
                     [redis]\nbase_port = 19900\n[sentinel]\ncount = 3\nbase_port = 19950\n";
        assert!(Topology::parse(ports).is_err(), "sentinels without redis");
        let o = Overrides {
            postgres: Some(1),
            pgpool: Some(1),
            web: Some(1),
            redis: Some(0),
            default_web_binary: Some("target/release/shopbench-pg".into()),
            ..Overrides::default()
        };
        let t = Topology::parse_with(ports, &o).unwrap();
        assert_eq!([Kind::Postgres, Kind::Web, Kind::Redis, Kind::Sentinel].map(|k| t.count(k)), [1, 1, 0, 0]);
        assert_eq!(t.web.binary_or_default(), PathBuf::from("target/release/shopbench-pg"));
        let named = ports.replace("base_port = 19820\n", "base_port = 19820\nbinary = \"/opt/shop\"\n");
        let t = Topology::parse_with(&named, &o).unwrap();
        assert_eq!(t.web.binary_or_default(), PathBuf::from("/opt/shop"));
        let t = Topology::parse_with(&named, &Overrides { web_binary: Some("/x".into()), ..o }).unwrap();
        assert_eq!(t.web.binary, Some(PathBuf::from("/x")));
        // None named: the one beside the running program, not the compiled-in repository's.
        let default = Topology::parse(DEFAULT).unwrap().web.binary_or_default();
        let exe = std::env::current_exe().unwrap();
        assert!(default.ends_with("shopbench") && default.is_absolute(), "{}", default.display());
        assert!(default.starts_with(exe.parent().unwrap().parent().unwrap()), "{}", default.display());
    }

    /// A relative path a topology file names (the web binary, a host's key and known_hosts) is
    /// taken from the file's directory, the same in TOML and in JSON; a host's `dir` (a path on the
    /// host) and absolute paths are left as written.
    #[test]
    fn relative_paths_in_a_topology_file_are_taken_from_its_directory() {
        let dir = std::env::temp_dir().join(format!("shopbench-topology-paths-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/shop"), "").unwrap();
        let text = "name = \"far\"\n[postgres]\ncount = 1\nbase_port = 5000\nhosts = [\"a\"]\n\
                    [pgpool]\ncount = 1\nbase_port = 5100\nhosts = [\"a\"]\n\
                    [web]\ncount = 1\nbase_port = 6000\nhosts = [\"a\"]\nbinary = \"bin/shop\"\n\
                    [[hosts]]\nname = \"a\"\naddress = \"192.0.2.1\"\nkey = \"keys/id\"\nknown_hosts = \"/etc/known\"\n\
                    dir = \"/var/tmp/x\"\n";
        std::fs::write(dir.join("t.toml"), text).unwrap();
        let t = Topology::from_file(&dir.join("t.toml")).unwrap();
        std::fs::write(dir.join("t.json"), serde_json::to_string(&Topology::parse(text).unwrap()).unwrap()).unwrap();
        let json = Topology::from_file(&dir.join("t.json")).unwrap();
        let started = crate::web::binary_path(&t.web.binary_or_default());
        std::fs::remove_dir_all(&dir).unwrap();
        for t in [&t, &json] {
            assert_eq!(t.web.binary, Some(dir.join("bin/shop")));
            assert_eq!(t.hosts[0].key, dir.join("keys/id"));
            assert_eq!(t.hosts[0].known_hosts, Some(PathBuf::from("/etc/known")));
            assert_eq!(t.hosts[0].dir, PathBuf::from("/var/tmp/x"));
        }
        assert_eq!(started.unwrap(), dir.join("bin/shop"), "the binary `up` starts");
        // A bench file's [topology] table, the same way.
        let mut table: toml::Table = toml::from_str(text).unwrap();
        anchor_paths(&mut table, &dir);
        let t: Topology = table.try_into().unwrap();
        assert_eq!((t.web.binary, t.hosts[0].key.clone()), (Some(dir.join("bin/shop")), dir.join("keys/id")));
    }
}
