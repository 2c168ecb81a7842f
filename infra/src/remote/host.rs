//! What `shopbench-infra host ...` does on a host of `[[hosts]]` when the control machine asks
//! over SSH: its own run dir holds its own instances only, started and stopped by PID as on
//! loopback; the answers go back as JSON on stdout.

use std::path::Path;

use anyhow::{bail, Result};

use crate::kill::Signal;
use crate::process;
use crate::running::Running;
use crate::sizing::Sizing;
use crate::state::{Proc, State};
use crate::status::Status;
use crate::topology::{Kind, Tier, Topology};
use crate::{rundir, up, web};

/// A request of the control machine to one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCommand {
    /// A fresh run dir for the host's instances (refused while its processes run); checks its
    /// tools and ports.
    Prepare,
    /// Starts the host's part of a tier; answers the processes started.
    Up(Tier),
    /// Stops the host's instances of a tier.
    Stop(Tier),
    /// Stops whatever is left; the run dir's data and logs stay.
    Down,
    /// Which of its processes run, and its pgpools' view of the backends.
    Status,
    /// The consistency check of every backend, from this host (the first backend's).
    Check,
    /// Starts a killed instance of this host again (web and nginx only yet); answers its process.
    Restart(Kind, usize),
    /// Signals an instance of this host and all its descendants by PID (the loopback
    /// `Running::kill`); answers its process tree and their states after (`Signalled`).
    Kill(Kind, usize, Signal),
}

impl HostCommand {
    /// The command line words after `shopbench-infra host`.
    pub fn words(self) -> Vec<String> {
        let tier = |verb: &str, t: Tier| vec![verb.to_string(), "--tier".into(), t.name().into()];
        match self {
            HostCommand::Prepare => vec!["prepare".into()],
            HostCommand::Up(t) => tier("up", t),
            HostCommand::Stop(t) => tier("stop", t),
            HostCommand::Down => vec!["down".into()],
            HostCommand::Status => vec!["status".into()],
            HostCommand::Check => vec!["check".into()],
            HostCommand::Restart(kind, i) => {
                vec!["restart".into(), "--kind".into(), kind.name().into(), "--index".into(), i.to_string()]
            }
            HostCommand::Kill(kind, i, sig) => {
                let instance = ["--kind".into(), kind.name().into(), "--index".into(), i.to_string()];
                [vec!["kill".into()], instance.to_vec(), vec!["--signal".into(), sig.name().into()]].concat()
            }
        }
    }

    /// The command `verb` with the options it takes.
    pub fn parse(
        verb: &str,
        tier: Option<Tier>,
        instance: Option<(Kind, usize)>,
        signal: Option<Signal>,
    ) -> Result<HostCommand> {
        let need = |t: Option<Tier>| t.ok_or_else(|| anyhow::anyhow!("host {verb} needs --tier T"));
        Ok(match verb {
            "prepare" => HostCommand::Prepare,
            "up" => HostCommand::Up(need(tier)?),
            "stop" => HostCommand::Stop(need(tier)?),
            "down" => HostCommand::Down,
            "status" => HostCommand::Status,
            "check" => HostCommand::Check,
            "restart" => {
                let (kind, i) = instance.ok_or_else(|| anyhow::anyhow!("host restart needs --kind K --index I"))?;
                HostCommand::Restart(kind, i)
            }
            "kill" => {
                let ((kind, i), sig) = instance
                    .zip(signal)
                    .ok_or_else(|| anyhow::anyhow!("host kill needs --kind K --index I --signal KILL|STOP|CONT"))?;
                HostCommand::Kill(kind, i, sig)
            }
            other => bail!("unknown host command {other:?} (prepare, up, stop, down, status, check, restart, kill)"),
        })
    }
}

/// Where a host keeps what it was given and its run dir.
pub struct HostPaths<'a> {
    pub topology: &'a Path,
    pub run_dir: &'a Path,
    pub secrets: &'a Path,
    pub machine: &'a str,
}

/// Runs `command` on this host; returns what to print (JSON).
pub fn run(command: HostCommand, paths: &HostPaths) -> Result<String> {
    match command {
        HostCommand::Prepare => prepare(Topology::from_file(paths.topology)?, paths).map(|()| "null".into()),
        HostCommand::Up(tier) => Ok(serde_json::to_string(&up_tier(paths.run_dir, tier)?)?),
        HostCommand::Stop(tier) => stop_tier(paths.run_dir, tier).map(|()| "null".into()),
        HostCommand::Down => down(paths.run_dir).map(|()| "null".into()),
        HostCommand::Status => Ok(serde_json::to_string(&Running::open(paths.run_dir)?.status())?),
        HostCommand::Check => Ok(serde_json::to_string(&Running::open(paths.run_dir)?.check_consistency()?)?),
        HostCommand::Restart(kind, i) => {
            let mut r = Running::open(paths.run_dir)?;
            r.restart(kind, i)?;
            Ok(serde_json::to_string(r.proc(kind, i)?)?)
        }
        HostCommand::Kill(kind, i, sig) => {
            Ok(serde_json::to_string(&Running::open(paths.run_dir)?.signal_instance(kind, i, sig)?)?)
        }
    }
}

fn prepare(t: Topology, paths: &HostPaths) -> Result<()> {
    if t.machine_named(paths.machine).is_none() {
        bail!("{} is not a host of topology {}", paths.machine, t.name);
    }
    let run_as = process::service_user()?;
    let dir = rundir::prepare(paths.run_dir, run_as.as_ref())?;
    let socket_root = rundir::socket_root(&dir)?;
    let web_binary = match t.has_part(Tier::Web, Some(paths.machine)) {
        true => Some(web::binary_path(&t.web.binary_or_default())?),
        false => None,
    };
    up::check_tools(&t)?;
    up::ensure_ports_free(&t, Some(paths.machine))?;
    let state = State {
        sizing: Sizing::derive(&t),
        topology: t,
        run_as,
        socket_root,
        web_binary,
        processes: vec![],
        web_settings: Default::default(),
        machine: Some(paths.machine.to_string()),
        secrets: Some(paths.secrets.to_path_buf()),
    };
    state.save(&dir)
}

fn up_tier(run_dir: &Path, tier: Tier) -> Result<Vec<Proc>> {
    let mut r = Running::open(run_dir)?;
    r.start_tier(tier)?;
    Ok(r.processes().iter().filter(|p| Some(p.kind) == tier.kind()).cloned().collect())
}

/// A host whose `prepare` never ran (an `up` that failed before it) has nothing to stop.
fn stop_tier(run_dir: &Path, tier: Tier) -> Result<()> {
    let Some(kind) = tier.kind() else { return Ok(()) };
    if !has_state(run_dir)? {
        return Ok(());
    }
    let mut r = Running::open(run_dir)?;
    for i in r.local(kind) {
        if r.state.find(kind, i).is_some() {
            r.stop(kind, i)?;
        }
    }
    Ok(())
}

/// A host whose `prepare` never ran (or that is down already) has nothing to stop.
fn down(run_dir: &Path) -> Result<()> {
    if !has_state(run_dir)? {
        return Ok(());
    }
    Running::open(run_dir)?.down()
}

fn has_state(run_dir: &Path) -> Result<bool> {
    match run_dir.canonicalize() {
        Ok(dir) => Ok(State::load(&dir)?.is_some()),
        Err(_) => Ok(false),
    }
}

/// The status of one host, as the control machine reads it back.
pub fn parse_status(json: &str) -> Result<Status> {
    Ok(serde_json::from_str(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words the control machine sends are the ones `shopbench-infra host` parses back.
    #[test]
    fn a_kill_goes_over_ssh_as_words_that_parse_back() {
        let kill = HostCommand::Kill(Kind::Pgpool, 1, Signal::Stop);
        let words = kill.words();
        assert_eq!(words.join(" "), "kill --kind pgpool --index 1 --signal STOP");
        let sig = Signal::parse(&words[6]).unwrap();
        let kind = Kind::parse(&words[2]).unwrap();
        assert_eq!(HostCommand::parse("kill", None, Some((kind, 1)), Some(sig)).unwrap(), kill);
        let e = HostCommand::parse("kill", None, Some((kind, 1)), None).unwrap_err().to_string();
        assert!(e.contains("--signal"), "{e}");
    }
}
