//! CQL probes of one Cassandra node at a time, for readiness, through the scylla driver (the
//! app's driver): each call opens a session (logged in when a [`Login`] is given: a ring off
//! loopback), sends its statement to that node alone and closes the session again. infra is
//! synchronous: a call runs the driver on a runtime of its own, on a thread of its own (so that
//! it works from inside a caller's runtime too).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::{NodeIdentifier, SingleTargetLoadBalancingPolicy};
use scylla::response::query_result::QueryResult;
use scylla::statement::unprepared::Statement;
pub use scylla::statement::Consistency;
use scylla::value::Row;
use uuid::Uuid;

/// A role and its password for the ring's PasswordAuthenticator; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl Login {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Login {
        Login { user: user.into(), password: password.into() }
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <redacted>)", self.user)
    }
}

/// Runs `cql` on the node at `host:port` alone, at `consistency`, within `timeout`, logged in as
/// `login` when given. An error names the statement as `shown` (a statement may hold a password).
fn run(
    host: &str,
    port: u16,
    login: Option<&Login>,
    cql: &str,
    shown: &str,
    consistency: Consistency,
    timeout: Duration,
) -> Result<QueryResult> {
    run_in_one_session(host, port, login, &[(cql, shown, consistency)], timeout)
}

/// Runs `statements` (each `(cql, shown, consistency)`) in turn in one session on the node at
/// `host:port` alone, logged in once; answers the last one's result.
fn run_in_one_session(
    host: &str,
    port: u16,
    login: Option<&Login>,
    statements: &[(&str, &str, Consistency)],
    timeout: Duration,
) -> Result<QueryResult> {
    let addr: SocketAddr = (host, port).to_socket_addrs()?.next().context("no address")?;
    let statements: Vec<(Statement, &str)> = statements
        .iter()
        .map(|(cql, shown, consistency)| {
            let mut statement = Statement::new(*cql);
            statement.set_consistency(*consistency);
            statement.set_request_timeout(Some(timeout));
            statement.set_load_balancing_policy(Some(SingleTargetLoadBalancingPolicy::new(
                NodeIdentifier::NodeAddress(addr),
                None,
            )));
            (statement, *shown)
        })
        .collect();
    let mut builder =
        SessionBuilder::new().known_node_addr(addr).connection_timeout(timeout).fetch_schema_metadata(false);
    if let Some(l) = login {
        builder = builder.user(&l.user, &l.password);
    }
    let probe = async move {
        let session = builder.build().await.with_context(|| format!("connecting to {addr}"))?;
        let mut last = None;
        for (statement, shown) in statements {
            let result = tokio::time::timeout(timeout, session.query_unpaged(statement, ())).await;
            last = Some(
                result.with_context(|| format!("no answer from {addr} in {timeout:?}"))?.context(shown.to_string())?,
            );
        }
        last.context("no statement to run")
    };
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(probe))
            .join()
            .expect("the probe's thread panicked")
    })
}

/// [`execute`] of several statements in one session, logged in once: for a change after which a
/// new login could fail until a later statement has run.
pub fn execute_in_one_session(
    host: &str,
    port: u16,
    login: Option<&Login>,
    statements: &[(&str, Consistency)],
    timeout: Duration,
) -> Result<()> {
    let statements: Vec<(&str, &str, Consistency)> = statements.iter().map(|(c, l)| (*c, *c, *l)).collect();
    run_in_one_session(host, port, login, &statements, timeout).map(|_| ())
}

/// Runs a statement whose rows (if any) are not needed, e.g. DDL or a CL=ALL read.
pub fn execute(
    host: &str,
    port: u16,
    login: Option<&Login>,
    cql: &str,
    consistency: Consistency,
    timeout: Duration,
) -> Result<()> {
    run(host, port, login, cql, cql, consistency, timeout).map(|_| ())
}

/// [`execute`] of a statement that holds a secret (a role's password): an error calls it `shown`.
pub fn execute_secret(host: &str, port: u16, login: &Login, cql: &str, shown: &str, timeout: Duration) -> Result<()> {
    run(host, port, Some(login), cql, shown, Consistency::One, timeout).map(|_| ())
}

/// The rows a statement answers, each as its columns' values (`Debug`), tab-separated: for the
/// `cql` command, which has no schema to decode them with.
pub fn rows(host: &str, port: u16, login: Option<&Login>, cql: &str, timeout: Duration) -> Result<Vec<String>> {
    let result = run(host, port, login, cql, cql, Consistency::Quorum, timeout)?;
    if !result.is_rows() {
        return Ok(vec![]);
    }
    let rows = result.into_rows_result()?;
    let mut lines = Vec::new();
    for row in rows.rows::<Row>()? {
        let cells: Vec<String> =
            row?.columns.iter().map(|c| c.as_ref().map_or("null".to_string(), |v| format!("{v:?}"))).collect();
        lines.push(cells.join("\t"));
    }
    Ok(lines)
}

/// Whether `e` is the ring refusing a login (no credentials, an unknown role, a wrong password),
/// rather than a node that does not answer.
pub fn is_login_refused(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_lowercase();
    text.contains("authenticat") || text.contains("incorrect")
}

/// The node's `release_version` (it answers CQL).
pub fn release_version(host: &str, port: u16, login: Option<&Login>, timeout: Duration) -> Result<String> {
    let cql = "SELECT release_version FROM system.local";
    let result = run(host, port, login, cql, cql, Consistency::One, timeout)?;
    let rows = result.into_rows_result()?;
    let (version,) = rows.single_row::<(String,)>()?;
    Ok(version)
}

/// The node's own schema version.
pub fn schema_version(host: &str, port: u16, login: Option<&Login>, timeout: Duration) -> Result<Option<Uuid>> {
    let cql = "SELECT schema_version FROM system.local";
    let result = run(host, port, login, cql, cql, Consistency::One, timeout)?;
    let (version,) = result.into_rows_result()?.single_row::<(Option<Uuid>,)>()?;
    Ok(version)
}

/// The peers the node knows, each with the schema version it last heard from it.
pub fn peers(host: &str, port: u16, login: Option<&Login>, timeout: Duration) -> Result<Vec<(IpAddr, Option<Uuid>)>> {
    let cql = "SELECT peer, schema_version FROM system.peers";
    let result = run(host, port, login, cql, cql, Consistency::One, timeout)?;
    let rows = result.into_rows_result()?;
    Ok(rows.rows::<(IpAddr, Option<Uuid>)>()?.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the ring of SHOPBENCH_TEST_CASSANDRA (skipped without it): every node answers,
    /// knows the others, and all agree on the schema.
    #[test]
    fn probes_a_running_ring() {
        let Ok(nodes) = std::env::var("SHOPBENCH_TEST_CASSANDRA") else {
            eprintln!("SHOPBENCH_TEST_CASSANDRA is not set: skipped");
            return;
        };
        let nodes: Vec<SocketAddr> =
            endpoints::comma_list(&nodes).iter().map(|n| n.parse().expect("ip:port")).collect();
        let t = Duration::from_secs(10);
        let mut versions = vec![];
        for n in &nodes {
            let (host, port) = (n.ip().to_string(), n.port());
            assert!(release_version(&host, port, None, t).unwrap().starts_with('5'));
            let peers = peers(&host, port, None, t).unwrap();
            let others: Vec<IpAddr> = nodes.iter().map(SocketAddr::ip).filter(|a| *a != n.ip()).collect();
            assert!(others.iter().all(|o| peers.iter().any(|(p, _)| p == o)), "{n} knows {peers:?}");
            versions.push(schema_version(&host, port, None, t).unwrap());
            versions.extend(peers.into_iter().map(|(_, v)| v));
        }
        versions.dedup();
        assert_eq!(versions.len(), 1, "one schema version: {versions:?}");
        assert!(execute("127.0.0.1", 1, None, "SELECT now() FROM system.local", Consistency::One, t).is_err());
        let rows = rows(&nodes[0].ip().to_string(), nodes[0].port(), None, "SELECT cluster_name FROM system.local", t);
        assert_eq!(rows.unwrap().len(), 1);
    }
}
