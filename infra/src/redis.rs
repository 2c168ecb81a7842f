//! Redis 7 for the carts: instance 0 starts as the master, the others as its read-only replicas,
//! and Sentinels watch the master under one name, promote a replica when it fails and tell
//! clients where the master is. No persistence: a (re)started instance gets its data from the
//! current master. A small client of the Redis protocol (RESP2) for readiness, status and tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::process;
use crate::render::render;
use crate::rundir;
use crate::running::Running;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::Kind;

const REDIS_CONF: &str = include_str!("../templates/redis.conf");
const SENTINEL_CONF: &str = include_str!("../templates/sentinel.conf");

// ---------------------------------------------------------------------------------------------
// The protocol

/// A reply of the Redis protocol (RESP2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    /// An error reply, e.g. "READONLY You can't write against a read only replica."
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply, or the server's error reply as an `Err`.
    pub fn ok(self) -> Result<Reply> {
        match self {
            Reply::Error(e) => bail!("{e}"),
            r => Ok(r),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Status(s) | Reply::Bulk(Some(s)) => Some(s),
            _ => None,
        }
    }

    fn items(self) -> Result<Vec<Reply>> {
        match self {
            Reply::Array(Some(items)) => Ok(items),
            other => bail!("expected an array, got {other:?}"),
        }
    }

    /// A flat array of names and values (SENTINEL MASTER) as a map.
    fn into_map(self) -> Result<BTreeMap<String, String>> {
        let items = self.items()?;
        let text: Vec<String> = items.iter().map(|i| i.as_str().unwrap_or_default().to_string()).collect();
        Ok(text.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect())
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// Sends one command to `addr` ("host:port") on a fresh connection and reads the reply. A server
/// error is `Ok(Reply::Error(..))`; see [`Reply::ok`].
pub fn command(addr: &str, args: &[&str]) -> Result<Reply> {
    let sock = addr.to_socket_addrs().with_context(|| format!("resolving {addr}"))?.next();
    let sock = sock.with_context(|| format!("{addr} does not resolve"))?;
    let stream = TcpStream::connect_timeout(&sock, TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        request.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        request.extend_from_slice(a.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    (&stream).write_all(&request).with_context(|| format!("sending to {addr}"))?;
    let what = args.first().copied().unwrap_or_default();
    read_reply(&mut BufReader::new(&stream)).with_context(|| format!("{what} on {addr}"))
}

fn read_reply(r: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(kind) = line.chars().next() else { bail!("empty reply line") };
    let rest = &line[1..];
    Ok(match kind {
        '+' => Reply::Status(rest.to_string()),
        '-' => Reply::Error(rest.to_string()),
        ':' => Reply::Int(rest.parse().with_context(|| format!("bad integer {rest:?}"))?),
        '$' => {
            let len: i64 = rest.parse().with_context(|| format!("bad length {rest:?}"))?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; len as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(len as usize);
                Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        }
        '*' => {
            let len: i64 = rest.parse().with_context(|| format!("bad length {rest:?}"))?;
            if len < 0 {
                Reply::Array(None)
            } else {
                Reply::Array(Some((0..len).map(|_| read_reply(r)).collect::<Result<_>>()?))
            }
        }
        _ => bail!("not a Redis reply: {line:?}"),
    })
}

/// `INFO <section>` of an instance as field -> value (e.g. "role", "master_link_status").
pub fn info(addr: &str, section: &str) -> Result<BTreeMap<String, String>> {
    let reply = command(addr, &["INFO", section])?.ok()?;
    let text = reply.as_str().context("INFO did not answer text")?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

/// The master's "host:port" in the view of the sentinel at `sentinel`.
pub fn master_addr(sentinel: &str, master_name: &str) -> Result<String> {
    let items = command(sentinel, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name])?.ok()?;
    match items {
        Reply::Array(Some(hp)) if hp.len() == 2 => {
            Ok(format!("{}:{}", hp[0].as_str().unwrap_or_default(), hp[1].as_str().unwrap_or_default()))
        }
        other => bail!("sentinel {sentinel} knows no master {master_name:?}: {other:?}"),
    }
}

/// Role of a Redis instance from `INFO replication`: "master", or "replica of host:port (link
/// up|down)".
fn describe_role(info: &BTreeMap<String, String>) -> String {
    let get = |k: &str| info.get(k).map(String::as_str).unwrap_or("?");
    match get("role") {
        "master" => format!("master with {} connected replica(s)", get("connected_slaves")),
        "slave" => {
            format!("replica of {}:{} (link {})", get("master_host"), get("master_port"), get("master_link_status"))
        }
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Starting

fn split_addr(addr: &str) -> Result<(&str, &str)> {
    addr.rsplit_once(':').with_context(|| format!("{addr:?} is not host:port"))
}

/// Starts every Redis instance (0 as the master, then the replicas, each ready when its link to
/// the master is up), then every sentinel, ready when each sees the master, every replica and
/// every other sentinel.
pub(crate) fn start_all(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    start_redis(r, 0, None)?;
    let master = t.redis.addr(0);
    for i in 1..t.redis.count {
        start_redis(r, i, Some(&master))?;
    }
    // Sentinels find each other through the master (hello messages every 2 s): start them all,
    // then wait for each.
    for i in 0..t.sentinel.section.count {
        spawn_sentinel(r, i, &master)?;
    }
    for i in 0..t.sentinel.section.count {
        wait_sentinel(r, i, &master)?;
    }
    Ok(())
}

/// Starts Redis instance i from a freshly rendered config and an empty data dir, as a replica of
/// `master` ("host:port") or as a master (None). Ready when it answers with the expected role
/// and, as a replica, its link to the master is up (the full sync is done).
fn start_redis(r: &mut Running, i: usize, master: Option<&str>) -> Result<()> {
    let t = r.topology().clone();
    let (host, port) = t.endpoint(Kind::Redis, i);
    process::ensure_port_free(&host, port, &format!("redis {i}"))?;
    let dir = r.instance_dir(Kind::Redis, i);
    rundir::instance_dir(&dir, r.run_as())?;
    // Every start loads dump.rdb (a replica writes one at each full sync): remove it, so that no
    // old keys come back; the data comes from the master.
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rdb") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let replicaof = match master {
        Some(m) => {
            let (h, p) = split_addr(m)?;
            format!("replicaof {h} {p}")
        }
        None => String::new(),
    };
    let conf = render(
        REDIS_CONF,
        &[
            ("name", t.name.clone()),
            ("index", i.to_string()),
            ("host", host.clone()),
            ("port", port.to_string()),
            ("dir", dir.display().to_string()),
            ("replicaof", replicaof),
        ],
    )?;
    let conf_path = dir.join("redis.conf");
    std::fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;
    process::give(&conf_path, r.run_as())?;
    let log = dir.join("redis.log");
    let mut cmd = process::server_command(&tool("redis-server")?, &log, r.run_as())?;
    cmd.arg(&conf_path).current_dir(&dir);
    let child = process::spawn(cmd, &format!("redis {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc { kind: Kind::Redis, index: i, pid, start_time, host, port, pcp_port: None, dir, log };
    r.record(proc.clone(), child)?;
    wait_redis(&proc, master)
}

fn wait_redis(p: &Proc, master: Option<&str>) -> Result<()> {
    process::wait_until(
        &format!("{} on {}", p.label(), p.addr()),
        Duration::from_secs(30),
        || !p.alive(),
        || {
            let info = info(&p.addr(), "replication")?;
            let role = info.get("role").map(String::as_str);
            match master {
                None if role == Some("master") => Ok(true),
                None => bail!("role {role:?}, not master"),
                Some(m) => {
                    let following = format!(
                        "{}:{}",
                        info.get("master_host").map(String::as_str).unwrap_or_default(),
                        info.get("master_port").map(String::as_str).unwrap_or_default()
                    );
                    if role != Some("slave") || following != m {
                        bail!("{}, not a replica of {m}", describe_role(&info));
                    }
                    if info.get("master_link_status").map(String::as_str) != Some("up") {
                        bail!("{}", describe_role(&info));
                    }
                    Ok(true)
                }
            }
        },
    )
    .with_context(|| process::tail(&p.log, 15))
}

/// Spawns sentinel i. Its config is rendered (monitoring `master`) unless the sentinel already
/// has one: a restarted sentinel keeps its rewritten file (its id, epochs, the peers it knows).
fn spawn_sentinel(r: &mut Running, i: usize, master: &str) -> Result<()> {
    let t = r.topology().clone();
    let s = &t.sentinel;
    let (host, port) = t.endpoint(Kind::Sentinel, i);
    process::ensure_port_free(&host, port, &format!("sentinel {i}"))?;
    let dir = r.instance_dir(Kind::Sentinel, i);
    rundir::instance_dir(&dir, r.run_as())?;
    let conf_path = dir.join("sentinel.conf");
    if !conf_path.exists() {
        let (master_host, master_port) = split_addr(master)?;
        let conf = render(
            SENTINEL_CONF,
            &[
                ("name", t.name.clone()),
                ("index", i.to_string()),
                ("host", host.clone()),
                ("port", port.to_string()),
                ("dir", dir.display().to_string()),
                ("master_name", s.master_name.clone()),
                ("master_host", master_host.to_string()),
                ("master_port", master_port.to_string()),
                ("quorum", s.quorum().to_string()),
                ("down_after_ms", s.down_after_ms.to_string()),
                ("failover_timeout_ms", s.failover_timeout_ms.to_string()),
            ],
        )?;
        std::fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;
    }
    // Sentinel refuses to start when it cannot rewrite its config.
    process::give(&conf_path, r.run_as())?;
    let log = dir.join("sentinel.log");
    let mut cmd = process::server_command(&tool("redis-sentinel")?, &log, r.run_as())?;
    cmd.arg(&conf_path).current_dir(&dir);
    let child = process::spawn(cmd, &format!("sentinel {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc { kind: Kind::Sentinel, index: i, pid, start_time, host, port, pcp_port: None, dir, log };
    r.record(proc, child)
}

/// Waits until sentinel i sees `master` up, every other live Redis instance as its replica with
/// the link up, and every other live sentinel.
fn wait_sentinel(r: &Running, i: usize, master: &str) -> Result<()> {
    let p = r.proc(Kind::Sentinel, i)?.clone();
    let name = r.topology().sentinel.master_name.clone();
    let live = |kind: Kind| r.processes().iter().filter(|q| q.kind == kind && q.alive()).count();
    let replicas = live(Kind::Redis).saturating_sub(1);
    let others = live(Kind::Sentinel).saturating_sub(1);
    let addr = p.addr();
    process::wait_until(
        &format!("{} on {addr}", p.label()),
        Duration::from_secs(30),
        || !p.alive(),
        || {
            let m = command(&addr, &["SENTINEL", "MASTER", &name])?.ok()?.into_map()?;
            let seen =
                format!("{}:{}", m.get("ip").cloned().unwrap_or_default(), m.get("port").cloned().unwrap_or_default());
            if seen != master || m.get("flags").map(String::as_str) != Some("master") {
                bail!("sees master {seen} with flags {:?}, waiting for {master} up", m.get("flags"));
            }
            let healthy = |sub: &str, flags: &str| -> Result<usize> {
                let items = command(&addr, &["SENTINEL", sub, &name])?.ok()?.items()?;
                let maps = items.into_iter().map(Reply::into_map).collect::<Result<Vec<_>>>()?;
                Ok(maps
                    .iter()
                    .filter(|m| m.get("flags").map(String::as_str) == Some(flags))
                    .filter(|m| flags != "slave" || m.get("master-link-status").map(String::as_str) == Some("ok"))
                    .count())
            };
            let (seen_replicas, seen_others) = (healthy("REPLICAS", "slave")?, healthy("SENTINELS", "sentinel")?);
            if seen_replicas < replicas || seen_others < others {
                bail!(
                    "sees master {seen}, {seen_replicas} of {replicas} replicas with their link up, \
                     {seen_others} of {others} other sentinels"
                );
            }
            Ok(true)
        },
    )
    .with_context(|| process::tail(&p.log, 15))
}

// ---------------------------------------------------------------------------------------------
// Restarting (the faults command's `Running::restart`)

/// Starts a killed or stopped Redis instance or sentinel again on the same port. A Redis
/// instance comes back as a replica of the current master, as the sentinels name it; if they
/// still name the instance itself (it died less than `down_after_ms` ago), this waits for their
/// failover first: an empty instance restarted as the master would wipe its replicas at their
/// next sync. It is ready when its link to the master is up. Without sentinels the layout of
/// `up` holds (instance 0 the master), and an instance with no live peer restarts as an empty
/// master. A sentinel restarts from its rewritten config and is ready when it sees the master,
/// its replicas and the other sentinels.
pub(crate) fn restart(r: &mut Running, kind: Kind, i: usize) -> Result<()> {
    if let Some(p) = r.state.find(kind, i) {
        if p.alive() {
            bail!("{} (pid {}) is still running: kill or stop it first", p.label(), p.pid);
        }
    }
    if let Some(mut child) = r.children.remove(&(kind, i)) {
        let _ = child.try_wait(); // reap it if it died as our child
    }
    let t0 = Instant::now();
    match kind {
        Kind::Redis => {
            if i >= r.topology().redis.count {
                bail!("redis {i} is not part of this topology");
            }
            let master = master_for_restart(r, i)?;
            start_redis(r, i, master.as_deref())?;
            let role = master.map(|m| format!("a replica of {m}")).unwrap_or_else(|| "an empty master".into());
            eprintln!("restart: redis {i} is back as {role} in {:.1?}", t0.elapsed());
        }
        Kind::Sentinel => {
            if i >= r.topology().sentinel.section.count {
                bail!("sentinel {i} is not part of this topology");
            }
            let master = agreed_master(r).or_else(|_| master_by_role(r))?;
            spawn_sentinel(r, i, &master)?;
            wait_sentinel(r, i, &master)?;
            eprintln!("restart: sentinel {i} is back (master {master}) in {:.1?}", t0.elapsed());
        }
        other => bail!("redis::restart does not start {other}"),
    }
    Ok(())
}

/// The master a restarted instance i must follow (None: it starts as the master).
fn master_for_restart(r: &Running, i: usize) -> Result<Option<String>> {
    let t = r.topology();
    let me = t.redis.addr(i);
    let peers_alive = r.processes().iter().any(|p| p.kind == Kind::Redis && p.index != i && p.alive());
    if !peers_alive {
        eprintln!("restart: no other redis instance is up: redis {i} restarts as an empty master");
        return Ok(None);
    }
    if t.count(Kind::Sentinel) == 0 {
        return Ok(if i == 0 { None } else { Some(t.redis.addr(0)) });
    }
    if !r.processes().iter().any(|p| p.kind == Kind::Sentinel && p.alive()) {
        return master_by_role(r).map(Some);
    }
    let s = &t.sentinel;
    let budget = Duration::from_millis(s.down_after_ms + s.failover_timeout_ms) + Duration::from_secs(10);
    let deadline = Instant::now() + budget;
    loop {
        let last = match agreed_master(r) {
            Ok(m) if m != me => return Ok(Some(m)),
            Ok(_) => "the sentinels still name it the master (no failover yet)".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("cannot restart redis {i} as a replica after {budget:?}: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// Inspecting

impl Running {
    /// `host:port` of every Redis instance (instance 0 started as the master).
    pub fn redis_endpoints(&self) -> Vec<String> {
        let t = self.topology();
        (0..t.redis.count).map(|i| t.redis.addr(i)).collect()
    }

    /// `host:port` of every sentinel (what the app's SHOPBENCH__REDIS__SENTINELS lists).
    pub fn sentinel_endpoints(&self) -> Vec<String> {
        let t = self.topology();
        (0..t.sentinel.section.count).map(|i| t.sentinel.section.addr(i)).collect()
    }

    /// The master name the sentinels monitor ("shopbench").
    pub fn redis_master_name(&self) -> &str {
        &self.topology().sentinel.master_name
    }

    /// The current Redis master (`host:port`): the one every live sentinel names, or without
    /// sentinels the live instance whose INFO says it is a master. Sentinels learn of a
    /// failover a moment apart (hello messages every 2 s) and its leader closes it only when
    /// every replica is reconfigured, so an unsettled view is given up to failover-timeout to
    /// settle before it is an error.
    pub fn redis_master(&self) -> Result<String> {
        if self.topology().count(Kind::Sentinel) == 0 {
            return master_by_role(self);
        }
        let s = &self.topology().sentinel;
        let deadline = Instant::now() + Duration::from_millis(s.failover_timeout_ms) + Duration::from_secs(2);
        loop {
            match sentinel_agreement(self)? {
                Agreement::Agreed(m) => return Ok(m),
                Agreement::Disagree(views) if Instant::now() >= deadline => {
                    bail!("the sentinels have not settled on a master: {views}")
                }
                Agreement::Disagree(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Index of the Redis instance that is the current master.
    pub fn redis_master_index(&self) -> Result<usize> {
        let master = self.redis_master()?;
        self.redis_endpoints()
            .iter()
            .position(|a| *a == master)
            .with_context(|| format!("the master {master} is none of this topology's redis instances"))
    }
}

/// What the live sentinels say about the master.
enum Agreement {
    Agreed(String),
    /// They name different masters (each sentinel's view), or one is still in a failover.
    Disagree(String),
}

fn sentinel_agreement(r: &Running) -> Result<Agreement> {
    let name = &r.topology().sentinel.master_name;
    let views: Vec<(String, Result<String>)> = r
        .processes()
        .iter()
        .filter(|p| p.kind == Kind::Sentinel && p.alive())
        .map(|p| (p.addr(), master_addr(&p.addr(), name)))
        .collect();
    let answers: Vec<&String> = views.iter().filter_map(|(_, v)| v.as_ref().ok()).collect();
    // The leader of a failover keeps it open until every replica is reconfigured (up to
    // failover-timeout) and ignores a second failover meanwhile: not settled until it ends.
    let in_failover: Vec<String> = r
        .processes()
        .iter()
        .filter(|p| p.kind == Kind::Sentinel && p.alive())
        .filter(|p| {
            command(&p.addr(), &["SENTINEL", "MASTER", name])
                .and_then(|reply| reply.ok()?.into_map())
                .is_ok_and(|m| m.get("flags").is_some_and(|f| f.contains("failover_in_progress")))
        })
        .map(Proc::addr)
        .collect();
    match answers.first() {
        None => bail!("no sentinel answers"),
        Some(_) if !in_failover.is_empty() => {
            Ok(Agreement::Disagree(format!("a failover is still in progress on {}", in_failover.join(", "))))
        }
        Some(first) if answers.iter().all(|a| a == first) => Ok(Agreement::Agreed((*first).clone())),
        Some(_) => {
            let all: Vec<String> = views
                .iter()
                .map(|(s, v)| format!("{s}: {}", v.as_ref().map(String::as_str).unwrap_or("no answer")))
                .collect();
            Ok(Agreement::Disagree(all.join(", ")))
        }
    }
}

/// The master all live sentinels name (an error while they disagree, e.g. during a failover).
fn agreed_master(r: &Running) -> Result<String> {
    match sentinel_agreement(r)? {
        Agreement::Agreed(m) => Ok(m),
        Agreement::Disagree(views) => bail!("the sentinels have not settled on a master: {views}"),
    }
}

/// The one live Redis instance whose INFO says it is a master.
fn master_by_role(r: &Running) -> Result<String> {
    let masters: Vec<String> = r
        .processes()
        .iter()
        .filter(|p| p.kind == Kind::Redis && p.alive())
        .filter(|p| info(&p.addr(), "replication").is_ok_and(|i| i.get("role").is_some_and(|r| r == "master")))
        .map(Proc::addr)
        .collect();
    match masters.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no live redis instance is a master"),
        many => bail!("several redis instances are masters: {}", many.join(", ")),
    }
}

/// One line per Redis instance (its role) and sentinel (the master it names) for `status`.
pub(crate) fn status_lines(r: &Running) -> Vec<String> {
    let name = &r.topology().sentinel.master_name;
    r.processes()
        .iter()
        .filter(|p| matches!(p.kind, Kind::Redis | Kind::Sentinel))
        .map(|p| {
            let view = if !p.alive() {
                "DOWN".to_string()
            } else if p.kind == Kind::Redis {
                info(&p.addr(), "replication").map(|i| describe_role(&i)).unwrap_or_else(|e| format!("{e:#}"))
            } else {
                master_addr(&p.addr(), name)
                    .map(|m| format!("names {m} the master of {name:?}"))
                    .unwrap_or_else(|e| format!("{e:#}"))
            };
            format!("{} {}: {view}", p.label(), p.addr())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        let parse = |s: &str| read_reply(&mut BufReader::new(s.as_bytes())).unwrap();
        assert_eq!(parse("+OK\r\n"), Reply::Status("OK".into()));
        assert_eq!(parse("-READONLY no\r\n"), Reply::Error("READONLY no".into()));
        assert_eq!(parse(":42\r\n"), Reply::Int(42));
        assert_eq!(parse("$-1\r\n"), Reply::Bulk(None));
        assert_eq!(parse("$5\r\na\r\nbc\r\n"), Reply::Bulk(Some("a\r\nbc".into())));
        assert_eq!(
            parse("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n16379\r\n"),
            Reply::Array(Some(vec![Reply::Bulk(Some("127.0.0.1".into())), Reply::Bulk(Some("16379".into()))]))
        );
        let map = parse("*4\r\n$4\r\nname\r\n$1\r\nx\r\n$5\r\nflags\r\n$6\r\nmaster\r\n").into_map().unwrap();
        assert_eq!(map.get("flags").map(String::as_str), Some("master"));
        assert!(read_reply(&mut BufReader::new("?x\r\n".as_bytes())).is_err());
        assert!(Reply::Error("ERR x".into()).ok().is_err());
    }
}
