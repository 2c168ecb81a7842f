//! The faults file (bench/faults/<stage>.toml): the topology, the load, the schedule of each
//! fault and the instances to kill.

use crate::matrix::{CatalogueParams, LoadParams, Stage};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    /// The storage stage ("pg", "redis", "cassandra"): its rows in docs/results/faults.json.
    pub stage: Stage,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub run: FaultRun,
    #[serde(default)]
    pub load: LoadParams,
    #[serde(default)]
    pub catalogue: CatalogueParams,
    /// The race workload beside the shopaholic load (bench/src/race).
    #[serde(default)]
    pub race: RaceParams,
    /// Emulated hosts the runner makes for the topology (`[hosts] emulate = N`, root only): its
    /// sections place their instances on `host0`..`host<N-1>`, and network cuts become possible.
    /// None: everything on loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostsParams>,
    /// An infra topology with its counts. Without `[topology.web] binary` (a relative path is
    /// taken from this file's directory) the web instances run shopbench-<stage> beside this
    /// program (scripts/faults builds it). Its `[topology.prometheus]`
    /// is started only with `[run] observe`.
    pub topology: toml::Table,
    #[serde(rename = "fault")]
    pub faults: Vec<FaultSpec>,
}

/// The schedule of one fault: a fresh Goose run per fault, so that the data checks after it
/// run with no write in flight.
///
/// ```text
/// |launch 1 s|warmup|before |kill|down |restart (its budget)|after |
///                   baseline     errors, recovery      errors, recovery
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRun {
    /// Concurrent Goose users.
    pub users: usize,
    /// Users sign up and fill their first carts; not looked at.
    pub warmup_secs: u64,
    /// Steady load before the kill: the baseline (errors there are reported apart).
    pub before_secs: u64,
    /// From the kill to the start of the restart.
    pub down_secs: u64,
    /// Load after the restart's budget (each fault's `restart_budget_secs`).
    pub after_secs: u64,
    pub request_timeout_secs: u64,
    pub seed: u64,
    /// Start Prometheus (1 s scrapes) and the exporters with the topology and keep each fault's
    /// timeline of the servers (bench/src/observe); needs `[topology.prometheus] port`. Off: no
    /// Prometheus, as before.
    pub observe: bool,
}

impl Default for FaultRun {
    fn default() -> Self {
        FaultRun {
            users: 16,
            warmup_secs: 3,
            before_secs: 4,
            down_secs: 5,
            after_secs: 6,
            request_timeout_secs: 10,
            seed: 7,
            observe: true,
        }
    }
}

/// Where the topology runs when not on loopback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsParams {
    /// How many emulated hosts (network namespaces with their own sshd on a private bridge,
    /// infra::hosts::EmulatedHosts), made before the topology and torn down after it.
    pub emulate: usize,
}

/// The race workload of each fault's run: `users` users racing their own requests (0: none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaceParams {
    pub users: usize,
    /// Products the rounds use (the first of the seeded catalogue).
    pub products: usize,
}

impl Default for RaceParams {
    fn default() -> Self {
        RaceParams { users: 2, products: 20 }
    }
}

/// What is done to the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL of the instance's process group, restart after `down_secs`.
    #[default]
    Kill,
    /// SIGSTOP of the process and all its descendants for `secs`, then SIGCONT (always); a
    /// backend a pgpool detached meanwhile is then rejoined.
    Hang,
    /// `sessions` outside sessions (as user postgres; default: until the backend refuses one)
    /// hold a backend's connection slots for `secs`, then close.
    Exhaust,
    /// SIGKILL of a backend; its rejoin starts after `down_secs` and the rejoining backend (its
    /// copy, or the server started on it) is SIGKILLed while the rejoin runs; then the rejoin
    /// runs again.
    KillDuringRejoin,
    /// SIGKILL of pgpool's main (parent) process only: its children live on.
    KillPgpoolMain,
    /// SIGKILL of every pgpool at once, restart of each (target "pgpool all").
    KillBothPgpools,
    /// A network partition on `[hosts]`: every `cut` of the fault applied (nftables drops on the
    /// hosts, infra::hosts::InstanceCut) for `secs`, then healed. The target is the instance the
    /// row is about (an end of one of the cuts); nothing is restarted.
    Cut,
}

impl FaultKind {
    /// The kinds of instance the fault applies to.
    pub fn applies_to(self, kind: infra::Kind) -> bool {
        use infra::Kind::*;
        match self {
            FaultKind::Kill => true,
            FaultKind::Hang => matches!(kind, Postgres | Pgpool | Web | Redis | Cassandra | Nginx | Sentinel),
            FaultKind::Exhaust | FaultKind::KillDuringRejoin => kind == Postgres,
            FaultKind::KillPgpoolMain | FaultKind::KillBothPgpools => kind == Pgpool,
            FaultKind::Cut => matches!(kind, Postgres | Pgpool | Web | Redis | Nginx | Sentinel | Cassandra),
        }
    }

    /// Whether the fault is done on `[hosts]` to an instance of `kind` (Err: why not). An
    /// instance there is signalled by its host (infra's `host kill`), so a kill is done where its
    /// restart is done over SSH (web, nginx) and a hang where SIGCONT is the whole way back (web,
    /// nginx, pgpool: no backend to rejoin, no failover to wait for).
    pub fn on_hosts(self, kind: infra::Kind) -> std::result::Result<(), String> {
        use infra::Kind::*;
        match self {
            FaultKind::Cut => Ok(()),
            // The restart is the way back: over SSH for every kind (a backend's is its rejoin).
            FaultKind::Kill if matches!(kind, Web | Nginx | Pgpool | Postgres) => Ok(()),
            FaultKind::Hang if matches!(kind, Web | Nginx | Pgpool) => Ok(()),
            FaultKind::Kill => Err(format!(
                "a kill of {kind} on [hosts] is not done yet: its restart works over SSH, but the runner's checks \
                 have not been run with it on hosts (web, nginx, pgpool and postgres only)"
            )),
            FaultKind::Hang => Err(format!(
                "a hang of {kind} on [hosts] is not done yet: its way back (a rejoin, a failover) is not done over SSH \
                 yet (web, nginx and pgpool only)"
            )),
            other => {
                Err(format!("a {other:?} fault on [hosts] is not done yet (it works on this machine's processes)"))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What is done (default: kill).
    #[serde(default)]
    pub kind: FaultKind,
    /// How long a hang or the exhaustion lasts [default: `down_secs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u64>,
    /// Outside sessions of an exhaust fault [default: until refused, at most 500].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// The cuts of a `cut` fault, each one instance's host no longer reaching another instance's
    /// port: `cut = [{ from = ["web", 0], to = ["pgpool", 0] }]`; between two Cassandra nodes
    /// `port = "storage"` cuts their inter-node port instead of the CQL port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<infra::hosts::InstanceCut>,
    /// The instance to SIGKILL and restart: "<kind> <index>" (e.g. "postgres 1", "pgpool 0"), or
    /// "<kind> <role>" where the instance is found by its role at kill time (e.g. "redis master",
    /// see `stage::instance_with_role`).
    pub target: String,
    /// Seconds of load planned for the restart (a backend's rejoin takes a few); a longer restart
    /// shortens the `after` phase.
    #[serde(default = "default_budget")]
    pub restart_budget_secs: u64,
    /// Shown beside the fault in the table (e.g. "pgpool's main node").
    #[serde(default)]
    pub note: String,
}

fn default_budget() -> u64 {
    5
}

/// A parsed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Instance { kind: infra::Kind, index: usize },
    Role { kind: infra::Kind, role: String },
}

impl FaultSpec {
    pub fn parse_target(&self) -> Result<Target> {
        let mut words = self.target.split_whitespace();
        let (Some(kind), Some(which), None) = (words.next(), words.next(), words.next()) else {
            bail!("target {:?}: write \"<kind> <index>\" or \"<kind> <role>\"", self.target)
        };
        let kind = infra::Kind::parse(kind).with_context(|| format!("target {:?}", self.target))?;
        Ok(match which.parse::<usize>() {
            Ok(index) => Target::Instance { kind, index },
            Err(_) => Target::Role { kind, role: which.to_string() },
        })
    }
}

impl FaultRun {
    /// Seconds from the load's start to the kill (Goose launches every user in its first second).
    pub fn kill_at(&self) -> Duration {
        Duration::from_secs(1 + self.warmup_secs + self.before_secs)
    }

    /// The load's measured length for a fault (after the warm-up).
    pub fn load_secs(&self, fault: &FaultSpec) -> Duration {
        Duration::from_secs(self.before_secs + self.down(fault) + fault.restart_budget_secs + self.after_secs)
    }

    /// From the fault to its end (restart, SIGCONT, sessions closed).
    pub fn down(&self, fault: &FaultSpec) -> u64 {
        fault.secs.unwrap_or(self.down_secs)
    }
}

impl FaultsFile {
    pub fn parse(text: &str) -> Result<FaultsFile> {
        let f: FaultsFile = toml::from_str(text).context("invalid faults file")?;
        f.validate()?;
        Ok(f)
    }

    /// Reads the file; the relative paths of its `[topology]` are taken from its directory
    /// (infra::topology::anchor_paths).
    pub fn load(path: &Path) -> Result<FaultsFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = infra::topology::file_dir(path)?;
        let parsed = toml::from_str::<FaultsFile>(&text).context("invalid faults file").and_then(|mut f| {
            infra::topology::anchor_paths(&mut f.topology, &base);
            f.validate().map(|()| f)
        });
        parsed.with_context(|| format!("in {}", path.display()))
    }

    fn validate(&self) -> Result<()> {
        if self.faults.is_empty() {
            bail!("no [[fault]]: nothing to run");
        }
        let r = &self.run;
        if r.users == 0 || r.before_secs == 0 || r.down_secs == 0 || r.after_secs == 0 {
            bail!("[run]: users, before_secs, down_secs and after_secs must be at least 1");
        }
        crate::observe::check_topology(r.observe, &self.topology)?;
        let topology = self.topology()?;
        if let Some(h) = &self.hosts {
            if h.emulate < 2 {
                bail!("[hosts] emulate = {}: a partition needs at least 2 hosts", h.emulate);
            }
        }
        for f in &self.faults {
            self.validate_cut(f, &topology)?;
            let target = f.parse_target()?;
            let (Target::Instance { kind, .. } | Target::Role { kind, .. }) = &target;
            if !f.kind.applies_to(*kind) {
                bail!("target {:?}: a {:?} fault does not apply to {kind}", f.target, f.kind);
            }
            if (f.kind == FaultKind::KillBothPgpools) != (target == Target::Role { kind: *kind, role: "all".into() }) {
                bail!("target {:?}: \"pgpool all\" goes with kind = \"kill-both-pgpools\" and only with it", f.target);
            }
            if let Target::Instance { kind, index } = target {
                if index >= topology.count(kind) {
                    bail!("target {:?}: the topology has {} {kind} instance(s)", f.target, topology.count(kind));
                }
            }
        }
        Ok(())
    }

    /// A cut fault's cuts name instances of the topology, on `[hosts]`; of the other faults,
    /// `[hosts]` take only those [`FaultKind::on_hosts`] allows, aimed at "<kind> <index>".
    fn validate_cut(&self, f: &FaultSpec, topology: &infra::Topology) -> Result<()> {
        if f.kind != FaultKind::Cut {
            if !f.cut.is_empty() {
                bail!("target {:?}: `cut` goes with kind = \"cut\" only", f.target);
            }
            if self.hosts.is_some() {
                let (Target::Instance { kind, .. } | Target::Role { kind, .. }) = f.parse_target()?;
                if let Err(why) = f.kind.on_hosts(kind) {
                    bail!("target {:?}: {why}", f.target);
                }
                if matches!(f.parse_target()?, Target::Role { .. }) {
                    bail!("target {:?}: on [hosts] a fault names its instance (\"<kind> <index>\")", f.target);
                }
            }
            return Ok(());
        }
        if self.hosts.is_none() {
            bail!("target {:?}: a cut is between hosts: the file needs [hosts] emulate = N", f.target);
        }
        if f.cut.is_empty() {
            bail!("target {:?}: a cut fault needs `cut = [{{ from = [KIND, I], to = [KIND, J] }}, ...]`", f.target);
        }
        for c in &f.cut {
            c.check_port()?;
            for (kind, index) in [c.from, c.to] {
                if index >= topology.count(kind) {
                    bail!("cut {c}: the topology has {} {kind} instance(s)", topology.count(kind));
                }
            }
        }
        let Target::Instance { kind, index } = f.parse_target()? else {
            bail!("target {:?}: a cut's target is an instance (\"<kind> <index>\")", f.target)
        };
        if !f.cut.iter().any(|c| c.from == (kind, index) || c.to == (kind, index)) {
            bail!("target {:?} is an end of none of its cuts", f.target);
        }
        Ok(())
    }

    /// The infra topology: the file's, with the stage's web binary unless it names one, and its
    /// Prometheus with the exporters when `[run] observe` (crate::observe).
    pub fn topology(&self) -> Result<infra::Topology> {
        let (text, prometheus) = crate::observe::topology_text(self.run.observe, &self.topology)?;
        let overrides = infra::Overrides {
            prometheus: Some(prometheus),
            default_web_binary: Some(crate::matrix::web_binary(self.stage)),
            ..infra::Overrides::default()
        };
        infra::Topology::parse_with(&text, &overrides).context("[topology] of the faults file")
    }

    /// The planned time of the whole run: the loads and the checks after each (a guess), without
    /// starting the topology.
    pub fn planned_secs(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| self.run.kill_at().as_secs() - self.run.before_secs + self.run.load_secs(f).as_secs() + 5)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use infra::Kind;

    /// Loads bench/faults/<stage>.toml and checks what every stage's file must hold: a fault for
    /// each of `kinds`, the stage's web binary, `counts` instances per kind, every port inside
    /// `ports` (the faults command's range, less the Cassandra test ring's JMX 17199-17201), and
    /// a run shorter than `max_secs` of load and checks.
    fn check_file(stage: &str, kinds: &[Kind], counts: &[(Kind, usize)], max_secs: u64) -> FaultsFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("faults/{stage}.toml"));
        let f = FaultsFile::load(&path).unwrap();
        assert_eq!(f.stage.name(), stage);
        let targeted: Vec<Kind> = f
            .faults
            .iter()
            .map(|s| match s.parse_target().unwrap() {
                Target::Instance { kind, .. } | Target::Role { kind, .. } => kind,
            })
            .collect();
        for k in kinds {
            assert!(targeted.contains(k), "{stage}: no {k} fault");
        }
        let t = f.topology().unwrap();
        t.check_local().unwrap();
        assert_eq!(t.web.binary_or_default(), infra::beside_program(&format!("shopbench-{stage}")));
        for (k, n) in counts {
            assert_eq!(t.count(*k), *n, "{stage}: {k}");
            for i in 0..*n {
                let port = t.endpoint(*k, i).1;
                assert!(
                    (17202..17500).contains(&port),
                    "{stage}: {k} {i} on {port}: the faults command's ports are 17200-17499, less the Cassandra \
                     test ring's JMX 17199-17201"
                );
            }
        }
        assert!(f.planned_secs() < max_secs, "{stage}: {} s planned", f.planned_secs());
        // Issue 11's faults, in every stage.
        for kind in [
            FaultKind::Hang,
            FaultKind::Exhaust,
            FaultKind::KillDuringRejoin,
            FaultKind::KillPgpoolMain,
            FaultKind::KillBothPgpools,
        ] {
            assert!(f.faults.iter().any(|s| s.kind == kind), "{stage}: no {kind:?} fault");
        }
        assert!(
            f.faults.iter().any(|s| s.kind == FaultKind::Hang && s.target == "postgres 1"),
            "{stage}: backend hang"
        );
        assert!(f.race.users > 0, "{stage}: the race workload runs beside the load");
        // Observed: Prometheus every second, its exporters inside the faults command's ports.
        assert!(f.run.observe, "{stage}");
        assert_eq!((t.count(Kind::Prometheus), t.prometheus.as_ref().unwrap().scrape_interval.as_str()), (1, "1s"));
        for k in Kind::EXPORTERS.into_iter().chain([Kind::Prometheus]) {
            for i in 0..t.count(k) {
                let port = t.endpoint(k, i).1;
                assert!(
                    (17202..17500).contains(&port) && !(17270..17300).contains(&port),
                    "{stage}: {k} {i} on {port}"
                );
            }
        }
        f
    }

    const PG_TIER: [Kind; 4] = [Kind::Postgres, Kind::Pgpool, Kind::Web, Kind::Nginx];

    #[test]
    fn the_pg_faults_file_parses_with_one_fault_per_kind() {
        check_file("pg", &PG_TIER, &PG_TIER.map(|k| (k, 2)), 12 * 60);
    }

    #[test]
    fn the_redis_faults_file_kills_the_master_and_a_replica_as_well() {
        let counts = [PG_TIER.map(|k| (k, 2)).as_slice(), &[(Kind::Redis, 3), (Kind::Sentinel, 3)]].concat();
        // Started and stopped in well under a minute: the whole run within about 6 minutes.
        let f = check_file("redis", &[PG_TIER.as_slice(), &[Kind::Redis]].concat(), &counts, 15 * 60);
        let targets: Vec<&str> = f.faults.iter().map(|s| s.target.as_str()).collect();
        assert!(targets.contains(&"redis master") && targets.contains(&"redis replica"), "{targets:?}");
        let t = f.topology().unwrap();
        assert!(t.redis.port(0) >= 17300 && t.redis.port(2) < 17350, "Redis in 17300-17349");
        assert!(t.sentinel.section.port(0) >= 17350 && t.sentinel.section.port(2) < 17400, "sentinels in 17350-17399");
    }

    #[test]
    fn the_cassandra_faults_file_kills_a_node_of_the_ring_and_the_redis_master() {
        let counts =
            [PG_TIER.map(|k| (k, 2)).as_slice(), &[(Kind::Redis, 3), (Kind::Sentinel, 3), (Kind::Cassandra, 3)]]
                .concat();
        // The ring starts in about a minute: the whole run within about 8 minutes.
        let f =
            check_file("cassandra", &[PG_TIER.as_slice(), &[Kind::Redis, Kind::Cassandra]].concat(), &counts, 16 * 60);
        let t = f.topology().unwrap();
        let c = &t.cassandra;
        assert_eq!((c.native_port, c.storage_port, c.jmx_base_port), (17442, 17400, 17410));
        for i in 0..3 {
            for (_, port, what) in t.cassandra_other_ports(i) {
                assert!((17400..17500).contains(&port), "{what} on {port}");
            }
        }
        let budget = f.faults.iter().find(|s| s.target.starts_with("cassandra")).unwrap().restart_budget_secs;
        assert!(budget >= 40, "a node's restart takes 30-40 s: a budget of {budget} s would cut the load short");
    }

    #[test]
    fn targets_name_an_instance_or_a_role() {
        let spec = |t: &str| FaultSpec {
            kind: FaultKind::Kill,
            secs: None,
            sessions: None,
            cut: vec![],
            target: t.into(),
            restart_budget_secs: 5,
            note: String::new(),
        };
        assert_eq!(spec("pgpool 1").parse_target().unwrap(), Target::Instance { kind: infra::Kind::Pgpool, index: 1 });
        assert_eq!(
            spec("web primary").parse_target().unwrap(),
            Target::Role { kind: infra::Kind::Web, role: "primary".into() }
        );
        assert!(spec("pgpool").parse_target().is_err());
        assert!(spec("toaster 1").parse_target().is_err());
        let text = "stage = \"pg\"\n[run]\nobserve = false\n[topology]\nname = \"f\"\n[topology.postgres]\ncount = 1\nbase_port = 17290\n\
                    [[fault]]\ntarget = \"postgres 1\"\n";
        let err = format!("{:#}", FaultsFile::parse(text).unwrap_err());
        assert!(err.contains("has 1 postgres instance"), "{err}");
        let file = |fault: &str| {
            format!(
                "stage = \"pg\"\n[run]\nobserve = false\n[topology]\nname = \"f\"\n[topology.postgres]\ncount = 2\nbase_port = 17290\n\
                 [topology.pgpool]\ncount = 2\nbase_port = 17294\npcp_base_port = 17296\n[[fault]]\n{fault}\n"
            )
        };
        let f = FaultsFile::parse(&file("kind = \"hang\"\ntarget = \"postgres 1\"\nsecs = 20")).unwrap();
        assert_eq!((f.faults[0].kind, f.run.down(&f.faults[0])), (FaultKind::Hang, 20));
        assert_eq!(FaultsFile::parse(&file("target = \"pgpool 0\"")).unwrap().faults[0].kind, FaultKind::Kill);
        FaultsFile::parse(&file("kind = \"kill-both-pgpools\"\ntarget = \"pgpool all\"")).unwrap();
        for bad in [
            "kind = \"exhaust\"\ntarget = \"pgpool 0\"",
            "kind = \"kill-pgpool-main\"\ntarget = \"postgres 0\"",
            "kind = \"kill-both-pgpools\"\ntarget = \"pgpool 0\"",
            "kind = \"kill\"\ntarget = \"pgpool all\"",
            "kind = \"freeze\"\ntarget = \"pgpool 0\"",
        ] {
            assert!(FaultsFile::parse(&file(bad)).is_err(), "{bad}");
        }
    }

    /// The hosts files: on as many emulated hosts as they place instances on, every cut between
    /// two instances on different hosts, and (hosts-pg) the kills and hangs done on hosts.
    #[test]
    fn the_hosts_files_cut_between_instances_on_different_hosts() {
        let mut targets = vec![];
        for (name, n) in [("hosts-pg", 4), ("hosts-redis", 5), ("hosts-cassandra", 4)] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("faults/{name}.toml"));
            let f = FaultsFile::load(&path).unwrap();
            assert_eq!(f.hosts.as_ref().map(|h| h.emulate), Some(n), "{name}");
            assert!(f.faults.iter().all(|s| (s.kind == FaultKind::Cut) != s.cut.is_empty()), "{name}");
            let hosts: Vec<infra::hosts::SshHost> = (0..n)
                .map(|i| infra::hosts::SshHost {
                    name: format!("host{i}"),
                    address: format!("192.0.2.{}", i + 2).parse().unwrap(),
                    user: "root".into(),
                    port: 22,
                    key: "/k".into(),
                    known_hosts: None,
                    dir: "/var/tmp/shopbench".into(),
                })
                .collect();
            let placed = f.topology().unwrap().with_hosts(hosts, vec![]).unwrap();
            assert_eq!(placed.used_machines().len(), n, "{name}: every host is used");
            for s in &f.faults {
                if s.kind != FaultKind::Cut {
                    let Target::Instance { kind, .. } = s.parse_target().unwrap() else { panic!("{name}: {s:?}") };
                    assert_eq!(s.kind.on_hosts(kind), Ok(()), "{name}");
                    targets.push(format!("{} {:?} {}", f.stage, s.kind, s.target));
                    continue;
                }
                for c in &s.cut {
                    c.resolve(&placed).unwrap_or_else(|e| panic!("{name}: {c}: {e:#}"));
                }
                targets.push(format!("{} {}", f.stage, s.target));
            }
            assert!(f.planned_secs() < 8 * 60, "{name}: {} s planned", f.planned_secs());
        }
        // Issue 13 item 4's rows: a pgpool from a backend, a web instance from a pgpool, a
        // replica from its master and the sentinels, a Cassandra node from the other two (twice).
        assert_eq!(
            targets,
            [
                "pg pgpool 0",
                "pg web 0",
                "pg Kill web 0",
                "pg Kill nginx 0",
                "pg Kill pgpool 0",
                "pg Kill postgres 1",
                "pg Hang pgpool 0",
                "pg Hang web 1",
                "redis redis 1",
                "cassandra cassandra 2",
                "cassandra cassandra 2"
            ]
        );
    }

    /// The Cassandra partition cuts node 2's storage port from both peers and theirs from it
    /// (a node's storage connections go both ways), never the CQL port, and no web instance or
    /// nginx shares a host with a node (they reach all three over CQL throughout).
    #[test]
    fn the_cassandra_partition_cuts_node_2_off_on_the_storage_port_both_ways() {
        use infra::hosts::CutPort;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("faults/hosts-cassandra.toml");
        let f = FaultsFile::load(&path).unwrap();
        let t = f.topology().unwrap();
        let cassandra_hosts: Vec<String> = (0..3).map(|i| t.cassandra.host(i)).collect();
        for k in [Kind::Web, Kind::Nginx] {
            for i in 0..t.count(k) {
                let h = t.endpoint(k, i).0;
                assert!(!cassandra_hosts.contains(&h), "{k} {i} on {h}, a Cassandra node's host");
            }
        }
        let mut secs = vec![];
        for s in &f.faults {
            let mut pairs: Vec<(usize, usize)> = s
                .cut
                .iter()
                .map(|c| {
                    assert_eq!((c.from.0, c.to.0, c.port), (Kind::Cassandra, Kind::Cassandra, CutPort::Storage), "{c}");
                    (c.from.1, c.to.1)
                })
                .collect();
            pairs.sort_unstable();
            assert_eq!(pairs, [(0, 2), (1, 2), (2, 0), (2, 1)], "{}", s.target);
            secs.push(s.secs.unwrap());
        }
        assert_eq!(secs, [15, 30]);
    }

    #[test]
    fn a_cut_needs_hosts_and_hosts_take_cuts_and_the_kills_they_can_repair() {
        let file = |hosts: &str, fault: &str| {
            format!(
                "stage = \"pg\"\n{hosts}[run]\nobserve = false\n[topology]\nname = \"f\"\n\
                 [topology.postgres]\ncount = 2\nbase_port = 17290\nhosts = [\"host0\", \"host1\"]\n\
                 [topology.pgpool]\ncount = 2\nbase_port = 17294\npcp_base_port = 17296\n\
                 hosts = [\"host0\", \"host1\"]\n[[fault]]\n{fault}\n"
            )
        };
        let hosts = "[hosts]\nemulate = 2\n";
        let cut = "kind = \"cut\"\ntarget = \"pgpool 0\"\n\
                   cut = [{ from = [\"pgpool\", 0], to = [\"postgres\", 1] }]";
        let f = FaultsFile::parse(&file(hosts, cut)).unwrap();
        let c = f.faults[0].cut[0];
        assert_eq!((c.from, c.to), ((Kind::Pgpool, 0), (Kind::Postgres, 1)));
        let hang = FaultsFile::parse(&file(hosts, "kind = \"hang\"\ntarget = \"pgpool 0\"\nsecs = 5")).unwrap();
        assert_eq!(hang.faults[0].kind, FaultKind::Hang, "a pgpool's hang is done on hosts");
        for target in ["pgpool 0", "postgres 1"] {
            let kill = FaultsFile::parse(&file(hosts, &format!("target = \"{target}\""))).unwrap();
            assert_eq!(
                kill.faults[0].kind,
                FaultKind::Kill,
                "a kill of {target} is done on hosts (restarted over SSH)"
            );
        }
        let other_target = cut.replace("target = \"pgpool 0\"", "target = \"pgpool 1\"");
        let no_backend_2 = cut.replace("[\"postgres\", 1]", "[\"postgres\", 2]");
        let toaster = cut.replace("[\"postgres\", 1]", "[\"toaster\", 1]");
        let storage = cut.replace("to = [\"postgres\", 1] }", "to = [\"postgres\", 1], port = \"storage\" }");
        for (hosts, fault, why) in [
            ("", cut, "needs [hosts] emulate"),
            (hosts, "target = \"redis 0\"", "a kill of redis on [hosts] is not done yet"),
            (hosts, "kind = \"hang\"\ntarget = \"postgres 1\"", "a hang of postgres on [hosts] is not done yet"),
            (hosts, "kind = \"kill-pgpool-main\"\ntarget = \"pgpool 0\"", "not done yet"),
            (hosts, "kind = \"cut\"\ntarget = \"pgpool 0\"", "needs `cut = "),
            (hosts, other_target.as_str(), "an end of none of its cuts"),
            (hosts, no_backend_2.as_str(), "has 2 postgres instance(s)"),
            (hosts, toaster.as_str(), "invalid faults file"),
            (hosts, storage.as_str(), "only between two Cassandra instances"),
            ("[hosts]\nemulate = 1\n", cut, "at least 2 hosts"),
        ] {
            let err = format!("{:#}", FaultsFile::parse(&file(hosts, fault)).unwrap_err());
            assert!(err.contains(why), "{hosts}{fault}: {err}");
        }
    }

    /// Observing needs the section that gives Prometheus' port; off, the file runs as before.
    #[test]
    fn observing_needs_a_prometheus_section() {
        let text = "stage = \"pg\"\n[topology]\nname = \"f\"\n[topology.postgres]\ncount = 1\nbase_port = 17290\n\
                    [[fault]]\ntarget = \"postgres 0\"\n";
        let err = format!("{:#}", FaultsFile::parse(text).unwrap_err());
        assert!(err.contains("[run] observe = true needs [topology.prometheus]"), "{err}");
        let off = FaultsFile::parse(&text.replace("[topology]", "[run]\nobserve = false\n[topology]")).unwrap();
        assert_eq!(off.topology().unwrap().count(Kind::Prometheus), 0);
        let on =
            FaultsFile::parse(&text.replace("[[fault]]", "[topology.prometheus]\nport = 17291\n[[fault]]")).unwrap();
        let t = on.topology().unwrap();
        assert_eq!((t.count(Kind::Prometheus), t.count(Kind::PostgresExporter)), (1, 1));
    }

    /// A stage name outside the three used to be taken (any short name), and the run then
    /// skipped its cart check without a word: now the file is refused.
    #[test]
    fn a_stage_that_is_not_one_of_the_three_is_refused() {
        let text = |stage: &str| {
            format!(
                "stage = \"{stage}\"\n[run]\nobserve = false\n[topology]\nname = \"f\"\n[topology.postgres]\ncount = 1\nbase_port = 17290\n\
                 [[fault]]\ntarget = \"postgres 0\"\n"
            )
        };
        assert_eq!(FaultsFile::parse(&text("redis")).unwrap().stage, Stage::Redis);
        for bad in ["postgres", "Redis", "redis-2"] {
            let err = format!("{:#}", FaultsFile::parse(&text(bad)).unwrap_err());
            assert!(err.contains(&format!("unknown stage {bad:?}: one of pg, redis, cassandra")), "{err}");
        }
    }
}
