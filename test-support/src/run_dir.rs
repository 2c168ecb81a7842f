//! Temp dirs for the run dirs of topologies that tests start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A fresh, empty dir `shopbench-<name>-<random>` under the system temp dir, removed when
/// dropped: declare it before the `Running` started in it, so that the servers stop first.
///
/// Its mode is 0755, not tempfile's 0700: when the tests run as root the servers run as user
/// postgres, which must enter it (infra would otherwise move the run dir elsewhere in /tmp,
/// where nothing removes it).
pub struct RunDir {
    dir: tempfile::TempDir,
    keep_on_failure: bool,
}

impl RunDir {
    /// Removed when dropped, whatever happened.
    pub fn new(name: &str) -> RunDir {
        RunDir::create(name, false)
    }

    /// Removed when dropped, except while the test is failing (panicking): then it stays, with
    /// the servers' logs for reading, and its path is printed.
    pub fn kept_on_failure(name: &str) -> RunDir {
        RunDir::create(name, true)
    }

    fn create(name: &str, keep_on_failure: bool) -> RunDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shopbench-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("a temp dir for {name}: {e}"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod 755 {}: {e}", dir.path().display()));
        RunDir { dir, keep_on_failure }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl AsRef<Path> for RunDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep_on_failure && std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("the servers' logs are kept in {}", self.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_dir_is_enterable_by_others_and_removed_when_dropped() {
        let dir = RunDir::new("unit");
        let path = dir.path().to_path_buf();
        assert!(path.file_name().unwrap().to_str().unwrap().starts_with("shopbench-unit-"));
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o755);
        std::fs::write(path.join("log"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_failing_test_keeps_its_run_dir_only_when_asked_to() {
        let kept = std::thread::spawn(|| {
            let dir = RunDir::kept_on_failure("kept");
            let removed = RunDir::new("removed");
            let paths = (dir.path().to_path_buf(), removed.path().to_path_buf());
            std::panic::panic_any(paths)
        })
        .join()
        .unwrap_err();
        let (kept, removed) = *kept.downcast::<(std::path::PathBuf, std::path::PathBuf)>().unwrap();
        assert!(kept.is_dir(), "kept while failing");
        assert!(!removed.exists());
        std::fs::remove_dir_all(&kept).unwrap();
    }
}
