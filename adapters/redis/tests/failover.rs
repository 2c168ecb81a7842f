//! The Redis adapter under faults, on a Redis set of its own (master + 2 replicas + 3 Sentinels,
//! started through the infra library on ports 15700-15799 in a temp run dir and stopped when
//! dropped, also when an assertion fails):
//!
//! * `reads_spread_over_the_replicas_and_survive_a_lost_replica`: reads go round-robin to the
//!   replicas (counted by each server's `INFO commandstats`); a replica SIGKILLed under load costs
//!   no read an error; a replica that hangs (SIGSTOP) is dropped, reads fall back to the master,
//!   and it is read from again once it answers (SIGCONT).
//! * `a_master_kill_loses_no_acknowledged_change`: shoppers change their carts while the master is
//!   SIGKILLed; Sentinel promotes a replica, writes resume on it, and every acknowledged change is
//!   in the final state (each shopper's cart equals the model built from its acknowledged changes);
//!   the old master, restarted, comes back as a replica with the new master's data and is read from.
//! * `a_slow_replica_is_never_read_so_users_see_their_own_changes`: a replica that replicates
//!   800 ms late (through a delaying relay) answers reads with old carts; the adapter never reads
//!   from it, and every user reads back their own change at once.
//!
//! Correctness is asserted; times are measured and printed, never asserted. Numbers also go to
//! run/results/redis-<test>.json (git-ignored). The tests take turns (a lock).

use adapter_redis::{RedisSettings, RedisStore};
use domain::models::*;
use domain::ports::CartRepository;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::servers::{self, Kind, Running, Topology};
use test_support::RunDir;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A Redis set in a temp run dir; the dir is removed after the servers stop (fields drop in
/// order), unless the test failed (their logs stay for reading).
struct Set {
    running: Running,
    _dir: RunDir,
}

impl Set {
    fn start(name: &str, base: u16) -> Set {
        let dir = RunDir::kept_on_failure(&format!("redis-{name}"));
        let topology = Topology::parse(&format!(
            "name = \"{name}\"\n[redis]\ncount = 3\nbase_port = {base}\n[sentinel]\ncount = 3\nbase_port = {}\n",
            base + 10
        ))
        .expect("test topology");
        let running = topology.up(&dir).expect("the redis set starts");
        Set { running, _dir: dir }
    }
    fn running(&mut self) -> &mut Running {
        &mut self.running
    }
    fn settings(&mut self) -> RedisSettings {
        let mut s = RedisSettings::new(self.running().sentinel_endpoints());
        s.key_prefix = "failover:".into();
        s.pool_size = 2;
        s
    }
    fn endpoints(&mut self) -> Vec<String> {
        self.running().redis_endpoints()
    }
}

/// HGETALL calls a node has served so far (`INFO commandstats`).
fn hgetall_calls(addr: &str) -> u64 {
    let stats = servers::redis::info(addr, "commandstats").unwrap_or_default();
    stats
        .get("cmdstat_hgetall")
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn calls(endpoints: &[String]) -> Vec<u64> {
    endpoints.iter().map(|e| hgetall_calls(e)).collect()
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::now_v7())
}

fn write_results(test: &str, value: &serde_json::Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../run/results");
    let _ = std::fs::create_dir_all(&root);
    let _ = std::fs::write(root.join(format!("redis-{test}.json")), serde_json::to_string_pretty(value).unwrap());
    println!("{test}: {value}");
}

/// Readers hitting `users`' carts until `stop`; counts reads and errors.
fn spawn_readers(
    carts: &Arc<dyn CartRepository>,
    users: &[UserId],
    n: usize,
    stop: &Arc<AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicU64>) {
    let (reads, errors, slowest_ms) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks = (0..n)
        .map(|t| {
            let (carts, users, stop) = (carts.clone(), users.to_vec(), stop.clone());
            let (reads, errors, slowest_ms) = (reads.clone(), errors.clone(), slowest_ms.clone());
            tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match carts.get(users[i % users.len()]).await {
                        Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("read failed: {e}");
                            errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    slowest_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    (tasks, reads, errors, slowest_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_spread_over_the_replicas_and_survive_a_lost_replica() {
    let _turn = TURN.lock().await;
    let mut set = Set::start("adapter-reads", 15700);
    let endpoints = set.endpoints();
    let store = RedisStore::connect(&set.settings()).await.expect("connect");
    wait_for("both replicas readable", Duration::from_secs(10), || store.readable_replicas().len() == 2).await;
    let carts = store.carts();
    let users: Vec<UserId> = (0..20).map(|_| user()).collect();
    let p = ProductId::from_uuid(uuid::Uuid::now_v7());
    for u in &users {
        carts.add(*u, p, Quantity::from_trusted(1)).await.unwrap();
    }

    // (a) Spread: 1200 reads from 8 tasks.
    let before = calls(&endpoints);
    let reads: Vec<_> = (0..8)
        .map(|t| {
            let (carts, users) = (carts.clone(), users.clone());
            tokio::spawn(async move {
                for i in 0..150 {
                    carts.get(users[(t * 150 + i) % users.len()]).await.unwrap();
                }
            })
        })
        .collect();
    for r in reads {
        r.await.unwrap();
    }
    let after = calls(&endpoints);
    let spread: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: u64 = spread.iter().sum();
    println!("reads per node (master, replica 1, replica 2): {spread:?} of {total}");
    assert!(total >= 1200, "{spread:?}");
    for (i, n) in spread.iter().enumerate().skip(1) {
        // Exactly half while both are in the read set; a replica the freshness check missed
        // once (a WAIT over 100 ms on a loaded machine) is skipped for a tick.
        assert!(*n * 100 >= total * 30, "replica {i} served {n} of {total} reads: {spread:?}");
    }
    assert!(spread[0] * 100 <= total * 10, "the master served {} of {total} reads", spread[0]);

    // (b) Replica 2 is SIGKILLed under load: no read fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (tasks, done, errors, slowest) = spawn_readers(&carts, &users, 8, &stop);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let at_kill = calls(&endpoints);
    let signalled = Instant::now();
    set.running().kill(Kind::Redis, 2, servers::signal::SIGKILL).unwrap();
    wait_for("the dead replica leaves the read set", Duration::from_secs(5), || {
        !store.readable_replicas().contains(&endpoints[2])
    })
    .await;
    // From the signal (infra's kill returns once the process is gone).
    let dropped_after = signalled.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mid = calls(&endpoints);
    let reads_after_kill: Vec<u64> = mid.iter().zip(&at_kill).map(|(a, b)| a.saturating_sub(*b)).collect();
    println!(
        "replica 2 killed: out of the read set after {dropped_after:?}; reads since per node {reads_after_kill:?}"
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no read failed while a replica died");
    assert!(reads_after_kill[1] > 100, "reads went on on replica 1: {reads_after_kill:?}");

    // (c) Replica 1 hangs (SIGSTOP): reads fall back to the master; it is back once it answers.
    set.running().kill(Kind::Redis, 1, servers::signal::SIGSTOP).unwrap();
    let hung_dropped = wait_for("the hung replica leaves the read set", Duration::from_secs(10), || {
        !store.readable_replicas().contains(&endpoints[1])
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_master_from = hgetall_calls(&endpoints[0]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_master = hgetall_calls(&endpoints[0]) - on_master_from;
    set.running().kill(Kind::Redis, 1, servers::signal::SIGCONT).unwrap();
    let back_after = wait_for("the replica is read from again", Duration::from_secs(10), || {
        store.readable_replicas().contains(&endpoints[1])
    })
    .await;
    let replica1_from = hgetall_calls(&endpoints[1]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replica1_again = hgetall_calls(&endpoints[1]) - replica1_from;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "replica 1 hung: out after {hung_dropped:?}, master served {on_master} reads/s meanwhile; \
         back {back_after:?} after SIGCONT, then served {replica1_again} reads in 0.5 s"
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no read failed while a replica hung");
    assert!(on_master > 100, "reads fell back to the master: {on_master}");
    assert!(replica1_again > 50, "the returned replica is read from again: {replica1_again}");
    write_results(
        "reads",
        &serde_json::json!({
            "reads_per_node_master_r1_r2": spread,
            "killed_replica_out_of_read_set_ms": dropped_after.as_millis() as u64,
            "hung_replica_out_of_read_set_ms": hung_dropped.as_millis() as u64,
            "master_reads_per_s_while_no_replica": on_master,
            "replica_back_after_sigcont_ms": back_after.as_millis() as u64,
            "reads_total": done.load(Ordering::Relaxed),
            "read_errors": errors.load(Ordering::Relaxed),
            "slowest_read_ms": slowest.load(Ordering::Relaxed),
        }),
    );
}

/// One acknowledged change, for the report.
struct Ack {
    at: Duration,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_kill_loses_no_acknowledged_change() {
    let _turn = TURN.lock().await;
    let mut set = Set::start("adapter-master", 15750);
    let endpoints = set.endpoints();
    let sentinels = set.running().sentinel_endpoints();
    let store = RedisStore::connect(&set.settings()).await.expect("connect");
    wait_for("both replicas readable", Duration::from_secs(10), || store.readable_replicas().len() == 2).await;
    let carts = store.carts();
    let products: Vec<ProductId> = {
        let mut p: Vec<ProductId> = (0..5).map(|_| ProductId::from_uuid(uuid::Uuid::now_v7())).collect();
        p.sort();
        p
    };
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let write_errors = Arc::new(AtomicU64::new(0));

    // Shoppers: each changes its own cart and keeps the model of it from what was acknowledged.
    let shoppers: Vec<_> = (0..6)
        .map(|s| {
            let (carts, stop, acks, errors, products) =
                (carts.clone(), stop.clone(), acks.clone(), write_errors.clone(), products.clone());
            tokio::spawn(async move {
                let u = user();
                let mut model: BTreeMap<ProductId, u32> = BTreeMap::new();
                let mut i = s;
                while !stop.load(Ordering::Relaxed) {
                    let p = products[i % products.len()];
                    let started = Instant::now();
                    let r = match i % 4 {
                        0 | 1 => {
                            let q = (i % 3 + 1) as u32;
                            let want = model.get(&p).copied().unwrap_or(0) + q;
                            let r = carts.add(u, p, Quantity::from_trusted(q)).await.map(Some);
                            if want > Quantity::MAX {
                                assert!(r.is_err(), "over the limit");
                                i += 1;
                                continue;
                            }
                            if r.is_ok() {
                                model.insert(p, want);
                            }
                            r
                        }
                        2 => {
                            let q = (i % 7 + 1) as u32;
                            let r = carts.set(u, p, Quantity::from_trusted(q)).await.map(Some);
                            if r.is_ok() {
                                model.insert(p, q);
                            }
                            r
                        }
                        _ => {
                            let r = carts.remove(u, p).await;
                            if let Ok(removed) = &r {
                                assert_eq!(removed.is_some(), model.remove(&p).is_some(), "remove of {p}");
                            }
                            r
                        }
                    };
                    match r {
                        Ok(Some(cart)) => {
                            let got: BTreeMap<ProductId, u32> =
                                cart.items().iter().map(|l| (l.product_id, l.quantity.get())).collect();
                            assert_eq!(got, model, "the acknowledged cart is the model");
                            acks.lock().unwrap().push(Ack { at: t0.elapsed(), took: started.elapsed() });
                        }
                        Ok(None) => acks.lock().unwrap().push(Ack { at: t0.elapsed(), took: started.elapsed() }),
                        Err(e) => {
                            eprintln!("write failed: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            // The change may or may not have happened: this shopper's model is
                            // no longer exact, so it stops.
                            return (u, None);
                        }
                    }
                    i += 1;
                }
                (u, Some(model))
            })
        })
        .collect();
    // Readers of other carts: reads must not fail either.
    let read_users: Vec<UserId> = (0..10).map(|_| user()).collect();
    for u in &read_users {
        carts.add(*u, products[0], Quantity::from_trusted(1)).await.unwrap();
    }
    let (readers, reads, read_errors, slowest_read) = spawn_readers(&carts, &read_users, 4, &stop);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_master = store.master().unwrap();
    assert_eq!(old_master, endpoints[0]);
    let killed_at = t0.elapsed();
    set.running().kill(Kind::Redis, 0, servers::signal::SIGKILL).unwrap();
    // Sentinel's promotion, seen from outside.
    let promoted_after = {
        let sentinel = sentinels[0].clone();
        let old = old_master.clone();
        let start = Instant::now();
        tokio::task::spawn_blocking(move || loop {
            if servers::redis::master_addr(&sentinel, "shopbench").is_ok_and(|m| m != old) {
                return start.elapsed();
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no promotion within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        })
        .await
        .unwrap()
    };
    let new_master = servers::redis::master_addr(&sentinels[0], "shopbench").unwrap();
    let promoted_at = killed_at + promoted_after;
    wait_for("a write acknowledged after the promotion", Duration::from_secs(30), || {
        acks.lock().unwrap().iter().any(|a| a.at > promoted_at)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut models = Vec::new();
    for s in shoppers {
        models.push(s.await.unwrap());
    }
    for r in readers {
        r.await.unwrap();
    }

    // Every acknowledged change is there: each cart, read through the adapter and straight from
    // the new master, is its shopper's model.
    assert_eq!(store.master().as_deref(), Some(new_master.as_str()));
    let mut checked = 0;
    for (u, model) in &models {
        let Some(model) = model else { continue };
        let got: BTreeMap<ProductId, u32> =
            carts.get(*u).await.unwrap().items().iter().map(|l| (l.product_id, l.quantity.get())).collect();
        assert_eq!(&got, model, "cart of {u} after the failover");
        let key = format!("failover:{u}");
        let fields: BTreeMap<String, String> = servers::redis::query(&new_master, &["HGETALL", &key]).unwrap();
        let lines = fields.keys().filter(|k| !k.starts_with("op:")).count();
        assert_eq!(lines, model.len(), "on the new master itself");
        checked += 1;
    }
    // The old master comes back (infra restarts it as a replica of the new one): it takes the
    // new master's data, nothing of its own, and reads use it again.
    let restarted = Instant::now();
    set.running().restart(Kind::Redis, 0).expect("restart the old master");
    let old_readable = wait_for("the old master is read from as a replica", Duration::from_secs(20), || {
        store.readable_replicas().contains(&old_master)
    })
    .await;
    let rejoined_after = restarted.elapsed();
    for (u, model) in &models {
        let Some(model) = model else { continue };
        let key = format!("failover:{u}");
        let fields: BTreeMap<String, String> = servers::redis::query(&old_master, &["HGETALL", &key]).unwrap();
        let lines = fields.keys().filter(|k| !k.starts_with("op:")).count();
        assert_eq!(lines, model.len(), "the returned old master holds the new master's carts");
    }
    println!("old master back in the read set {old_readable:?} after it answered ({rejoined_after:?} after the restart call)");

    let mut acks = std::mem::take(&mut *acks.lock().unwrap());
    acks.sort_by_key(|a| a.at);
    let errors = write_errors.load(Ordering::Relaxed);
    let longest = acks.iter().map(|a| a.took).max().unwrap_or_default();
    // The writes' pause as clients saw it: the longest time without any acknowledgement, and
    // when (after the kill) the acknowledgements came back.
    let (pause, resumed_at) = acks.windows(2).map(|w| (w[1].at - w[0].at, w[1].at)).max().unwrap_or_default();
    let results = serde_json::json!({
        "acknowledged_changes": acks.len(),
        "write_errors": errors,
        "carts_checked": checked,
        "sentinel_promoted_after_kill_ms": promoted_after.as_millis() as u64,
        "longest_pause_without_acks_ms": pause.as_millis() as u64,
        "writes_resumed_after_kill_ms": resumed_at.saturating_sub(killed_at).as_millis() as u64,
        "longest_write_ms": longest.as_millis() as u64,
        "reads": reads.load(Ordering::Relaxed),
        "read_errors": read_errors.load(Ordering::Relaxed),
        "slowest_read_ms": slowest_read.load(Ordering::Relaxed),
        "old_master": old_master,
        "old_master_back_in_read_set_after_restart_ms": rejoined_after.as_millis() as u64,
        "new_master": new_master,
    });
    write_results("master-kill", &results);
    assert_eq!(errors, 0, "the adapter rode out the failover: no write failed");
    assert_eq!(checked, 6);
    assert_eq!(read_errors.load(Ordering::Relaxed), 0, "no read failed");
}

/// A TCP relay from 127.0.0.1:`port` to `target` that delays everything the target sends by
/// `delay`: a replica that replicates through it is attached and answers reads at once, but its
/// data is `delay` old.
async fn slow_link(port: u16, target: String, delay: Duration) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("relay port");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
            });
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_rx.read(&mut buf).await {
                    if n == 0 || tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some((due, bytes)) = rx.recv().await {
                    tokio::time::sleep_until(due.into()).await;
                    if client_tx.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// A redis-server started here (not by infra: it replicates through the slow link), killed by
/// its PID when dropped (then its dir is removed).
struct SlowReplica {
    child: std::process::Child,
    _dir: RunDir,
}

impl Drop for SlowReplica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A third replica replicates 800 ms late but answers reads at once: read straight from it, a
/// change is missing right after it was acknowledged. Through the adapter it never is, from the
/// instance that made the change or another one: the freshness check keeps the slow replica out
/// of every instance's read set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_replica_is_never_read_so_users_see_their_own_changes() {
    let _turn = TURN.lock().await;
    let mut set = Set::start("adapter-lag", 15770);
    let master = set.endpoints()[0].clone();
    let (slow_port, link_port) = (15785u16, 15786u16);
    let _link = slow_link(link_port, master.clone(), Duration::from_millis(800)).await;
    let dir = RunDir::new("redis-slow");
    let child = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &slow_port.to_string(), "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.path().to_str().unwrap(), "--replicaof", "127.0.0.1", &link_port.to_string()])
        // Sentinel would "fix" its master (the relay) back to the real one.
        .args(["--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    let _slow = SlowReplica { child, _dir: dir };
    let slow = format!("127.0.0.1:{slow_port}");

    let store = RedisStore::connect(&set.settings()).await.expect("connect");
    wait_for("the fast replicas are readable", Duration::from_secs(10), || store.readable_replicas().len() == 2).await;
    wait_for("the slow replica is attached", Duration::from_secs(20), || {
        servers::redis::info(&slow, "replication").is_ok_and(|i| i.get("master_link_status").is_some_and(|s| s == "up"))
    })
    .await;
    // Sentinel lists it too (it finds replicas in the master's INFO, every 10 s), so the adapter
    // knows it as a replica it could read from.
    let sentinel = set.running().sentinel_endpoints()[0].clone();
    wait_for("Sentinel lists the slow replica", Duration::from_secs(30), || {
        let listed: Vec<BTreeMap<String, String>> =
            servers::redis::query(&sentinel, &["SENTINEL", "REPLICAS", "shopbench"]).unwrap_or_default();
        listed.iter().any(|r| r.get("port") == Some(&slow_port.to_string()))
    })
    .await;
    store.refresh().await.unwrap();

    let carts = store.carts();
    // A second app instance: it did not make the changes, and reads them at once too.
    let other = RedisStore::connect(&set.settings()).await.expect("connect");
    wait_for("the other instance reads from replicas", Duration::from_secs(10), || {
        !other.readable_replicas().is_empty()
    })
    .await;
    let (u, p) = (user(), ProductId::from_uuid(uuid::Uuid::now_v7()));
    let key = format!("failover:{u}");
    let (mut stale_direct, mut slow_readable, mut slowest) = (0, 0, Duration::ZERO);
    let rounds = 40u32;
    for i in 1..=rounds {
        let started = Instant::now();
        carts.set(u, p, Quantity::from_trusted(i)).await.unwrap();
        slowest = slowest.max(started.elapsed());
        let direct: Option<String> = servers::redis::query(&slow, &["HGET", &key, &p.to_string()]).unwrap();
        if direct != Some(i.to_string()) {
            stale_direct += 1;
        }
        if store.readable_replicas().contains(&slow) {
            slow_readable += 1;
        }
        let got = carts.get(u).await.unwrap();
        assert_eq!(got.items()[0].quantity.get(), i, "round {i}: the user's own change, read back at once");
        if other.readable_replicas().contains(&slow) {
            slow_readable += 1;
        }
        let got = other.carts().get(u).await.unwrap();
        assert_eq!(got.items()[0].quantity.get(), i, "round {i}: read back at once through another instance");
    }
    let results = serde_json::json!({
        "rounds": rounds,
        "stale_reads_straight_from_the_slow_replica": stale_direct,
        "rounds_the_slow_replica_was_in_the_read_set": slow_readable,
        "slowest_change_ms": slowest.as_millis() as u64,
        "read_set": store.readable_replicas(),
    });
    write_results("slow-replica", &results);
    assert!(stale_direct > rounds / 2, "the slow replica really lags: {results}");
    assert_eq!(slow_readable, 0, "the slow replica was never in the read set: {results}");
}
