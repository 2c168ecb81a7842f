//! What a running topology looks like: its processes, each pgpool's view of the backends, the
//! Redis roles, and the backends' consistency.

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::running::Running;
use crate::topology::Kind;
use crate::{check, pgpool, redis};

impl Running {
    /// Compares every table of every database on all backends, reading each backend directly.
    pub fn check_consistency(&self) -> Result<check::Report> {
        if self.is_control() {
            return crate::remote::check(self);
        }
        Ok(check::check(&self.endpoints(Kind::Postgres)))
    }

    /// Which processes are up and, for each pgpool, its view of every backend.
    pub fn status(&self) -> Status {
        if self.is_control() {
            return crate::remote::status(self);
        }
        let processes = self
            .state
            .processes
            .iter()
            .map(|p| ProcStatus {
                kind: p.kind,
                index: p.index,
                pid: p.pid,
                addr: p.addr(),
                up: p.alive(),
                orphans: p.orphans().into_iter().map(|(pid, _)| pid).collect(),
            })
            .collect();
        let pgpools = self
            .local(Kind::Pgpool)
            .into_iter()
            .map(|i| {
                let (host, port) = self.state.topology.endpoint(Kind::Pgpool, i);
                (i, pgpool::pool_nodes(&host, port).map_err(|e| format!("{e:#}")))
            })
            .collect();
        Status {
            processes,
            pgpools,
            redis: redis::status_lines(self),
            // On loopback the processes say enough (and a stopped node would hold status up).
            cassandra: vec![],
            notes: vec![],
        }
    }

    /// pgpool `i`'s status of backend `node` ("up", "down", ...) asked through pcp, which works
    /// even when the backends accept no new client session.
    pub fn pgpool_node_status(&self, i: usize, node: usize) -> Result<String> {
        pgpool::pcp_node_status(self, i, node, Duration::from_secs(10))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcStatus {
    pub kind: Kind,
    pub index: usize,
    pub pid: u32,
    pub addr: String,
    pub up: bool,
    /// When the main process is gone: its children still running (pgpool's keep serving the port
    /// until they are ended; `restart` and `down` end them).
    pub orphans: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub processes: Vec<ProcStatus>,
    /// For each pgpool: its view of the backends, or why it could not be asked.
    pub pgpools: Vec<(usize, Result<Vec<pgpool::NodeView>, String>)>,
    /// For each Redis instance its role, for each sentinel the master it names.
    pub redis: Vec<String>,
    /// For each Cassandra node the peers it knows (asked from the control machine of `[[hosts]]`).
    #[serde(default)]
    pub cassandra: Vec<String>,
    /// What could not be asked (a host of `[[hosts]]` that did not answer).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Status {
    pub fn is_up(&self, kind: Kind, index: usize) -> bool {
        self.processes.iter().any(|p| p.kind == kind && p.index == index && p.up)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.processes {
            let label = format!("{} {}", p.kind, p.index);
            write!(f, "{label:<14} {:<22} pid {:<8} {}", p.addr, p.pid, if p.up { "up" } else { "DOWN" })?;
            if p.orphans.is_empty() {
                writeln!(f)?;
            } else {
                let pids: Vec<String> = p.orphans.iter().map(u32::to_string).collect();
                writeln!(
                    f,
                    " (main process gone, {} orphaned children still running, may serve its port: pids {})",
                    p.orphans.len(),
                    pids.join(" ")
                )?;
            }
        }
        for (i, view) in &self.pgpools {
            match view {
                Ok(nodes) => {
                    let nodes: Vec<String> = nodes
                        .iter()
                        .map(|n| format!("node {} {}:{} {}", n.node_id, n.host, n.port, n.status))
                        .collect();
                    writeln!(f, "pgpool {i} sees: {}", nodes.join(", "))?;
                }
                Err(e) => writeln!(f, "pgpool {i} does not answer: {e}")?,
            }
        }
        for line in self.redis.iter().chain(&self.cassandra).chain(&self.notes) {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}
