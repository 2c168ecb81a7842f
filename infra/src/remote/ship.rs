//! Getting a host ready over SSH: the Debian packages (the project's install script, which does
//! nothing when nothing is missing), the binaries and Cassandra's jars (copied only when changed),
//! and this run's topology and passwords.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::cassandra;
use crate::hosts::{quoted, SshHost};
use crate::paths::repo_root;
use crate::secrets::{PGPASS_FILE, SECRETS_FILE};
use crate::topology::{Kind, Topology};

const SHORT: Duration = Duration::from_secs(60);
/// apt on a fresh machine may take minutes.
const INSTALL: Duration = Duration::from_secs(30 * 60);

/// A path inside the host's dir, quoted for its shell.
pub(super) fn at(h: &SshHost, rel: &str) -> String {
    quoted(&h.dir.join(rel))
}

/// Installs what is missing, copies the binaries and writes the topology (the web binary as the
/// host will find it) and the passwords into the host's dir. `local` is the control's
/// `remote/<host>/` dir.
pub(super) fn ship(h: &SshHost, t: &Topology, local: &Path, infra: &Path, web: Option<&Path>) -> Result<()> {
    h.run(&format!("mkdir -p {} && chmod 755 {}", at(h, "bin"), at(h, "")), SHORT)?;
    let install = repo_root().join("scripts/install");
    h.copy_to(&[install.as_path()], &h.dir.display().to_string(), SHORT)?;
    let log = at(h, "install.log");
    h.run(&format!("bash {} >{log} 2>&1 || {{ tail -n 20 {log} >&2; exit 1; }}", at(h, "install")), INSTALL)
        .context("installing the Debian packages (scripts/install)")?;
    copy_if_changed(h, infra)?;
    if !t.instances_on(Kind::Cassandra, Some(&h.name)).is_empty() {
        ship_cassandra_jars(h)?;
        if t.exporters_on() {
            // The node's JVM loads it from bin/ (cassandra::jmx_agent).
            copy_if_changed(h, &cassandra::ensure_jmx_agent()?)?;
        }
    }
    let mut theirs = t.clone();
    if let Some(web) = web {
        theirs.web.binary = Some(h.dir.join("bin").join(web.file_name().context("web binary has no name")?));
        copy_if_changed(h, web)?;
    }
    std::fs::create_dir_all(local)?;
    let topology = local.join("topology.json");
    std::fs::write(&topology, serde_json::to_vec_pretty(&theirs)?)?;
    let run_dir = local.parent().and_then(Path::parent).context("control run dir")?;
    let files: Vec<PathBuf> = vec![topology, run_dir.join(SECRETS_FILE), run_dir.join(PGPASS_FILE)];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    // scp -p keeps the passwords' mode 0600.
    h.copy_to(&files, &h.dir.display().to_string(), SHORT)
}

/// Copies `file` into the host's bin/ (made if missing) unless the same is there; returns its
/// path there (the bench ships itself to run its load clients on hosts).
pub fn ship_binary(h: &SshHost, file: &Path) -> Result<PathBuf> {
    h.run(&format!("mkdir -p {}", at(h, "bin")), SHORT)?;
    copy_if_changed(h, file)?;
    Ok(h.dir.join("bin").join(file.file_name().context("no file name")?))
}

/// Copies `file` into the host's bin/ unless a copy of the same size and time is there (scp -p
/// keeps the time): a second `up` ships nothing.
fn copy_if_changed(h: &SshHost, file: &Path) -> Result<()> {
    let meta = file.metadata().with_context(|| format!("{}", file.display()))?;
    let mtime = meta.modified()?.duration_since(UNIX_EPOCH)?.as_secs();
    let name = file.file_name().context("no file name")?.to_string_lossy().into_owned();
    let there = h.run(&format!("stat -c '%s %Y' {} 2>/dev/null || true", at(h, &format!("bin/{name}"))), SHORT)?;
    if there.trim() != format!("{} {mtime}", meta.len()) {
        h.copy_to(&[file], &h.dir.join("bin").display().to_string(), Duration::from_secs(600))?;
    }
    Ok(())
}

/// Cassandra's jars (this machine's cache, fetched with Maven once) into the host's
/// `cassandra/<version>/lib`, unless the same files (names and sizes) are there: shipped rather
/// than fetched there, the host needs no route to Maven Central.
fn ship_cassandra_jars(h: &SshHost) -> Result<()> {
    let lib = cassandra::ensure_jars()?;
    let mut jars: Vec<(String, u64)> = Vec::new();
    for entry in std::fs::read_dir(&lib).with_context(|| format!("{}", lib.display()))? {
        let entry = entry?;
        jars.push((entry.file_name().to_string_lossy().into_owned(), entry.metadata()?.len()));
    }
    jars.sort();
    let listing: String = jars.iter().map(|(name, size)| format!("{name} {size}\n")).collect();
    let theirs = cassandra::shipped_lib(&h.dir);
    let theirs_q = quoted(&theirs);
    let there = h.run(&format!("cd {theirs_q} 2>/dev/null && stat -c '%n %s' * | LC_ALL=C sort || true"), SHORT)?;
    if there == listing {
        return Ok(());
    }
    let tmp = theirs.with_extension("tmp");
    let tmp_q = quoted(&tmp);
    h.run(&format!("rm -rf {tmp_q} && mkdir -p {tmp_q}"), SHORT)?;
    let files: Vec<PathBuf> = jars.iter().map(|(name, _)| lib.join(name)).collect();
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    h.copy_to(&files, &tmp.display().to_string(), Duration::from_secs(900))?;
    h.run(&format!("rm -rf {theirs_q} && mv {tmp_q} {theirs_q}"), SHORT)?;
    Ok(())
}
