//! Instances placed on named hosts (`[[hosts]]`): which machine runs what, and the tiers in the
//! order a topology comes up across machines.

use std::collections::BTreeSet;
use std::net::IpAddr;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{Kind, Topology};
use crate::hosts::SshHost;

/// The kinds a topology with `[[hosts]]` places by name (issue 13: the three stages and
/// Prometheus); each exporter goes on the host of the server it observes.
const PLACEABLE: [Kind; 8] = [
    Kind::Postgres,
    Kind::Pgpool,
    Kind::Redis,
    Kind::Sentinel,
    Kind::Cassandra,
    Kind::Web,
    Kind::Nginx,
    Kind::Prometheus,
];

/// One step of bringing a topology up across machines: every host does its part of a tier before
/// any host starts the next one (pgpool needs every backend, the web every pgpool, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The backends, with their roles and passwords.
    Postgres,
    Pgpool,
    /// Database `shop`, created once through the first pgpool (on that pgpool's host).
    Database,
    /// The Redis instances: the master's host first (the replicas follow it).
    Redis,
    Sentinel,
    /// The Cassandra nodes: every host's at once (the control machine then waits for the ring).
    Cassandra,
    Web,
    Nginx,
    /// The exporters, each on its server's host, after every server they observe.
    Exporters,
    /// Prometheus, on the host `[prometheus] host` names, scraping every target at its address.
    Prometheus,
}

impl Tier {
    pub const ALL: [Tier; 10] = [
        Tier::Postgres,
        Tier::Pgpool,
        Tier::Database,
        Tier::Redis,
        Tier::Sentinel,
        Tier::Cassandra,
        Tier::Web,
        Tier::Nginx,
        Tier::Exporters,
        Tier::Prometheus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Postgres => "postgres",
            Tier::Pgpool => "pgpool",
            Tier::Database => "database",
            Tier::Redis => "redis",
            Tier::Sentinel => "sentinel",
            Tier::Cassandra => "cassandra",
            Tier::Web => "web",
            Tier::Nginx => "nginx",
            Tier::Exporters => "exporters",
            Tier::Prometheus => "prometheus",
        }
    }

    pub fn parse(s: &str) -> Result<Tier> {
        match Tier::ALL.into_iter().find(|t| t.name() == s) {
            Some(t) => Ok(t),
            None => bail!("unknown tier {s:?} (one of {})", Tier::ALL.map(Tier::name).join(", ")),
        }
    }

    /// The kinds of the processes this tier starts, in start order (the database tier starts none).
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Tier::Postgres => &[Kind::Postgres],
            Tier::Pgpool => &[Kind::Pgpool],
            Tier::Database => &[],
            Tier::Redis => &[Kind::Redis],
            Tier::Sentinel => &[Kind::Sentinel],
            Tier::Cassandra => &[Kind::Cassandra],
            Tier::Web => &[Kind::Web],
            Tier::Nginx => &[Kind::Nginx],
            Tier::Exporters => &Kind::EXPORTERS,
            Tier::Prometheus => &[Kind::Prometheus],
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Topology {
    /// Are the instances on other machines (`[[hosts]]`), started over SSH?
    pub fn is_remote(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// This topology on `hosts` (its sections name them), `clients` also let in; checked again.
    pub fn with_hosts(mut self, hosts: Vec<SshHost>, clients: Vec<IpAddr>) -> Result<Topology> {
        self.hosts = hosts;
        self.clients = clients;
        self.validate()?;
        Ok(self)
    }

    /// The host of `[[hosts]]` called `name`.
    pub fn machine_named(&self, name: &str) -> Option<&SshHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host instance `i` of `kind` is placed on (none on loopback); an exporter's is its
    /// server's.
    pub fn machine_of(&self, kind: Kind, i: usize) -> Option<&SshHost> {
        self.machine_named(&self.endpoint_as_written(kind.observed().unwrap_or(kind), i).0)
    }

    /// The indices of `kind` that run on `machine` (every index when `machine` is none).
    pub fn instances_on(&self, kind: Kind, machine: Option<&str>) -> Vec<usize> {
        (0..self.count(kind))
            .filter(|i| machine.is_none() || self.machine_of(kind, *i).map(|h| h.name.as_str()) == machine)
            .collect()
    }

    /// The hosts that run at least one instance, in `[[hosts]]` order.
    pub fn used_machines(&self) -> Vec<&SshHost> {
        self.hosts
            .iter()
            .filter(|h| PLACEABLE.iter().any(|k| !self.instances_on(*k, Some(&h.name)).is_empty()))
            .collect()
    }

    /// Where database `shop` is made: on the host of the first pgpool, through it (without
    /// pgpool: of the first backend); none without PostgreSQL.
    pub fn database_maker(&self) -> Option<(Kind, usize)> {
        match (self.count(Kind::Postgres), self.count(Kind::Pgpool)) {
            (0, _) => None,
            (_, 0) => Some((Kind::Postgres, 0)),
            _ => Some((Kind::Pgpool, 0)),
        }
    }

    /// Does `machine` (none: loopback, every instance) have a part in `tier`?
    pub fn has_part(&self, tier: Tier, machine: Option<&str>) -> bool {
        match tier {
            Tier::Database => self.database_maker().is_some_and(|(k, i)| self.instances_on(k, machine).contains(&i)),
            _ => tier.kinds().iter().any(|k| !self.instances_on(*k, machine).is_empty()),
        }
    }

    /// The addresses PostgreSQL and pgpool-II accept connections from: every host of the
    /// topology, the extra `clients`, and loopback (a host's own tools).
    pub fn allowed_clients(&self) -> BTreeSet<IpAddr> {
        let mut set: BTreeSet<IpAddr> = self.hosts.iter().map(|h| h.address).collect();
        set.extend(self.clients.iter().copied());
        set.insert(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        set
    }
}

/// With `[[hosts]]`: unique names and addresses, every placed kind on named hosts, and only the
/// kinds that can be placed yet.
pub(super) fn validate(t: &Topology) -> Result<()> {
    if !t.is_remote() {
        if !t.clients.is_empty() {
            bail!("`clients` is read only with [[hosts]] (loopback servers trust local connections)");
        }
        return Ok(());
    }
    for (a, h) in t.hosts.iter().enumerate() {
        if h.name.is_empty() || !h.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("[[hosts]] name {:?}: use letters, digits, '-' and '_'", h.name);
        }
        if let Some(b) = t.hosts[a + 1..].iter().find(|b| b.name == h.name || b.address == h.address) {
            bail!("[[hosts]] {} and {} share a name or an address", h.name, b.name);
        }
        if !h.dir.is_absolute() || !h.dir.to_str().is_some_and(|d| d.chars().all(|c| c.is_ascii_graphic() && c != '\''))
        {
            bail!("[[hosts]] {}: dir {:?} must be an absolute path without spaces or quotes", h.name, h.dir);
        }
    }
    // The committed files' tokens are public: off loopback the run makes its own (secrets.json).
    if t.web.admin_token != super::default_admin_token() {
        bail!(
            "[web] admin_token: with [[hosts]] the web instances get an admin token made per run (the run dir's \
             secrets.json, `web_admin`); leave admin_token out"
        );
    }
    for kind in Kind::ALL {
        if t.count(kind) == 0 {
            continue;
        }
        if !PLACEABLE.contains(&kind) && kind.observed().is_none() {
            bail!(
                "{kind}: a topology with [[hosts]] places only postgres, pgpool, redis, sentinel, cassandra, web, \
                 nginx, prometheus and the exporters (issue 13)"
            );
        }
        for i in 0..t.count(kind) {
            if kind == Kind::Prometheus && t.machine_of(kind, i).is_none() {
                bail!(
                    "[prometheus] host = {:?}: with [[hosts]] Prometheus runs on a host of [[hosts]]: name one \
                     (host = \"NAME\"), the one whose address the bench and Grafana reach it at",
                    t.endpoint_as_written(kind, i).0
                );
            }
            if t.machine_of(kind, i).is_none() {
                let names: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
                bail!(
                    "{kind} {i} is on {:?}, which is no host of [[hosts]] ({}): name hosts in `hosts = [...]`",
                    t.endpoint_as_written(kind, i).0,
                    names.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "name = \"m\"\n\
        [postgres]\ncount = 2\nbase_port = 5432\nhosts = [\"db1\", \"db2\"]\n\
        [pgpool]\ncount = 1\nbase_port = 9999\nhosts = [\"db1\"]\n\
        [web]\ncount = 2\nbase_port = 8080\nhosts = [\"web1\"]\n\
        [[hosts]]\nname = \"db1\"\naddress = \"192.0.2.1\"\nkey = \"/k\"\n\
        [[hosts]]\nname = \"db2\"\naddress = \"192.0.2.2\"\nkey = \"/k\"\n\
        [[hosts]]\nname = \"web1\"\naddress = \"192.0.2.3\"\nkey = \"/k\"\nuser = \"deploy\"\nport = 2222\n\
        [[hosts]]\nname = \"spare\"\naddress = \"192.0.2.4\"\nkey = \"/k\"\n";

    #[test]
    fn instances_are_placed_on_named_hosts_and_listen_on_their_addresses() {
        let t = Topology::parse(HOSTS).unwrap();
        assert!(t.is_remote());
        assert_eq!(t.endpoint(Kind::Postgres, 1), ("192.0.2.2".to_string(), 5433));
        assert_eq!(t.endpoint(Kind::Web, 1), ("192.0.2.3".to_string(), 8081));
        assert_eq!(t.machine_of(Kind::Pgpool, 0).map(|h| h.name.as_str()), Some("db1"));
        assert_eq!(t.instances_on(Kind::Postgres, Some("db2")), vec![1]);
        assert_eq!(t.instances_on(Kind::Web, Some("web1")), vec![0, 1]);
        assert_eq!(t.used_machines().iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["db1", "db2", "web1"]);
        assert!(t.has_part(Tier::Database, Some("db1")) && !t.has_part(Tier::Database, Some("db2")));
        assert!(!t.has_part(Tier::Pgpool, Some("web1")));
        let web1 = t.machine_named("web1").unwrap();
        assert_eq!((web1.user.as_str(), web1.port), ("deploy", 2222));
        let allowed: Vec<String> = t.allowed_clients().iter().map(IpAddr::to_string).collect();
        assert_eq!(allowed, ["127.0.0.1", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]);
        // A loopback topology places nothing anywhere.
        let local = Topology::parse("name = \"l\"\n[postgres]\ncount = 2\nbase_port = 5000\n").unwrap();
        assert!(!local.is_remote() && local.machine_of(Kind::Postgres, 0).is_none());
        assert_eq!(local.instances_on(Kind::Postgres, None), vec![0, 1]);
    }

    #[test]
    fn redis_and_sentinels_are_placed_like_the_other_kinds() {
        let redis = "[redis]\ncount = 2\nbase_port = 6379\nhosts = [\"db2\", \"db1\"]\n\
            [sentinel]\ncount = 3\nbase_port = 26379\nhosts = [\"db1\", \"db2\", \"web1\"]\n";
        let t = Topology::parse(&format!("{HOSTS}{redis}")).unwrap();
        assert_eq!(t.endpoint(Kind::Redis, 0), ("192.0.2.2".to_string(), 6379));
        assert_eq!(t.endpoint(Kind::Sentinel, 2), ("192.0.2.3".to_string(), 26381));
        assert!(t.has_part(Tier::Redis, Some("db1")) && !t.has_part(Tier::Redis, Some("web1")));
        assert!(t.has_part(Tier::Sentinel, Some("web1")));
        let on_spare = format!("{HOSTS}{}", redis.replace("\"db2\", \"db1\"]", "\"db2\", \"spare\"]"));
        let used = Topology::parse(&on_spare).unwrap();
        assert!(used.used_machines().iter().any(|h| h.name == "spare"), "a host with only a replica is used");
    }

    #[test]
    fn cassandra_nodes_are_placed_one_per_host_at_its_address() {
        let ring = "[cassandra]\ncount = 3\nhosts = [\"db1\", \"db2\", \"web1\"]\nheap_mb = 256\n";
        let t = Topology::parse(&format!("{HOSTS}{ring}")).unwrap();
        assert_eq!(t.endpoint(Kind::Cassandra, 2), ("192.0.2.3".to_string(), 9042));
        assert_eq!(t.cassandra_host(1), "192.0.2.2");
        assert_eq!(t.cassandra_other_ports(0)[0], ("192.0.2.1".to_string(), 7000, "cassandra 0 (storage)".to_string()));
        assert!(t.has_part(Tier::Cassandra, Some("web1")) && !t.has_part(Tier::Cassandra, Some("spare")));
        let two_on_one = ring.replace("\"web1\"]", "\"db1\"]");
        let err = Topology::parse(&format!("{HOSTS}{two_on_one}")).unwrap_err();
        assert!(format!("{err:#}").contains("hosts must differ"), "{err:#}");
    }

    #[test]
    fn prometheus_goes_where_named_and_each_exporter_beside_its_server() {
        let t = Topology::parse(&format!(
            "{HOSTS}[nginx]\ncount = 1\nbase_port = 8000\nhosts = [\"web1\"]\n\
            [prometheus]\nport = 9090\nhost = \"spare\"\nexporter_base_port = 9100\n"
        ))
        .unwrap();
        assert_eq!(t.endpoint(Kind::Prometheus, 0), ("192.0.2.4".to_string(), 9090));
        assert_eq!(t.endpoint(Kind::PostgresExporter, 1), ("192.0.2.2".to_string(), 9101));
        assert_eq!(t.machine_of(Kind::PostgresExporter, 1).map(|h| h.name.as_str()), Some("db2"));
        assert_eq!(t.instances_on(Kind::PgpoolExporter, Some("db1")), vec![0]);
        assert_eq!(t.endpoint(Kind::NginxExporter, 0), ("192.0.2.3".to_string(), 9103));
        assert!(t.has_part(Tier::Exporters, Some("db2")) && !t.has_part(Tier::Exporters, Some("spare")));
        assert!(t.has_part(Tier::Prometheus, Some("spare")) && !t.has_part(Tier::Prometheus, Some("db1")));
        assert!(t.used_machines().iter().any(|h| h.name == "spare"), "Prometheus' host is used");
        assert_eq!(Tier::parse("exporters").unwrap(), Tier::Exporters);
    }

    #[test]
    fn what_cannot_be_placed_yet_is_refused() {
        let err = |text: &str| Topology::parse(text).unwrap_err().to_string();
        let unknown = HOSTS.replace("hosts = [\"db1\", \"db2\"]", "hosts = [\"db1\", \"db3\"]");
        assert!(err(&unknown).contains("postgres 1 is on \"db3\", which is no host"), "{}", err(&unknown));
        let prometheus = format!("{HOSTS}[prometheus]\nport = 9090\n");
        assert!(err(&prometheus).contains("Prometheus runs on a host of [[hosts]]"), "{}", err(&prometheus));
        let named = HOSTS.replace("hosts = [\"web1\"]\n", "hosts = [\"web1\"]\nadmin_token = \"public\"\n");
        assert!(err(&named).contains("an admin token made per run"), "{}", err(&named));
        let twice = HOSTS.replace("192.0.2.4", "192.0.2.1");
        assert!(err(&twice).contains("share a name or an address"), "{}", err(&twice));
        let clients = "name = \"l\"\nclients = [\"192.0.2.9\"]\n[postgres]\ncount = 1\nbase_port = 5000\n";
        assert!(err(clients).contains("`clients` is read only with [[hosts]]"), "{}", err(clients));
        assert_eq!(Tier::parse("pgpool").unwrap(), Tier::Pgpool);
        assert_eq!(Tier::parse("sentinel").unwrap(), Tier::Sentinel);
        assert!(Tier::parse("exporter").is_err());
    }
}
