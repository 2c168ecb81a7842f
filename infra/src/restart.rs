//! Starting one killed instance again, with its config and ports (the faults command of the
//! bench kills an instance of each kind under load and brings it back with this).
//!
//! Each kind's arm reuses that kind's own start function, which re-renders the config from the
//! topology, records the new pid in state.json and waits until the instance is ready. A
//! PostgreSQL backend cannot simply start again: it missed the writes made while it was down, so
//! its arm is the scripted rejoin (`Running::rejoin_backend`: a fresh copy of a live backend,
//! attached on every pgpool). A pgpool starts again only once the backends it will write to are
//! identical: a pgpool killed between its COMMIT on the other nodes and on the main node can
//! leave a node different, which the surviving pgpools then detach (docs/replication.md).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::running::Running;
use crate::topology::Kind;
use crate::{cassandra, exporter, pgpool, prometheus, redis, web};

/// What a restart did and how long it took.
#[derive(Clone, Debug)]
pub struct RestartReport {
    pub kind: Kind,
    pub index: usize,
    /// From the call until the instance was ready (for a backend: attached on every pgpool and
    /// writes resumed).
    pub took: Duration,
    /// For a backend: how long the rejoin held writes.
    pub writes_paused: Option<Duration>,
    /// Backends rejoined first because a live pgpool had detached them (pgpool restarts).
    pub rejoined_first: Vec<usize>,
}

impl Running {
    /// Starts instance `index` of `kind` again after it was killed (or stopped), on the same
    /// address, ports, directories and config; state.json records its new pid. An instance that
    /// is still running is refused (kill or stop it first), except a PostgreSQL backend, whose
    /// rejoin stops it itself.
    pub fn restart(&mut self, kind: Kind, index: usize) -> Result<RestartReport> {
        let t0 = Instant::now();
        if self.is_control() {
            let (writes_paused, rejoined_first) = crate::remote::restart(self, kind, index)?;
            return Ok(RestartReport { kind, index, took: t0.elapsed(), writes_paused, rejoined_first });
        }
        let p = self.proc(kind, index)?.clone();
        if kind != Kind::Postgres && p.alive() {
            bail!("{} (pid {}) is running: kill or stop it before restarting it", p.label(), p.pid);
        }
        // What is left of a main process killed alone (pgpool's children keep its port) goes first.
        self.reap(kind, index);
        if kind != Kind::Postgres {
            self.end_orphans(kind, index)?;
        }
        let mut report =
            RestartReport { kind, index, took: Duration::ZERO, writes_paused: None, rejoined_first: vec![] };
        match kind {
            Kind::Postgres => {
                let r = self.rejoin_backend(index)?;
                report.writes_paused = Some(r.writes_paused);
            }
            Kind::Pgpool => {
                report.rejoined_first = self.rejoin_detached_backends()?;
                self.forget_stale_node_status(index)?;
                pgpool::start(self, index)?;
            }
            Kind::Web => web::start_web(self, index)?,
            Kind::Nginx => web::start_nginx(self, index)?,
            Kind::Prometheus => prometheus::start(self)?,
            exporter if exporter.observed().is_some() => exporter::start(self, exporter, index)?,
            // A Redis instance comes back as a replica of the current master, once the sentinels
            // have promoted another if it was the master; a sentinel from its rewritten config.
            Kind::Redis | Kind::Sentinel => redis::restart(self, kind, index)?,
            // Same data, config and ports; ready when the whole ring sees it up again.
            Kind::Cassandra => cassandra::restart(self, index)?,
            // Kinds added later (Redis, Sentinel, Cassandra) bring their arm here, built on their
            // own start function; until then they are refused by name.
            #[allow(unreachable_patterns)]
            _ => bail!("restarting a {kind} instance is not supported yet (add its arm in infra/src/restart.rs)"),
        }
        report.took = t0.elapsed();
        eprintln!("restart: {kind} {index} ready in {:.1?}", report.took);
        Ok(report)
    }

    /// Backends that some live pgpool has detached (a write diverged, or the backend failed),
    /// each rejoined from a live one; returns their indexes.
    fn rejoin_detached_backends(&mut self) -> Result<Vec<usize>> {
        let t = self.topology().clone();
        let mut detached = Vec::new();
        for p in 0..t.count(Kind::Pgpool) {
            if !self.proc(Kind::Pgpool, p).is_ok_and(|p| p.alive()) {
                continue;
            }
            let (host, port) = t.endpoint(Kind::Pgpool, p);
            for n in pgpool::pool_nodes_patient(&host, port)? {
                if n.status == "down" && !detached.contains(&n.node_id) {
                    detached.push(n.node_id);
                }
            }
        }
        detached.sort_unstable();
        for &node in &detached {
            eprintln!("restart: a live pgpool has backend {node} detached: rejoining it first");
            self.rejoin_backend(node).with_context(|| format!("rejoining backend {node} before a pgpool restart"))?;
        }
        Ok(detached)
    }

    /// pgpool keeps its view of the nodes in `pgpool_status` and starts from it. The view of a
    /// killed pgpool is outdated once the live pgpools see every node up (a node it had marked
    /// down was rejoined since), so the file goes and it starts seeing every node up. Without a
    /// live pgpool to vouch for the nodes the file stays.
    fn forget_stale_node_status(&self, index: usize) -> Result<()> {
        if self.saved_node_status(index).is_none() {
            return Ok(());
        }
        let t = self.topology();
        let mut vouched = false;
        for p in (0..t.count(Kind::Pgpool)).filter(|&p| p != index) {
            if !self.proc(Kind::Pgpool, p).is_ok_and(|p| p.alive()) {
                continue;
            }
            let (host, port) = t.endpoint(Kind::Pgpool, p);
            let nodes = pgpool::pool_nodes_patient(&host, port)?;
            if nodes.len() != t.count(Kind::Postgres) || nodes.iter().any(|n| n.status != "up") {
                return Ok(());
            }
            vouched = true;
        }
        if vouched {
            self.forget_node_status(index)?;
        }
        Ok(())
    }

    /// Removes pgpool `index`'s saved node status when it has a node not up (the caller knows
    /// the live pgpools see every node up: over SSH the control machine asked their hosts).
    pub(crate) fn forget_node_status(&self, index: usize) -> Result<()> {
        let Some((path, text)) = self.saved_node_status(index) else { return Ok(()) };
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        eprintln!("restart: pgpool {index}'s saved node status ({}) is outdated: removed", text.trim());
        Ok(())
    }

    /// pgpool `index`'s saved node status file and its text, when it has a node not up.
    fn saved_node_status(&self, index: usize) -> Option<(std::path::PathBuf, String)> {
        let path = self.instance_dir(Kind::Pgpool, index).join("pgpool_status");
        let text = std::fs::read_to_string(&path).ok()?;
        let all_up = text.lines().all(|l| l.trim().is_empty() || l.trim() == "up");
        (!all_up).then_some((path, text))
    }
}
