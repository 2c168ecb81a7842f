//! A 3-node ring of its own (infra, temp run dir, stopped on drop) under a steady catalogue load:
//! SIGSTOP one node for 8 s -> no request waits on it for the app's 4 s budget, none fails;
//! SIGKILL one node -> every read and write at QUORUM still succeeds; restart it -> it rejoins
//! (the driver reconnects, it answers at CL=ONE) and serves as a replica: with another node then
//! killed, QUORUM still needs it and still succeeds.
//!
//! Ports: nodes on 127.0.0.4/.5/.6 (CQL 19142, storage 17100, as the test ring on .1-.3), JMX
//! 16200-16202. Bounded: about 2.5 minutes, load tasks stop by themselves.

use adapter_cassandra::{CassandraSettings, CassandraStore};
use domain::models::*;
use scylla::policies::load_balancing::{NodeIdentifier, SingleTargetLoadBalancingPolicy};
use scylla::statement::Consistency;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::servers::{self, Kind, Running, Topology};
use test_support::RunDir;

const RING: &str = r#"
name = "cassandra-failover-test"
[cassandra]
count = 3
hosts = ["127.0.0.4", "127.0.0.5", "127.0.0.6"]
native_port = 19142
storage_port = 17100
jmx_base_port = 16200
heap_mb = 512
"#;

const CATEGORIES: [&str; 4] = ["tea", "coffee", "cups", "sweets"];

/// What the load saw in one phase.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    slowest_ms: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record<T>(&self, started: Instant, r: Result<T, domain::StoreError>) {
        let ms = started.elapsed().as_millis() as usize;
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                self.errors.lock().unwrap().push(e.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
    fn line(&self, phase: &str) -> String {
        format!(
            "{phase}: {} ok, {} failed, slowest {} ms",
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.slowest_ms.load(Ordering::Relaxed)
        )
    }
}

fn product(i: usize) -> Product {
    let mut p =
        adapter_contract::catalogue::product(&format!("P{i}"), CATEGORIES[i % CATEGORIES.len()], 100 + i as i64);
    p.description = Description::parse("").unwrap();
    p
}

/// Runs `f` (which blocks: starting and killing servers) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_costs_no_request_and_rejoins_as_a_replica() {
    // Kept when the test fails: the nodes' logs.
    let dir = RunDir::kept_on_failure("cassandra-failover");
    let path = dir.path().to_path_buf();
    let t = Instant::now();
    let running: Running = blocking(move || Topology::parse(RING).unwrap().up(path).expect("ring up")).await;
    eprintln!("ring of 3 ready in {:.1?}", t.elapsed());
    let mut settings = CassandraSettings::new(running.cassandra_nodes());
    settings.keyspace = "failover".into();
    let store = CassandraStore::connect(&settings).await.expect("connect");
    let cat = store.catalogue();

    let known: Arc<Mutex<Vec<Product>>> = Arc::new(Mutex::new(Vec::new()));
    // When each acknowledged insert of the load started.
    let started_at: Arc<Mutex<HashMap<ProductId, Instant>>> = Arc::default();
    for i in 0..40 {
        let p = product(i);
        cat.insert(&p).await.unwrap();
        known.lock().unwrap().push(p);
    }

    // Shoppers read (a product, a category page), merchants write (new products, new prices).
    let phase: Arc<Mutex<Arc<Tally>>> = Arc::new(Mutex::new(Arc::new(Tally::default())));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(1000));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (cat, known, phase, stop, next) = (cat.clone(), known.clone(), phase.clone(), stop.clone(), next.clone());
        let started_at = started_at.clone();
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut n = w;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                n += 7;
                let tally = phase.lock().unwrap().clone();
                let pick = { known.lock().unwrap()[n % 40].clone() };
                let started = Instant::now();
                match (w, n % 2) {
                    (0 | 1, 0) => tally.record(started, cat.get(pick.id).await.map(|p| assert!(p.is_some()))),
                    (0 | 1, _) => tally.record(started, cat.list(Some(&pick.category), PageRequest::first(20)).await),
                    (_, 0) => {
                        let p = product(next.fetch_add(1, Ordering::Relaxed));
                        let r = cat.insert(&p).await;
                        if r.is_ok() {
                            started_at.lock().unwrap().insert(p.id, started);
                            known.lock().unwrap().push(p);
                        }
                        tally.record(started, r)
                    }
                    (_, _) => {
                        let mut p = pick;
                        p.price = Cents::from_trusted(p.price.get() + 1);
                        p.updated_at = Timestamp::from_millis(p.updated_at.millis() + 1).unwrap();
                        tally.record(started, cat.update(&p).await.map(|found| assert!(found)))
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let start_phase = |name: &'static str| {
        let t = Arc::new(Tally::default());
        let old = std::mem::replace(&mut *phase.lock().unwrap(), t);
        (name, old)
    };
    let mut report = Vec::new();
    let mut failures = 0;
    let mut end = |(name, t): (&str, Arc<Tally>), report: &mut Vec<String>| {
        failures += t.failed.load(Ordering::Relaxed);
        report.push(t.line(name));
        for e in t.errors.lock().unwrap().iter().take(5) {
            report.push(format!("    {e}"));
        }
    };

    tokio::time::sleep(Duration::from_secs(3)).await;

    // A hung node (its JVM stopped) keeps its connections open: the driver must stop waiting on
    // it well inside the app's request budget (4 s), reads by trying another replica, everything
    // by dropping the node's connections when their keepalives go unanswered.
    let running = blocking(move || {
        let mut r = running;
        r.kill(Kind::Cassandra, 1, servers::signal::SIGSTOP).expect("stop node 1");
        r
    })
    .await;
    end(start_phase("3 nodes"), &mut report);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let hung = start_phase("node 1 hung 8 s");
    let hung_slowest = Duration::from_millis(hung.1.slowest_ms.load(Ordering::Relaxed) as u64);
    end(hung, &mut report);
    let running = blocking(move || {
        let mut r = running;
        r.kill(Kind::Cassandra, 1, servers::signal::SIGCONT).expect("resume node 1");
        r
    })
    .await;
    // Gossip marks it up again before node 2 is killed, when QUORUM needs it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    end(start_phase("node 1 resumed"), &mut report);
    assert!(
        hung_slowest < Duration::from_secs(4),
        "a request waited {hung_slowest:?} on the hung node (the app's request budget is 4 s):\n  {}",
        report.join("\n  ")
    );

    let before_kill = known.lock().unwrap().len();
    let mut running = blocking(move || {
        let mut r = running;
        r.kill(Kind::Cassandra, 2, libc_sigkill()).expect("kill node 2");
        r
    })
    .await;
    let killed_at = Instant::now();
    end(start_phase("before the kill"), &mut report);
    tokio::time::sleep(Duration::from_secs(8)).await;
    end(start_phase("node 2 killed"), &mut report);
    // An insert in flight at the kill may have had node 2 as its coordinator, which died before
    // writing its own copy: no node holds a hint for it, so only read repair (or `nodetool
    // repair`) brings that row to node 2 (seen once in CI: 1 of 191 still missing after 120 s).
    // Hints are checked on the inserts that started after the kill; the others at QUORUM.
    let (written_while_down, in_flight_at_kill): (Vec<Product>, Vec<Product>) = {
        let started_at = started_at.lock().unwrap();
        known.lock().unwrap()[before_kill..].iter().cloned().partition(|p| started_at[&p.id] >= killed_at)
    };
    eprintln!("{} inserts were in flight at the kill", in_flight_at_kill.len());

    let (running2, took) = blocking(move || {
        let mut r = running;
        let took = r.restart_cassandra(2).expect("restart node 2");
        (r, took)
    })
    .await;
    running = running2;
    eprintln!("node 2 restarted and the ring whole again in {took:.1?} ({:.1?} after the kill)", killed_at.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    end(start_phase("node 2 restarting and back"), &mut report);

    // The driver reconnects to it ...
    let addr: SocketAddr = running.cassandra_nodes()[2].parse().unwrap();
    let t = Instant::now();
    loop {
        let connected = store
            .session()
            .get_cluster_state()
            .get_nodes_info()
            .iter()
            .any(|n| n.address.ip() == addr.ip() && n.address.port() == addr.port() && n.is_connected());
        if connected {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the driver did not reconnect to node 2");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("driver connected to node 2 again {:.1?} after the ring was whole", t.elapsed());
    // ... it answers at CL=ONE at once, and the products written while it was down reach it
    // (the other nodes kept hints for it and replay them) within a bound.
    let mut pinned =
        store.session().prepare(format!("SELECT id FROM {}.products WHERE id = ?", store.keyspace())).await.unwrap();
    pinned.set_consistency(Consistency::One);
    pinned
        .set_load_balancing_policy(Some(SingleTargetLoadBalancingPolicy::new(NodeIdentifier::NodeAddress(addr), None)));
    let t = Instant::now();
    let mut missing = written_while_down.len();
    while missing > 0 {
        missing = 0;
        for p in &written_while_down {
            let r =
                store.session().execute_unpaged(&pinned, (p.id.as_uuid(),)).await.expect("node 2 answers at CL=ONE");
            assert_eq!(r.request_coordinator().connection_address(), addr, "node 2 coordinated it");
            missing += usize::from(r.into_rows_result().unwrap().rows_num() == 0);
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{missing} of {} products written while node 2 was down still missing on it after 120 s",
            written_while_down.len()
        );
        if missing > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    eprintln!(
        "node 2 holds all {} products written while it was down {:.1?} after the ring was whole (hints replayed)",
        written_while_down.len(),
        t.elapsed()
    );

    // It serves as a replica: with node 0 killed, QUORUM (2 of 3) needs node 2.
    let running = blocking(move || {
        let mut r = running;
        r.kill(Kind::Cassandra, 0, libc_sigkill()).expect("kill node 0");
        r
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    end(start_phase("node 0 killed, node 2 serving"), &mut report);
    for p in written_while_down.iter().take(20).chain(&in_flight_at_kill) {
        assert!(cat.get(p.id).await.expect("QUORUM with nodes 1 and 2").is_some());
    }
    eprintln!(
        "{} products written while node 2 was down; load by phase:\n  {}",
        written_while_down.len(),
        report.join("\n  ")
    );
    assert!(!written_while_down.is_empty(), "writes went on while node 2 was down");
    assert_eq!(failures, 0, "requests failed:\n  {}", report.join("\n  "));
    drop(store);
    blocking(move || running.down().expect("ring down")).await;
    drop(dir);
}

fn libc_sigkill() -> i32 {
    servers::signal::SIGKILL
}
