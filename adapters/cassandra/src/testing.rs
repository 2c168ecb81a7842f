//! Helpers for tests (this crate's, the app's, the bench's) that need a real Cassandra ring.

use crate::CassandraSettings;

/// The ring to test against, from `SHOPBENCH_TEST_CASSANDRA` (comma-separated `host:port` of its
/// nodes). The replication factor is the node count, up to 3.
///
/// # Panics
/// When the variable is unset: tests of real stores need real servers.
pub fn test_settings() -> CassandraSettings {
    let raw = std::env::var("SHOPBENCH_TEST_CASSANDRA")
        .unwrap_or_else(|_| panic!("SHOPBENCH_TEST_CASSANDRA is not set: start servers with scripts/test"));
    let nodes: Vec<String> = endpoints::comma_list(&raw);
    let mut s = CassandraSettings::new(nodes);
    s.replication_factor = s.nodes.len().clamp(1, 3) as u32;
    s
}

/// `base` pointing at a keyspace of its own, `test_<uuid>` (created by `CassandraStore::connect`),
/// so every test starts from an empty catalogue.
pub fn fresh_keyspace(base: &CassandraSettings) -> CassandraSettings {
    CassandraSettings { keyspace: format!("test_{}", uuid::Uuid::new_v4().simple()), ..base.clone() }
}
