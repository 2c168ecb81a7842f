//! Starts, checks and stops the servers of a shopbench topology on loopback (or, for a topology
//! with `[[hosts]]`, on other machines over SSH: remote/): PostgreSQL 15
//! backends under pgpool-II native replication, pgpool-II instances, Redis with its replicas and
//! Sentinels, web instances, nginx and Prometheus. Synchronous (std::process); used by the
//! `shopbench-infra` CLI, tests and the bench.
//!
//! ```no_run
//! let topology = infra::Topology::from_file("infra/topologies/default.toml".as_ref())?;
//! let running = topology.up("run/default")?;          // stopped again when dropped
//! println!("{:?}", running.pgpool_endpoints());
//! assert!(running.check_consistency()?.is_identical());
//! running.down()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cassandra;
pub mod check;
pub mod cql;
mod exporter;
pub mod hosts;
pub mod kill;
mod logs;
mod paths;
mod pgpool;
mod postgres;
mod process;
pub mod prometheus;
pub mod psql;
pub mod redis;
mod rejoin;
pub mod remote;
mod render;
mod restart;
mod rundir;
mod running;
pub mod secrets;
pub mod sizing;
mod state;
mod status;
mod tier;
mod tools;
pub mod topology;
mod up;
mod web;

pub use check::{Difference, Report};
pub use kill::{RunState, Signal, Signalled, TreeProc};
pub use logs::LogMark;
pub use paths::{beside_program, repo_root};
pub use pgpool::{pool_nodes, NodeView};
pub use postgres::SHOP_DB;
pub use process::{all_processes, http_get, machine_ticks, port_holder, ProcInfo};
pub use prometheus::{PrometheusApi, ScrapeTarget};
pub use rejoin::RejoinReport;
pub use restart::RestartReport;
pub use running::Running;
pub use sizing::Sizing;
pub use state::Proc;
pub use status::{ProcStatus, Status};
pub use topology::{Failover, Kind, Overrides, Tier, Topology};

/// Signals for [`Running::kill`].
pub mod signal {
    pub use libc::{SIGCONT, SIGINT, SIGKILL, SIGSTOP, SIGTERM};
}
