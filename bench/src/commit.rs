//! Which commit a run's binaries were presumably built from, for its report: the repository's
//! HEAD, and the uncommitted changes to what goes into the binaries, named. Changes elsewhere
//! (docs/, scripts/, results) build nothing and are left out: a row says "with uncommitted
//! changes" only when the binaries may differ from the commit.

use std::path::Path;

/// How many changed paths a commit's description names before "+N more".
const NAMED: usize = 3;

/// `root`'s HEAD, e.g. "abc1234", or "abc1234 with uncommitted changes to app/src/main.rs,
/// infra/src/web.rs (+2 more)"; none when `root` is no git checkout.
pub fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // Tracked files, staged or not, both sides of a rename (an untracked file is in no build).
    let changed = git(&["diff", "--name-only", "--no-renames", "HEAD"]).unwrap_or_default();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let changed: Vec<&str> = changed.lines().filter(|l| !l.is_empty()).collect();
    Some(describe(&commit, &changed, &build_paths(&manifest)))
}

/// What goes into the binaries: the workspace's manifest and lock file and each member crate's
/// directory (its sources, the templates and migrations it includes, its build script).
fn build_paths(manifest: &str) -> Vec<String> {
    let members: Vec<String> = toml::from_str::<toml::Table>(manifest)
        .ok()
        .and_then(|t| t.get("workspace")?.get("members")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_str().map(|m| format!("{}/", m.trim_end_matches('/'))))
        .collect();
    ["Cargo.toml".to_string(), "Cargo.lock".to_string()].into_iter().chain(members).collect()
}

/// `commit`, marked with the `changed` paths (relative to the repository root) that are among
/// `build` (a file, or a directory ending in '/').
fn describe(commit: &str, changed: &[&str], build: &[String]) -> String {
    let in_build: Vec<&str> = changed
        .iter()
        .copied()
        .filter(|c| build.iter().any(|b| if b.ends_with('/') { c.starts_with(b.as_str()) } else { c == b }))
        .collect();
    if in_build.is_empty() {
        return commit.to_string();
    }
    let more = in_build.len().saturating_sub(NAMED);
    let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
    let named = in_build.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
    format!("{commit} with uncommitted changes to {named}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace]\nresolver = \"2\"\nmembers = [\"settings\", \"adapters/postgres\", \"app\"]\n";

    #[test]
    fn only_changes_to_what_is_built_mark_the_commit_and_are_named() {
        let build = build_paths(MANIFEST);
        assert_eq!(build, ["Cargo.toml", "Cargo.lock", "settings/", "adapters/postgres/", "app/"]);
        assert_eq!(describe("abc1234", &[], &build), "abc1234");
        // Docs, scripts and results build nothing; nor does a directory that only begins alike.
        let outside = ["docs/multi-host.md", "scripts/faults", "README.md", "apple/x.rs", "adapters/postgresql/y"];
        assert_eq!(describe("abc1234", &outside, &build), "abc1234");
        assert_eq!(
            describe("abc1234", &["docs/faults.md", "app/src/main.rs", "Cargo.lock"], &build),
            "abc1234 with uncommitted changes to app/src/main.rs, Cargo.lock"
        );
        let many = ["app/a.rs", "app/b.rs", "settings/src/lib.rs", "adapters/postgres/src/lib.rs", "Cargo.toml"];
        assert_eq!(
            describe("abc1234", &many, &build),
            "abc1234 with uncommitted changes to app/a.rs, app/b.rs, settings/src/lib.rs (+2 more)"
        );
    }

    /// This repository's own manifest gives the crates the binaries are built from.
    #[test]
    fn the_workspace_members_are_read_from_the_manifest() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let build = build_paths(&manifest);
        for member in ["app/", "infra/", "bench/", "adapters/postgres/", "settings/"] {
            assert!(build.iter().any(|b| b == member), "{member} in {build:?}");
        }
        assert!(!build.iter().any(|b| b.starts_with("docs")), "{build:?}");
    }
}
