//! Bringing a failed backend back into native replication (pgpool-II has no automatic failback
//! there, and `pcp_attach_node` alone re-attaches a stale node).
//!
//! 1. detach the node on every pgpool (those that have not already);
//! 2. stop it;
//! 3. `pg_basebackup -R` from a live source backend into a fresh data dir, re-render its
//!    postgresql.conf (port, socket dir), start it: a hot standby of the source that streams
//!    every write committed meanwhile. Writes flow during the copy and the start (seconds on a busy
//!    machine: they were the bulk of the time writes were held when the copy was taken under the
//!    locks);
//! 4. pause writes: on the source, one session per database holds
//!    `LOCK TABLE <every table> IN EXCLUSIVE MODE` (reads go on). pgpool runs each write on every
//!    attached node inside one transaction and commits only after all nodes ran it, so a write
//!    blocked on the source commits nowhere: nothing can commit on any node until the locks go;
//! 5. wait until the standby has replayed the source's WAL up to `pg_current_wal_lsn()` taken
//!    under the locks, then promote it (`pg_promote`): it now holds exactly the source's rows;
//! 6. `pcp_attach_node` on EVERY pgpool (pgpools without watchdog keep separate node status),
//!    wait until each shows the node attached and has restarted its client-serving children
//!    (pgpool does that on failback: sessions opened while the node was out are closed);
//!    then end the orphans: a write from such a closed session that waits for our lock would still
//!    run when the lock goes, and with one node up pgpool sends it without BEGIN, so it would
//!    commit on the source alone (seen in a test). The server side of an orphan's socket is in
//!    CLOSE_WAIT; `pg_terminate_backend` ends it (no pgpool child uses it any more);
//! 7. release the locks: writes resume, now on all nodes.
//!
//! Writes wait (clients retry) only during steps 4-7, and at most [`HOLD_LIMIT`] whatever fails:
//! every wait there is bounded by what is left of it and fails at once when the node dies or a
//! pgpool takes it out again; then the node is detached on every pgpool, the locks go, and
//! running the rejoin again starts over. Not covered: tables created during the rejoin (run no
//! migration meanwhile), unlogged tables (not copied).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::running::Running;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::Kind;
use crate::{pgpool, postgres, process, psql, secrets};

/// How long a rejoin took and how long writes were held.
#[derive(Clone, Debug)]
pub struct RejoinReport {
    pub backend: usize,
    pub source: usize,
    pub total: Duration,
    pub writes_paused: Duration,
}

/// Sessions holding EXCLUSIVE locks; dropping them (even on error) ends the sessions, which
/// releases the locks.
pub(crate) struct WritePause {
    sessions: Vec<(Child, ChildStdin)>,
}

/// How long taking the locks may wait behind running transactions (writers queue behind it).
const LOCK_TIMEOUT: &str = "3s";

/// Writes are held at most this long by a rejoin, whatever fails: every wait while the locks are
/// held is bounded by what is left of it, and a failure takes the node out again and ends the
/// lock sessions. The steps get [`STEPS_LIMIT`]; the rest is for detaching and unlocking.
pub const HOLD_LIMIT: Duration = Duration::from_secs(10);
pub(crate) const STEPS_LIMIT: Duration = Duration::from_millis(8500);
/// Each pcp call and each unlock in the clean-up after a failure.
const CLEANUP_CALL: Duration = Duration::from_millis(500);

const USER_TABLES: &str = "SELECT coalesce(string_agg(format('%I.%I', n.nspname, c.relname), ', '), '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

impl WritePause {
    pub(crate) fn start(host: &str, port: u16) -> Result<WritePause> {
        let mut pause = WritePause { sessions: vec![] };
        let dbs = psql::admin_query(
            host,
            port,
            "postgres",
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate",
        )?;
        for db in dbs.lines() {
            let tables = psql::admin_query(host, port, db, USER_TABLES)?;
            let tables = tables.trim();
            if tables.is_empty() {
                continue;
            }
            let mut cmd = psql::admin_session_command(host, port, db)?;
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting psql")?;
            let mut stdin = child.stdin.take().context("psql stdin")?;
            let stdout = child.stdout.take().context("psql stdout")?;
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    if line.map(|l| l.trim() == "locked").unwrap_or(false) {
                        let _ = tx.send(());
                        return;
                    }
                }
            });
            write!(
                stdin,
                "BEGIN;\nSET lock_timeout = '{LOCK_TIMEOUT}';\nLOCK TABLE {tables} IN EXCLUSIVE MODE;\nSELECT 'locked';\n"
            )?;
            stdin.flush()?;
            pause.sessions.push((child, stdin));
            if rx.recv_timeout(Duration::from_secs(5)).is_err() {
                let (mut child, _) = pause.sessions.pop().expect("just pushed");
                let _ = child.kill();
                let out = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
                bail!("could not lock the tables of database {db} for the rejoin: {}", out.unwrap_or_default().trim());
            }
        }
        Ok(pause)
    }

    /// Commits and ends every lock session; one that does not end within a second (its server
    /// hangs) is killed, which ends its locks as well once the server runs again.
    pub(crate) fn release(mut self) -> Result<()> {
        let mut failed = vec![];
        for (mut child, mut stdin) in self.sessions.drain(..) {
            let _ = writeln!(stdin, "COMMIT;\n\\q").and_then(|()| stdin.flush());
            drop(stdin);
            let deadline = Instant::now() + CLEANUP_CALL;
            let status = loop {
                match child.try_wait()? {
                    Some(status) => break Some(status),
                    None if Instant::now() >= deadline => break None,
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            match status {
                Some(s) if s.success() => {}
                Some(s) => failed.push(format!("lock session ended with {s}")),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failed.push("lock session did not end: killed".to_string());
                }
            }
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("; "));
        }
        Ok(())
    }
}

impl Drop for WritePause {
    fn drop(&mut self) {
        for (mut child, stdin) in self.sessions.drain(..) {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What is left of the time until `deadline`, or an error once it has passed.
pub(crate) fn left(deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("out of time: writes may be held at most {HOLD_LIMIT:?}");
    }
    Ok(left)
}

/// Polls `probe` until it says true; fails at `deadline`, or at once when `gone` names a reason.
fn wait_bounded(
    what: &str,
    deadline: Instant,
    mut gone: impl FnMut() -> Option<String>,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let mut last = String::from("not yet");
    loop {
        if let Some(reason) = gone() {
            bail!("{reason} (waiting for {what})");
        }
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("gave up waiting for {what}: writes may be held at most {HOLD_LIMIT:?} (last: {last})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sessions on the source whose client has closed its socket (loopback: we see both ends).
fn orphans(host: &str, port: u16, timeout: Duration) -> Result<Vec<u32>> {
    let sql = "SELECT pid, client_port FROM pg_stat_activity \
               WHERE client_port IS NOT NULL AND pid <> pg_backend_pid()";
    let rows = psql::admin_query_timeout(host, port, "postgres", sql, timeout)?;
    Ok(rows
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(pid, client_port)| Some((pid.parse().ok()?, client_port.parse().ok()?)))
        .filter(|&(_, client_port)| process::tcp_state(port, client_port) == Some(TCP_CLOSE_WAIT))
        .map(|(pid, _)| pid)
        .collect())
}

const TCP_CLOSE_WAIT: u8 = 0x08;

/// Step 6's end, on the source's host: ends the sessions on the source whose client closed its
/// socket while they waited for the lock (see the module doc), by `deadline`.
pub(crate) fn end_orphans(src_host: &str, src_port: u16, deadline: Instant) -> Result<()> {
    let orphans = orphans(src_host, src_port, left(deadline)?)?;
    if orphans.is_empty() {
        return Ok(());
    }
    // One signal to all, then one wait: a psql and a 5 s-bounded wait per session made this
    // step take seconds under load, with every write still held.
    let pids = format!("ARRAY[{}]::int[]", orphans.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    psql::admin_query_timeout(
        src_host,
        src_port,
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM unnest({pids}) pid"),
        left(deadline)?,
    )?;
    wait_bounded(
        "the orphaned sessions to end",
        deadline,
        || None,
        || {
            let left = psql::admin_query_timeout(
                src_host,
                src_port,
                "postgres",
                &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY({pids})"),
                left(deadline)?,
            )?;
            Ok(left.trim() == "0")
        },
    )?;
    eprintln!("rejoin: ended {} orphaned session(s) that waited for the lock", orphans.len());
    Ok(())
}

impl Running {
    fn attach_everywhere(
        &self,
        i: usize,
        pgpools: &[usize],
        (src_host, src_port): (&str, u16),
        deadline: Instant,
    ) -> Result<()> {
        let target = self.proc(Kind::Postgres, i)?.clone();
        self.attach_on(i, pgpools, Some(&target), deadline)?;
        end_orphans(src_host, src_port, deadline)
    }

    /// Attaches node `i` on each of `pgpools` (this run dir's), then waits until each shows it up
    /// and has restarted its children, by `deadline`. `target`: the node's process when it is
    /// this machine's (its death ends the wait at once).
    pub(crate) fn attach_on(
        &self,
        i: usize,
        pgpools: &[usize],
        target: Option<&Proc>,
        deadline: Instant,
    ) -> Result<()> {
        // Attach everywhere first, then wait: each pgpool restarts its children ~1 s after.
        let mut old_children = Vec::new();
        for &p in pgpools {
            let leader = self.proc(Kind::Pgpool, p)?.pid;
            let old: Vec<(u32, u64, String)> =
                process::children(leader).into_iter().filter(|(_, _, title)| !title.contains("health check")).collect();
            pgpool::pcp_node_output(self, "pcp_attach_node", p, i, left(deadline)?)?;
            old_children.push((p, old, Instant::now()));
        }
        for (p, old, attached_at) in old_children {
            // Fails at once when the node died again or pgpool took it out again (a pgpool that
            // degenerated it does not attach it by itself: waiting longer held writes for nothing).
            let gone = || -> Option<String> {
                if target.is_some_and(|t| !t.alive()) {
                    return Some(format!("postgres {i} died during the rejoin"));
                }
                if attached_at.elapsed() > Duration::from_secs(1) {
                    if let Ok(status) = pgpool::pcp_node_status(self, p, i, Duration::from_millis(500)) {
                        if status == "down" {
                            return Some(format!("pgpool {p} took node {i} out again"));
                        }
                    }
                }
                None
            };
            wait_bounded(&format!("pgpool {p} to show node {i} up"), deadline, gone, || {
                // "waiting": attached, no session has used it yet
                Ok(matches!(pgpool::pcp_node_status(self, p, i, left(deadline)?)?.as_str(), "up" | "waiting"))
            })?;
            wait_bounded(&format!("pgpool {p} to restart its children"), deadline, gone, || {
                Ok(old.iter().all(|(pid, start, _)| !process::alive(*pid, *start)))
            })?;
            eprintln!("rejoin: attached node {i} on pgpool {p}");
        }
        Ok(())
    }

    /// Steps 2 and 3, on the node's host: stops it if it runs, then [`Running::start_standby`].
    pub(crate) fn restart_as_standby(&mut self, i: usize, source: usize) -> Result<()> {
        if self.proc(Kind::Postgres, i).is_ok_and(|p| p.alive()) {
            self.stop(Kind::Postgres, i)?;
            eprintln!("rejoin: stopped postgres {i}");
        }
        // A killed one we started is our zombie until we reap it; its pid in the lock file
        // (postmaster.pid, the socket's lock) would make the new server refuse to start.
        self.reap(Kind::Postgres, i);
        self.start_standby(i, source)
    }

    /// Step 3, writes flowing: a base backup of the source started as its hot standby, which
    /// streams every write committed meanwhile.
    fn start_standby(&mut self, i: usize, source: usize) -> Result<()> {
        let (src_host, src_port) = self.topology().endpoint(Kind::Postgres, source);
        let data = postgres::data_dir(self, i);
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
        }
        let mut cmd = std::process::Command::new(tool("pg_basebackup")?);
        cmd.arg("-D").arg(&data);
        cmd.args(["-h", &src_host, "-p", &src_port.to_string(), "-U", psql::SUPERUSER, "-X", "stream", "-c", "fast"]);
        // -R: standby.signal and primary_conninfo (the source), so the copy streams from it
        cmd.arg("-R");
        cmd.current_dir(self.instance_dir(Kind::Postgres, i));
        if let Some(u) = self.run_as() {
            use std::os::unix::process::CommandExt;
            cmd.uid(u.uid).gid(u.gid);
        }
        // Off loopback the source asks for the superuser's password: the run's pgpass is root's,
        // so the copy (run as the service user) gets its own, which stays: `-R` names it in the
        // standby's primary_conninfo, and the standby streams with it until its promotion.
        // Without one, libpq prompts for the password and the copy never ends.
        if let Some(secrets) = &self.secrets {
            let passfile = self.instance_dir(Kind::Postgres, i).join("standby.pgpass");
            secrets::write_private(
                &passfile,
                format!("*:*:*:{}:{}\n", psql::SUPERUSER, secrets.admin.expose()).as_bytes(),
            )?;
            process::give(&passfile, self.run_as())?;
            cmd.env("PGPASSFILE", &passfile);
        }
        let copy = Instant::now();
        process::run_ok(cmd, Duration::from_secs(600)).context("pg_basebackup")?;
        eprintln!("rejoin: copied postgres {source} to {} in {:.1?}", data.display(), copy.elapsed());
        postgres::write_config(self, i)?;
        let started = Instant::now();
        postgres::start_within(self, i, Duration::from_secs(120))?;
        eprintln!("rejoin: postgres {i} runs as a standby of postgres {source} ({:.1?} to start)", started.elapsed());
        Ok(())
    }

    /// Steps 5 and 6, while writes are paused; every wait ends by `deadline`: the standby replays
    /// up to the source's last write and is promoted, then attached on every pgpool.
    fn catch_up_promote_attach(&mut self, i: usize, source: usize, pgpools: &[usize], deadline: Instant) -> Result<()> {
        self.catch_up_promote(i, source, deadline)?;
        let (src_host, src_port) = self.topology().endpoint(Kind::Postgres, source);
        self.attach_everywhere(i, pgpools, (&src_host, src_port), deadline)
    }

    /// Step 5, on the node's host: it replays up to the source's last write and is promoted.
    pub(crate) fn catch_up_promote(&self, i: usize, source: usize, deadline: Instant) -> Result<()> {
        let (src_host, src_port) = self.topology().endpoint(Kind::Postgres, source);
        let (host, port) = self.topology().endpoint(Kind::Postgres, i);
        let target = self.proc(Kind::Postgres, i)?.clone();
        let lsn =
            psql::admin_query_timeout(&src_host, src_port, "postgres", "SELECT pg_current_wal_lsn()", left(deadline)?)?;
        let lsn = lsn.trim().to_string();
        let caught_up = format!("SELECT pg_last_wal_replay_lsn() >= {}::pg_lsn", psql::literal(&lsn));
        wait_bounded(
            &format!("postgres {i} to replay up to {lsn}"),
            deadline,
            || (!target.alive()).then(|| format!("postgres {i} died during the rejoin")),
            || Ok(psql::admin_query_timeout(&host, port, "postgres", &caught_up, left(deadline)?)?.trim() == "t"),
        )?;
        let wait_s = left(deadline)?.as_secs().max(1);
        let promoted = psql::admin_query_timeout(
            &host,
            port,
            "postgres",
            &format!("SELECT pg_promote(true, {wait_s})"),
            left(deadline)?,
        )?;
        if promoted.trim() != "t" {
            bail!("postgres {i} was not promoted within {wait_s} s");
        }
        eprintln!("rejoin: postgres {i} replayed up to {lsn} and was promoted");
        Ok(())
    }

    /// The documented way to bring backend `i` back (see the module doc): detach everywhere, stop,
    /// copy a live node while writes are paused, start, attach on every pgpool, resume writes.
    pub fn rejoin_backend(&mut self, i: usize) -> Result<RejoinReport> {
        if self.is_control() {
            return crate::remote::rejoin(self, i);
        }
        let t0 = Instant::now();
        let t = self.topology().clone();
        if i >= t.count(Kind::Postgres) {
            bail!("no backend {i}: the topology has {}", t.count(Kind::Postgres));
        }
        let pgpools: Vec<usize> =
            (0..t.count(Kind::Pgpool)).filter(|&p| self.proc(Kind::Pgpool, p).is_ok_and(|p| p.alive())).collect();
        if pgpools.len() < t.count(Kind::Pgpool) {
            eprintln!(
                "rejoin: warning: only pgpools {pgpools:?} are running; a stopped pgpool keeps its own node status"
            );
        }

        // 1. detach on every pgpool that still has it attached
        self.detach_everywhere(i, &pgpools)?;
        let source = self.rejoin_source(i, &pgpools)?;
        let (src_host, src_port) = t.endpoint(Kind::Postgres, source);
        // 2. stop it; 3. copy and start it as a standby of the source, writes flowing
        self.restart_as_standby(i, source)?;

        // 4. pause writes
        let paused_at = Instant::now();
        let pause = WritePause::start(&src_host, src_port)?;
        eprintln!("rejoin: writes paused (tables locked on postgres {source})");

        let steps = |r: &mut Running, deadline| r.catch_up_promote_attach(i, source, &pgpools, deadline);
        let detach_again = |r: &Running, p| pgpool::pcp_node_output(r, "pcp_detach_node", p, i, CLEANUP_CALL).map(drop);
        let times = (t0, paused_at);
        finish_with_writes_paused(self, i, source, &pgpools, times, steps, detach_again, || pause.release())
    }

    /// Detaches backend `i` on each of `pgpools` that does not already show it down.
    pub(crate) fn detach_everywhere(&self, i: usize, pgpools: &[usize]) -> Result<()> {
        for &p in pgpools {
            let (host, port) = self.topology().endpoint(Kind::Pgpool, p);
            let status =
                pgpool::pool_nodes_patient(&host, port)?.into_iter().find(|n| n.node_id == i).map(|n| n.status);
            if status.as_deref() != Some("down") {
                pgpool::pcp_node(self, "pcp_detach_node", p, i)?;
                eprintln!("rejoin: detached node {i} on pgpool {p}");
            }
        }
        Ok(())
    }

    /// The backend to copy `i` from: the first other one that runs and that every pgpool of
    /// `pgpools` has up.
    fn rejoin_source(&self, i: usize, pgpools: &[usize]) -> Result<usize> {
        let t = self.topology();
        for k in (0..t.count(Kind::Postgres)).filter(|&k| k != i) {
            if !self.proc(Kind::Postgres, k).is_ok_and(|p| p.alive()) {
                continue;
            }
            let mut up_everywhere = true;
            for &p in pgpools {
                let (host, port) = t.endpoint(Kind::Pgpool, p);
                up_everywhere &=
                    pgpool::pool_nodes_patient(&host, port)?.iter().any(|n| n.node_id == k && n.status == "up");
            }
            if up_everywhere {
                return Ok(k);
            }
        }
        bail!("no running backend is up on every pgpool to copy node {i} from")
    }
}

/// Rejoin steps 5-7 once writes are paused (at `paused_at`; the rejoin began at `t0`): `steps`
/// catches backend `i` up with `source`, promotes it and attaches it on every pgpool, within
/// `STEPS_LIMIT` (both closures are given `on`: the running topology, or what drives the hosts). On failure (or when the steps overrun their time) the node is taken out again
/// on each of `pgpools` (`detach_again`) before `release` lets writes resume; running the
/// rejoin again starts over. The same on loopback and driven over SSH (remote/rejoin.rs).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_with_writes_paused<C>(
    on: &mut C,
    i: usize,
    source: usize,
    pgpools: &[usize],
    (t0, paused_at): (Instant, Instant),
    steps: impl FnOnce(&mut C, Instant) -> Result<()>,
    detach_again: impl Fn(&C, usize) -> Result<()>,
    release: impl FnOnce() -> Result<()>,
) -> Result<RejoinReport> {
    if let Err(e) = steps(on, paused_at + STEPS_LIMIT) {
        for &p in pgpools {
            if let Err(d) = detach_again(on, p) {
                eprintln!("rejoin: detaching node {i} on pgpool {p} again: {d:#}");
            }
        }
        if let Err(r) = release() {
            eprintln!("rejoin: ending the write pause: {r:#}");
        }
        eprintln!("rejoin: failed; writes resumed after {:.1?}", paused_at.elapsed());
        return Err(e.context(format!(
            "rejoin of postgres {i} failed after {:.1?} with writes paused; it is detached again: \
             run the rejoin again",
            paused_at.elapsed()
        )));
    }
    // 7. resume writes
    release()?;
    let writes_paused = paused_at.elapsed();
    eprintln!("rejoin: writes resumed after {writes_paused:.1?}");
    Ok(RejoinReport { backend: i, source, total: t0.elapsed(), writes_paused })
}
