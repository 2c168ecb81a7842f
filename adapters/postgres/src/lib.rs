//! PostgreSQL adapter (see Cargo.toml description).
