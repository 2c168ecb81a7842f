//! `rejoin --backend I` and a backend's restart on a topology with `[[hosts]]`: the loopback
//! rejoin's steps (crate::rejoin), each run by the host that can (its pgpool's pcp with its own
//! pcp password, the copy from the failed backend's host, the lock sessions and the orphans on the
//! source's host), driven from here over SSH. Writes are held from the locks until their release,
//! as on loopback bounded by `STEPS_LIMIT` for the steps, plus an SSH round trip or two.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::host::{HELD, RELEASE};
use super::{call, record_proc, HostCommand, TIER_TIMEOUT};
use crate::hosts::SshHost;
use crate::rejoin::{finish_with_writes_paused, left, RejoinReport};
use crate::running::Running;
use crate::status::Status;
use crate::topology::{Kind, Topology};

/// A pcp call or a status on one host (SHOW pool_nodes may wait 15 s during a failover).
const CALL: Duration = Duration::from_secs(60);
/// What an SSH round trip may add to a step bounded on the host.
const SSH_SLACK: Duration = Duration::from_secs(3);

fn host_of(t: &Topology, kind: Kind, i: usize) -> Result<&SshHost> {
    t.machine_of(kind, i).with_context(|| format!("{kind} {i} has no host"))
}

/// The instances of `kind` the hosts report running.
fn live(status: &Status, kind: Kind) -> Vec<usize> {
    status.processes.iter().filter(|p| p.kind == kind && p.up).map(|p| p.index).collect()
}

/// The rejoin of backend `i` (crate::rejoin's module doc), driven from the control machine.
pub(crate) fn rejoin(r: &mut Running, i: usize) -> Result<RejoinReport> {
    let t0 = Instant::now();
    let mut t = r.topology().clone();
    if i >= t.count(Kind::Postgres) {
        bail!("no backend {i}: the topology has {}", t.count(Kind::Postgres));
    }
    let status = super::status(r);
    let pgpools = live(&status, Kind::Pgpool);
    if pgpools.len() < t.count(Kind::Pgpool) {
        eprintln!("rejoin: warning: only pgpools {pgpools:?} are running; a stopped pgpool keeps its own node status");
    }
    // 1. detach on every pgpool that still has it attached, each on its host
    for &p in &pgpools {
        call(host_of(&t, Kind::Pgpool, p)?, HostCommand::Detach { pgpool: p, backend: i }, CALL)?;
    }
    eprintln!("rejoin: node {i} detached on pgpools {pgpools:?}");
    let source = source(&t, &status, i, &pgpools)?;
    // 2. stop it; 3. copy and start it as a standby of the source, on its host
    let h = host_of(&t, Kind::Postgres, i)?;
    let copy = Instant::now();
    let out = call(h, HostCommand::Standby { backend: i, source }, TIER_TIMEOUT)?;
    record_proc(r, h, &out)?;
    eprintln!("rejoin: postgres {i} runs on {} as a standby of postgres {source} ({:.1?})", h.name, copy.elapsed());

    // 4. pause writes: the lock sessions run on the source's host
    let paused_at = Instant::now();
    let pause = RemotePause::start(host_of(&t, Kind::Postgres, source)?, source)?;
    eprintln!("rejoin: writes paused (tables locked on postgres {source})");
    // 5. catch up and promote; 6. attach on every pgpool, each on its host; 7. resume writes
    let steps = |t: &mut Topology, deadline| catch_up_promote_attach(t, i, source, &pgpools, deadline);
    let detach_again = |t: &Topology, p| {
        let h = host_of(t, Kind::Pgpool, p)?;
        call(h, HostCommand::Detach { pgpool: p, backend: i }, SSH_SLACK * 2).map(drop)
    };
    let times = (t0, paused_at);
    finish_with_writes_paused(&mut t, i, source, &pgpools, times, steps, detach_again, || pause.release())
}

/// What a pgpool's restart on a host needs first (crate::restart's pgpool arm, split across
/// hosts): the backends a live pgpool has detached are rejoined; then, when the other hosts'
/// pgpools see every backend up, pgpool `i`'s saved node status goes on its host (otherwise it
/// would start with the node it last saw down still detached). Returns the backends rejoined.
pub(crate) fn before_pgpool_restart(r: &mut Running, i: usize) -> Result<Vec<usize>> {
    let t = r.topology().clone();
    let status = super::status(r);
    let running = live(&status, Kind::Pgpool);
    if running.contains(&i) {
        bail!("pgpool {i} is running: kill or stop it before restarting it");
    }
    let mut detached = vec![];
    for (p, view) in status.pgpools.iter().filter(|(p, _)| running.contains(p)) {
        let nodes = view.as_ref().map_err(|e| anyhow::anyhow!("pgpool {p} does not say which nodes it has: {e}"))?;
        for n in nodes.iter().filter(|n| n.status == "down") {
            if !detached.contains(&n.node_id) {
                detached.push(n.node_id);
            }
        }
    }
    detached.sort_unstable();
    for &node in &detached {
        eprintln!("restart: a live pgpool has backend {node} detached: rejoining it first");
        rejoin(r, node).with_context(|| format!("rejoining backend {node} before a pgpool restart"))?;
    }
    let status = if detached.is_empty() { status } else { super::status(r) };
    let all_up = |p: &usize| {
        status.pgpools.iter().find(|(q, _)| q == p).is_some_and(|(_, view)| {
            view.as_ref()
                .is_ok_and(|nodes| nodes.len() == t.count(Kind::Postgres) && nodes.iter().all(|n| n.status == "up"))
        })
    };
    if !running.is_empty() && running.iter().all(all_up) {
        call(host_of(&t, Kind::Pgpool, i)?, HostCommand::ForgetNodeStatus { pgpool: i }, CALL)?;
    }
    Ok(detached)
}

/// The first other backend that runs and that every pgpool of `pgpools` shows up.
fn source(t: &Topology, status: &Status, i: usize, pgpools: &[usize]) -> Result<usize> {
    let running = live(status, Kind::Postgres);
    for k in (0..t.count(Kind::Postgres)).filter(|k| *k != i && running.contains(k)) {
        let up_on = |p: &usize| {
            status.pgpools.iter().find(|(q, _)| q == p).is_some_and(|(_, view)| {
                view.as_ref().is_ok_and(|nodes| nodes.iter().any(|n| n.node_id == k && n.status == "up"))
            })
        };
        if pgpools.iter().all(up_on) {
            return Ok(k);
        }
    }
    bail!(
        "no running backend is up on every pgpool to copy node {i} from (running: {running:?}; views: {:?})",
        status.pgpools
    )
}

/// Steps 5 and 6 while writes are paused, each on its host, by `deadline`.
fn catch_up_promote_attach(t: &Topology, i: usize, source: usize, pgpools: &[usize], deadline: Instant) -> Result<()> {
    let ms = |d: Duration| d.as_millis() as u64;
    let within = left(deadline)?;
    let promote = HostCommand::Promote { backend: i, source, within_ms: ms(within) };
    call(host_of(t, Kind::Postgres, i)?, promote, within + SSH_SLACK)?;
    eprintln!("rejoin: postgres {i} caught up and was promoted");
    // Every pgpool at once: each restarts its children ~1 s after the attach.
    let within = left(deadline)?;
    let attached: Vec<Result<String>> = std::thread::scope(|s| {
        let jobs: Vec<_> = pgpools
            .iter()
            .map(|&p| {
                s.spawn(move || {
                    let attach = HostCommand::Attach { pgpool: p, backend: i, within_ms: ms(within) };
                    call(host_of(t, Kind::Pgpool, p)?, attach, within + SSH_SLACK)
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("attach thread panicked")).collect()
    });
    for (p, res) in pgpools.iter().zip(attached) {
        res.with_context(|| format!("attaching node {i} on pgpool {p}"))?;
    }
    eprintln!("rejoin: node {i} attached on pgpools {pgpools:?}");
    let within = left(deadline)?;
    let end = HostCommand::EndOrphans { backend: source, within_ms: ms(within) };
    call(host_of(t, Kind::Postgres, source)?, end, within + SSH_SLACK).map(drop)
}

/// The write pause of [`HostCommand::HoldWrites`]: an SSH session to the source's host whose
/// process holds the locks. Dropping it ends the session, which ends the locks there.
struct RemotePause {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: mpsc::Receiver<String>,
}

impl RemotePause {
    fn start(h: &SshHost, backend: usize) -> Result<RemotePause> {
        let mut cmd = h.command(&super::command_line(h, HostCommand::HoldWrites { backend }));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting ssh")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("ssh stdout")?;
        let mut stderr = child.stderr.take().context("ssh stderr")?;
        let (held_tx, held) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if line.trim() == HELD {
                    let _ = held_tx.send(());
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let mut pause = RemotePause { child, stdin, stderr: err_rx };
        // The lock waits on the host are bounded (crate::rejoin: 5 s per database).
        if held.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = pause.child.kill();
            let _ = pause.child.wait();
            bail!("could not lock the tables on {} for the rejoin: {}", h.name, pause.stderr_text());
        }
        Ok(pause)
    }

    fn stderr_text(&self) -> String {
        self.stderr.recv_timeout(Duration::from_secs(1)).unwrap_or_default().trim().to_string()
    }

    /// Asks the host to commit and end the lock sessions; the SSH session ends with them.
    fn release(mut self) -> Result<()> {
        let mut stdin = self.stdin.take().context("released twice")?;
        let _ = writeln!(stdin, "{RELEASE}").and_then(|()| stdin.flush());
        drop(stdin);
        let deadline = Instant::now() + SSH_SLACK;
        loop {
            match self.child.try_wait()? {
                Some(s) if s.success() => return Ok(()),
                Some(s) => bail!("the write pause ended with {s}: {}", self.stderr_text()),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    bail!("the write pause did not end within {SSH_SLACK:?}: its SSH session was killed");
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for RemotePause {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
