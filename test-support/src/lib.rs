//! What the workspace's tests need to reach servers, kept out of the production crates.
//!
//! * The shared test servers (started by `scripts/test`, named by `SHOPBENCH_TEST_PG`,
//!   `SHOPBENCH_TEST_REDIS` and `SHOPBENCH_TEST_CASSANDRA`), with a place of its own per test:
//!   a fresh database ([`pg`]), key prefix ([`redis`]) or keyspace ([`cassandra`]).
//! * [`RunDir`]: a temp dir for a topology's run dir, reachable by the servers' service user.
//! * [`servers`]: infra's handles for a topology a test starts and breaks itself.
//!
//! Every crate takes this one as a dev-dependency only, with the features for the stores its
//! tests use (`cargo tree -e normal` of a production crate never shows it).

#[cfg(feature = "cassandra")]
pub mod cassandra;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "redis")]
pub mod redis;
mod run_dir;
#[cfg(feature = "servers")]
pub mod servers;

pub use run_dir::RunDir;

/// The variables naming the shared test servers (comma-separated `host:port`).
pub const PG: &str = "SHOPBENCH_TEST_PG";
pub const REDIS: &str = "SHOPBENCH_TEST_REDIS";
pub const CASSANDRA: &str = "SHOPBENCH_TEST_CASSANDRA";

/// The `host:port` list of the shared test servers named by `var` (one of [`PG`], [`REDIS`],
/// [`CASSANDRA`]).
///
/// # Panics
/// When the variable is unset: tests of real stores need real servers.
pub fn servers_from_env(var: &str) -> Vec<String> {
    let raw = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: start servers with scripts/test"));
    endpoints::comma_list(&raw)
}

/// `prefix` followed by a random id: the name of a database, key prefix or keyspace no other
/// test (of this run or another sharing the servers) uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}
