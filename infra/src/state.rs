//! `state.json` in the run dir: every started process (pid, kind, index, address), so that a
//! later `status`, `check`, `rejoin` or `down` finds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::process::{self, RunAs};
use crate::sizing::Sizing;
use crate::topology::{Kind, Topology};

pub const STATE_FILE: &str = "state.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proc {
    pub kind: Kind,
    pub index: usize,
    pub pid: u32,
    /// Kernel start time of `pid` (tells a reused pid apart).
    pub start_time: u64,
    pub host: String,
    pub port: u16,
    /// pgpool's pcp port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcp_port: Option<u16>,
    pub dir: PathBuf,
    pub log: PathBuf,
    /// The `[[hosts]]` host it runs on (its pid is that machine's); none: this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl Proc {
    /// Is it running? Only this machine's processes can be asked here (another host's are asked
    /// over SSH: remote.rs); those count as not running.
    pub fn alive(&self) -> bool {
        self.machine.is_none() && process::alive(self.pid, self.start_time)
    }

    /// Could it be running? Another host's process is not known here: the caller asks the
    /// server itself (e.g. a sentinel on a host of `[[hosts]]`).
    pub fn may_be_alive(&self) -> bool {
        self.machine.is_some() || self.alive()
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Processes of this instance's group left running after its main process died (pgpool's
    /// children outlive a SIGKILL of the main process and keep serving its port).
    pub fn orphans(&self) -> Vec<(u32, u64)> {
        if self.machine.is_some() {
            return vec![];
        }
        process::orphans(self.pid, self.start_time)
    }

    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.index)
    }

    /// Its pid, to signal here: only a process of this machine. Another host's pid means
    /// another process here (or none), so signalling it is refused, never attempted.
    pub fn local_pid(&self) -> Result<u32> {
        match &self.machine {
            None => Ok(self.pid),
            Some(m) => {
                anyhow::bail!("{} runs on host {m}: it is signalled over SSH, not by its pid here", self.label())
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub topology: Topology,
    pub sizing: Sizing,
    pub run_as: Option<RunAs>,
    /// Where the unix sockets live (the run dir unless its path is too long for a socket).
    pub socket_root: PathBuf,
    /// The web instances' binary, absolute.
    #[serde(default)]
    pub web_binary: Option<PathBuf>,
    /// In start order; `down` stops them in reverse.
    pub processes: Vec<Proc>,
    /// The settings each web instance was (last) started with, by index: what the bench reads
    /// to reach the same stores the same way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub web_settings: BTreeMap<usize, settings::WebSettings>,
    /// In a topology with `[[hosts]]`: the host this run dir is on (none: the control machine,
    /// which starts the hosts' parts over SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The run's passwords (`secrets.json`, 0600) when the servers listen off loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<PathBuf>,
}

impl State {
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let path = dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?).context("writing state")?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).context("writing state")?;
        Ok(())
    }

    pub fn find(&self, kind: Kind, index: usize) -> Option<&Proc> {
        self.processes.iter().find(|p| p.kind == kind && p.index == index)
    }

    /// Records a (re)started process, replacing an older record of the same instance.
    pub fn record(&mut self, p: Proc) {
        self.processes.retain(|q| !(q.kind == p.kind && q.index == p.index));
        let at =
            self.processes.iter().position(|q| (q.kind, q.index) > (p.kind, p.index)).unwrap_or(self.processes.len());
        self.processes.insert(at, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_hosts_pid_is_never_signalled_here() {
        // This test's own pid and start time: signalling it by mistake would hit a live process.
        let pid = std::process::id();
        let start_time = crate::process::start_time(pid).expect("own start time");
        let mut p = Proc {
            kind: Kind::Web,
            index: 0,
            pid,
            start_time,
            host: "10.0.0.2".into(),
            port: 8080,
            pcp_port: None,
            dir: "/tmp".into(),
            log: "/tmp/web.log".into(),
            machine: Some("web1".into()),
        };
        let e = p.local_pid().unwrap_err().to_string();
        assert!(e.contains("host web1"), "{e}");
        assert!(!p.alive(), "another host's process is not asked here");
        p.machine = None;
        assert_eq!(p.local_pid().unwrap(), pid);
        assert!(p.alive());
    }
}
