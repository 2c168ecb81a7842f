//! What `shopbench-infra host ...` does on a host of `[[hosts]]` when the control machine asks
//! over SSH: its own run dir holds its own instances only, started and stopped by PID as on
//! loopback; the answers go back as JSON on stdout.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::kill::Signal;
use crate::process;
use crate::rejoin::{self, WritePause};
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
    /// Starts a killed instance of this host again; answers its process. (A backend's restart
    /// is its rejoin and a pgpool's needs the other hosts' pgpools: the control machine drives
    /// those with the verbs below.)
    Restart(Kind, usize),
    /// Rejoin step 1 on pgpool `pgpool`'s host: detaches `backend` there unless it shows it down.
    Detach { pgpool: usize, backend: usize },
    /// Rejoin steps 2-3 on the backend's host: stops it, copies `source` (from its address) and
    /// starts the copy as its standby; answers its process.
    Standby { backend: usize, source: usize },
    /// Rejoin step 4 on the source's host: holds its tables locked (writes paused) from
    /// "locked" on stdout until "release" on stdin; stdin's end (the control machine gone)
    /// ends the lock sessions too.
    HoldWrites { backend: usize },
    /// Rejoin step 5 on the backend's host: replays up to the source's last write and is
    /// promoted, within `within_ms`.
    Promote { backend: usize, source: usize, within_ms: u64 },
    /// Rejoin step 6 on pgpool `pgpool`'s host: attaches `backend` and waits until it shows it
    /// up and has restarted its children, within `within_ms`.
    Attach { pgpool: usize, backend: usize, within_ms: u64 },
    /// The end of rejoin step 6 on the source's host: ends the sessions orphaned by pgpool's
    /// restarted children, within `within_ms`.
    EndOrphans { backend: usize, within_ms: u64 },
    /// Starts a killed Redis instance (as a replica of `master`, else an empty master) or
    /// sentinel (watching `master`) again; the control machine decides the master, since only
    /// it knows every host's instances. Answers its process.
    Follow { kind: Kind, index: usize, master: Option<usize> },
    /// Starts a killed Cassandra node of this host again, without waiting for the ring (the
    /// control machine does, logged in); answers its process.
    StartNode(usize),
    /// Before pgpool `pgpool` restarts: the pgpools of the other hosts see every backend up, so
    /// its saved node status is outdated and goes.
    ForgetNodeStatus { pgpool: usize },
    /// Signals an instance of this host and all its descendants by PID (the loopback
    /// `Running::kill`); answers its process tree and their states after (`Signalled`).
    Kill(Kind, usize, Signal),
}

/// The options of a `shopbench-infra host` command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostOptions {
    pub tier: Option<Tier>,
    pub kind: Option<Kind>,
    pub index: Option<usize>,
    pub backend: Option<usize>,
    pub source: Option<usize>,
    pub within_ms: Option<u64>,
    pub signal: Option<Signal>,
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
            HostCommand::Detach { pgpool, backend } => words("detach", &[("--index", pgpool), ("--backend", backend)]),
            HostCommand::Standby { backend, source } => {
                words("standby", &[("--backend", backend), ("--source", source)])
            }
            HostCommand::HoldWrites { backend } => words("hold-writes", &[("--backend", backend)]),
            HostCommand::Promote { backend, source, within_ms } => {
                words("promote", &[("--backend", backend), ("--source", source), ("--within-ms", within_ms as usize)])
            }
            HostCommand::Attach { pgpool, backend, within_ms } => {
                words("attach", &[("--index", pgpool), ("--backend", backend), ("--within-ms", within_ms as usize)])
            }
            HostCommand::EndOrphans { backend, within_ms } => {
                words("end-orphans", &[("--backend", backend), ("--within-ms", within_ms as usize)])
            }
            HostCommand::Follow { kind, index, master } => {
                let mut w =
                    vec!["follow".into(), "--kind".into(), kind.name().into(), "--index".into(), index.to_string()];
                w.extend(master.map(|m| ["--source".to_string(), m.to_string()]).into_iter().flatten());
                w
            }
            HostCommand::StartNode(i) => words("start-node", &[("--index", i)]),
            HostCommand::ForgetNodeStatus { pgpool } => words("forget-node-status", &[("--index", pgpool)]),
            HostCommand::Kill(kind, i, sig) => {
                let instance = ["--kind".into(), kind.name().into(), "--index".into(), i.to_string()];
                [vec!["kill".into()], instance.to_vec(), vec!["--signal".into(), sig.name().into()]].concat()
            }
        }
    }

    /// The command `verb` with the options it takes.
    pub fn parse(verb: &str, o: HostOptions) -> Result<HostCommand> {
        let (tier, instance) = (o.tier, o.kind.zip(o.index));
        let need = |t: Option<Tier>| t.ok_or_else(|| anyhow::anyhow!("host {verb} needs --tier T"));
        let opt = |v: Option<usize>, flag: &str| v.ok_or_else(|| anyhow::anyhow!("host {verb} needs {flag}"));
        let (index, backend, source) =
            (|| opt(o.index, "--index I"), || opt(o.backend, "--backend I"), || opt(o.source, "--source S"));
        let within_ms = || o.within_ms.ok_or_else(|| anyhow::anyhow!("host {verb} needs --within-ms MS"));
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
            "detach" => HostCommand::Detach { pgpool: index()?, backend: backend()? },
            "standby" => HostCommand::Standby { backend: backend()?, source: source()? },
            "hold-writes" => HostCommand::HoldWrites { backend: backend()? },
            "promote" => HostCommand::Promote { backend: backend()?, source: source()?, within_ms: within_ms()? },
            "attach" => HostCommand::Attach { pgpool: index()?, backend: backend()?, within_ms: within_ms()? },
            "end-orphans" => HostCommand::EndOrphans { backend: backend()?, within_ms: within_ms()? },
            "follow" => {
                let (kind, index) = instance.ok_or_else(|| anyhow::anyhow!("host follow needs --kind K --index I"))?;
                HostCommand::Follow { kind, index, master: o.source }
            }
            "start-node" => HostCommand::StartNode(index()?),
            "forget-node-status" => HostCommand::ForgetNodeStatus { pgpool: index()? },
            "kill" => {
                let ((kind, i), sig) = instance
                    .zip(o.signal)
                    .ok_or_else(|| anyhow::anyhow!("host kill needs --kind K --index I --signal KILL|STOP|CONT"))?;
                HostCommand::Kill(kind, i, sig)
            }
            other => bail!(
                "unknown host command {other:?} (prepare, up, stop, down, status, check, restart, detach, standby, \
                 hold-writes, promote, attach, end-orphans, follow, start-node, forget-node-status, kill)"
            ),
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
        HostCommand::Detach { pgpool, backend } => {
            Running::open(paths.run_dir)?.detach_everywhere(backend, &[pgpool]).map(|()| "null".into())
        }
        HostCommand::Standby { backend, source } => {
            let mut r = Running::open(paths.run_dir)?;
            r.restart_as_standby(backend, source)?;
            Ok(serde_json::to_string(r.proc(Kind::Postgres, backend)?)?)
        }
        HostCommand::HoldWrites { backend } => hold_writes(paths.run_dir, backend).map(|()| "null".into()),
        HostCommand::Promote { backend, source, within_ms } => Running::open(paths.run_dir)?
            .catch_up_promote(backend, source, Instant::now() + Duration::from_millis(within_ms))
            .map(|()| "null".into()),
        HostCommand::Attach { pgpool, backend, within_ms } => Running::open(paths.run_dir)?
            // The node is on another host: its death shows as pgpool taking it out.
            .attach_on(backend, &[pgpool], None, Instant::now() + Duration::from_millis(within_ms))
            .map(|()| "null".into()),
        HostCommand::EndOrphans { backend, within_ms } => {
            let (host, port) = Running::open(paths.run_dir)?.topology().endpoint(Kind::Postgres, backend);
            rejoin::end_orphans(&host, port, Instant::now() + Duration::from_millis(within_ms)).map(|()| "null".into())
        }
        HostCommand::Follow { kind, index, master } => {
            let mut r = Running::open(paths.run_dir)?;
            if r.proc(kind, index)?.alive() {
                bail!("{kind} {index} is still running: kill or stop it first");
            }
            let master = master.map(|m| r.topology().addr(Kind::Redis, m));
            crate::redis::restart_following(&mut r, kind, index, master.as_deref())?;
            Ok(serde_json::to_string(r.proc(kind, index)?)?)
        }
        HostCommand::StartNode(i) => {
            let mut r = Running::open(paths.run_dir)?;
            let p = r.proc(Kind::Cassandra, i)?;
            if p.alive() {
                bail!("{} (pid {}) is running: kill or stop it before restarting it", p.label(), p.pid);
            }
            Ok(serde_json::to_string(&crate::cassandra::start_node(&mut r, i)?)?)
        }
        HostCommand::ForgetNodeStatus { pgpool } => {
            Running::open(paths.run_dir)?.forget_node_status(pgpool).map(|()| "null".into())
        }
        HostCommand::Kill(kind, i, sig) => {
            Ok(serde_json::to_string(&Running::open(paths.run_dir)?.signal_instance(kind, i, sig)?)?)
        }
    }
}

/// The words of a verb with its numeric options.
fn words(verb: &str, options: &[(&str, usize)]) -> Vec<String> {
    let mut w = vec![verb.to_string()];
    for (flag, v) in options {
        w.extend([flag.to_string(), v.to_string()]);
    }
    w
}

/// [`HostCommand::HoldWrites`]: the lock sessions live in this process, as long as the control
/// machine's SSH session to it.
fn hold_writes(run_dir: &Path, backend: usize) -> Result<()> {
    let (host, port) = Running::open(run_dir)?.topology().endpoint(Kind::Postgres, backend);
    let pause = WritePause::start(&host, port)?;
    println!("{HELD}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != RELEASE {
        // Dropping the pause ends its sessions: the locks go with them.
        bail!("the control machine left without releasing the writes ({:?}): lock sessions ended", line.trim());
    }
    pause.release()
}

/// What [`HostCommand::HoldWrites`] prints once the writes are paused, and what ends the pause.
pub(crate) const HELD: &str = "locked";
pub(crate) const RELEASE: &str = "release";

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
    Ok(r.processes().iter().filter(|p| tier.kinds().contains(&p.kind)).cloned().collect())
}

/// A host whose `prepare` never ran (an `up` that failed before it) has nothing to stop.
fn stop_tier(run_dir: &Path, tier: Tier) -> Result<()> {
    if tier.kinds().is_empty() || !has_state(run_dir)? {
        return Ok(());
    }
    let mut r = Running::open(run_dir)?;
    for &kind in tier.kinds().iter().rev() {
        for i in r.local(kind) {
            if r.state.find(kind, i).is_some() {
                r.stop(kind, i)?;
            }
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

    /// What the control machine sends is what the host parses back (main.rs maps these flags
    /// onto HostOptions the same way).
    #[test]
    fn every_command_parses_back_from_its_words() {
        let commands = [
            HostCommand::Up(Tier::Postgres),
            HostCommand::Restart(Kind::Web, 1),
            HostCommand::Detach { pgpool: 1, backend: 0 },
            HostCommand::Standby { backend: 1, source: 0 },
            HostCommand::HoldWrites { backend: 0 },
            HostCommand::Promote { backend: 1, source: 0, within_ms: 8000 },
            HostCommand::Attach { pgpool: 0, backend: 1, within_ms: 7000 },
            HostCommand::EndOrphans { backend: 0, within_ms: 6000 },
            HostCommand::Follow { kind: Kind::Redis, index: 0, master: Some(1) },
            HostCommand::Follow { kind: Kind::Sentinel, index: 2, master: None },
            HostCommand::StartNode(2),
            HostCommand::ForgetNodeStatus { pgpool: 1 },
            HostCommand::Kill(Kind::Pgpool, 1, Signal::Stop),
        ];
        for c in commands {
            let words = c.words();
            let mut o = HostOptions::default();
            for pair in words[1..].chunks(2) {
                let v = &pair[1];
                match pair[0].as_str() {
                    "--tier" => o.tier = Some(Tier::parse(v).unwrap()),
                    "--kind" => o.kind = Some(Kind::parse(v).unwrap()),
                    "--index" => o.index = Some(v.parse().unwrap()),
                    "--backend" => o.backend = Some(v.parse().unwrap()),
                    "--source" => o.source = Some(v.parse().unwrap()),
                    "--within-ms" => o.within_ms = Some(v.parse().unwrap()),
                    "--signal" => o.signal = Some(Signal::parse(v).unwrap()),
                    other => panic!("{c:?}: unknown flag {other}"),
                }
            }
            assert_eq!(HostCommand::parse(&words[0], o).unwrap(), c, "{words:?}");
        }
        let e = HostCommand::parse("attach", HostOptions { index: Some(0), backend: Some(1), ..Default::default() });
        assert!(e.unwrap_err().to_string().contains("--within-ms"));
    }

    /// The words the control machine sends are the ones `shopbench-infra host` parses back.
    #[test]
    fn a_kill_goes_over_ssh_as_words_that_parse_back() {
        let kill = HostCommand::Kill(Kind::Pgpool, 1, Signal::Stop);
        let words = kill.words();
        assert_eq!(words.join(" "), "kill --kind pgpool --index 1 --signal STOP");
        let sig = Signal::parse(&words[6]).unwrap();
        let kind = Kind::parse(&words[2]).unwrap();
        assert_eq!(
            HostCommand::parse(
                "kill",
                HostOptions { kind: Some(kind), index: Some(1), signal: Some(sig), ..Default::default() }
            )
            .unwrap(),
            kill
        );
        let e = HostCommand::parse("kill", HostOptions { kind: Some(kind), index: Some(1), ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("--signal"), "{e}");
    }
}
