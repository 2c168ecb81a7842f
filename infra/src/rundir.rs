//! The run dir: one subdirectory per process plus state.json; reachable by the service user.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::process::{self, RunAs};
use crate::secrets;
use crate::state::{State, STATE_FILE};
use crate::topology::Kind;

/// The control machine's copies of what each host of `[[hosts]]` was given and its fetched logs:
/// `remote/<host>/`.
pub const REMOTE_DIR: &str = "remote";

/// Copies of what logs got during a window (`Running::logs_since` into `Running::log_copies`):
/// part of the run, so the next `up` in the same dir clears them with the rest.
pub const LOG_COPIES_DIR: &str = "log-copies";

/// Creates (or reuses) the run dir and returns its real path. Refuses when state.json names live
/// processes (started twice); clears what a previous, stopped run left.
pub fn prepare(dir: &Path, run_as: Option<&RunAs>) -> Result<PathBuf> {
    if let Ok(real) = dir.canonicalize() {
        if let Some(state) = State::load(&real)? {
            let live: Vec<String> = state
                .processes
                .iter()
                .filter(|p| p.alive())
                .map(|p| format!("{} (pid {})", p.label(), p.pid))
                .collect();
            let elsewhere: Vec<String> = state
                .processes
                .iter()
                .filter_map(|p| p.machine.as_ref().map(|m| format!("{} on {m}", p.label())))
                .collect();
            if !elsewhere.is_empty() {
                bail!(
                    "{} records processes on other hosts: {}; nothing started (stop them first: shopbench-infra down)",
                    dir.display(),
                    elsewhere.join(", ")
                );
            }
            if !live.is_empty() {
                bail!(
                    "topology already running in {}: {}; nothing started (stop it first: shopbench-infra down)",
                    dir.display(),
                    live.join(", ")
                );
            }
        }
        clear(&real)?;
    }
    let real = match run_as {
        Some(u) if !reachable(dir.parent().unwrap_or(Path::new("/")), u) => relocate(dir)?,
        _ => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.canonicalize()?
        }
    };
    if run_as.is_some() {
        // temp dirs are made 0700: the service user must enter it
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(real)
}

/// Removes what a stopped run left, refusing to touch a directory that is not a run dir.
fn clear(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == STATE_FILE
            || name == ".state.json.tmp"
            || name == "pcppass"
            || name == secrets::SECRETS_FILE
            || name == secrets::PGPASS_FILE
            || name == REMOTE_DIR
            || name == LOG_COPIES_DIR
            || Kind::ALL.iter().any(|k| name.starts_with(k.name()));
        if !ours {
            bail!("{} holds {name:?}, which shopbench-infra did not make: not clearing it", dir.display());
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Can `user` traverse every directory down to `dir` (which must exist up to some ancestor)?
fn reachable(dir: &Path, user: &RunAs) -> bool {
    dir.ancestors().filter(|a| a.exists()).all(|a| {
        a.metadata().is_ok_and(|m| {
            let mode = m.permissions().mode();
            mode & 0o001 != 0
                || (m.uid() == user.uid && mode & 0o100 != 0)
                || (m.gid() == user.gid && mode & 0o010 != 0)
        })
    })
}

/// The repository may sit where user postgres cannot reach (e.g. under /root): keep the run dir
/// in /tmp and leave a symlink at the requested path.
fn relocate(dir: &Path) -> Result<PathBuf> {
    let parent = dir.parent().context("run dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let abs = parent.canonicalize()?.join(dir.file_name().context("run dir has no name")?);
    let target = std::env::temp_dir().join(format!("shopbench-run-{:016x}", hash(&abs)));
    std::fs::create_dir_all(&target)?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    if std::fs::symlink_metadata(&abs).is_ok() {
        if std::fs::read_link(&abs).ok().as_deref() != Some(target.as_path()) {
            bail!("{} exists and is not reachable by the service user", abs.display());
        }
    } else {
        std::os::unix::fs::symlink(&target, &abs)?;
    }
    eprintln!("up: {} is not reachable by user postgres; using {} (symlinked)", abs.display(), target.display());
    Ok(target)
}

/// Unix socket paths are limited to 107 bytes: sockets go to a short dir in /tmp when the run
/// dir's path is long.
pub fn socket_root(dir: &Path) -> Result<PathBuf> {
    const LONGEST: usize = "/pgpool127/.s.PGSQL.65535.lock".len();
    if dir.as_os_str().len() + LONGEST < 100 {
        return Ok(dir.to_path_buf());
    }
    let short = std::env::temp_dir().join(format!("sb-{:016x}", hash(dir)));
    if short.exists() {
        std::fs::remove_dir_all(&short)?;
    }
    std::fs::create_dir_all(&short)?;
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o755))?;
    Ok(short)
}

fn hash(p: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

/// Creates an instance's directory, owned by the service user.
pub fn instance_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    process::give(dir, run_as)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_a_stopped_run_removes_its_log_copies_and_refuses_what_it_did_not_make() {
        let dir = test_support::RunDir::new("rundir-unit");
        let run = dir.path();
        std::fs::create_dir_all(run.join(LOG_COPIES_DIR).join("fault-01")).unwrap();
        std::fs::write(run.join(LOG_COPIES_DIR).join("fault-01/nginx0-error.log"), "x").unwrap();
        std::fs::create_dir_all(run.join("postgres0")).unwrap();
        std::fs::write(run.join(STATE_FILE), "{}").unwrap();
        clear(run).unwrap();
        assert_eq!(std::fs::read_dir(run).unwrap().count(), 0, "everything of the run is gone");

        std::fs::create_dir_all(run.join("fault-logs")).unwrap();
        std::fs::create_dir_all(run.join("postgres0")).unwrap();
        let err = clear(run).unwrap_err();
        assert!(format!("{err:#}").contains("\"fault-logs\", which shopbench-infra did not make"), "{err:#}");
        assert!(run.join("postgres0").is_dir(), "nothing is removed when something is refused");
    }
}
