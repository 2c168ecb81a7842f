//! The shared test Cassandra ring (`SHOPBENCH_TEST_CASSANDRA`: its nodes): a fresh keyspace per
//! test.

use adapter_cassandra::CassandraSettings;

/// The ring to test against; the replication factor is the node count, up to 3.
///
/// # Panics
/// When `SHOPBENCH_TEST_CASSANDRA` is unset.
pub fn test_settings() -> CassandraSettings {
    let mut s = CassandraSettings::new(crate::servers_from_env(crate::CASSANDRA));
    s.replication_factor = s.nodes.len().clamp(1, 3) as u32;
    s
}

/// `base` pointing at a keyspace of its own, `test_<uuid>` (created by `CassandraStore::connect`),
/// so every test starts from an empty catalogue.
pub fn fresh_keyspace(base: &CassandraSettings) -> CassandraSettings {
    CassandraSettings { keyspace: crate::unique_name("test_"), ..base.clone() }
}
