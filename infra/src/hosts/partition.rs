//! Network partitions between hosts (issue 13): a [`Cut`] drops, on one host, every packet to and
//! from a peer (or only those of some of the peer's ports), with nftables rules in a table of
//! their own. The rules are applied over SSH like everything else done to a host: on an emulated
//! host sshd runs inside its network namespace, so they land in that namespace, and on a real
//! machine in its own. Dropping (not rejecting) is what a partition does: a connection over the
//! cut neither fails nor answers until a timeout or the heal, and established ones freeze too.
//!
//! Each cut is a pair of base chains named after it: applying one again replaces its rules
//! (idempotent), healing one deletes its chains (idempotent), [`SshHost::heal_all`] deletes the
//! table. A namespace's rules go with the namespace (emulate-down); `shopbench-infra down` heals
//! every host of a topology.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::SshHost;
use crate::topology::{Kind, Topology};

/// The table every cut lives in (`inet`: IPv4 and IPv6).
pub const TABLE: &str = "shopbench_partition";
const NFT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which of the peer's traffic a cut drops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ports {
    /// Everything between the two hosts.
    All,
    /// TCP to these ports of the peer, and what the peer sends from them: this host can no longer
    /// reach the peer's servers on those ports; the other traffic between them flows.
    Only(Vec<u16>),
}

/// One host cut off from a peer, both ways, applied on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub peer: IpAddr,
    pub ports: Ports,
}

impl Cut {
    /// The chains' name part: the same cut always gets the same name.
    fn id(&self) -> String {
        let peer: String =
            self.peer.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        match &self.ports {
            Ports::All => format!("{peer}_all"),
            Ports::Only(ports) => {
                let mut p = ports.clone();
                p.sort_unstable();
                p.dedup();
                format!("{peer}_{}", p.iter().map(u16::to_string).collect::<Vec<_>>().join("_"))
            }
        }
    }

    /// The rules' matches for packets going out to the peer and coming in from it.
    fn matches(&self) -> (String, String) {
        let family = if self.peer.is_ipv4() { "ip" } else { "ip6" };
        let peer = self.peer;
        match &self.ports {
            Ports::All => (format!("{family} daddr {peer}"), format!("{family} saddr {peer}")),
            Ports::Only(ports) => {
                let set = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
                (
                    format!("{family} daddr {peer} tcp dport {{ {set} }}"),
                    format!("{family} saddr {peer} tcp sport {{ {set} }}"),
                )
            }
        }
    }
}

/// Which port of the `to` instance an [`InstanceCut`] drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutPort {
    /// The port clients use ([`Topology::endpoint`]): a backend's, a pgpool's, a Cassandra
    /// node's CQL port.
    #[default]
    Serve,
    /// A Cassandra node's storage (inter-node and gossip) port: the CQL port is the same on
    /// every node and every client reaches every node on it, so cutting it does not separate a
    /// node from its peers at all. Only between two Cassandra instances.
    Storage,
}

/// One instance of a topology with `[[hosts]]` cut off from another: `from`'s host no longer
/// reaches `to`'s port on `to`'s host (nor hears back from it). E.g. a pgpool from one backend.
/// As a bench faults file writes it: `{ from = ["pgpool", 0], to = ["postgres", 1] }`, or
/// `{ from = ["cassandra", 2], to = ["cassandra", 0], port = "storage" }`. One direction only:
/// connections `to`'s host opens to `from`'s ports still flow (a node's storage connections go
/// both ways: cut each way to separate two nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceCut {
    pub from: (Kind, usize),
    pub to: (Kind, usize),
    #[serde(default, skip_serializing_if = "is_serve")]
    pub port: CutPort,
}

fn is_serve(p: &CutPort) -> bool {
    *p == CutPort::Serve
}

impl InstanceCut {
    /// The host the rules go on and the [`Cut`] there.
    pub fn resolve(&self, t: &Topology) -> Result<(SshHost, Cut)> {
        let ((fk, fi), (tk, ti)) = (self.from, self.to);
        let from = t.machine_of(fk, fi).with_context(|| format!("{fk} {fi} is on no host of [[hosts]]"))?;
        let to = t.machine_of(tk, ti).with_context(|| format!("{tk} {ti} is on no host of [[hosts]]"))?;
        if from.name == to.name {
            anyhow::bail!("{fk} {fi} and {tk} {ti} are both on {}: a cut is between hosts", from.name);
        }
        self.check_port()?;
        let port = match self.port {
            CutPort::Serve => t.endpoint(tk, ti).1,
            CutPort::Storage => t.cassandra.storage_port,
        };
        Ok((from.clone(), Cut { peer: to.address, ports: Ports::Only(vec![port]) }))
    }

    /// The storage port is a Cassandra node's, cut from another node: refused otherwise.
    pub fn check_port(&self) -> Result<()> {
        if self.port == CutPort::Storage && (self.from.0 != Kind::Cassandra || self.to.0 != Kind::Cassandra) {
            anyhow::bail!("{self}: the storage port is cut only between two Cassandra instances");
        }
        Ok(())
    }

    pub fn apply(&self, t: &Topology) -> Result<()> {
        let (host, cut) = self.resolve(t)?;
        host.cut(&cut)
    }

    pub fn heal(&self, t: &Topology) -> Result<()> {
        let (host, cut) = self.resolve(t)?;
        host.heal(&cut)
    }
}

impl std::fmt::Display for InstanceCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((fk, fi), (tk, ti)) = (self.from, self.to);
        write!(f, "{fk} {fi} -/-> {tk} {ti}")?;
        match self.port {
            CutPort::Serve => Ok(()),
            CutPort::Storage => write!(f, " (storage)"),
        }
    }
}

/// The nft script that declares the cut's two chains (a no-op when they exist).
fn declare(script: &mut String, cut: &Cut) {
    let id = cut.id();
    let _ = writeln!(script, "table inet {TABLE} {{}}");
    for (dir, hook) in [("out", "output"), ("in", "input")] {
        let _ = writeln!(
            script,
            "add chain inet {TABLE} {dir}_{id} {{ type filter hook {hook} priority 0; policy accept; }}"
        );
    }
}

/// The nft script applying `cut` (its chains emptied first, so applying twice changes nothing).
pub fn cut_script(cut: &Cut) -> String {
    let mut script = String::new();
    declare(&mut script, cut);
    let id = cut.id();
    let (out, inn) = cut.matches();
    for (dir, m) in [("out", out), ("in", inn)] {
        let _ = writeln!(script, "flush chain inet {TABLE} {dir}_{id}");
        let _ = writeln!(script, "add rule inet {TABLE} {dir}_{id} {m} drop");
    }
    script
}

/// The nft script removing `cut` (declared first, so healing what is not cut succeeds).
pub fn heal_script(cut: &Cut) -> String {
    let mut script = String::new();
    declare(&mut script, cut);
    let id = cut.id();
    for dir in ["out", "in"] {
        let _ = writeln!(script, "delete chain inet {TABLE} {dir}_{id}");
    }
    script
}

impl SshHost {
    /// Cuts this host off from `cut.peer` (both ways) until [`SshHost::heal`]; idempotent.
    pub fn cut(&self, cut: &Cut) -> Result<()> {
        self.nft(&cut_script(cut)).with_context(|| format!("cutting {} off from {}", self.name, cut.peer))
    }

    /// Lets the traffic `cut` dropped through again; idempotent.
    pub fn heal(&self, cut: &Cut) -> Result<()> {
        self.nft(&heal_script(cut)).with_context(|| format!("healing {}'s cut from {}", self.name, cut.peer))
    }

    /// Removes every cut of this host (the whole table); idempotent.
    pub fn heal_all(&self) -> Result<()> {
        // A machine without nft has no cut to heal (scripts/install brings it on `up`).
        let script = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
        self.run(&format!("command -v nft >/dev/null || exit 0; {}", nft_line(&script)), NFT_TIMEOUT)
            .map(drop)
            .with_context(|| format!("healing every cut of {}", self.name))
    }

    /// The cuts' rules now on the host (`nft list table`), empty when there is none.
    pub fn cut_rules(&self) -> Result<String> {
        self.run(&format!("nft list table inet {TABLE} 2>/dev/null || true"), NFT_TIMEOUT)
    }

    /// Runs an nft script on the host in one transaction (all of it or nothing).
    fn nft(&self, script: &str) -> Result<()> {
        self.run(&nft_line(script), NFT_TIMEOUT).map(drop)
    }
}

/// The shell line feeding `script` to nft.
fn nft_line(script: &str) -> String {
    format!("nft -f - <<'SHOPBENCH_NFT'\n{script}SHOPBENCH_NFT\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_named_by_its_peer_and_ports_and_drops_both_ways() {
        let cut = Cut { peer: "10.231.0.3".parse().unwrap(), ports: Ports::Only(vec![26433, 26432, 26433]) };
        let s = cut_script(&cut);
        assert!(s.contains("add chain inet shopbench_partition out_10_231_0_3_26432_26433 { type filter hook output"));
        assert!(s.contains("add rule inet shopbench_partition out_10_231_0_3_26432_26433 ip daddr 10.231.0.3 tcp dport { 26433, 26432, 26433 } drop"));
        assert!(s.contains("add rule inet shopbench_partition in_10_231_0_3_26432_26433 ip saddr 10.231.0.3 tcp sport"));
        // Applying again first empties the chains: no rule twice.
        assert!(s.find("flush chain inet shopbench_partition out_").unwrap() < s.find("add rule").unwrap());
        let h = heal_script(&cut);
        assert!(h.contains("delete chain inet shopbench_partition in_10_231_0_3_26432_26433"));
        let all = Cut { peer: "fd00::7".parse().unwrap(), ports: Ports::All };
        assert!(cut_script(&all).contains("out_fd00__7_all ip6 daddr fd00::7 drop"));
    }

    /// A cut between two Cassandra nodes can drop their storage port (the CQL port separates no
    /// node from its peers); anything else names the port clients use.
    #[test]
    fn a_storage_cut_drops_the_rings_storage_port_and_only_between_two_nodes() {
        let text = "name = \"x\"\n[postgres]\ncount = 1\nbase_port = 5000\nhosts = [\"h0\"]\n\
                    [cassandra]\ncount = 3\nhosts = [\"h0\", \"h1\", \"h2\"]\nnative_port = 9042\nstorage_port = 7000\n";
        let host = |i: usize| SshHost {
            name: format!("h{i}"),
            address: format!("192.0.2.{}", i + 2).parse().unwrap(),
            user: "root".into(),
            port: 22,
            key: "/k".into(),
            known_hosts: None,
            dir: "/d".into(),
        };
        let t = Topology::parse(text).unwrap().with_hosts((0..3).map(host).collect(), vec![]).unwrap();
        let cut: InstanceCut =
            toml::from_str("from = [\"cassandra\", 2]\nto = [\"cassandra\", 0]\nport = \"storage\"").unwrap();
        assert_eq!(cut.port, CutPort::Storage);
        assert_eq!(cut.to_string(), "cassandra 2 -/-> cassandra 0 (storage)");
        let (on, c) = cut.resolve(&t).unwrap();
        assert_eq!(
            (on.name.as_str(), c),
            ("h2", Cut { peer: "192.0.2.2".parse().unwrap(), ports: Ports::Only(vec![7000]) })
        );
        // The default is the serving port: a node's CQL port.
        let serve: InstanceCut = toml::from_str("from = [\"cassandra\", 2]\nto = [\"cassandra\", 0]").unwrap();
        assert_eq!(serve.port, CutPort::Serve);
        assert_eq!(serve.resolve(&t).unwrap().1.ports, Ports::Only(vec![9042]));
        let to_backend = InstanceCut { from: (Kind::Cassandra, 1), to: (Kind::Postgres, 0), port: CutPort::Storage };
        let err = format!("{:#}", to_backend.resolve(&t).unwrap_err());
        assert!(err.contains("only between two Cassandra instances"), "{err}");
        assert!(toml::from_str::<InstanceCut>("from = [\"cassandra\", 2]\nto = [\"cassandra\", 0]\nport = \"gossip\"")
            .is_err());
    }
}
