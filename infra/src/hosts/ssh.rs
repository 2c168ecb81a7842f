//! Commands and file copies on a host through the OpenSSH client (`ssh`, `scp`), never a password
//! prompt: a key, batch mode, and only host keys already trusted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::process;

/// A path on a host quoted for its shell. Single quotes suffice: host dirs are printable ASCII
/// without quotes (topology validation), and every path used on a host lies under its dir.
pub fn quoted(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// One machine the control machine reaches over SSH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHost {
    /// How topologies and reports name it.
    pub name: String,
    /// Where its servers listen and where SSH reaches it.
    pub address: IpAddr,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The private key to log in with.
    pub key: PathBuf,
    /// The host keys to trust (`UserKnownHostsFile`); absent: the user's own known_hosts. An
    /// unknown or changed host key is refused either way.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// Where shopbench keeps its binaries, configs, data and logs on the host.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
}

fn default_dir() -> PathBuf {
    "/var/tmp/shopbench".into()
}

fn default_user() -> String {
    "root".into()
}

fn default_port() -> u16 {
    22
}

impl SshHost {
    /// Runs `script` with the remote user's shell (`sh -c`), failing with its stderr on a non-zero
    /// exit or after `timeout`; returns its stdout.
    pub fn run(&self, script: &str, timeout: Duration) -> Result<String> {
        process::run_ok(self.command(script), timeout)
            .with_context(|| format!("on {} ({}): {script}", self.name, self.address))
    }

    /// The `ssh` command that runs `script` on the host, not started: for a caller that streams
    /// its output or feeds its stdin (the bench's load clients).
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = self.client("ssh", "-p");
        cmd.arg(format!("{}@{}", self.user, self.address)).arg("--").arg(script);
        cmd
    }

    /// Copies local files into `remote_dir` (which must exist) on the host.
    pub fn copy_to(&self, local: &[&Path], remote_dir: &str, timeout: Duration) -> Result<()> {
        let mut cmd = self.client("scp", "-P");
        // -q: no progress meter; -p: keep modes (binaries stay executable). scp speaks SFTP.
        cmd.args(["-q", "-p"]).args(local);
        cmd.arg(format!("{}@{}:{remote_dir}/", self.user, self.scp_host()));
        process::run_ok(cmd, timeout).with_context(|| format!("copying {local:?} to {}:{remote_dir}", self.name))?;
        Ok(())
    }

    /// Copies files of the host into `local_dir` (which must exist), each under its own name.
    pub fn copy_from(&self, remote: &[&Path], local_dir: &Path, timeout: Duration) -> Result<()> {
        let mut cmd = self.client("scp", "-P");
        cmd.arg("-q");
        for path in remote {
            cmd.arg(format!("{}@{}:{}", self.user, self.scp_host(), path.display()));
        }
        cmd.arg(local_dir);
        process::run_ok(cmd, timeout).with_context(|| format!("copying {remote:?} from {}", self.name))?;
        Ok(())
    }

    fn scp_host(&self) -> String {
        match self.address {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        }
    }

    /// `ssh` or `scp` with the options both take; `port_flag` is how each spells the port.
    fn client(&self, program: &str, port_flag: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("-i").arg(&self.key).args([port_flag, &self.port.to_string()]);
        cmd.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "LogLevel=ERROR",
        ]);
        if let Some(known) = &self.known_hosts {
            cmd.arg("-o").arg(format!("UserKnownHostsFile={}", known.display()));
        }
        cmd
    }
}
