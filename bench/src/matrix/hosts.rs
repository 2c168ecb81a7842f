//! A matrix on other machines (issue 13): the file's `[[topology.hosts]]`, or machines it makes
//! itself on this one (`[emulate]`: network namespaces with their own sshd,
//! infra::hosts::EmulatedHosts) for the run. Each configuration's instances go where the
//! topology's sections name (`hosts = [...]`, round-robin), the load clients on `[run]
//! client_hosts`. The phases that reach the servers with this machine's loopback tools are off.

use super::MatrixFile;
use anyhow::{bail, Context, Result};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::{Kind, Topology};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// `[emulate]`: machines the matrix makes on this one for its run (root), named as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emulate {
    pub hosts: Vec<String>,
}

/// A phase the matrix cannot run on hosts yet: its setting and why.
pub struct OffOnHosts {
    pub phase: &'static str,
    pub setting: &'static str,
    pub reason: &'static str,
}

/// The phases that must be off in a matrix on hosts, and why.
pub const OFF_ON_HOSTS: [OffOnHosts; 2] = [
    OffOnHosts {
        phase: "storage floor",
        setting: "[run] floor",
        reason: "it runs the stores' adapters inside the bench on this machine, with the web tier stopped by PID and \
                 without the run's per-host passwords, which infra does not hand out",
    },
    OffOnHosts {
        phase: "GET product vs pgbench (and redis-benchmark)",
        setting: "[compare] enabled",
        reason: "pgbench and redis-benchmark run on this machine as loopback tools (no per-run password), and the \
                 web tier is stopped by PID before them",
    },
];

fn is_on(m: &MatrixFile, setting: &str) -> bool {
    match setting {
        "[run] floor" => m.run.floor,
        _ => m.compare.enabled,
    }
}

/// The hosts named in `[[topology.hosts]]` (typed as infra reads them).
fn listed(m: &MatrixFile) -> Result<Vec<SshHost>> {
    match m.topology.get("hosts") {
        None => Ok(vec![]),
        Some(v) => v.clone().try_into().context("[[topology.hosts]]"),
    }
}

/// Checks a matrix on hosts before anything starts: one source of hosts, the loopback phases
/// off, the client hosts among the hosts, and every configuration placed on them.
pub fn validate(m: &MatrixFile) -> Result<()> {
    let machines = Machines::stand_ins(m)?;
    if machines.hosts.is_empty() {
        if !m.run.client_hosts.is_empty() {
            bail!("[run] client_hosts names hosts, but the matrix has none: [[topology.hosts]] or [emulate] hosts");
        }
        return Ok(());
    }
    if let Some(off) = OFF_ON_HOSTS.iter().find(|o| is_on(m, o.setting)) {
        bail!("{} = true: the {} cannot run on hosts yet ({}); set it to false", off.setting, off.phase, off.reason);
    }
    if m.run.client_hosts.len() > m.run.load_clients {
        bail!("[run] client_hosts lists {} hosts for {} load clients", m.run.client_hosts.len(), m.run.load_clients);
    }
    for name in &m.run.client_hosts {
        if machines.named(name).is_none() {
            bail!("[run] client_hosts: {name:?} is no host of the matrix ({})", machines.names().join(", "));
        }
    }
    for c in &m.configs {
        super::runner::topology_on(m, *c, &machines).with_context(|| format!("config {}", c.long()))?;
    }
    Ok(())
}

/// The host load client `k` runs on (none: this machine).
pub fn client_host(m: &MatrixFile, k: usize) -> Option<&str> {
    let hosts = &m.run.client_hosts;
    (!hosts.is_empty()).then(|| hosts[k % hosts.len()].as_str())
}

/// What ran on one host in a configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostUse {
    pub name: String,
    pub address: IpAddr,
    /// Instances ("postgres 0") and load clients ("load client 1").
    pub ran: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Loopback,
    /// `[[topology.hosts]]`: machines of their own (their processes are not in this /proc).
    Listed,
    /// `[emulate]`: namespaces of this machine, sharing its process table.
    Emulated,
}

/// The machines a matrix runs on.
pub struct Machines {
    hosts: Vec<SshHost>,
    /// Addresses also let in to PostgreSQL and pgpool (this machine, for emulated hosts).
    clients: Vec<IpAddr>,
    origin: Origin,
    made: Option<EmulatedHosts>,
}

impl Machines {
    /// The machines of `m`: none, the listed ones, or emulated ones made now under `dir` (root).
    pub fn make(m: &MatrixFile, dir: &Path) -> Result<Machines> {
        let Some(e) = &m.emulate else { return Self::stand_ins(m) };
        let made = EmulatedHosts::create(dir, e.hosts.len()).context("making the [emulate] hosts")?;
        let hosts = made
            .hosts()
            .into_iter()
            .zip(&e.hosts)
            .map(|(h, name)| SshHost { name: name.clone(), dir: h.dir.join("shopbench"), ..h })
            .collect();
        let clients = vec![made.control_address()];
        Ok(Machines { hosts, clients, origin: Origin::Emulated, made: Some(made) })
    }

    /// `m`'s machines without making any: emulated ones stand in with documentation addresses
    /// (for checks of the file).
    pub(crate) fn stand_ins(m: &MatrixFile) -> Result<Machines> {
        let listed = listed(m)?;
        match (&m.emulate, listed.is_empty()) {
            (Some(_), false) => bail!("[emulate] and [[topology.hosts]]: give the hosts one way"),
            (None, true) => Ok(Machines { hosts: vec![], clients: vec![], origin: Origin::Loopback, made: None }),
            (None, false) => Ok(Machines { hosts: listed, clients: vec![], origin: Origin::Listed, made: None }),
            (Some(e), true) => {
                if e.hosts.is_empty() {
                    bail!("[emulate] hosts is empty");
                }
                let hosts = e
                    .hosts
                    .iter()
                    .enumerate()
                    .map(|(i, name)| SshHost {
                        name: name.clone(),
                        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8)),
                        user: "root".into(),
                        port: 22,
                        key: "/nonexistent".into(),
                        known_hosts: None,
                        dir: "/var/tmp/shopbench".into(),
                    })
                    .collect();
                Ok(Machines { hosts, clients: vec![], origin: Origin::Emulated, made: None })
            }
        }
    }

    pub fn is_remote(&self) -> bool {
        self.origin != Origin::Loopback
    }

    pub fn emulated(&self) -> bool {
        self.origin == Origin::Emulated
    }

    /// Are the servers' processes in this machine's /proc (loopback, or hosts emulated here), so
    /// their CPU and memory can be read?
    pub fn local_processes(&self) -> bool {
        self.origin != Origin::Listed
    }

    pub fn named(&self, name: &str) -> Option<&SshHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// A configuration's topology on these machines (emulated ones are added here; listed ones
    /// are in it already).
    pub fn place(&self, t: Topology) -> Result<Topology> {
        match self.origin {
            Origin::Emulated => t.with_hosts(self.hosts.clone(), self.clients.clone()),
            _ => Ok(t),
        }
    }

    /// What ran on each host: `t`'s instances and the load clients on `client_hosts` (one name
    /// per client); hosts with nothing are left out.
    pub fn placement(&self, t: &Topology, client_hosts: &[Option<&str>]) -> Vec<HostUse> {
        self.hosts
            .iter()
            .map(|h| {
                let mut ran: Vec<String> = Kind::ALL
                    .into_iter()
                    .flat_map(|k| t.instances_on(k, Some(&h.name)).into_iter().map(move |i| format!("{k} {i}")))
                    .collect();
                let clients = client_hosts.iter().enumerate().filter(|(_, c)| **c == Some(h.name.as_str()));
                ran.extend(clients.map(|(k, _)| format!("load client {k}")));
                HostUse { name: h.name.clone(), address: h.address, ran }
            })
            .filter(|u| !u.ran.is_empty())
            .collect()
    }

    /// Ends the emulated hosts this run made (their namespaces and every process in them).
    pub fn down(self) -> Result<()> {
        match self.made {
            Some(made) => made.down(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
stage = "pg"
[run]
users = 4
load_clients = 2
client_hosts = ["load1", "load2"]
floor = false
observe = false
[compare]
enabled = false
[emulate]
hosts = ["db1", "db2", "pool1", "web1", "load1", "load2"]
[topology]
name = "hosts"
[topology.postgres]
base_port = 19800
hosts = ["db1", "db2"]
[topology.pgpool]
base_port = 19820
hosts = ["pool1"]
[topology.web]
base_port = 18200
hosts = ["web1"]
[topology.nginx]
base_port = 18300
hosts = ["web1"]
[[config]]
postgres = 2
pgpool = 1
web = 1
nginx = 1
"#;

    #[test]
    fn a_matrix_on_emulated_hosts_places_servers_and_clients_by_name() {
        let m = MatrixFile::parse(FILE).unwrap();
        let machines = Machines::stand_ins(&m).unwrap();
        assert!(machines.is_remote() && machines.emulated() && machines.local_processes());
        let t = super::super::runner::topology_on(&m, m.configs[0], &machines).unwrap();
        assert_eq!(t.endpoint(Kind::Postgres, 1).0, "192.0.2.2");
        let clients: Vec<Option<&str>> = (0..2).map(|k| client_host(&m, k)).collect();
        let used = machines.placement(&t, &clients);
        let ran = |name: &str| used.iter().find(|u| u.name == name).map(|u| u.ran.join(", "));
        assert_eq!(ran("db2").as_deref(), Some("postgres 1"));
        assert_eq!(ran("web1").as_deref(), Some("web 0, nginx 0"));
        assert_eq!(ran("load2").as_deref(), Some("load client 1"));
        assert_eq!(used.len(), 6);
    }

    /// Observed on hosts: Prometheus where `[topology.prometheus] host` names, each exporter beside
    /// its server; a Prometheus left on loopback is refused with the way out.
    #[test]
    fn an_observed_matrix_on_hosts_places_prometheus_and_the_exporters() {
        let observed = FILE.replace("observe = false", "observe = true");
        let prometheus = "[topology.prometheus]\nport = 19890\nexporter_base_port = 19860\n";
        let err = format!("{:#}", MatrixFile::parse(&format!("{observed}{prometheus}")).unwrap_err());
        assert!(err.contains("Prometheus runs on a host of [[hosts]]"), "{err}");
        let named = format!("{observed}{}", prometheus.replace("port = 19890", "port = 19890\nhost = \"load1\""));
        let m = MatrixFile::parse(&named).unwrap();
        let machines = Machines::stand_ins(&m).unwrap();
        let t = super::super::runner::topology_on(&m, m.configs[0], &machines).unwrap();
        assert_eq!(t.endpoint(Kind::Prometheus, 0), ("192.0.2.5".to_string(), 19890));
        let used = machines.placement(&t, &[Some("load1"), Some("load2")]);
        let ran = |name: &str| used.iter().find(|u| u.name == name).map(|u| u.ran.join(", "));
        assert_eq!(ran("db2").as_deref(), Some("postgres 1, postgres_exporter 1"));
        assert_eq!(ran("load1").as_deref(), Some("prometheus 0, load client 0"));
    }

    #[test]
    fn what_cannot_run_on_hosts_is_refused_with_its_reason() {
        let err = |text: &str| format!("{:#}", MatrixFile::parse(text).unwrap_err());
        let floor = FILE.replace("floor = false", "floor = true");
        assert!(err(&floor).contains("[run] floor = true: the storage floor cannot run on hosts"), "{}", err(&floor));
        let compare = FILE.replace("enabled = false", "enabled = true");
        assert!(err(&compare).contains("pgbench and redis-benchmark run on this machine"), "{}", err(&compare));
        let stranger = FILE.replace("\"load1\", \"load2\"]\nfloor", "\"load1\", \"load9\"]\nfloor");
        assert!(err(&stranger).contains("\"load9\" is no host of the matrix"), "{}", err(&stranger));
        let misplaced = FILE.replace("hosts = [\"pool1\"]", "hosts = [\"pool2\"]");
        assert!(err(&misplaced).contains("pgpool 0 is on \"pool2\", which is no host"), "{}", err(&misplaced));
        let both = format!("{FILE}[[topology.hosts]]\nname = \"x\"\naddress = \"192.0.2.9\"\nkey = \"/k\"\n");
        assert!(err(&both).contains("give the hosts one way"), "{}", err(&both));
        let loopback =
            FILE.replace("[emulate]\nhosts = [\"db1\", \"db2\", \"pool1\", \"web1\", \"load1\", \"load2\"]\n", "");
        assert!(err(&loopback).contains("client_hosts names hosts, but the matrix has none"), "{}", err(&loopback));
    }
}
