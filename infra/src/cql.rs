//! CQL probes of one Cassandra node at a time, for readiness, through the scylla driver (the
//! app's driver): each call opens a session, sends its statement to that node alone and closes
//! the session again. infra is synchronous: a call runs the driver on a runtime of its own, on a
//! thread of its own (so that it works from inside a caller's runtime too).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::{NodeIdentifier, SingleTargetLoadBalancingPolicy};
use scylla::response::query_result::QueryResult;
use scylla::statement::unprepared::Statement;
pub use scylla::statement::Consistency;
use uuid::Uuid;

/// Runs `cql` on the node at `host:port` alone, at `consistency`, within `timeout`.
fn run(host: &str, port: u16, cql: &str, consistency: Consistency, timeout: Duration) -> Result<QueryResult> {
    let addr: SocketAddr = (host, port).to_socket_addrs()?.next().context("no address")?;
    let mut statement = Statement::new(cql);
    statement.set_consistency(consistency);
    statement.set_request_timeout(Some(timeout));
    statement
        .set_load_balancing_policy(Some(SingleTargetLoadBalancingPolicy::new(NodeIdentifier::NodeAddress(addr), None)));
    let probe = async move {
        let session = SessionBuilder::new()
            .known_node_addr(addr)
            .connection_timeout(timeout)
            .fetch_schema_metadata(false)
            .build()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let result = tokio::time::timeout(timeout, session.query_unpaged(statement, ())).await;
        result.with_context(|| format!("no answer from {addr} in {timeout:?}"))?.context(cql.to_string())
    };
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(probe))
            .join()
            .expect("the probe's thread panicked")
    })
}

/// Runs a statement whose rows (if any) are not needed, e.g. DDL or a CL=ALL read.
pub fn execute(host: &str, port: u16, cql: &str, consistency: Consistency, timeout: Duration) -> Result<()> {
    run(host, port, cql, consistency, timeout).map(|_| ())
}

/// The node's `release_version` (it answers CQL).
pub fn release_version(host: &str, port: u16, timeout: Duration) -> Result<String> {
    let result = run(host, port, "SELECT release_version FROM system.local", Consistency::One, timeout)?;
    let rows = result.into_rows_result()?;
    let (version,) = rows.single_row::<(String,)>()?;
    Ok(version)
}

/// The node's own schema version.
pub fn schema_version(host: &str, port: u16, timeout: Duration) -> Result<Option<Uuid>> {
    let result = run(host, port, "SELECT schema_version FROM system.local", Consistency::One, timeout)?;
    let (version,) = result.into_rows_result()?.single_row::<(Option<Uuid>,)>()?;
    Ok(version)
}

/// The peers the node knows, each with the schema version it last heard from it.
pub fn peers(host: &str, port: u16, timeout: Duration) -> Result<Vec<(IpAddr, Option<Uuid>)>> {
    let result = run(host, port, "SELECT peer, schema_version FROM system.peers", Consistency::One, timeout)?;
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
            assert!(release_version(&host, port, t).unwrap().starts_with('5'));
            let peers = peers(&host, port, t).unwrap();
            let others: Vec<IpAddr> = nodes.iter().map(SocketAddr::ip).filter(|a| *a != n.ip()).collect();
            assert!(others.iter().all(|o| peers.iter().any(|(p, _)| p == o)), "{n} knows {peers:?}");
            versions.push(schema_version(&host, port, t).unwrap());
            versions.extend(peers.into_iter().map(|(_, v)| v));
        }
        versions.dedup();
        assert_eq!(versions.len(), 1, "one schema version: {versions:?}");
        assert!(execute("127.0.0.1", 1, "SELECT now() FROM system.local", Consistency::One, t).is_err());
    }
}
