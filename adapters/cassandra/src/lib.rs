//! The catalogue in Cassandra (issue #6).
