//! Where the repository and the programs are on this machine.

use std::path::{Path, PathBuf};

/// The repository this program was compiled in (the Cassandra jar cache, scripts/install, the
/// default run and results dirs). Not where a path named in a file is taken from: see
/// [`crate::topology::anchor_paths`].
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("infra has a parent").to_path_buf()
}

/// The program `name` built beside the running one, in the same target dir (`shopbench-infra`,
/// a stage's `shopbench-<stage>` beside `shopbench-bench`); a test binary in `deps/` looks one
/// directory up too. None there: the first place looked (for the caller's "missing" message).
pub fn beside_program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let places: Vec<PathBuf> =
        [Some(dir.as_path()), dir.parent()].into_iter().flatten().map(|d| d.join(name)).collect();
    places.iter().find(|p| p.is_file()).unwrap_or(&places[0]).clone()
}
