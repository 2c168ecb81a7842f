//! Topologies a test starts, breaks and stops itself (a Redis set to fail over, a Cassandra ring
//! to lose a node of): infra's handles, so that a crate's tests reach infra through this crate
//! only. Start one in a [`RunDir`](crate::RunDir).

pub use infra::{redis, signal, Kind, Running, Topology, SHOP_DB};
