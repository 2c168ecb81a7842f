//! Which Redis node an operation goes to.
//!
//! fred's own replica routing works only against Redis Cluster, so this module routes by itself:
//! one fred pool per node (master and each replica), found through Sentinel.
//!
//! A background task (`tick`, every `TICK` or at once when an operation asks) does three things:
//! 1. asks a Sentinel for the master (`SENTINEL get-master-addr-by-name`) and the replicas
//!    (`SENTINEL replicas`), opening a pool for any node not seen before;
//! 2. proves which replicas are fresh: on the master's control connection it pipelines
//!    `ROLE` (master offset M), `SET <prefix>heartbeat`, `WAIT <attached> <replica_wait>`, `ROLE`.
//!    A replica whose confirmed offset reached M holds every write acknowledged before the tick
//!    began. A replica that did not is left out of the read set until a later tick proves it;
//! 3. publishes the `View`: the master, the replicas reads may use, and how many replicas a
//!    write must wait for.
//!
//! Reads take the next replica of the read set (round-robin) and fall back to the master when
//! there is none or the replica fails (the replica is then out until a tick finds it well).
//! Writes go to the master; see `carts` for how they wait for the replicas.

use crate::settings::{parse_address, RedisSettings};
use endpoints::HostPort;
use fred::prelude::*;
use fred::types::CustomCommand;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the topology and the replicas' freshness are checked.
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// How often a fred client tries to reconnect to a node that went away.
const RECONNECT_MS: u32 = 100;

/// One Redis server: a pool for operations and a separate control connection for the checks
/// (a `WAIT` blocks its connection; it must not stall other operations).
pub(crate) struct Node {
    pub(crate) addr: String,
    pub(crate) pool: Pool,
    control: Client,
}

impl Node {
    fn open(addr: &str, settings: &RedisSettings, size: usize) -> anyhow::Result<Node> {
        let builder = builder(addr, settings, settings.password.clone())?;
        let pool = builder.build_pool(size)?;
        let control = builder.build()?;
        // Not `init`: a node that is down now is retried in the background by fred's reconnect
        // policy and comes back into use by itself. Dropping a handle leaves its task running.
        drop(pool.connect());
        drop(control.connect());
        Ok(Node { addr: addr.to_string(), pool, control })
    }

    /// Some connection to the node is up.
    pub(crate) fn connected(&self) -> bool {
        self.pool.clients().iter().any(|c| c.is_connected())
    }

    /// A connected client of the pool (or any, when none is: its command then fails or waits).
    pub(crate) fn client(&self) -> &Client {
        self.pool.next_connected()
    }

    async fn quit(&self) {
        let _ = self.pool.quit().await;
        let _ = self.control.quit().await;
    }
}

/// A fred client builder for one `host:port` (logging in with `password`, when given), with our
/// timeouts and no retries of its own: an in-flight command that loses its connection fails, and
/// the caller decides.
pub(crate) fn builder(addr: &str, settings: &RedisSettings, password: Option<String>) -> anyhow::Result<Builder> {
    let HostPort { host, port } = parse_address(addr)?;
    // fail_fast off: a node that is down when first seen is retried like one that went away.
    let server = ServerConfig::new_centralized(host, port);
    let config = Config { server, fail_fast: false, password, ..Default::default() };
    let mut builder = Builder::from_config(config);
    let timeout = settings.timeout();
    builder
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
            c.max_command_attempts = 1;
            c.tcp = TcpConfig { nodelay: Some(true), ..Default::default() };
        })
        // WAIT answers within replica_wait; every other command within the timeout.
        .with_performance_config(|p| p.default_command_timeout = timeout + settings.replica_wait())
        .set_policy(ReconnectPolicy::new_constant(0, RECONNECT_MS));
    Ok(builder)
}

/// What operations route by; replaced as a whole by each tick.
#[derive(Default)]
pub(crate) struct View {
    pub(crate) master: Option<Arc<Node>>,
    /// Replicas that reads may use.
    pub(crate) readable: Vec<Arc<Node>>,
    /// Replicas attached to the master at the last tick: a write waits for all of them.
    pub(crate) attached: usize,
    /// Replicas Sentinel knows of, in any state.
    pub(crate) known: usize,
}

/// Replicas out of the read set for a reason a tick must clear.
#[derive(Default)]
struct Exclusions {
    /// Found behind by a write: out until their confirmed offset reaches the value.
    lagging: HashMap<String, i64>,
    /// A read failed on them: out until a tick finds them attached and fresh again.
    failed: HashSet<String>,
}

pub(crate) struct Router {
    pub(crate) settings: RedisSettings,
    sentinels: Vec<(String, Client)>,
    /// The Sentinel that answered last is asked first.
    sentinel_first: AtomicUsize,
    nodes: Mutex<HashMap<String, Arc<Node>>>,
    view: RwLock<Arc<View>>,
    /// The master of the last tick, to count failovers.
    last_master: Mutex<Option<String>>,
    exclusions: Mutex<Exclusions>,
    next_read: AtomicUsize,
    wake: Notify,
}

/// A replica as Sentinel reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SentinelReplica {
    pub(crate) addr: String,
    /// Not flagged down or disconnected, and its link to the master is up.
    pub(crate) usable: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Router {
    pub(crate) fn new(settings: &RedisSettings) -> anyhow::Result<Router> {
        settings.check()?;
        let mut sentinels = Vec::new();
        for addr in &settings.sentinels {
            // Sentinels are asked as plain servers (not fred's sentinel mode): their own password.
            let client = builder(addr, settings, settings.sentinel_password.clone())?.build()?;
            drop(client.connect());
            sentinels.push((addr.clone(), client));
        }
        Ok(Router {
            settings: settings.clone(),
            sentinels,
            sentinel_first: AtomicUsize::new(0),
            nodes: Mutex::new(HashMap::new()),
            view: RwLock::new(Arc::new(View::default())),
            last_master: Mutex::new(None),
            exclusions: Mutex::new(Exclusions::default()),
            next_read: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    pub(crate) fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Asks the background task for a tick now (after a failed write or read on the master).
    pub(crate) fn refresh_soon(&self) {
        self.wake.notify_one();
    }

    /// The next replica for a read, round-robin over the read set.
    pub(crate) fn next_replica(&self, view: &View) -> Option<Arc<Node>> {
        if view.readable.is_empty() {
            return None;
        }
        let i = self.next_read.fetch_add(1, Ordering::Relaxed) % view.readable.len();
        Some(view.readable[i].clone())
    }

    /// A read on `node` failed: no more reads there until a tick finds it well.
    pub(crate) fn replica_failed(&self, node: &Node, why: &str) {
        if lock(&self.exclusions).failed.insert(node.addr.clone()) {
            tracing::warn!(node = %node.addr, error = %why, "redis replica failed a read: out of the read set");
            metrics::counter!("shop_redis_replica_drops_total", "node" => node.addr.clone(), "reason" => "failed")
                .increment(1);
        }
        self.unpublish(&node.addr);
    }

    /// A write's `WAIT` found these replicas behind `offset`: out until they reach it.
    pub(crate) fn replicas_lagging(&self, behind: &[String], offset: i64) {
        let mut ex = lock(&self.exclusions);
        for addr in behind {
            let need = ex.lagging.entry(addr.clone()).or_insert(offset);
            *need = (*need).max(offset);
            tracing::info!(node = %addr, offset, "redis replica did not confirm a write in time: out of the read set");
            metrics::counter!("shop_redis_replica_drops_total", "node" => addr.clone(), "reason" => "lagging")
                .increment(1);
        }
        drop(ex);
        for addr in behind {
            self.unpublish(addr);
        }
    }

    /// Takes one replica out of the published read set at once (the next tick decides again).
    fn unpublish(&self, addr: &str) {
        let mut guard = self.view.write().unwrap_or_else(|p| p.into_inner());
        if guard.readable.iter().any(|n| n.addr == addr) {
            let v = View {
                master: guard.master.clone(),
                readable: guard.readable.iter().filter(|n| n.addr != addr).cloned().collect(),
                attached: guard.attached,
                known: guard.known,
            };
            metrics::gauge!("shop_redis_readable_replicas").set(v.readable.len() as f64);
            *guard = Arc::new(v);
        }
    }

    fn node(&self, addr: &str) -> anyhow::Result<Arc<Node>> {
        let mut nodes = lock(&self.nodes);
        if let Some(n) = nodes.get(addr) {
            return Ok(n.clone());
        }
        let n = Arc::new(Node::open(addr, &self.settings, self.settings.pool_size)?);
        nodes.insert(addr.to_string(), n.clone());
        Ok(n)
    }

    /// Runs `SENTINEL <args>` on the first Sentinel that answers.
    async fn sentinel(&self, args: &[&str]) -> Result<Value, String> {
        let n = self.sentinels.len();
        let first = self.sentinel_first.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let (addr, client) = &self.sentinels[i];
            if !client.is_connected() {
                errors.push(format!("{addr}: not connected"));
                continue;
            }
            let cmd = CustomCommand::new_static("SENTINEL", None, false);
            match client.custom::<Value, _>(cmd, args.to_vec()).await {
                Ok(v) => {
                    self.sentinel_first.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        Err(format!("no sentinel answered: {}", errors.join("; ")))
    }

    /// The master and the replicas as Sentinel sees them.
    pub(crate) async fn discover(&self) -> Result<(String, Vec<SentinelReplica>), String> {
        let name = self.settings.master_name.as_str();
        let master = self.sentinel(&["get-master-addr-by-name", name]).await?;
        let master = parse_master(master).ok_or_else(|| format!("sentinels know no master named {name:?}"))?;
        let replicas = parse_replicas(self.sentinel(&["replicas", name]).await?);
        Ok((master, replicas))
    }

    /// Waits until the first tick found a master (or `timeout` passed), for `connect`.
    pub(crate) async fn first_tick(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.tick().await;
            let view = self.view();
            match (&r, &view.master) {
                (Ok(()), Some(m)) if m.connected() => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(r.err().unwrap_or_else(|| "the master does not answer".into()))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// One round of discovery and freshness checks; publishes a new `View`.
    pub(crate) async fn tick(&self) -> Result<(), String> {
        let (master_addr, replicas) = self.discover().await?;
        let master = self.node(&master_addr).map_err(|e| e.to_string())?;
        self.note_master(&master_addr);
        let mut nodes = Vec::new();
        for r in &replicas {
            if r.addr != master_addr {
                nodes.push((self.node(&r.addr).map_err(|e| e.to_string())?, r.usable));
            }
        }
        let prior = self.view();
        let wait_for = if replicas.is_empty() { 0 } else { prior.attached.max(1) };
        let probe = if master.connected() { self.probe(&master, wait_for).await } else { None };
        let readable: Vec<Arc<Node>> = match &probe {
            Some(p) => {
                let mut ex = lock(&self.exclusions);
                nodes
                    .iter()
                    .filter(|(node, usable)| {
                        let Some(&confirmed) = p.replicas.get(&node.addr) else { return false };
                        if !*usable || !node.connected() || confirmed < p.offset_before {
                            return false;
                        }
                        if ex.lagging.get(&node.addr).is_some_and(|&need| confirmed < need) {
                            return false;
                        }
                        ex.lagging.remove(&node.addr);
                        ex.failed.remove(&node.addr);
                        true
                    })
                    .map(|(n, _)| n.clone())
                    .collect()
            }
            // The master is unreachable: no write can be acknowledged now, so the replicas
            // that were fresh stay so (reads go on while Sentinel promotes one).
            None => prior.readable.iter().filter(|n| n.connected()).cloned().collect(),
        };
        let view = View {
            master: Some(master),
            attached: probe.as_ref().map_or(prior.attached, |p| p.replicas.len()),
            known: replicas.len(),
            readable,
        };
        metrics::gauge!("shop_redis_readable_replicas").set(view.readable.len() as f64);
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
        Ok(())
    }

    fn note_master(&self, addr: &str) {
        let mut last = lock(&self.last_master);
        if last.as_deref() != Some(addr) {
            if let Some(old) = last.as_deref() {
                tracing::warn!(old = %old, new = %addr, "redis master changed (failover)");
                metrics::counter!("shop_redis_failovers_total").increment(1);
            }
            *last = Some(addr.to_string());
            *lock(&self.exclusions) = Exclusions::default();
        }
    }

    /// `ROLE`, heartbeat write, `WAIT`, `ROLE` on the master's control connection.
    /// `wait_for`: the replicas to wait for (those attached at the last tick, at least one when
    /// the set has replicas, so a replica that just attached is measured too).
    async fn probe(&self, master: &Node, wait_for: usize) -> Option<Probe> {
        let heartbeat = format!("{}heartbeat", self.settings.key_prefix);
        let p = master.control.pipeline();
        let role = || CustomCommand::new_static("ROLE", None, false);
        let wait_ms = self.settings.replica_wait().as_millis() as i64;
        let queued = async {
            let _: () = p.custom(role(), Vec::<String>::new()).await?;
            let _: () = p.set(heartbeat.as_str(), master.addr.as_str(), None, None, false).await?;
            let _: () = p.wait(wait_for as i64, wait_ms).await?;
            let _: () = p.custom(role(), Vec::<String>::new()).await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = queued.await {
            tracing::debug!(error = %e, "redis probe not queued");
            return None;
        }
        let results = match p.all::<Vec<Value>>().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node = %master.addr, error = %e, "redis probe failed");
                return None;
            }
        };
        let mut it = results.into_iter();
        let before = parse_role(it.next()?)?;
        let after = parse_role(it.nth(2)?)?;
        Some(Probe { offset_before: before.offset, replicas: after.replicas })
    }

    /// `ROLE` on the master right now, for a write that found replicas behind.
    pub(crate) async fn role(&self, master: &Node) -> Option<Role> {
        let cmd = CustomCommand::new_static("ROLE", None, false);
        parse_role(master.client().custom::<Value, _>(cmd, Vec::<String>::new()).await.ok()?)
    }

    /// Addresses of the replicas in the read set (diagnostics, tests).
    pub(crate) fn readable(&self) -> Vec<String> {
        self.view().readable.iter().map(|n| n.addr.clone()).collect()
    }

    /// Runs ticks every `TICK` (or when woken) while the router lives.
    pub(crate) fn spawn_ticks(router: Weak<Router>) {
        tokio::spawn(async move {
            loop {
                let Some(r) = router.upgrade() else { return };
                if let Err(e) = r.tick().await {
                    tracing::warn!(error = %e, "redis topology check failed");
                }
                let woken = async { r.wake.notified().await };
                let _ = tokio::time::timeout(TICK, woken).await;
            }
        });
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // fred's connection tasks would go on reconnecting to the nodes; close them.
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let nodes: Vec<Arc<Node>> = lock(&self.nodes).drain().map(|(_, n)| n).collect();
        let sentinels: Vec<Client> = self.sentinels.drain(..).map(|(_, c)| c).collect();
        rt.spawn(async move {
            for n in nodes {
                n.quit().await;
            }
            for s in sentinels {
                let _ = s.quit().await;
            }
        });
    }
}

struct Probe {
    /// The master's replication offset before the heartbeat.
    offset_before: i64,
    /// Attached replicas and the offset each confirmed, after the heartbeat's WAIT.
    replicas: HashMap<String, i64>,
}

/// `ROLE` of a master.
pub(crate) struct Role {
    pub(crate) offset: i64,
    pub(crate) replicas: HashMap<String, i64>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Integer(i) => Some(i.to_string()),
        other => other.as_string(),
    }
}

fn int(v: &Value) -> Option<i64> {
    text(v)?.parse().ok()
}

/// `["master", offset, [[ip, port, offset], ...]]`; `None` for any other role.
pub(crate) fn parse_role(v: Value) -> Option<Role> {
    let Value::Array(items) = v else { return None };
    if items.first().and_then(text).as_deref() != Some("master") {
        return None;
    }
    let offset = int(items.get(1)?)?;
    let mut replicas = HashMap::new();
    if let Some(Value::Array(list)) = items.get(2) {
        for r in list {
            if let Value::Array(f) = r {
                if let (Some(ip), Some(port), Some(off)) =
                    (f.first().and_then(text), f.get(1).and_then(text), f.get(2).and_then(int))
                {
                    replicas.insert(format!("{ip}:{port}"), off);
                }
            }
        }
    }
    Some(Role { offset, replicas })
}

/// `[ip, port]` or nil.
fn parse_master(v: Value) -> Option<String> {
    let Value::Array(items) = v else { return None };
    Some(format!("{}:{}", text(items.first()?)?, text(items.get(1)?)?))
}

/// A Sentinel's list of replicas: each a flat list of field/value pairs (or a map under RESP3).
fn parse_replicas(v: Value) -> Vec<SentinelReplica> {
    let Value::Array(list) = v else { return Vec::new() };
    list.into_iter()
        .filter_map(|r| {
            let fields: HashMap<String, String> = match r {
                Value::Array(f) => f.chunks(2).filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?))).collect(),
                Value::Map(m) => {
                    m.inner().into_iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), text(&v)?))).collect()
                }
                _ => return None,
            };
            let addr = format!("{}:{}", fields.get("ip")?, fields.get("port")?);
            let flags = fields.get("flags").map_or("", String::as_str);
            let down = flags.split(',').any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
            let link_ok = fields.get("master-link-status").is_none_or(|s| s == "ok");
            Some(SentinelReplica { addr, usable: !down && link_ok })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn role_of_a_master_lists_its_replicas_and_their_offsets() {
        let v = Value::Array(vec![
            s("master"),
            Value::Integer(3129659),
            Value::Array(vec![
                Value::Array(vec![s("127.0.0.1"), s("9001"), s("3129242")]),
                Value::Array(vec![s("127.0.0.1"), s("9002"), s("3129543")]),
            ]),
        ]);
        let r = parse_role(v).unwrap();
        assert_eq!(r.offset, 3129659);
        assert_eq!(r.replicas.get("127.0.0.1:9001"), Some(&3129242));
        assert_eq!(r.replicas.len(), 2);
        let replica =
            Value::Array(vec![s("slave"), s("127.0.0.1"), Value::Integer(9000), s("connected"), Value::Integer(1)]);
        assert!(parse_role(replica).is_none(), "a replica is no master");
    }

    #[test]
    fn sentinel_replicas_are_usable_unless_down_or_unlinked() {
        let replica = |port: &str, flags: &str, link: &str| {
            Value::Array(
                ["name", "x", "ip", "127.0.0.1", "port", port, "flags", flags, "master-link-status", link]
                    .into_iter()
                    .map(s)
                    .collect(),
            )
        };
        let v = Value::Array(vec![
            replica("1", "slave", "ok"),
            replica("2", "s_down,slave,disconnected", "err"),
            replica("3", "slave", "err"),
        ]);
        let got = parse_replicas(v);
        assert_eq!(
            got,
            vec![
                SentinelReplica { addr: "127.0.0.1:1".into(), usable: true },
                SentinelReplica { addr: "127.0.0.1:2".into(), usable: false },
                SentinelReplica { addr: "127.0.0.1:3".into(), usable: false },
            ]
        );
        assert_eq!(parse_master(Value::Array(vec![s("127.0.0.1"), s("6379")])), Some("127.0.0.1:6379".into()));
        assert_eq!(parse_master(Value::Null), None);
    }
}
