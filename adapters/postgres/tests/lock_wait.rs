//! A lock wait is not a dead endpoint (issue 13): 2 PostgreSQL backends in pgpool-II native
//! replication, 2 pgpools, the adapter over both. A transaction that froze while holding one
//! user's row lock makes that user's writes fail with a quick `Unavailable` (the sessions'
//! statement timeout, cluster.rs `LOCK_WAIT_TIMEOUTS`), while
//! * every other user's reads and writes go on succeeding, each acknowledged add applied once;
//! * a healthy pgpool is never taken out of rotation (sampled every 20 ms during the hold);
//! * after the lock is gone that user's write succeeds, exactly once (the failed ones left no
//!   trace), and the backends are identical.
//!
//! The holds: the lock on both backends (a session that froze after its statements ran on every
//! node: a client cut off from its pgpool); on the main node only (frozen between pgpool's main
//! node and the others: a `lock_timeout` would make the other node run the statement and pgpool
//! end the session for a "kind mismatch"); and a real one, a transaction through pgpool 0 whose
//! whole process tree is then SIGSTOPped (always SIGCONTed, by a guard).
//!
//! Starts its own topology in a temp run dir on ports 16300-16329 (needs the servers installed;
//! as root the servers run as user postgres).

mod common;

use adapter_postgres::{PgSettings, PgStore};
use common::*;
use domain::models::*;
use domain::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::servers::{signal, Kind, Running, Topology, SHOP_DB};
use test_support::RunDir;

/// Holds `user`'s row lock in an open transaction on `client` (a backend, or a pgpool).
async fn hold_lock(client: &tokio_postgres::Client, user: UserId) {
    client.batch_execute("BEGIN").await.unwrap();
    client.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user.as_uuid()]).await.unwrap();
}

/// Other users' reads and writes, in a loop until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Shopper>>,
}

struct Shopper {
    user: UserId,
    adds: u32,
    ops: u32,
    errors: Vec<String>,
}

impl Traffic {
    fn start(store: &PgStore, users: &[UserId], product: ProductId) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = users
            .iter()
            .map(|&user| {
                let (s, stop) = (store.stores(), stop.clone());
                tokio::spawn(async move {
                    let mut me = Shopper { user, adds: 0, ops: 0, errors: vec![] };
                    while !stop.load(Ordering::SeqCst) {
                        match s.carts.add(user, product, qty(1)).await {
                            Ok(_) => me.adds += 1,
                            Err(e) => me.errors.push(format!("add: {e:?}")),
                        }
                        if let Err(e) = s.carts.get(user).await {
                            me.errors.push(format!("get cart: {e:?}"));
                        }
                        if let Err(e) = s.users.get(user).await {
                            me.errors.push(format!("get user: {e:?}"));
                        }
                        me.ops += 3;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    me
                })
            })
            .collect();
        Traffic { stop, tasks }
    }

    /// Stops the loops; asserts that every operation succeeded and each acknowledged add is in
    /// the cart once. Returns the operations done.
    async fn finish(self, store: &PgStore, product: ProductId) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        let mut ops = 0;
        for t in self.tasks {
            let me = t.await.unwrap();
            assert!(me.errors.is_empty(), "another user's requests failed: {:?}", me.errors);
            let cart = store.stores().carts.get(me.user).await.unwrap();
            let line = cart.items().iter().find(|i| i.product_id == product).map_or(0, |i| i.quantity.get());
            assert_eq!(line, me.adds, "each acknowledged add applied exactly once");
            ops += me.ops;
        }
        ops
    }
}

/// Samples the endpoints in rotation every 20 ms; `finish` gives every set seen.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(store: &PgStore) -> Watcher {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (store, s, w) = (store.clone(), stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let now = store.healthy_endpoints();
                {
                    let mut seen = w.lock().unwrap();
                    if seen.last() != Some(&now) {
                        seen.push(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Watcher { stop, seen, task }
    }

    async fn finish(self) -> Vec<Vec<String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.seen.lock().unwrap().clone()
    }
}

/// A pgpool's whole process tree held with SIGSTOP; SIGCONT when dropped (also on a panic).
struct Frozen<'a>(&'a mut Running, usize);

impl<'a> Frozen<'a> {
    fn pgpool(running: &'a mut Running, i: usize) -> Frozen<'a> {
        running.kill(Kind::Pgpool, i, signal::SIGSTOP).expect("SIGSTOP the pgpool");
        Frozen(running, i)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill(Kind::Pgpool, self.1, signal::SIGCONT) {
            eprintln!("SIGCONT pgpool {}: {e:#}", self.1);
        }
    }
}

/// Three users with empty carts, for the traffic of one hold.
async fn others(store: &PgStore) -> Vec<UserId> {
    let mut others = vec![];
    for i in 0..3 {
        others.push(new_user(store, &format!("other{i}")).await);
    }
    others
}

async fn new_user(store: &PgStore, name: &str) -> UserId {
    let u = user(&format!("{name}-{}@example.com", uuid::Uuid::now_v7().simple()));
    store.stores().users.insert(&u, &token()).await.unwrap();
    u.id
}

fn assert_lock_wait_error(e: &StoreError) {
    assert!(matches!(e, StoreError::Unavailable(_)), "a retryable Unavailable (503), got {e:?}");
    let text = format!("{e:?}");
    assert!(text.contains("57014"), "the statement timeout's answer, got {text}");
}

fn cart_line(cart: &Cart, product: ProductId) -> u32 {
    cart.items().iter().find(|i| i.product_id == product).map_or(0, |i| i.quantity.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_transactions_row_lock_never_takes_a_healthy_pgpool_out_of_rotation() {
    metrics();
    // Removed after the topology in it has stopped; kept with the servers' logs on failure.
    let dir = RunDir::kept_on_failure("pg-lock-wait");
    let topology = Topology::parse(
        "name = \"pg-lock-wait\"\n[postgres]\ncount = 2\nbase_port = 16300\n\
         [pgpool]\ncount = 2\nbase_port = 16310\npcp_base_port = 16320\n",
    )
    .unwrap();
    let mut running = blocking(|| topology.up(dir.path())).expect("up");
    let pgpools = running.pgpool_endpoints();
    let backends = running.backend_endpoints();
    let mut settings = PgSettings::new(pgpools.clone());
    settings.dbname = SHOP_DB.into();
    settings.pool_size = running.app_pool_size();
    let store = PgStore::connect(&settings).await.expect("connect");
    store.migrate().await.unwrap();
    let s = store.stores();
    let p = product("Rope", "tools", 700);
    s.catalogue.insert(&p).await.unwrap();
    let limit = Duration::from_millis(2 * settings.connect_timeout_ms);
    let attempt_limit = Duration::from_millis(3 * settings.connect_timeout_ms);

    // (1) The lock on every backend, then (2) on the main node (backend 0) only.
    for (what, holders) in [("every backend", &backends[..]), ("the main node only", &backends[..1])] {
        let locked = new_user(&store, "locked").await;
        let mut sessions = vec![];
        for b in holders {
            let c = direct(b, "postgres").await;
            hold_lock(&c, locked).await;
            sessions.push(c);
        }
        let watcher = Watcher::start(&store);
        let traffic = Traffic::start(&store, &others(&store).await, p.id);
        for _ in 0..2 {
            let started = Instant::now();
            let e = s.carts.add(locked, p.id, qty(3)).await.expect_err("the lock is held");
            let took = started.elapsed();
            assert_lock_wait_error(&e);
            assert!(
                took >= limit.mul_f64(0.95) && took < attempt_limit,
                "lock on {what}: answered after {took:?}: the statement timeout ({limit:?}), \
                 before the attempt's limit ({attempt_limit:?})"
            );
            let e = s.carts.set(locked, p.id, qty(5)).await.expect_err("the lock is held");
            assert_lock_wait_error(&e);
        }
        let seen = watcher.finish().await;
        let ops = traffic.finish(&store, p.id).await;
        assert_eq!(seen, vec![pgpools.clone()], "lock on {what}: both pgpools stay in rotation throughout");
        assert!(ops > 30, "lock on {what}: the other users went on ({ops} operations)");
        for c in &sessions {
            c.batch_execute("ROLLBACK").await.unwrap();
        }
        // The lock is gone: the write succeeds, and the ones that failed left nothing.
        let cart = s.carts.add(locked, p.id, qty(2)).await.expect("the lock is released");
        assert_eq!(cart_line(&cart, p.id), 2, "lock on {what}: applied once, the failed writes not at all");
        assert_eq!(cart_line(&s.carts.get(locked).await.unwrap(), p.id), 2);
    }
    for ep in &pgpools {
        assert_eq!(counter("shop_pg_failovers_total", ep), 0, "{ep} was never taken out of rotation");
    }
    let report = blocking(|| running.check_consistency()).expect("check");
    assert!(report.is_identical(), "{report}");

    // (3) A transaction through pgpool 0 holds the lock, and pgpool 0 freezes (SIGSTOP of its
    // whole tree). pgpool 0 is rightly taken out; pgpool 1 must stay in.
    let locked = new_user(&store, "frozen").await;
    let through_pgpool0 = direct(&pgpools[0], "postgres").await;
    hold_lock(&through_pgpool0, locked).await;
    {
        let _frozen = Frozen::pgpool(&mut running, 0);
        let watcher = Watcher::start(&store);
        let traffic = Traffic::start(&store, &others(&store).await, p.id);
        for _ in 0..2 {
            let started = Instant::now();
            let e = s.carts.add(locked, p.id, qty(3)).await.expect_err("the lock is held");
            assert_lock_wait_error(&e);
            // At worst an attempt that hung on pgpool 0, then the lock wait on pgpool 1.
            let took = started.elapsed();
            assert!(took < attempt_limit + limit + Duration::from_secs(1), "answered after {took:?}");
        }
        // Long enough for some other users' attempts to have hit the frozen pgpool too.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = watcher.finish().await;
        let ops = traffic.finish(&store, p.id).await;
        assert!(
            seen.iter().all(|healthy| healthy.contains(&pgpools[1])),
            "pgpool 1 stays in rotation while pgpool 0 is frozen: {seen:?}"
        );
        assert!(ops > 30, "the other users went on ({ops} operations)");
        assert_eq!(store.healthy_endpoints(), vec![pgpools[1].clone()], "the frozen pgpool 0 is out");
    }
    // SIGCONT: the frozen transaction's session answers again and ends without committing.
    through_pgpool0.batch_execute("ROLLBACK").await.expect("pgpool 0 answers after SIGCONT");
    let cart = s.carts.add(locked, p.id, qty(2)).await.expect("the lock is released");
    assert_eq!(cart_line(&cart, p.id), 2, "applied once, the failed writes not at all");
    assert_eq!(counter("shop_pg_failovers_total", &pgpools[1]), 0, "pgpool 1 was never taken out");
    let back = Instant::now();
    while store.healthy_endpoints().len() < 2 {
        assert!(back.elapsed() < Duration::from_secs(10), "pgpool 0 is probed back into rotation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = blocking(|| running.check_consistency()).expect("check");
    assert!(report.is_identical(), "{report}");
    blocking(|| running.down()).expect("down");
}
