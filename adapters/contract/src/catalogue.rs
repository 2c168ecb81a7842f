//! The Catalogue contract (filled by the Cassandra stage).
