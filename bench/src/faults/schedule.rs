//! The schedule of one fault, on the timeline's clock: wait for the kill time, do the fault to
//! its instance, wait while it is down, bring it back; one function per kind of fault.

use super::timeline::Timeline;
use super::{inject, resolve, with_running, FaultKind, FaultSpec, FaultsFile, Shared, Target};
use anyhow::{Context, Result};
use infra::{Kind, Running};
use std::time::{Duration, Instant};

/// What the schedule did, on the timeline's clock.
pub(super) struct Events {
    pub(super) instance: String,
    /// What was done, for the table ("SIGSTOP postgres 1 and its 9 descendants for 20 s, SIGCONT").
    pub(super) fault: String,
    pub(super) killed_at: f64,
    pub(super) restart_at: f64,
    pub(super) restarted: Result<(f64, infra::RestartReport), String>,
    /// What the fault did beyond its name (a first rejoin that failed, sessions refused, ...).
    pub(super) notes: Vec<String>,
    /// What went wrong on the way back, though the instance came back in the end.
    pub(super) problems: Vec<String>,
}

fn proc_of(running: &Shared, kind: Kind, index: usize) -> Result<infra::Proc> {
    let r = running.lock().unwrap_or_else(|e| e.into_inner());
    let found = r.processes().iter().find(|p| p.kind == kind && p.index == index).cloned();
    found.with_context(|| format!("no {kind} {index} in the topology"))
}

/// A report for a fault whose way back was not a restart (a SIGCONT, sessions closed).
fn no_restart(kind: Kind, index: usize, took: Duration) -> infra::RestartReport {
    infra::RestartReport { kind, index, took, writes_paused: None, rejoined_first: vec![] }
}

/// After a hang or an exhaustion of backend `index`: rejoined when a pgpool detached it.
fn rejoin_if_detached(r: &mut Running, index: usize, t0: Instant) -> Result<(infra::RestartReport, Option<String>)> {
    let t = r.topology().clone();
    let mut detached_on = Vec::new();
    for p in 0..t.count(Kind::Pgpool) {
        let (host, port) = t.endpoint(Kind::Pgpool, p);
        if let Ok(nodes) = infra::pool_nodes(&host, port) {
            if nodes.iter().any(|n| n.node_id == index && n.status == "down") {
                detached_on.push(p);
            }
        }
    }
    if detached_on.is_empty() {
        return Ok((no_restart(Kind::Postgres, index, t0.elapsed()), None));
    }
    let mut report = r.restart(Kind::Postgres, index)?;
    report.took = t0.elapsed();
    Ok((report, Some(format!("pgpool(s) {detached_on:?} had detached postgres {index}: rejoined"))))
}

/// Does fault `spec` at its time and brings its instance back; what was done, and when.
pub(super) async fn schedule(
    spec: &FaultSpec,
    f: &FaultsFile,
    running: &Shared,
    timeline: &Timeline,
    t0: Instant,
    label: &str,
) -> Result<Events> {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + f.run.kill_at())).await;
    let down = Duration::from_secs(f.run.down(spec));
    let target = spec.parse_target()?;
    if spec.kind == FaultKind::KillBothPgpools {
        return both_pgpools(running, timeline, down, label).await;
    }
    if spec.kind == FaultKind::Cut {
        return cut(spec, running, timeline, down, label).await;
    }
    let (kind, index) = with_running(running, move |r| resolve(&target, r)).await?;
    let proc = proc_of(running, kind, index)?;
    let instance = format!("{kind} {index} on {}", proc.addr());
    let killed_at = timeline.now();
    let v = Victim { spec, running, timeline, label, instance: &instance, proc, kind, index, killed_at, down };
    let way = match spec.kind {
        FaultKind::Kill | FaultKind::KillPgpoolMain => kill(&v).await?,
        FaultKind::Hang => hang(&v).await?,
        FaultKind::Exhaust => exhaust(&v).await?,
        FaultKind::KillDuringRejoin => kill_during_rejoin(&v).await?,
        FaultKind::KillBothPgpools | FaultKind::Cut => unreachable!("handled above"),
    };
    // When the way back began: the restart, the SIGCONT, the sessions' close.
    let restart_at = killed_at + down.as_secs_f64();
    let restarted = match way.restarted {
        Ok(report) => {
            let at = timeline.now();
            eprintln!("faults: {label}: {kind} {index} back at {at:.1} s (took {:.1?})", report.took);
            Ok((at, report))
        }
        Err(e) => {
            eprintln!("faults: {label}: bringing {kind} {index} back FAILED: {e:#}");
            Err(format!("{e:#}"))
        }
    };
    Ok(Events {
        instance,
        fault: way.fault,
        killed_at,
        restart_at,
        restarted,
        notes: way.notes,
        problems: way.problems,
    })
}

/// The instance a fault is done to, and when.
struct Victim<'a> {
    spec: &'a FaultSpec,
    running: &'a Shared,
    timeline: &'a Timeline,
    label: &'a str,
    instance: &'a str,
    proc: infra::Proc,
    kind: Kind,
    index: usize,
    killed_at: f64,
    down: Duration,
}

/// What a fault did and how its instance came back (an error there is the row's, not the run's).
struct WayBack {
    fault: String,
    notes: Vec<String>,
    problems: Vec<String>,
    restarted: Result<infra::RestartReport>,
}

impl WayBack {
    fn new(fault: String, restarted: Result<infra::RestartReport>) -> WayBack {
        WayBack { fault, notes: vec![], problems: vec![], restarted }
    }
}

/// SIGKILL of the instance's whole process tree, or (KillPgpoolMain) of a pgpool's main
/// process alone; then a restart.
async fn kill(v: &Victim<'_>) -> Result<WayBack> {
    let (running, spec, proc, kind, index) = (v.running, v.spec, &v.proc, v.kind, v.index);
    let (label, instance, killed_at) = (v.label, v.instance, v.killed_at);
    let (mut fault, mut notes, mut problems) = (format!("SIGKILL {}, restart", spec.target), vec![], vec![]);
    if spec.kind == FaultKind::Kill {
        with_running(running, move |r| r.kill(kind, index, infra::signal::SIGKILL)).await?;
    } else {
        fault = format!("SIGKILL of {}'s main process alone, restart", spec.target);
        let pid = proc.pid;
        let orphans = tokio::task::spawn_blocking(move || {
            inject::kill_one(pid)?;
            anyhow::Ok(inject::group(pid).len())
        })
        .await??;
        notes.push(format!(
            "pgpool {index}'s main process (pid {}) killed; {orphans} of its children were still alive right after",
            proc.pid
        ));
    }
    eprintln!(
        "faults: {label}: SIGKILL {instance} (pid {}) at {killed_at:.1} s; it was gone {:.2} s later",
        proc.pid,
        v.timeline.now() - killed_at
    );
    tokio::time::sleep(v.down).await;
    let first = with_running(running, move |r| r.restart(kind, index)).await;
    let restarted = match first {
        Err(e) if spec.kind == FaultKind::KillPgpoolMain => {
            // infra does not end a dead pgpool's orphaned children yet (issue 11, part 7):
            // the bench ends them (the old process group) so the next faults can run,
            // and the row says the restart was refused.
            let orphans = inject::group(proc.pid);
            problems.push(format!(
                "restarting pgpool {index} was refused ({e:#}); the bench then stopped it \
                 (infra::Running::stop: the dead main process reaped, its {} orphaned child(ren) of process \
                 group {} SIGKILLed) and restarted it",
                orphans.len(),
                proc.pid
            ));
            with_running(running, move |r| {
                r.stop(kind, index)?;
                r.restart(kind, index)
            })
            .await
        }
        other => other,
    };
    Ok(WayBack { fault, notes, problems, restarted })
}

/// SIGSTOP of the instance's process tree for the down time, then SIGCONT; a backend a pgpool
/// detached meanwhile is rejoined.
async fn hang(v: &Victim<'_>) -> Result<WayBack> {
    if v.proc.machine.is_some() {
        return hang_on_host(v).await;
    }
    let (running, kind, index, label, instance) = (v.running, v.kind, v.index, v.label, v.instance);
    // The guard continues every stopped process when it goes, whatever happens.
    let stopped = inject::Stopped::tree(v.proc.pid);
    let fault = format!(
        "SIGSTOP {} and its {} descendant(s) for {} s, SIGCONT",
        v.spec.target,
        stopped.count().saturating_sub(1),
        v.down.as_secs()
    );
    eprintln!("faults: {label}: SIGSTOP {instance}: {} process(es) at {:.1} s", stopped.count(), v.killed_at);
    tokio::time::sleep(v.down).await;
    stopped.resume();
    let t = Instant::now();
    eprintln!("faults: {label}: SIGCONT {instance} at {:.1} s", v.timeline.now());
    if kind != Kind::Postgres {
        return Ok(WayBack::new(fault, Ok(no_restart(kind, index, t.elapsed()))));
    }
    // Give the pgpools' health checks a moment to see it alive before deciding.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let back = with_running(running, move |r| rejoin_if_detached(r, index, t)).await;
    Ok(with_rejoin_note(fault, back))
}

/// A hang on `[hosts]`: the instance's host stops its process tree by PID and answers each
/// process's state (infra's `host kill`); SIGCONT the same way after the down time, also when
/// this future is dropped half-way (the guard). Only kinds whose way back is the SIGCONT alone
/// get here (file.rs: `FaultKind::on_hosts`).
async fn hang_on_host(v: &Victim<'_>) -> Result<WayBack> {
    let (running, kind, index, label, instance) = (v.running, v.kind, v.index, v.label, v.instance);
    let guard = Continue { running: Some(running.clone()), kind, index };
    let stopped = with_running(running, move |r| r.signal_instance(kind, index, infra::Signal::Stop)).await?;
    let mut notes = vec![];
    if !stopped.took_effect() {
        notes.push(format!("not stopped 5 s after SIGSTOP on its host: {:?}", stopped.not_in_effect()));
    }
    let fault = format!(
        "SIGSTOP {} and its {} descendant(s) on its host for {} s, SIGCONT",
        v.spec.target,
        stopped.descendants(),
        v.down.as_secs()
    );
    eprintln!("faults: {label}: SIGSTOP {instance}: {} process(es) at {:.1} s", stopped.tree.len(), v.killed_at);
    tokio::time::sleep(v.down).await;
    let t = Instant::now();
    let resumed = guard.resume().await;
    eprintln!("faults: {label}: SIGCONT {instance} at {:.1} s", v.timeline.now());
    let restarted = resumed.and_then(|s| match s.took_effect() {
        true => Ok(no_restart(kind, index, t.elapsed())),
        false => Err(anyhow::anyhow!("still stopped after SIGCONT on its host: {:?}", s.not_in_effect())),
    });
    Ok(WayBack { notes, ..WayBack::new(fault, restarted) })
}

/// Continues an instance stopped on its host: by [`Continue::resume`], or when dropped (an error
/// or a cancelled run between the SIGSTOP and the SIGCONT), blocking on the SSH call then.
struct Continue {
    running: Option<Shared>,
    kind: Kind,
    index: usize,
}

impl Continue {
    async fn resume(mut self) -> Result<infra::Signalled> {
        let (running, kind, index) = (self.running.take().expect("resumed once"), self.kind, self.index);
        with_running(&running, move |r| r.signal_instance(kind, index, infra::Signal::Cont)).await
    }
}

impl Drop for Continue {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let mut r = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = r.signal_instance(self.kind, self.index, infra::Signal::Cont) {
                eprintln!("faults: SIGCONT {} {} on its host FAILED: {e:#}", self.kind, self.index);
            }
        }
    }
}

/// The instance's connection slots held by outside sessions for the down time, then closed; a
/// backend a pgpool detached meanwhile is rejoined.
async fn exhaust(v: &Victim<'_>) -> Result<WayBack> {
    let (index, label, instance) = (v.index, v.label, v.instance);
    let max = v.spec.sessions.unwrap_or(500);
    let sessions = inject::Sessions::open(&v.proc.host, v.proc.port, max).await?;
    let fault = format!("{} outside sessions on {} for {} s, closed", sessions.opened, v.spec.target, v.down.as_secs());
    eprintln!(
        "faults: {label}: {} outside sessions hold {instance} (next refused: {})",
        sessions.opened,
        sessions.refused.as_deref().unwrap_or("-")
    );
    let refused = sessions.refused.as_ref().map(|why| format!("session {} was refused: {why}", sessions.opened + 1));
    tokio::time::sleep(v.down.saturating_sub(Duration::from_secs_f64(v.timeline.now() - v.killed_at))).await;
    sessions.close();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let back = with_running(v.running, move |r| rejoin_if_detached(r, index, t)).await;
    let mut way = with_rejoin_note(fault, back);
    way.notes.splice(0..0, refused);
    Ok(way)
}

/// The way back of a hang or an exhaustion, with the note of a rejoin if there was one.
fn with_rejoin_note(fault: String, back: Result<(infra::RestartReport, Option<String>)>) -> WayBack {
    match back {
        Ok((report, note)) => WayBack { notes: note.into_iter().collect(), ..WayBack::new(fault, Ok(report)) },
        Err(e) => WayBack::new(fault, Err(e)),
    }
}

/// SIGKILL of a backend, then its rejoin killed once it has begun, then a second rejoin.
async fn kill_during_rejoin(v: &Victim<'_>) -> Result<WayBack> {
    let (running, proc, kind, index, label) = (v.running, &v.proc, v.kind, v.index, v.label);
    let fault = format!("SIGKILL {}, restart killed while it rejoins, restart again", v.spec.target);
    with_running(running, move |r| r.kill(kind, index, infra::signal::SIGKILL)).await?;
    eprintln!("faults: {label}: SIGKILL {} (pid {}) at {:.1} s", v.instance, proc.pid, v.killed_at);
    tokio::time::sleep(v.down).await;
    let t = Instant::now();
    // The killer: once the rejoin has begun, SIGKILL whatever works on the backend's
    // directory (the copy, then the backend started on it), once.
    let dir = proc.dir.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let pids = inject::using_dir(&dir);
            if !pids.is_empty() {
                return Some((inject::kill_trees(&pids), pids));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    });
    let first = with_running(running, move |r| r.restart(kind, index)).await;
    let killed = killer.await.ok().flatten();
    let mut notes = vec![format!(
        "during the first rejoin: {}; it {}",
        killed.map_or("nothing was found to kill".to_string(), |(n, pids)| format!(
            "SIGKILL of {n} process(es) working on postgres {index} (roots {pids:?})"
        )),
        match &first {
            Ok(r) => format!("succeeded anyway ({:.1} s)", r.took.as_secs_f64()),
            Err(e) => format!("failed after {:.1} s: {e:#}", t.elapsed().as_secs_f64()),
        }
    )];
    eprintln!("faults: {label}: {}", notes[0]);
    let again = Instant::now();
    let restarted = with_running(running, move |r| r.restart(kind, index)).await.map(|mut report| {
        report.took = t.elapsed();
        report
    });
    if restarted.is_ok() {
        notes.push(format!("the second rejoin took {:.1} s", again.elapsed().as_secs_f64()));
    }
    Ok(WayBack { notes, ..WayBack::new(fault, restarted) })
}

/// Every pgpool SIGKILLed at once, then each restarted.
async fn both_pgpools(running: &Shared, timeline: &Timeline, down: Duration, label: &str) -> Result<Events> {
    let n = running.lock().unwrap_or_else(|e| e.into_inner()).topology().count(Kind::Pgpool);
    let mut addrs = Vec::new();
    for i in 0..n {
        addrs.push(proc_of(running, Kind::Pgpool, i)?.addr());
    }
    let killed_at = timeline.now();
    with_running(running, move |r| {
        for i in 0..n {
            r.kill(Kind::Pgpool, i, infra::signal::SIGKILL)?;
        }
        Ok(())
    })
    .await?;
    eprintln!("faults: {label}: SIGKILL of all {n} pgpools at {killed_at:.1} s");
    tokio::time::sleep(down).await;
    let restart_at = timeline.now();
    let t = Instant::now();
    let restarted = with_running(running, move |r| {
        let mut last = None;
        for i in 0..n {
            last = Some(r.restart(Kind::Pgpool, i)?);
        }
        let mut report = last.context("no pgpool")?;
        report.took = t.elapsed();
        Ok(report)
    })
    .await;
    let restarted = match restarted {
        Ok(report) => Ok((timeline.now(), report)),
        Err(e) => {
            eprintln!("faults: {label}: restarting the pgpools FAILED: {e:#}");
            Err(format!("{e:#}"))
        }
    };
    Ok(Events {
        instance: format!("pgpool 0-{} on {}", n.saturating_sub(1), addrs.join(", ")),
        fault: format!("SIGKILL of all {n} pgpools at once, restart each"),
        killed_at,
        restart_at,
        restarted,
        notes: vec![],
        problems: vec![],
    })
}

/// The fault's cuts applied on their hosts (nftables over SSH, all at once) for the down time,
/// then healed; what pgpool, Redis and Cassandra looked like halfway through and after the heal.
async fn cut(spec: &FaultSpec, running: &Shared, timeline: &Timeline, down: Duration, label: &str) -> Result<Events> {
    let Target::Instance { kind, index } = spec.parse_target()? else {
        anyhow::bail!("a cut's target is an instance: {:?}", spec.target)
    };
    let topology = running.lock().unwrap_or_else(|e| e.into_inner()).topology().clone();
    let at = |k: Kind, i: usize| format!("{k} {i} ({})", topology.addr(k, i));
    // The port the cut drops: the storage port of a node cut from its peers, else the serving one.
    let to = |c: &infra::hosts::InstanceCut| match c.port {
        infra::hosts::CutPort::Serve => at(c.to.0, c.to.1),
        infra::hosts::CutPort::Storage => {
            let (k, i) = c.to;
            format!("{k} {i} ({}:{}, storage)", topology.cassandra_host(i), topology.cassandra.storage_port)
        }
    };
    let cuts: Vec<String> = spec.cut.iter().map(|c| format!("{} -/-> {}", at(c.from.0, c.from.1), to(c))).collect();
    // The fault's moments are when the rules were in place (the SSH calls returned), not when
    // they were asked for: on a busy machine a call takes seconds, most of it before nft runs.
    let asked = timeline.now();
    on_every_cut(spec, &topology, infra::hosts::InstanceCut::apply).await.context("applying the cuts")?;
    let (killed_at, cut_at) = (timeline.now(), Instant::now());
    eprintln!("faults: {label}: cut in place at {killed_at:.1} s (asked at {asked:.1} s): {}", cuts.join("; "));
    let mut notes = vec![format!("cut: {} (applying it took {:.1} s)", cuts.join("; "), killed_at - asked)];
    // Asked aside: a pgpool that cannot reach a backend may take its connect timeouts to answer,
    // and the heal must not wait for that.
    let halfway = {
        let running = running.clone();
        tokio::spawn(async move {
            tokio::time::sleep(down / 2).await;
            with_running(&running, |r| Ok(views(r))).await
        })
    };
    tokio::time::sleep_until(tokio::time::Instant::from_std(cut_at + down)).await;
    let t = Instant::now();
    let healed = on_every_cut(spec, &topology, infra::hosts::InstanceCut::heal).await;
    let restart_at = timeline.now();
    let restarted = match healed {
        Ok(()) => {
            let took = t.elapsed();
            eprintln!("faults: {label}: healed at {restart_at:.1} s (took {took:.1?})");
            Ok((restart_at, no_restart(kind, index, took)))
        }
        Err(e) => {
            eprintln!("faults: {label}: healing FAILED: {e:#}");
            Err(format!("{e:#}"))
        }
    };
    // The way back is the heal alone: give the servers a moment before looking.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (asked, after) = with_running(running, move |r| Ok((t.elapsed(), views(r)))).await?;
    notes.push(format!("halfway through the cut: {}", halfway.await??));
    notes.push(format!("{:.1} s after the heal: {after}", asked.as_secs_f64()));
    Ok(Events {
        instance: format!("{kind} {index} on {}", topology.addr(kind, index)),
        fault: format!("cut {} for {} s, heal", spec.target, down.as_secs()),
        killed_at,
        restart_at,
        restarted,
        notes,
        problems: vec![],
    })
}

/// Runs `what` (apply or heal) for every cut of `spec` at once, each over SSH to its host.
async fn on_every_cut(
    spec: &FaultSpec,
    topology: &infra::Topology,
    what: fn(&infra::hosts::InstanceCut, &infra::Topology) -> Result<()>,
) -> Result<()> {
    let (cuts, topology) = (spec.cut.clone(), topology.clone());
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let jobs: Vec<_> =
                cuts.iter().map(|c| s.spawn(|| what(c, &topology).with_context(|| c.to_string()))).collect();
            jobs.into_iter().map(|j| j.join().expect("a cut's thread panicked")).collect::<Result<Vec<()>>>()
        })
    })
    .await??;
    Ok(())
}

/// Each pgpool's view of the backends, each Redis instance's role and each Cassandra node's
/// peers, asked on the hosts.
fn views(r: &Running) -> String {
    let status = r.status();
    let mut parts: Vec<String> = status
        .pgpools
        .iter()
        .map(|(i, view)| match view {
            Ok(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| format!("{} {}", n.node_id, n.status)).collect();
                format!("pgpool {i} sees backends [{}]", nodes.join(", "))
            }
            Err(e) => format!("pgpool {i} does not answer ({})", e.lines().next().unwrap_or_default()),
        })
        .collect();
    parts.extend(status.redis.iter().cloned());
    // Each node's peers, asked from here with a new logged-in session (its login reads the
    // roles at LOCAL_QUORUM: a node cut off from its peers refuses it).
    parts.extend(status.cassandra.iter().cloned());
    parts.extend(status.notes.iter().cloned());
    parts.join("; ")
}
