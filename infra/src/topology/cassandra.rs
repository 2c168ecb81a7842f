//! The `[cassandra]` section of a topology file and the Cassandra part of its validation.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::Topology;

/// `[cassandra]`: `count` nodes, node i on `hosts[i]` (an address on loopback, a host's name on
/// `[[hosts]]`: one node per address either way); the same ports on every host, except JMX (it
/// listens on 127.0.0.1 only): node i's is `jmx_base_port + i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSection {
    #[serde(default)]
    pub count: usize,
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    #[serde(default = "default_native_port")]
    pub native_port: u16,
    #[serde(default = "default_storage_port")]
    pub storage_port: u16,
    #[serde(default = "default_jmx_base_port")]
    pub jmx_base_port: u16,
    /// The Prometheus JMX exporter agent of each node (when the topology's Prometheus wants
    /// exporters): on the node's own address, the same port on every node.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
    /// Heap of each node (-Xms = -Xmx).
    #[serde(default = "default_heap_mb")]
    pub heap_mb: u32,
    /// Processors each node believes it has: it sizes its thread pools (request stages,
    /// compaction, flush, Netty, GC, JIT) and how many idle workers spin looking for work from
    /// it. A ring of 3 sharing a small machine should not each size for the whole machine.
    #[serde(default = "default_processors")]
    pub processors: u32,
}

fn default_hosts() -> Vec<String> {
    ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(String::from).to_vec()
}
fn default_native_port() -> u16 {
    9042
}
fn default_storage_port() -> u16 {
    7000
}
fn default_jmx_base_port() -> u16 {
    7199
}
fn default_metrics_port() -> u16 {
    7070
}
fn default_heap_mb() -> u32 {
    1024
}
fn default_processors() -> u32 {
    1
}

impl CassandraSection {
    pub fn none() -> Self {
        CassandraSection {
            count: 0,
            hosts: default_hosts(),
            native_port: default_native_port(),
            storage_port: default_storage_port(),
            jmx_base_port: default_jmx_base_port(),
            metrics_port: default_metrics_port(),
            heap_mb: default_heap_mb(),
            processors: default_processors(),
        }
    }

    pub fn host(&self, i: usize) -> String {
        self.hosts.get(i).cloned().unwrap_or_else(|| format!("127.0.0.{}", i + 1))
    }

    pub fn jmx_port(&self, i: usize) -> u16 {
        self.jmx_base_port + i as u16
    }

    /// The replication factor a keyspace on this ring can have: 3, or fewer nodes.
    pub fn replication_factor(&self) -> u32 {
        self.count.clamp(1, 3) as u32
    }
}

impl Topology {
    /// The address node i listens on: `hosts[i]`, or its host's address on `[[hosts]]`.
    pub fn cassandra_host(&self, i: usize) -> String {
        self.endpoint(super::Kind::Cassandra, i).0
    }

    /// Where node i's JMX exporter agent serves /metrics: (host, port, what).
    pub fn cassandra_metrics_addr(&self, i: usize) -> (String, u16, String) {
        (self.cassandra_host(i), self.cassandra.metrics_port, format!("cassandra {i} (metrics)"))
    }

    /// Every port of node i besides CQL: (host, port, what).
    pub fn cassandra_other_ports(&self, i: usize) -> [(String, u16, String); 2] {
        [
            (self.cassandra_host(i), self.cassandra.storage_port, format!("cassandra {i} (storage)")),
            ("127.0.0.1".to_string(), self.cassandra.jmx_port(i), format!("cassandra {i} (jmx)")),
        ]
    }
}

/// The Cassandra part of `Topology::validate`.
pub(super) fn validate(t: &Topology) -> Result<()> {
    let c = &t.cassandra;
    if c.count == 0 {
        return Ok(());
    }
    if c.count > c.hosts.len() {
        bail!("[cassandra] count {} needs as many hosts (one node per address), {} given", c.count, c.hosts.len());
    }
    let mut hosts = c.hosts[..c.count].to_vec();
    hosts.sort();
    hosts.dedup();
    if hosts.len() < c.count {
        bail!("[cassandra] hosts must differ (nodes share the ports, not the address)");
    }
    if c.heap_mb < 256 {
        bail!("[cassandra] heap_mb {} is too small for a node (at least 256)", c.heap_mb);
    }
    if c.jmx_base_port as usize + c.count > u16::MAX as usize {
        bail!("[cassandra] jmx_base_port out of range");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::topology::{Kind, Topology};

    #[test]
    fn the_section_needs_one_address_per_node() {
        let base = "name = \"x\"\n[cassandra]\n";
        let t = Topology::parse(&format!("{base}count = 3\n")).unwrap();
        assert_eq!(t.count(Kind::Cassandra), 3);
        assert_eq!(t.endpoint(Kind::Cassandra, 2), ("127.0.0.3".to_string(), 9042));
        assert_eq!(t.cassandra.jmx_port(2), 7201);
        assert_eq!(t.cassandra.replication_factor(), 3);
        let err = Topology::parse(&format!("{base}count = 2\nhosts = [\"127.0.0.1\", \"127.0.0.1\"]\n")).unwrap_err();
        assert!(format!("{err:#}").contains("hosts must differ"), "{err:#}");
        let err = Topology::parse(&format!("{base}count = 4\n")).unwrap_err();
        assert!(format!("{err:#}").contains("needs as many hosts"), "{err:#}");
        let err = Topology::parse(&format!("{base}count = 1\nheap_mb = 64\n")).unwrap_err();
        assert!(format!("{err:#}").contains("too small"), "{err:#}");
    }
}
