//! Where the repository is on this machine.

use std::path::{Path, PathBuf};

/// The repository root (relative web binary paths and the Cassandra jar cache are taken from it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("infra has a parent").to_path_buf()
}
