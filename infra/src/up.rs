//! `Topology::up`: checks the machine, then starts every server of a topology in order.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::process;
use crate::running::Running;
use crate::sizing::Sizing;
use crate::state::State;
use crate::tools::tool;
use crate::topology::{Kind, Tier, Topology};
use crate::{cassandra, exporter, prometheus, redis, rundir, web};

impl Topology {
    /// Starts every server of the topology in `run_dir` (created if needed): PostgreSQL backends,
    /// pgpool-II instances, database `shop`, then web, nginx and Prometheus when their counts are
    /// above 0. On any failure everything already started is stopped before the error returns.
    pub fn up(self, run_dir: impl AsRef<Path>) -> Result<Running> {
        let t0 = Instant::now();
        if self.is_remote() {
            return crate::remote::up(self, run_dir.as_ref());
        }
        self.check_local()?;
        let run_as = process::service_user()?;
        let dir = rundir::prepare(run_dir.as_ref(), run_as.as_ref())?;
        let socket_root = rundir::socket_root(&dir)?;
        let web_binary =
            if self.count(Kind::Web) > 0 { Some(web::binary_path(&self.web.binary_or_default())?) } else { None };
        check_tools(&self)?;
        ensure_ports_free(&self, None)?;
        let sizing = Sizing::derive(&self);
        // The sizing is PostgreSQL's and pgpool's: nothing to say for a topology of other stores.
        let explain =
            if self.count(Kind::Postgres) > 0 { format!("\n{}", sizing.explain(&self)) } else { String::new() };
        eprintln!("up: topology {:?} in {}{explain}", self.name, dir.display());
        let state = State {
            topology: self,
            sizing,
            run_as,
            socket_root,
            web_binary,
            processes: vec![],
            web_settings: Default::default(),
            machine: None,
            secrets: None,
        };
        state.save(&dir)?;
        let mut running = Running::new(dir, state, true)?;
        // From here on, `?` drops `running`, which stops whatever was started.
        start_all(&mut running)?;
        eprintln!("up: all ready in {:.1?}", t0.elapsed());
        Ok(running)
    }
}

/// Every port the instances on `machine` (all: none) will listen on is free.
pub(crate) fn ensure_ports_free(t: &Topology, machine: Option<&str>) -> Result<()> {
    for kind in Kind::ALL {
        for i in t.instances_on(kind, machine) {
            let (host, port) = t.endpoint(kind, i);
            process::ensure_port_free(&host, port, &format!("{kind} {i}"))?;
            if kind == Kind::Pgpool {
                process::ensure_port_free(&host, t.pgpool.pcp_port(i), &format!("pgpool {i} (pcp)"))?;
            }
            if kind == Kind::Cassandra {
                for (h, p, what) in t.cassandra_other_ports(i) {
                    process::ensure_port_free(&h, p, &what)?;
                }
                if t.exporters_on() {
                    let (h, p, what) = t.cassandra_metrics_addr(i);
                    process::ensure_port_free(&h, p, &what)?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn check_tools(t: &Topology) -> Result<()> {
    let mut needed = vec![];
    if t.count(Kind::Postgres) > 0 {
        needed.extend(["initdb", "postgres", "pg_isready", "psql", "pg_basebackup"]);
    }
    if t.count(Kind::Pgpool) > 0 {
        needed.extend(["pgpool", "pg_md5", "pcp_attach_node", "pcp_detach_node", "pcp_node_info"]);
    }
    if t.count(Kind::Redis) > 0 {
        needed.push("redis-server");
    }
    if t.count(Kind::Sentinel) > 0 {
        needed.push("redis-sentinel");
    }
    if t.count(Kind::Cassandra) > 0 {
        cassandra::java17()?;
        // On a host of [[hosts]] the agent is shipped (remote/ship.rs), not fetched.
        if t.exporters_on() && !t.is_remote() {
            cassandra::ensure_jmx_agent()?;
        }
    }
    if t.count(Kind::Nginx) > 0 {
        needed.push("nginx");
    }
    if t.count(Kind::Prometheus) > 0 {
        needed.push("prometheus");
    }
    needed.extend(Kind::EXPORTERS.into_iter().filter(|k| t.count(*k) > 0).map(exporter::binary));
    for name in needed {
        tool(name)?;
    }
    Ok(())
}

fn start_all(r: &mut Running) -> Result<()> {
    let t = r.state.topology.clone();
    let step = |what: &str, since: Instant| eprintln!("up: {what} ready in {:.1?}", since.elapsed());
    for tier in [Tier::Postgres, Tier::Pgpool, Tier::Database] {
        let since = Instant::now();
        r.start_tier(tier)?;
        if let Some(&kind) = tier.kinds().iter().find(|k| t.count(**k) > 0) {
            step(&format!("{} {kind}", t.count(kind)), since);
        }
    }
    if t.count(Kind::Redis) > 0 {
        let since = Instant::now();
        redis::start_all(r)?;
        step(&format!("{} redis, {} sentinel", t.count(Kind::Redis), t.count(Kind::Sentinel)), since);
    }
    if t.count(Kind::Cassandra) > 0 {
        let since = Instant::now();
        cassandra::start_all(r)?;
        step(&format!("{} cassandra", t.count(Kind::Cassandra)), since);
    }
    let since = Instant::now();
    r.start_tier(Tier::Web)?;
    r.start_tier(Tier::Nginx)?;
    if t.count(Kind::Web) > 0 {
        step("web tier", since);
    }
    let exporters: usize = Kind::EXPORTERS.iter().map(|k| t.count(*k)).sum();
    if exporters > 0 {
        let since = Instant::now();
        exporter::start_all(r)?;
        step(&format!("{exporters} exporters"), since);
    }
    if t.count(Kind::Prometheus) > 0 {
        prometheus::start(r)?;
    }
    Ok(())
}
