//! A started topology: `Topology::up` (up.rs) starts it, `Running` stops it (`down`, or on drop).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use endpoints::HostPort;

use crate::kill::{self, Signal, Signalled};
use crate::process::{self, RunAs};
use crate::secrets::Secrets;
use crate::sizing::Sizing;
use crate::state::{Proc, State, STATE_FILE};
use crate::topology::{Kind, Topology};

/// A running topology. Dropping it stops every process it started (so a panicking test leaves
/// nothing behind); [`Running::leave_running`] hands the processes over to a later `down`.
pub struct Running {
    pub(crate) dir: PathBuf,
    pub(crate) state: State,
    pub(crate) children: HashMap<(Kind, usize), Child>,
    pub(crate) stop_on_drop: bool,
    /// The run's passwords, when its servers listen off loopback (`[[hosts]]`).
    pub(crate) secrets: Option<Secrets>,
}

impl Running {
    /// Attaches to the topology recorded in `run_dir` (for `status`, `check`, `rejoin`, `down`).
    /// Dropping the result does not stop anything.
    pub fn open(run_dir: impl AsRef<Path>) -> Result<Running> {
        let dir = run_dir.as_ref();
        let dir = dir.canonicalize().with_context(|| format!("no run dir {} (nothing was started)", dir.display()))?;
        let Some(state) = State::load(&dir)? else {
            bail!("no {STATE_FILE} in {}: nothing is running there", dir.display())
        };
        Running::new(dir, state, false)
    }

    /// A run of `t` in `dir` that records `processes` (started by nobody: unit tests of what
    /// depends on the run's state only). Dropping it stops nothing.
    #[cfg(test)]
    pub(crate) fn recorded(dir: &Path, t: Topology, processes: Vec<Proc>, secrets: Option<PathBuf>) -> Running {
        let state = State {
            sizing: Sizing::derive(&t),
            topology: t,
            run_as: None,
            socket_root: dir.to_path_buf(),
            web_binary: None,
            processes,
            web_settings: Default::default(),
            machine: None,
            secrets,
        };
        Running::new(dir.to_path_buf(), state, false).expect("a recorded run")
    }

    pub(crate) fn new(dir: PathBuf, state: State, stop_on_drop: bool) -> Result<Running> {
        let secrets = state.secrets.as_deref().map(Secrets::load).transpose()?;
        Ok(Running { dir, state, children: HashMap::new(), stop_on_drop, secrets })
    }

    /// The control machine of a topology with `[[hosts]]`: its processes run on other hosts and
    /// are reached over SSH (remote/).
    pub(crate) fn is_control(&self) -> bool {
        self.state.topology.is_remote() && self.state.machine.is_none()
    }

    /// The instances of `kind` this run dir starts: those placed on its host (all on loopback).
    pub(crate) fn local(&self, kind: Kind) -> Vec<usize> {
        self.state.topology.instances_on(kind, self.state.machine.as_deref())
    }

    /// Lets the processes outlive this value (the CLI's `up`); `down` stops them later.
    pub fn leave_running(mut self) {
        self.stop_on_drop = false;
    }

    pub fn run_dir(&self) -> &Path {
        &self.dir
    }

    /// Where copies of logs named `name` go (`logs_since`'s `into`), inside the run dir: the next
    /// `up` in this dir clears them with the rest of the run (a dir of the caller's own there
    /// would make it refuse to clear the run dir).
    pub fn log_copies(&self, name: &str) -> PathBuf {
        self.dir.join(crate::rundir::LOG_COPIES_DIR).join(name)
    }

    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    pub fn sizing(&self) -> Sizing {
        self.state.sizing
    }

    /// The app's `postgres.pool_size` (per pgpool endpoint) derived from the counts.
    pub fn app_pool_size(&self) -> u32 {
        self.state.sizing.app_pool_size
    }

    /// Where every instance of `kind` listens.
    pub fn endpoints(&self, kind: Kind) -> Vec<HostPort> {
        let t = &self.state.topology;
        (0..t.count(kind)).map(|i| t.endpoint(kind, i)).map(|(host, port)| HostPort { host, port }).collect()
    }

    fn addrs(&self, kind: Kind) -> Vec<String> {
        self.endpoints(kind).iter().map(HostPort::to_string).collect()
    }

    /// `host:port` of every pgpool (what the app's SHOPBENCH__POSTGRES__ENDPOINTS lists).
    pub fn pgpool_endpoints(&self) -> Vec<String> {
        self.addrs(Kind::Pgpool)
    }

    /// `host:port` of every PostgreSQL backend (direct access, bypassing pgpool).
    pub fn backend_endpoints(&self) -> Vec<String> {
        self.addrs(Kind::Postgres)
    }

    pub fn web_urls(&self) -> Vec<String> {
        self.addrs(Kind::Web).into_iter().map(|a| format!("http://{a}")).collect()
    }

    pub fn nginx_urls(&self) -> Vec<String> {
        self.addrs(Kind::Nginx).into_iter().map(|a| format!("http://{a}")).collect()
    }

    pub fn prometheus_url(&self) -> Option<String> {
        self.addrs(Kind::Prometheus).pop().map(|a| format!("http://{a}"))
    }

    pub fn processes(&self) -> &[Proc] {
        &self.state.processes
    }

    /// Records a process another host started (the control machine's record of it).
    pub(crate) fn record_remote(&mut self, proc: Proc) -> Result<()> {
        self.state.record(proc);
        self.save()
    }

    pub(crate) fn save(&self) -> Result<()> {
        self.state.save(&self.dir)
    }

    /// Records a process we just spawned (state.json is rewritten at once, so that even a crash of
    /// this program leaves `down` able to stop it).
    pub(crate) fn record(&mut self, proc: Proc, child: Child) -> Result<()> {
        self.children.insert((proc.kind, proc.index), child);
        self.state.record(proc);
        self.save()
    }

    pub(crate) fn proc(&self, kind: Kind, index: usize) -> Result<&Proc> {
        self.state.find(kind, index).with_context(|| format!("{kind} {index} is not part of this topology"))
    }

    /// Sends `sig` (`libc::SIGKILL`, `libc::SIGSTOP` or `libc::SIGCONT`) to one instance: its
    /// main process, its process group and every descendant (a postmaster's children run in their
    /// own sessions, so a signal to its group alone left them serving). The fault injection of the
    /// tests and the bench; [`Running::signal_instance`] also answers what it did.
    pub fn kill(&mut self, kind: Kind, index: usize, sig: i32) -> Result<()> {
        self.signal_instance(kind, index, Signal::from_number(sig)?).map(drop)
    }

    /// [`Running::kill`], answering the instance's process tree and each process's state after
    /// the signal. On a control machine the instance's host signals it by PID there and answers
    /// (remote/: `host kill`); SIGKILL waits there until the main process is gone.
    pub fn signal_instance(&mut self, kind: Kind, index: usize, sig: Signal) -> Result<Signalled> {
        if self.is_control() {
            return crate::remote::kill(self, kind, index, sig);
        }
        let p = self.proc(kind, index)?.clone();
        let pid = p.local_pid()?;
        if !p.alive() {
            bail!("{} (pid {pid}) is not running", p.label());
        }
        let done = kill::signal_local(&p, sig)?;
        if sig == Signal::Kill {
            process::wait_until(&format!("{} to die", p.label()), Duration::from_secs(5), || false, || Ok(!p.alive()))?;
            if let Some(mut c) = self.children.remove(&(kind, index)) {
                let _ = c.wait();
            }
        }
        Ok(done)
    }

    /// Sends `sig` to the main process of one instance alone (e.g. SIGKILL of pgpool's main
    /// process, whose children then go on serving its port as orphans: see [`Proc::orphans`]).
    pub fn kill_main_process(&mut self, kind: Kind, index: usize, sig: i32) -> Result<()> {
        let p = self.proc(kind, index)?.clone();
        let pid = p.local_pid()?;
        if !p.alive() {
            bail!("{} (pid {pid}) is not running", p.label());
        }
        process::signal(pid, sig)?;
        if sig == libc::SIGKILL {
            process::wait_until(&format!("{} to die", p.label()), Duration::from_secs(5), || false, || Ok(!p.alive()))?;
            if let Some(mut c) = self.children.remove(&(kind, index)) {
                let _ = c.wait();
            }
        }
        Ok(())
    }

    /// Ends (SIGKILL by pid, then waits until each is dead) what is left of an instance whose
    /// main process died; returns how many there were.
    pub(crate) fn end_orphans(&self, kind: Kind, index: usize) -> Result<usize> {
        let p = self.proc(kind, index)?;
        let orphans = p.orphans();
        if orphans.is_empty() {
            return Ok(0);
        }
        let pids: Vec<u32> = orphans.iter().map(|(pid, _)| *pid).collect();
        process::kill_all(&orphans, Duration::from_secs(10))
            .with_context(|| format!("ending the orphans of {} {pids:?}", p.label()))?;
        eprintln!("{}: ended {} orphaned process(es) of its dead main process: {pids:?}", p.label(), pids.len());
        Ok(pids.len())
    }

    /// Stops one instance by PID (its kind's stop signal, SIGKILL after a grace period).
    pub fn stop(&mut self, kind: Kind, index: usize) -> Result<()> {
        let p = self.proc(kind, index)?.clone();
        let pid = p.local_pid()?;
        let (sig, grace) = stop_signal(kind);
        let child = self.children.get_mut(&(kind, index));
        process::stop(pid, p.start_time, sig, grace, child).with_context(|| format!("stopping {}", p.label()))?;
        self.children.remove(&(kind, index));
        self.end_orphans(kind, index)?;
        Ok(())
    }

    /// Reaps instance `index` of `kind` if we started it and it has exited (killed through
    /// another handle, e.g. by `shopbench-infra` or a test's second `Running::open`).
    pub(crate) fn reap(&mut self, kind: Kind, index: usize) {
        if let Some(c) = self.children.get_mut(&(kind, index)) {
            if matches!(c.try_wait(), Ok(Some(_))) {
                self.children.remove(&(kind, index));
            }
        }
    }

    /// Stops PostgreSQL backend `i` (fast shutdown), as a failed backend.
    pub fn stop_backend(&mut self, i: usize) -> Result<()> {
        self.stop(Kind::Postgres, i)
    }

    /// Stops everything of the run dir in reverse start order; state.json is removed, data and logs
    /// stay for inspection until the next `up`.
    pub fn down(mut self) -> Result<()> {
        self.stop_on_drop = false;
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<()> {
        if self.is_control() {
            return crate::remote::down(self);
        }
        let mut failures = Vec::new();
        // Kind by kind in reverse start order; the instances of one kind stop in parallel.
        for kind in Kind::ALL.into_iter().rev() {
            let procs: Vec<Proc> = self.state.processes.iter().rev().filter(|p| p.kind == kind).cloned().collect();
            let t = Instant::now();
            let up: Vec<&Proc> = procs.iter().filter(|p| p.alive()).collect();
            for p in &up {
                let _ = process::signal(p.pid, stop_signal(kind).0);
            }
            for p in &procs {
                if let Err(e) = self.stop(p.kind, p.index) {
                    failures.push(format!("{e:#}"));
                }
            }
            if !up.is_empty() {
                let pids: Vec<String> = up.iter().map(|p| format!("{} (pid {})", p.label(), p.pid)).collect();
                eprintln!("down: {} stopped in {:.1?}", pids.join(", "), t.elapsed());
            }
        }
        if !failures.is_empty() {
            bail!("could not stop: {}", failures.join("; "));
        }
        match std::fs::remove_file(self.dir.join(STATE_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(crate) fn run_as(&self) -> Option<&RunAs> {
        self.state.run_as.as_ref()
    }

    pub(crate) fn instance_dir(&self, kind: Kind, i: usize) -> PathBuf {
        match kind {
            Kind::Prometheus => self.dir.join("prometheus"),
            _ => self.dir.join(format!("{kind}{i}")),
        }
    }

    pub(crate) fn socket_dir(&self, kind: Kind, i: usize) -> PathBuf {
        self.state.socket_root.join(format!("{kind}{i}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stop_on_drop {
            if let Err(e) = self.stop_all() {
                eprintln!("stopping topology {}: {e:#}", self.dir.display());
            }
        }
    }
}

/// The stop signal and grace period of each kind: PostgreSQL's and pgpool's SIGTERM waits for
/// clients to leave ("smart"), SIGINT does not.
fn stop_signal(kind: Kind) -> (i32, Duration) {
    match kind {
        // The shutdown checkpoint fsyncs every file: ~25 s after a test suite made 10k files.
        Kind::Postgres => (libc::SIGINT, Duration::from_secs(90)),
        Kind::Pgpool => (libc::SIGINT, Duration::from_secs(10)),
        // Without persistence a Redis instance exits at once.
        Kind::Redis | Kind::Sentinel => (libc::SIGTERM, Duration::from_secs(10)),
        // SIGTERM drains the node (flushes memtables): a few seconds.
        Kind::Cassandra => (libc::SIGTERM, Duration::from_secs(30)),
        Kind::Web | Kind::Prometheus => (libc::SIGTERM, Duration::from_secs(10)),
        Kind::PostgresExporter
        | Kind::PgpoolExporter
        | Kind::RedisExporter
        | Kind::SentinelExporter
        | Kind::NginxExporter => (libc::SIGTERM, Duration::from_secs(5)),
        Kind::Nginx => (libc::SIGTERM, Duration::from_secs(5)),
    }
}
