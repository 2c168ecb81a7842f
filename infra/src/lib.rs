//! Topology launcher (see Cargo.toml description).
