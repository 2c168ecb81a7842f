//! OrderRepository against a real PostgreSQL (SHOPBENCH_TEST_PG): the contract every order store
//! keeps (adapter-contract), then what the tables hold.

mod common;

use common::*;
use domain::ports::{OrderRepository, Placed};
use std::sync::Arc;

async fn fresh() -> Arc<dyn OrderRepository> {
    store().await.0.stores().orders
}

adapter_contract::order_contract!(fresh);

#[tokio::test]
async fn a_repeated_insert_writes_no_row() {
    let (store, settings) = store().await;
    let s = store.stores();
    let u = user("ann@example.com").id;
    let a = product("Tea", "drinks", 350);
    let first = order(u, "key-1", &[(&a, 2)]);
    assert_eq!(s.orders.insert(&first).await.unwrap(), Placed::Created);
    // The same order again (same id).
    assert_eq!(s.orders.insert(&first).await.unwrap(), Placed::Existing(first.clone()));
    // Another order with the same key: the first one comes back.
    let replay = order(u, "key-1", &[(&a, 5)]);
    assert_eq!(s.orders.insert(&replay).await.unwrap(), Placed::Existing(first.clone()));
    let c = sql(&settings).await;
    assert_eq!(count(&c, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM order_lines").await, 1);
    // The same key of another user is another order.
    let other = order(user("bob@example.com").id, "key-1", &[(&a, 1)]);
    assert_eq!(s.orders.insert(&other).await.unwrap(), Placed::Created);
}
