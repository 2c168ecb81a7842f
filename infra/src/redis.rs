//! Redis 7 for the carts: instance 0 starts as the master, the others as its read-only replicas,
//! and Sentinels watch the master under one name, promote a replica when it fails and tell
//! clients where the master is. No persistence: a (re)started instance gets its data from the
//! current master. Readiness, status and the tests ask them through the `redis` crate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use endpoints::HostPort;
use redis::{Client, Connection, ErrorKind, FromRedisValue, InfoDict, IntoConnectionInfo, RedisError, ServerErrorKind};

use crate::process;
use crate::render::render;
use crate::rundir;
use crate::running::Running;
use crate::secrets::write_private;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::Kind;

const REDIS_CONF: &str = include_str!("../templates/redis.conf");
const SENTINEL_CONF: &str = include_str!("../templates/sentinel.conf");

// ---------------------------------------------------------------------------------------------
// The protocol

const TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to one instance or sentinel ("host:port"), logged in with `password` when given
/// (off loopback), with 2 s timeouts.
fn connect(addr: &str, password: Option<&str>) -> Result<Connection> {
    let mut info =
        format!("redis://{addr}/").into_connection_info().with_context(|| format!("{addr:?} is not host:port"))?;
    if let Some(p) = password {
        let login = info.redis_settings().clone().set_password(p);
        info = info.set_redis_settings(login);
    }
    let client = Client::open(info)?;
    let conn = client.get_connection_with_timeout(TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(TIMEOUT))?;
    Ok(conn)
}

/// Sends one command to `addr` ("host:port") on a fresh connection and converts the reply to `T`
/// (`redis::Value`, `String`, `Option<String>`, `Vec<String>`, a map...). A server's error
/// reply is an error too: see [`is_read_only`].
pub fn query<T: FromRedisValue>(addr: &str, args: &[&str]) -> Result<T> {
    query_as(addr, None, args)
}

/// [`query`] logged in with `password` (a topology with `[[hosts]]`: see
/// [`Running::redis_password`] and [`Running::sentinel_password`]).
pub fn query_as<T: FromRedisValue>(addr: &str, password: Option<&str>, args: &[&str]) -> Result<T> {
    let mut conn = connect(addr, password)?;
    let (name, rest) = args.split_first().context("no command")?;
    let mut cmd = redis::cmd(name);
    cmd.arg(rest);
    cmd.query(&mut conn).with_context(|| format!("{name} on {addr}"))
}

/// Whether `e` is the server's READONLY error reply (a write sent to a replica).
pub fn is_read_only(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RedisError>().is_some_and(|r| r.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly))
}

/// `INFO <section>` of an instance as field -> value (e.g. "role", "master_link_status").
pub fn info(addr: &str, section: &str) -> Result<BTreeMap<String, String>> {
    info_as(addr, None, section)
}

/// [`info`] logged in with `password`.
pub fn info_as(addr: &str, password: Option<&str>, section: &str) -> Result<BTreeMap<String, String>> {
    let dict: InfoDict = query_as(addr, password, &["INFO", section])?;
    Ok(dict.keys().filter_map(|k| Some((k.clone(), dict.get::<String>(k)?))).collect())
}

/// The master's "host:port" in the view of the sentinel at `sentinel`.
pub fn master_addr(sentinel: &str, master_name: &str) -> Result<String> {
    master_addr_as(sentinel, None, master_name)
}

/// [`master_addr`], logged in to the sentinel with `password`.
pub fn master_addr_as(sentinel: &str, password: Option<&str>, master_name: &str) -> Result<String> {
    let addr: Option<(String, u16)> =
        query_as(sentinel, password, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name])?;
    let (host, port) = addr.with_context(|| format!("sentinel {sentinel} knows no master {master_name:?}"))?;
    Ok(format!("{host}:{port}"))
}

/// `SENTINEL MASTER <name>` of a sentinel: the master's fields ("ip", "port", "flags", ...).
fn sentinel_master(sentinel: &str, password: Option<&str>, master_name: &str) -> Result<BTreeMap<String, String>> {
    query_as(sentinel, password, &["SENTINEL", "MASTER", master_name])
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

/// Starts every Redis instance (0 as the master, then the replicas, each ready when its link to
/// the master is up), then every sentinel, ready when each sees the master, every replica and
/// every other sentinel.
pub(crate) fn start_all(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    start_redis(r, 0, None)?;
    let master = t.addr(Kind::Redis, 0);
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

/// The Redis tier of a host of `[[hosts]]`: its instances, instance 0 as the master (the control
/// machine asks the master's host first).
pub(crate) fn start_host_redis(r: &mut Running) -> Result<()> {
    let master = r.topology().addr(Kind::Redis, 0);
    for i in r.local(Kind::Redis) {
        start_redis(r, i, (i != 0).then_some(master.as_str()))?;
    }
    Ok(())
}

/// The Sentinel tier of a host: its sentinels, each ready when it sees the master and every
/// replica. That they see each other across hosts the control machine checks once every host's
/// sentinels run ([`wait_sentinels_meet`]).
pub(crate) fn start_host_sentinels(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    let master = t.addr(Kind::Redis, 0);
    let mine = r.local(Kind::Sentinel);
    for &i in &mine {
        spawn_sentinel(r, i, &master)?;
    }
    for i in mine {
        let p = r.proc(Kind::Sentinel, i)?.clone();
        let want = SentinelView { master: &master, replicas: t.redis.count - 1, others: 0 };
        want.wait(&p, r.sentinel_password(), &t.sentinel.master_name, || !p.alive())?;
    }
    Ok(())
}

/// On the control machine, after every host's sentinels started: each sentinel (at its host's
/// address) sees the master, every replica and every other sentinel.
pub(crate) fn wait_sentinels_meet(r: &Running) -> Result<()> {
    let t = r.topology();
    let master = t.addr(Kind::Redis, 0);
    let want = SentinelView { master: &master, replicas: t.redis.count - 1, others: t.sentinel.section.count - 1 };
    for p in r.processes().iter().filter(|p| p.kind == Kind::Sentinel) {
        want.wait(p, r.sentinel_password(), &t.sentinel.master_name, || false)?;
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
    private_when(&dir, r.redis_password().is_some())?;
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
            let m = HostPort::parse(m)?;
            format!("replicaof {} {}", m.host, m.port)
        }
        None => String::new(),
    };
    // Off loopback every client logs in, replicas too (also the old master after a failover).
    let auth = match r.redis_password() {
        Some(pw) => format!("protected-mode yes\nrequirepass {pw}\nmasterauth {pw}"),
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
            ("auth", auth),
        ],
    )?;
    let conf_path = dir.join("redis.conf");
    write_private(&conf_path, conf.as_bytes())?;
    process::give(&conf_path, r.run_as())?;
    let log = dir.join("redis.log");
    let mut cmd = process::server_command(&tool("redis-server")?, &log, r.run_as())?;
    cmd.arg(&conf_path).current_dir(&dir);
    let child = process::spawn(cmd, &format!("redis {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc =
        Proc { kind: Kind::Redis, index: i, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc.clone(), child)?;
    wait_redis(&proc, r.redis_password(), master)
}

/// With passwords in its config, an instance's dir is its owner's alone: Redis and Sentinel
/// rewrite their config files (CONFIG REWRITE) as 0644.
fn private_when(dir: &std::path::Path, passwords: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if passwords {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", dir.display()))?;
    }
    Ok(())
}

fn wait_redis(p: &Proc, password: Option<&str>, master: Option<&str>) -> Result<()> {
    process::wait_until(
        &format!("{} on {}", p.label(), p.addr()),
        Duration::from_secs(30),
        || !p.alive(),
        || {
            let info = info_as(&p.addr(), password, "replication")?;
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
    private_when(&dir, r.sentinel_password().is_some())?;
    let conf_path = dir.join("sentinel.conf");
    if !conf_path.exists() {
        let HostPort { host: master_host, port: master_port } = HostPort::parse(master)?;
        // Off loopback: clients log in to the sentinels, the sentinels to each other and to the
        // Redis instances.
        let (auth, master_auth) = match (r.sentinel_password(), r.redis_password()) {
            (Some(own), Some(redis)) => (
                format!("protected-mode yes\nrequirepass {own}\nsentinel sentinel-pass {own}"),
                format!("sentinel auth-pass {} {redis}", s.master_name),
            ),
            _ => (String::new(), String::new()),
        };
        let conf = render(
            SENTINEL_CONF,
            &[
                ("name", t.name.clone()),
                ("index", i.to_string()),
                ("host", host.clone()),
                ("port", port.to_string()),
                ("dir", dir.display().to_string()),
                ("master_name", s.master_name.clone()),
                ("master_host", master_host),
                ("master_port", master_port.to_string()),
                ("quorum", s.quorum().to_string()),
                ("down_after_ms", s.down_after_ms.to_string()),
                ("failover_timeout_ms", s.failover_timeout_ms.to_string()),
                ("auth", auth),
                ("master_auth", master_auth),
            ],
        )?;
        write_private(&conf_path, conf.as_bytes())?;
    }
    // Sentinel refuses to start when it cannot rewrite its config.
    process::give(&conf_path, r.run_as())?;
    let log = dir.join("sentinel.log");
    let mut cmd = process::server_command(&tool("redis-sentinel")?, &log, r.run_as())?;
    cmd.arg(&conf_path).current_dir(&dir);
    let child = process::spawn(cmd, &format!("sentinel {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc =
        Proc { kind: Kind::Sentinel, index: i, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc, child)
}

/// Waits until sentinel i sees `master` up, every other live Redis instance as its replica with
/// the link up, and every other live sentinel.
fn wait_sentinel(r: &Running, i: usize, master: &str) -> Result<()> {
    let p = r.proc(Kind::Sentinel, i)?.clone();
    let live = |kind: Kind| r.processes().iter().filter(|q| q.kind == kind && q.alive()).count();
    let want = SentinelView {
        master,
        replicas: live(Kind::Redis).saturating_sub(1),
        others: live(Kind::Sentinel).saturating_sub(1),
    };
    want.wait(&p, r.sentinel_password(), &r.topology().sentinel.master_name, || !p.alive())
}

/// What a ready sentinel sees: `master` up, at least `replicas` replicas with their link up and
/// `others` other sentinels.
struct SentinelView<'a> {
    master: &'a str,
    replicas: usize,
    others: usize,
}

impl SentinelView<'_> {
    /// Waits (60 s: a busy machine) until sentinel `p` (logged in with `password`) sees this, or `dead()`.
    fn wait(&self, p: &Proc, password: Option<&str>, name: &str, dead: impl Fn() -> bool) -> Result<()> {
        let addr = p.addr();
        process::wait_until(&format!("{} on {addr}", p.label()), Duration::from_secs(60), dead, || {
            self.seen_by(&addr, password, name)
        })
        .with_context(|| process::tail(&p.log, 15))
    }

    fn seen_by(&self, addr: &str, password: Option<&str>, name: &str) -> Result<bool> {
        let (master, replicas, others) = (self.master, self.replicas, self.others);
        let m = sentinel_master(addr, password, name)?;
        let seen =
            format!("{}:{}", m.get("ip").cloned().unwrap_or_default(), m.get("port").cloned().unwrap_or_default());
        if seen != master || m.get("flags").map(String::as_str) != Some("master") {
            bail!("sees master {seen} with flags {:?}, waiting for {master} up", m.get("flags"));
        }
        let healthy = |sub: &str, flags: &str| -> Result<usize> {
            let maps: Vec<BTreeMap<String, String>> = query_as(addr, password, &["SENTINEL", sub, name])?;
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
    }
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
    let master = master_to_follow(r, kind, i)?;
    restart_following(r, kind, i, master.as_deref())
}

/// The master a restarted `kind` `i` follows (crate::remote decides it on the control machine,
/// which knows every host's instances, and passes it to the instance's host).
pub(crate) fn master_to_follow(r: &Running, kind: Kind, i: usize) -> Result<Option<String>> {
    match kind {
        Kind::Redis if i >= r.topology().redis.count => bail!("redis {i} is not part of this topology"),
        Kind::Redis => master_for_restart(r, i),
        Kind::Sentinel if i >= r.topology().sentinel.section.count => {
            bail!("sentinel {i} is not part of this topology")
        }
        Kind::Sentinel => Ok(Some(agreed_master(r).or_else(|_| master_by_role(r))?)),
        other => bail!("redis::restart does not start {other}"),
    }
}

/// [`restart`] with the master decided: a Redis instance as its replica (None: an empty
/// master), a sentinel watching it.
pub(crate) fn restart_following(r: &mut Running, kind: Kind, i: usize, master: Option<&str>) -> Result<()> {
    if let Some(mut child) = r.children.remove(&(kind, i)) {
        let _ = child.try_wait(); // reap it if it died as our child
    }
    let t0 = Instant::now();
    match (kind, master) {
        (Kind::Redis, _) => {
            start_redis(r, i, master)?;
            let role = master.map(|m| format!("a replica of {m}")).unwrap_or_else(|| "an empty master".into());
            eprintln!("restart: redis {i} is back as {role} in {:.1?}", t0.elapsed());
        }
        (Kind::Sentinel, Some(master)) => {
            spawn_sentinel(r, i, master)?;
            wait_sentinel(r, i, master)?;
            eprintln!("restart: sentinel {i} is back (master {master}) in {:.1?}", t0.elapsed());
        }
        (other, _) => bail!("redis::restart does not start {other} {i} without a master"),
    }
    Ok(())
}

/// The master a restarted instance i must follow (None: it starts as the master).
fn master_for_restart(r: &Running, i: usize) -> Result<Option<String>> {
    let t = r.topology();
    let me = t.addr(Kind::Redis, i);
    // Another host's instance may run: the sentinels or the instances themselves say below.
    let peers_alive = r.processes().iter().any(|p| p.kind == Kind::Redis && p.index != i && p.may_be_alive());
    if !peers_alive {
        eprintln!("restart: no other redis instance is up: redis {i} restarts as an empty master");
        return Ok(None);
    }
    if t.count(Kind::Sentinel) == 0 {
        return Ok(if i == 0 { None } else { Some(t.addr(Kind::Redis, 0)) });
    }
    if !r.processes().iter().any(|p| p.kind == Kind::Sentinel && p.may_be_alive()) {
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
    /// The password of this run's Redis instances (none on loopback, where they trust local
    /// connections).
    pub fn redis_password(&self) -> Option<&str> {
        self.secrets.as_ref().map(|s| s.redis.expose())
    }

    /// The sentinels' own password (none on loopback).
    pub fn sentinel_password(&self) -> Option<&str> {
        self.secrets.as_ref().map(|s| s.sentinel.expose())
    }

    /// `host:port` of every Redis instance (instance 0 started as the master).
    pub fn redis_endpoints(&self) -> Vec<String> {
        let t = self.topology();
        (0..t.redis.count).map(|i| t.addr(Kind::Redis, i)).collect()
    }

    /// `host:port` of every sentinel (what the app's SHOPBENCH__REDIS__SENTINELS lists).
    pub fn sentinel_endpoints(&self) -> Vec<String> {
        let t = self.topology();
        (0..t.sentinel.section.count).map(|i| t.addr(Kind::Sentinel, i)).collect()
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
        .filter(|p| p.kind == Kind::Sentinel && p.may_be_alive())
        .map(|p| (p.addr(), master_addr_as(&p.addr(), r.sentinel_password(), name)))
        .collect();
    let answers: Vec<&String> = views.iter().filter_map(|(_, v)| v.as_ref().ok()).collect();
    // The leader of a failover keeps it open until every replica is reconfigured (up to
    // failover-timeout) and ignores a second failover meanwhile: not settled until it ends.
    let in_failover: Vec<String> = r
        .processes()
        .iter()
        .filter(|p| p.kind == Kind::Sentinel && p.may_be_alive())
        .filter(|p| {
            sentinel_master(&p.addr(), r.sentinel_password(), name)
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
        .filter(|p| p.kind == Kind::Redis && p.may_be_alive())
        .filter(|p| {
            info_as(&p.addr(), r.redis_password(), "replication")
                .is_ok_and(|i| i.get("role").is_some_and(|r| r == "master"))
        })
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
                info_as(&p.addr(), r.redis_password(), "replication")
                    .map(|i| describe_role(&i))
                    .unwrap_or_else(|e| format!("{e:#}"))
            } else {
                master_addr_as(&p.addr(), r.sentinel_password(), name)
                    .map(|m| format!("names {m} the master of {name:?}"))
                    .unwrap_or_else(|e| format!("{e:#}"))
            };
            format!("{} {}: {view}", p.label(), p.addr())
        })
        .collect()
}
