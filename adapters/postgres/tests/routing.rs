//! Endpoint routing against a real PostgreSQL (SHOPBENCH_TEST_PG): a second endpoint that is
//! dead, comes alive (a TCP relay to the real server starts listening on its port), and dies
//! again while in use. Operations must succeed throughout.

mod common;

use adapter_postgres::{PgSettings, PgStore};
use common::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use test_support::pg::{fresh_database, test_settings};

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_endpoints() -> (PgSettings, String, String) {
    let base = fresh_database(&test_settings()).await;
    let real = base.endpoints[0].clone();
    let dead = format!("127.0.0.1:{}", free_port());
    let settings = PgSettings { endpoints: vec![real.clone(), dead.clone()], ..base };
    (settings, real, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_skipped_probed_back_and_failed_over_from() {
    metrics();
    let (settings, real, spare) = two_endpoints().await;
    let store = PgStore::connect(&settings).await.expect("one endpoint answers");
    store.migrate().await.unwrap();
    assert_eq!(store.healthy_endpoints(), vec![real.clone()]);

    // Dead endpoint: every operation goes to the live one.
    let s = store.stores();
    for i in 0..20 {
        s.users.insert(&user(&format!("a{i}@example.com")), &token()).await.unwrap();
    }
    assert_eq!(s.users.list(domain::models::PageRequest::first(100)).await.unwrap().len(), 20);
    assert_eq!(counter("shop_pg_endpoint_requests_total", &spare), 0);

    // It comes alive: the probe puts it back and it takes its share.
    let port = spare.parse::<endpoints::HostPort>().unwrap().port;
    let relay = Relay::start(port, real.clone()).await;
    wait_until("the probe brings the endpoint back", || store.healthy_endpoints().len() == 2).await;
    for _ in 0..20 {
        assert_eq!(s.users.list(domain::models::PageRequest::first(100)).await.unwrap().len(), 20);
    }
    assert!(relay.accepted.load(Ordering::SeqCst) >= 2, "the probe and at least one pooled connection");
    assert!(counter("shop_pg_endpoint_requests_total", &spare) >= 5);

    // It dies with pooled connections open: operations still succeed, it is taken out.
    relay.stop().await;
    let before = counter("shop_pg_failovers_total", &spare);
    for i in 0..20 {
        s.users.insert(&user(&format!("b{i}@example.com")), &token()).await.unwrap();
        assert!(s.users.list(domain::models::PageRequest::first(100)).await.unwrap().len() > 20);
    }
    assert_eq!(store.healthy_endpoints(), vec![real.clone()]);
    assert_eq!(counter("shop_pg_failovers_total", &spare), before + 1);
    assert!(counter("shop_pg_endpoint_failures_total", &spare) >= 1);
    assert_eq!(counter("shop_pg_failovers_total", &real), 0);
    store.health().check().await.unwrap();
}

#[tokio::test]
async fn connect_fails_only_when_no_endpoint_answers() {
    let dead = vec![format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port())];
    let settings = PgSettings { endpoints: dead, connect_timeout_ms: 300, ..test_settings() };
    let e = PgStore::connect(&settings).await.err().expect("nothing answers");
    assert!(e.to_string().contains("no postgres endpoint answers"), "{e}");
}

#[tokio::test]
async fn health_fails_when_every_endpoint_is_gone() {
    let (settings, _, spare) = two_endpoints().await;
    let port = spare.parse::<endpoints::HostPort>().unwrap().port;
    let target = settings.endpoints[0].clone();
    let relay = Relay::start(port, target).await;
    // Only the relay as endpoint: the store works through it, then not at all once it is gone.
    let only_relay = PgSettings { endpoints: vec![spare.clone()], ..settings };
    let store = PgStore::connect(&only_relay).await.unwrap();
    store.health().check().await.unwrap();
    relay.stop().await;
    let started = Instant::now();
    let e = store.health().check().await.unwrap_err();
    assert!(matches!(e, domain::StoreError::Unavailable(_)), "{e:?}");
    // Bounded: the 2 s retry window and a few attempts, not the 5 s attempt timeout per try.
    assert!(started.elapsed() < Duration::from_secs(6), "bounded retries, took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_is_not_taken_for_a_dead_endpoint() {
    metrics();
    let base = fresh_database(&test_settings()).await;
    // A write attempt is abandoned after 3 connect timeouts (3 s); a read waits 1 s for a pooled
    // connection per try.
    let settings =
        PgSettings { endpoints: vec![base.endpoints[0].clone()], pool_size: 1, connect_timeout_ms: 1000, ..base };
    let endpoint = settings.endpoints[0].clone();
    let store = PgStore::connect(&settings).await.unwrap();
    store.migrate().await.unwrap();
    let s = store.stores();
    let u = user("ann@example.com");
    s.users.insert(&u, &token()).await.unwrap();
    let p = product("Tea", "drinks", 1);
    s.catalogue.insert(&p).await.unwrap();

    // Hold the user's row lock from outside, so a cart change keeps the only pooled connection.
    let mut outside = sql(&settings).await;
    let tx = outside.transaction().await.unwrap();
    tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&u.id.as_uuid()]).await.unwrap();
    let carts = s.carts.clone();
    let (uid, pid) = (u.id, p.id);
    let adding = tokio::spawn(async move { carts.add(uid, pid, qty(1)).await });
    let watcher = sql(&settings).await;
    wait_until_async("the cart change waits for the lock", || async {
        // Through pgpool: ask the main node, where the lock wait happens.
        count(&watcher, "/*NO LOAD BALANCE*/ SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            .await
            == 1
    })
    .await;

    // No connection free: the read finds the pool busy (after 1 s), and the endpoint stays in
    // rotation (looked at before the cart change's own attempt times out, at 3 s).
    let users = s.users.clone();
    let reading = tokio::spawn(async move { users.get(uid).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!reading.is_finished(), "the read waits for a connection");
    assert_eq!(store.healthy_endpoints(), vec![endpoint.clone()]);
    assert_eq!(counter("shop_pg_failovers_total", &endpoint), 0);

    tx.rollback().await.unwrap();
    assert_eq!(adding.await.unwrap().unwrap().items().len(), 1);
    // The read either gave up (Unavailable) or got the connection once it was free.
    match reading.await.unwrap() {
        Ok(found) => assert!(found.is_some()),
        Err(e) => assert!(matches!(e, domain::StoreError::Unavailable(_)), "{e:?}"),
    }
    assert!(s.users.get(u.id).await.unwrap().is_some());
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(what: &str, mut ok: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
