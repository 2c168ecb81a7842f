//! A COMMIT that reaches the server but whose answer is lost (the pgpool in between dies at that
//! moment): the adapter must retry, and the retry must not apply the change a second time.
//! A TCP relay in front of the real PostgreSQL (SHOPBENCH_TEST_PG) withholds the answer.

mod common;

use adapter_postgres::{PgSettings, PgStore};
use common::*;
use domain::ports::Placed;
use std::sync::atomic::Ordering;
use test_support::pg::{fresh_database, test_settings};

/// A migrated store whose only endpoint is a relay to the test server.
async fn behind_relay() -> (PgStore, PgSettings, Relay) {
    let base = fresh_database(&test_settings()).await;
    let port = free_port();
    let relay = Relay::start(port, base.endpoints[0].clone()).await;
    let settings = PgSettings { endpoints: vec![format!("127.0.0.1:{port}")], pool_size: 2, ..base.clone() };
    let store = PgStore::connect(&settings).await.expect("connect through the relay");
    store.migrate().await.unwrap();
    (store, base, relay)
}

#[tokio::test]
async fn an_add_to_cart_whose_commit_answer_is_lost_is_applied_once() {
    let (store, direct, relay) = behind_relay().await;
    let s = store.stores();
    let u = user("ann@example.com");
    s.users.insert(&u, &token()).await.unwrap();
    let p = product("Tea", "drinks", 300);
    s.catalogue.insert(&p).await.unwrap();

    relay.cut_after_next_commit();
    let cart = s.carts.add(u.id, p.id, qty(2)).await.expect("retried after the lost answer");
    assert_eq!(relay.cuts.load(Ordering::SeqCst), 1, "the COMMIT answer was withheld");
    assert_eq!(cart.items()[0].quantity.get(), 2);
    relay.cut_after_next_commit();
    let cart = s.carts.add(u.id, p.id, qty(3)).await.unwrap();
    assert_eq!(relay.cuts.load(Ordering::SeqCst), 2);
    assert_eq!(cart.items()[0].quantity.get(), 5);

    let c = sql(&direct).await;
    assert_eq!(count(&c, "SELECT sum(quantity) FROM cart_items").await, 5, "each add applied exactly once");
    assert_eq!(count(&c, "SELECT count(*) FROM cart_adds").await, 2, "one id per add call");
    // Without a lost answer nothing is looked up twice, and a plain add still adds.
    assert_eq!(s.carts.add(u.id, p.id, qty(1)).await.unwrap().items()[0].quantity.get(), 6);
}

#[tokio::test]
async fn a_checkout_whose_commit_answer_is_lost_is_stored_once_and_reported_as_new() {
    let (store, direct, relay) = behind_relay().await;
    let s = store.stores();
    let u = user("ann@example.com");
    s.users.insert(&u, &token()).await.unwrap();
    let p = product("Tea", "drinks", 300);
    s.catalogue.insert(&p).await.unwrap();
    let o = order(u.id, "key-1", &[(&p, 2)]);

    relay.cut_after_next_commit();
    assert_eq!(s.orders.insert(&o).await.unwrap(), Placed::Created);
    assert_eq!(relay.cuts.load(Ordering::SeqCst), 1);
    let c = sql(&direct).await;
    assert_eq!(count(&c, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM order_lines").await, 1);
    // Another order with the same key is the first one, not a second.
    let again = order(u.id, "key-1", &[(&p, 5)]);
    assert_eq!(s.orders.insert(&again).await.unwrap(), Placed::Existing(o));
}
