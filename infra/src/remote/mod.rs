//! A topology with `[[hosts]]`, driven from the control machine over SSH (issue 13): each host
//! gets the packages, the binaries, the topology and the run's passwords (ship.rs), then its part
//! of each tier, tier by tier across hosts (host.rs runs there). Readiness is also checked from
//! here, at each host's address. state.json here records every process with its host; `down`,
//! `status` ask each host's own `shopbench-infra`, and `down` fetches the logs back.

mod host;
mod rejoin;
mod ship;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use host::{run as run_on_host, HostCommand, HostOptions, HostPaths};
pub(crate) use rejoin::rejoin;
pub use ship::ship_binary;

use crate::hosts::SshHost;
use crate::kill::{Signal, Signalled};
use crate::process;
use crate::rundir::{self, REMOTE_DIR};
use crate::running::Running;
use crate::secrets::Secrets;
use crate::sizing::Sizing;
use crate::state::{Proc, State};
use crate::status::{ProcStatus, Status};
use crate::topology::{Kind, Tier, Topology};
use crate::web;

/// Starting a tier waits for readiness on the host (initdb, a backend's start, the migrations).
const TIER_TIMEOUT: Duration = Duration::from_secs(300);
/// A backend's shutdown checkpoint may take a while (running.rs: 90 s grace).
const STOP_TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `command` with this run's files on `h` and returns its stdout.
fn call(h: &SshHost, command: HostCommand, timeout: Duration) -> Result<String> {
    let line = command_line(h, command);
    h.run(&line, timeout).with_context(|| format!("host {} {:?}", h.name, command))
}

/// The shell line that runs `command` with this run's files on `h`.
fn command_line(h: &SshHost, command: HostCommand) -> String {
    let at = |rel: &str| ship::at(h, rel);
    format!(
        "PGPASSFILE={} {} host {} --topology {} --run-dir {} --secrets {} --host {}",
        at("pgpass"),
        at("bin/shopbench-infra"),
        command.words().join(" "),
        at("topology.json"),
        at("run"),
        at("secrets.json"),
        h.name,
    )
}

/// The `shopbench-infra` to ship: this program, or the one built beside it when another program
/// of the workspace starts the topology (the bench's `shopbench-bench` in the same target dir, a
/// test binary in its `deps/`).
fn infra_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.file_name().is_some_and(|n| n == "shopbench-infra") {
        return Ok(exe);
    }
    let dir = exe.parent().context("the running program has no directory")?;
    let mut beside = [Some(dir), dir.parent()].into_iter().flatten().map(|d| d.join("shopbench-infra"));
    beside.find(|p| p.is_file()).with_context(|| {
        format!(
            "a topology with [[hosts]] ships the shopbench-infra program to each host: none beside {} \
             (cargo build -p infra)",
            exe.display()
        )
    })
}

pub(crate) fn up(t: Topology, run_dir: &Path) -> Result<Running> {
    let t0 = Instant::now();
    let infra = infra_binary()?;
    let web = match t.count(Kind::Web) {
        0 => None,
        _ => Some(web::binary_path(&t.web.binary_or_default())?),
    };
    let dir = rundir::prepare(run_dir, None)?;
    let secrets = Secrets::generate()?.save(&dir)?;
    let sizing = Sizing::derive(&t);
    eprintln!(
        "up: topology {:?} on {} hosts, from {}\n{}",
        t.name,
        t.used_machines().len(),
        dir.display(),
        sizing.explain(&t)
    );
    let state = State {
        topology: t.clone(),
        sizing,
        run_as: None,
        socket_root: dir.clone(),
        web_binary: web.clone(),
        processes: vec![],
        web_settings: Default::default(),
        machine: None,
        secrets: Some(secrets),
    };
    state.save(&dir)?;
    // From here on, `?` drops `running`, which stops whatever the hosts started.
    let mut running = Running::new(dir.clone(), state, true)?;
    let machines: Vec<SshHost> = t.used_machines().into_iter().cloned().collect();
    let since = Instant::now();
    let shipped: Vec<Result<()>> = std::thread::scope(|s| {
        let jobs: Vec<_> = machines
            .iter()
            .map(|h| {
                let local = dir.join(REMOTE_DIR).join(&h.name);
                let (t, infra, web) = (&t, &infra, web.as_deref());
                s.spawn(move || {
                    ship::ship(h, t, &local, infra, web)?;
                    call(h, HostCommand::Prepare, TIER_TIMEOUT).map(drop)
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("ship thread panicked")).collect()
    });
    for (h, res) in machines.iter().zip(shipped) {
        res.with_context(|| format!("preparing host {} ({})", h.name, h.address))?;
    }
    eprintln!("up: {} hosts installed, shipped and prepared in {:.1?}", machines.len(), since.elapsed());
    for tier in Tier::ALL {
        let since = Instant::now();
        let hosts = in_tier_order(&t, tier, &machines);
        if tier == Tier::Cassandra && !hosts.is_empty() {
            // Every host's node at once: each starts alone (20-40 s, more on a busy machine) and
            // needs the others only to form the ring, which is waited for from here.
            let answers: Vec<Result<String>> = std::thread::scope(|s| {
                let jobs: Vec<_> =
                    hosts.iter().map(|h| s.spawn(move || call(h, HostCommand::Up(tier), TIER_TIMEOUT))).collect();
                jobs.into_iter().map(|j| j.join().expect("tier thread panicked")).collect()
            });
            // Every node that started is recorded (and stopped on a failure) before any error.
            let mut failed = None;
            for (h, answer) in hosts.iter().zip(answers) {
                match answer {
                    Ok(out) => record_answer(&mut running, h, &out)?,
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            crate::cassandra::secure_ring(&running)?;
        } else {
            for h in hosts {
                let out = call(h, HostCommand::Up(tier), TIER_TIMEOUT)?;
                record_answer(&mut running, h, &out)?;
            }
        }
        if tier == Tier::Sentinel && t.count(Kind::Sentinel) > 0 {
            crate::redis::wait_sentinels_meet(&running)?;
        }
        if machines.iter().any(|h| t.has_part(tier, Some(&h.name))) {
            eprintln!("up: tier {tier} ready in {:.1?}", since.elapsed());
        }
    }
    eprintln!("up: all ready in {:.1?}", t0.elapsed());
    Ok(running)
}

/// Records the processes `h` answers it started, each checked from here.
fn record_answer(running: &mut Running, h: &SshHost, out: &str) -> Result<()> {
    let procs: Vec<Proc> = serde_json::from_str(out).with_context(|| format!("{} answered {out:?}", h.name))?;
    for mut p in procs {
        p.machine = Some(h.name.clone());
        running.record_remote(p.clone())?;
        ready_from_here(running, &p)?;
    }
    Ok(())
}

/// The hosts with a part in `tier`, in `[[hosts]]` order, but for the Redis tier the master's
/// host first (a replica is ready only once it follows the master).
fn in_tier_order<'a>(t: &Topology, tier: Tier, machines: &'a [SshHost]) -> Vec<&'a SshHost> {
    let mut hosts: Vec<&SshHost> = machines.iter().filter(|h| t.has_part(tier, Some(&h.name))).collect();
    if tier == Tier::Redis {
        let master = t.machine_of(Kind::Redis, 0).map(|h| h.name.clone());
        hosts.sort_by_key(|h| Some(&h.name) != master.as_ref());
    }
    hosts
}

/// Is `p` reachable from the control machine at its host's address? (The host checked it
/// itself; this checks the network between.) PostgreSQL and pgpool only as TCP: the control
/// machine is not among the addresses they let log in unless the topology lists it in `clients`.
/// Redis and Sentinel answer a PING with the run's passwords. A Cassandra node only as TCP too:
/// its login exists once the whole ring does (crate::cassandra::secure_ring).
fn ready_from_here(r: &Running, p: &Proc) -> Result<()> {
    let what = format!("{} on {} from the control machine", p.label(), p.addr());
    process::wait_until(
        &what,
        Duration::from_secs(30),
        || false,
        || match p.kind {
            Kind::Web | Kind::Nginx => {
                let path = if p.kind == Kind::Web { "/health/ready" } else { "/health" };
                Ok(process::http_get(&p.host, p.port, path, Duration::from_secs(2))?.0 == 200)
            }
            Kind::Redis => crate::redis::query_as::<String>(&p.addr(), r.redis_password(), &["PING"]).map(|_| true),
            Kind::Sentinel => {
                crate::redis::query_as::<String>(&p.addr(), r.sentinel_password(), &["PING"]).map(|_| true)
            }
            _ => Ok(process::tcp_accepts(&p.host, p.port)),
        },
    )
}

/// Stops every host's instances, tier by tier in reverse (nginx everywhere first, the backends
/// last), then fetches each process's log into `remote/<host>/<kind><i>/`.
pub(crate) fn down(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    let machines: Vec<SshHost> = t.used_machines().into_iter().cloned().collect();
    let mut failures = vec![];
    for tier in Tier::ALL.into_iter().rev().filter(|t| !t.kinds().is_empty()) {
        let since = Instant::now();
        let hosts: Vec<&SshHost> = machines.iter().filter(|h| t.has_part(tier, Some(&h.name))).collect();
        for h in &hosts {
            if let Err(e) = call(h, HostCommand::Stop(tier), STOP_TIMEOUT) {
                failures.push(format!("{e:#}"));
            }
        }
        if !hosts.is_empty() {
            eprintln!("down: tier {tier} stopped in {:.1?}", since.elapsed());
        }
    }
    for h in &machines {
        // A network fault left in place would outlive the run on a real machine.
        if let Err(e) = h.heal_all() {
            failures.push(format!("{e:#}"));
        }
        if let Err(e) = call(h, HostCommand::Down, STOP_TIMEOUT) {
            failures.push(format!("{e:#}"));
        }
        fetch_logs(r, h);
    }
    if !failures.is_empty() {
        bail!("could not stop: {}", failures.join("; "));
    }
    r.state.processes.clear();
    match std::fs::remove_file(r.run_dir().join(crate::state::STATE_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Copies each log of `h`'s processes back; a log that cannot be fetched is reported, not fatal.
fn fetch_logs(r: &Running, h: &SshHost) {
    for p in r.processes().iter().filter(|p| p.machine.as_deref() == Some(h.name.as_str())) {
        let local = crate::logs::fetched_dir(r.run_dir(), &h.name, p);
        let fetched = std::fs::create_dir_all(&local)
            .map_err(anyhow::Error::from)
            .and_then(|()| h.copy_from(&[p.log.as_path()], &local, Duration::from_secs(120)));
        if let Err(e) = fetched {
            eprintln!("down: the log of {} on {} was not fetched: {e:#}", p.label(), h.name);
        }
    }
}

/// The consistency check, run on the first backend's host (this machine is not among the
/// addresses the backends let in).
pub(crate) fn check(r: &Running) -> Result<crate::check::Report> {
    let h = r.topology().machine_of(Kind::Postgres, 0).context("no postgres 0")?;
    let out = call(h, HostCommand::Check, Duration::from_secs(300))?;
    serde_json::from_str(&out).with_context(|| format!("{} answered {out:?}", h.name))
}

/// Starts a killed instance again on its host: web, nginx, an exporter or Prometheus by the
/// host alone, a backend by its rejoin driven from here (rejoin.rs), a pgpool once the backends
/// it will write to are rejoined and its outdated node status is gone. Returns how long a
/// backend's rejoin held writes and the backends a pgpool's restart rejoined first.
pub(crate) fn restart(r: &mut Running, kind: Kind, i: usize) -> Result<(Option<Duration>, Vec<usize>)> {
    let mut rejoined = vec![];
    match kind {
        Kind::Postgres => return rejoin::rejoin(r, i).map(|report| (Some(report.writes_paused), vec![])),
        Kind::Pgpool => rejoined = rejoin::before_pgpool_restart(r, i)?,
        Kind::Cassandra => return restart_cassandra(r, i).map(|()| (None, vec![])),
        Kind::Web | Kind::Nginx | Kind::Redis | Kind::Sentinel => {}
        k if k.is_observer() => {}
        _ => bail!("restart of {kind} is not done over SSH (issue 13)"),
    }
    let h = r.topology().machine_of(kind, i).with_context(|| format!("no {kind} {i}"))?.clone();
    let command = match kind {
        Kind::Redis | Kind::Sentinel => follow(r, kind, i)?,
        _ => HostCommand::Restart(kind, i),
    };
    let out = call(&h, command, TIER_TIMEOUT)?;
    record_proc(r, &h, &out).map(|_| (None, rejoined))
}

/// A Cassandra node's restart: its host starts it (a JVM takes longer than the checks from here
/// allow), then the ring is waited for from here, logged in, as `up` does.
fn restart_cassandra(r: &mut Running, i: usize) -> Result<()> {
    if status(r).processes.iter().any(|p| p.kind == Kind::Cassandra && p.index == i && p.up) {
        bail!("cassandra {i} is running: kill or stop it before restarting it");
    }
    let h = r.topology().machine_of(Kind::Cassandra, i).with_context(|| format!("no cassandra {i}"))?.clone();
    let out = call(&h, HostCommand::StartNode(i), TIER_TIMEOUT)?;
    let mut p: Proc = serde_json::from_str(&out).with_context(|| format!("{} answered {out:?}", h.name))?;
    p.machine = Some(h.name.clone());
    r.record_remote(p.clone())?;
    crate::cassandra::wait_whole_ring(r, &p)
}

/// A Redis instance's or sentinel's restart: the master it follows is decided here, where every
/// host's instances are known (the sentinels asked at their addresses), then its host starts it.
fn follow(r: &Running, kind: Kind, i: usize) -> Result<HostCommand> {
    let s = status(r);
    if s.processes.iter().any(|p| p.kind == kind && p.index == i && p.up) {
        bail!("{kind} {i} is running: kill or stop it before restarting it");
    }
    let master = crate::redis::master_to_follow(r, kind, i)?;
    let index = |m: String| {
        let t = r.topology();
        (0..t.count(Kind::Redis))
            .find(|&k| t.addr(Kind::Redis, k) == m)
            .with_context(|| format!("{m} is no redis of the topology"))
    };
    Ok(HostCommand::Follow { kind, index: i, master: master.map(index).transpose()? })
}

/// Records the process `h` answers it (re)started, checked from here.
fn record_proc(r: &mut Running, h: &SshHost, out: &str) -> Result<Proc> {
    let mut p: Proc = serde_json::from_str(out).with_context(|| format!("{} answered {out:?}", h.name))?;
    p.machine = Some(h.name.clone());
    r.record_remote(p.clone())?;
    ready_from_here(r, &p)?;
    Ok(p)
}

/// Signals an instance on its host, by PID there (`host kill`); the host answers what the
/// signal did to the instance's process tree.
pub(crate) fn kill(r: &Running, kind: Kind, i: usize, sig: Signal) -> Result<Signalled> {
    let h = r.topology().machine_of(kind, i).with_context(|| format!("no {kind} {i}"))?;
    let out = call(h, HostCommand::Kill(kind, i, sig), Duration::from_secs(60))?;
    serde_json::from_str(&out).with_context(|| format!("{} answered {out:?}", h.name))
}

/// Every host's answer, merged; a host that does not answer shows its processes DOWN.
pub(crate) fn status(r: &Running) -> Status {
    let t = r.topology();
    // The ring's view is asked from here (a host has no login of its own to ask with).
    let mut all = Status {
        processes: vec![],
        pgpools: vec![],
        redis: vec![],
        cassandra: crate::cassandra::status_lines(r),
        notes: vec![],
    };
    for h in t.used_machines() {
        match call(h, HostCommand::Status, Duration::from_secs(60)).and_then(|out| host::parse_status(&out)) {
            Ok(s) => {
                all.processes.extend(s.processes);
                all.pgpools.extend(s.pgpools);
                all.redis.extend(s.redis);
            }
            Err(e) => {
                all.notes.push(format!("host {} does not answer: {e:#}", h.name));
                let mine = r.processes().iter().filter(|p| p.machine.as_deref() == Some(h.name.as_str()));
                all.processes.extend(mine.map(|p| ProcStatus {
                    kind: p.kind,
                    index: p.index,
                    pid: p.pid,
                    addr: p.addr(),
                    up: false,
                    orphans: vec![],
                }));
            }
        }
    }
    all.processes.sort_by_key(|p| (p.kind, p.index));
    all.pgpools.sort_by_key(|(i, _)| *i);
    all
}
