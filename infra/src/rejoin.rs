//! Bringing a failed backend back into native replication (pgpool-II has no automatic failback
//! there, and `pcp_attach_node` alone re-attaches a stale node).
//!
//! 1. detach the node on every pgpool (those that have not already);
//! 2. stop it;
//! 3. pause writes: on a live source backend, one session per database holds
//!    `LOCK TABLE <every table> IN EXCLUSIVE MODE` (reads go on). pgpool runs each write on every
//!    attached node inside one transaction and commits only after all nodes ran it, so a write
//!    blocked on the source commits nowhere: nothing can commit on any node until the locks go;
//! 4. `pg_basebackup` from the source into a fresh data dir, re-render its postgresql.conf (port,
//!    socket dir), start it;
//! 5. `pcp_attach_node` on EVERY pgpool (pgpools without watchdog keep separate node status),
//!    wait until each shows the node up and has restarted its client-serving children (pgpool does
//!    that on failback: sessions opened while the node was out are closed);
//!    then end the orphans: a write from such a closed session that waits for our lock would still
//!    run when the lock goes, and with one node up pgpool sends it without BEGIN, so it would
//!    commit on the source alone (seen in a test). The server side of an orphan's socket is in
//!    CLOSE_WAIT; `pg_terminate_backend` ends it (no pgpool child uses it any more);
//! 6. release the locks: writes resume, now on all nodes.
//!
//! Writes wait (up to the lock timeout, then fail; clients retry) only during steps 4-6, about a
//! second for a small database. Not covered: tables created during steps 3-6 (run no migration
//! while rejoining).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::running::Running;
use crate::tools::tool;
use crate::topology::Kind;
use crate::{pgpool, postgres, process, psql};

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

const LOCK_TIMEOUT: &str = "10s";

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
            if rx.recv_timeout(Duration::from_secs(15)).is_err() {
                let (mut child, _) = pause.sessions.pop().expect("just pushed");
                let _ = child.kill();
                let out = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
                bail!("could not lock the tables of database {db} for the rejoin: {}", out.unwrap_or_default().trim());
            }
        }
        Ok(pause)
    }

    pub(crate) fn release(mut self) -> Result<()> {
        for (mut child, mut stdin) in self.sessions.drain(..) {
            writeln!(stdin, "COMMIT;\n\\q")?;
            drop(stdin);
            let status = child.wait()?;
            if !status.success() {
                bail!("lock session ended with {status}");
            }
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

/// Sessions on the source whose client has closed its socket (loopback: we see both ends).
fn orphans(host: &str, port: u16) -> Result<Vec<u32>> {
    let sql = "SELECT pid, client_port FROM pg_stat_activity \
               WHERE client_port IS NOT NULL AND pid <> pg_backend_pid()";
    let rows = psql::admin_query(host, port, "postgres", sql)?;
    Ok(rows
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(pid, client_port)| Some((pid.parse().ok()?, client_port.parse().ok()?)))
        .filter(|&(_, client_port)| process::tcp_state(port, client_port) == Some(TCP_CLOSE_WAIT))
        .map(|(pid, _)| pid)
        .collect())
}

const TCP_CLOSE_WAIT: u8 = 0x08;

impl Running {
    fn attach_everywhere(&self, i: usize, pgpools: &[usize], (src_host, src_port): (&str, u16)) -> Result<()> {
        let t = self.topology();
        // Attach everywhere first, then wait: each pgpool restarts its children ~1 s after.
        let mut old_children = Vec::new();
        for &p in pgpools {
            let leader = self.proc(Kind::Pgpool, p)?.pid;
            let old: Vec<(u32, u64, String)> =
                process::children(leader).into_iter().filter(|(_, _, title)| !title.contains("health check")).collect();
            pgpool::pcp_node(self, "pcp_attach_node", p, i)?;
            old_children.push((p, old));
        }
        for (p, old) in old_children {
            let (host, port) = t.endpoint(Kind::Pgpool, p);
            process::wait_until(
                &format!("pgpool {p} to show node {i} up"),
                Duration::from_secs(30),
                || false,
                || Ok(pgpool::pool_nodes(&host, port)?.iter().any(|n| n.node_id == i && n.status == "up")),
            )?;
            process::wait_until(
                &format!("pgpool {p} to restart its children"),
                Duration::from_secs(30),
                || false,
                || Ok(old.iter().all(|(pid, start, _)| !process::alive(*pid, *start))),
            )?;
            eprintln!("rejoin: attached node {i} on pgpool {p}");
        }
        let orphans = orphans(src_host, src_port)?;
        if orphans.is_empty() {
            return Ok(());
        }
        // One signal to all, then one wait: a psql and a 5 s-bounded wait per session made this
        // step take seconds under load, with every write still held.
        let pids = format!("ARRAY[{}]::int[]", orphans.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
        psql::admin_query(
            src_host,
            src_port,
            "postgres",
            &format!("SELECT pg_terminate_backend(pid) FROM unnest({pids}) pid"),
        )?;
        process::wait_until(
            "the orphaned sessions to end",
            Duration::from_secs(5),
            || false,
            || {
                let left = psql::admin_query(
                    src_host,
                    src_port,
                    "postgres",
                    &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY({pids})"),
                )?;
                Ok(left.trim() == "0")
            },
        )?;
        eprintln!("rejoin: ended {} orphaned session(s) that waited for the lock", orphans.len());
        Ok(())
    }

    /// The documented way to bring backend `i` back (see the module doc): detach everywhere, stop,
    /// copy a live node while writes are paused, start, attach on every pgpool, resume writes.
    pub fn rejoin_backend(&mut self, i: usize) -> Result<RejoinReport> {
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
        for &p in &pgpools {
            let (host, port) = t.endpoint(Kind::Pgpool, p);
            let status =
                pgpool::pool_nodes_patient(&host, port)?.into_iter().find(|n| n.node_id == i).map(|n| n.status);
            if status.as_deref() != Some("down") {
                pgpool::pcp_node(self, "pcp_detach_node", p, i)?;
                eprintln!("rejoin: detached node {i} on pgpool {p}");
            }
        }
        // 2. stop it
        if self.proc(Kind::Postgres, i).is_ok_and(|p| p.alive()) {
            self.stop(Kind::Postgres, i)?;
            eprintln!("rejoin: stopped postgres {i}");
        }
        // the source: a running backend every pgpool has up
        let mut source = None;
        for k in (0..t.count(Kind::Postgres)).filter(|&k| k != i) {
            if !self.proc(Kind::Postgres, k).is_ok_and(|p| p.alive()) {
                continue;
            }
            let mut up_everywhere = true;
            for &p in &pgpools {
                let (host, port) = t.endpoint(Kind::Pgpool, p);
                up_everywhere &=
                    pgpool::pool_nodes_patient(&host, port)?.iter().any(|n| n.node_id == k && n.status == "up");
            }
            if up_everywhere {
                source = Some(k);
                break;
            }
        }
        let Some(source) = source else { bail!("no running backend is up on every pgpool to copy node {i} from") };
        let (src_host, src_port) = t.endpoint(Kind::Postgres, source);

        // 3. pause writes
        let paused_at = Instant::now();
        let pause = WritePause::start(&src_host, src_port)?;
        eprintln!("rejoin: writes paused (tables locked on postgres {source})");

        // 4. copy, configure, start
        let data = postgres::data_dir(self, i);
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("removing {}", data.display()))?;
        }
        let mut cmd = std::process::Command::new(tool("pg_basebackup")?);
        cmd.arg("-D").arg(&data);
        cmd.args(["-h", &src_host, "-p", &src_port.to_string(), "-U", psql::SUPERUSER, "-X", "stream", "-c", "fast"]);
        cmd.current_dir(self.instance_dir(Kind::Postgres, i));
        if let Some(u) = self.run_as() {
            use std::os::unix::process::CommandExt;
            cmd.uid(u.uid).gid(u.gid);
        }
        let copy = Instant::now();
        process::run_ok(cmd, Duration::from_secs(600)).context("pg_basebackup")?;
        eprintln!("rejoin: copied postgres {source} to {} in {:.1?}", data.display(), copy.elapsed());
        postgres::write_config(self, i)?;
        postgres::start(self, i)?;

        // 5. attach on every pgpool; on failure take the node out again before writes resume
        if let Err(e) = self.attach_everywhere(i, &pgpools, (&src_host, src_port)) {
            for &p in &pgpools {
                let _ = pgpool::pcp_node(self, "pcp_detach_node", p, i);
            }
            return Err(e.context(format!("rejoin of postgres {i} failed; it is detached again")));
        }

        // 6. resume writes
        pause.release()?;
        let writes_paused = paused_at.elapsed();
        eprintln!("rejoin: writes resumed after {writes_paused:.1?}");
        Ok(RejoinReport { backend: i, source, total: t0.elapsed(), writes_paused })
    }
}
