//! OrderRepository against a real PostgreSQL (SHOPBENCH_TEST_PG).

mod common;

use common::*;
use domain::models::*;
use domain::ports::Placed;
use std::sync::Arc;

#[tokio::test]
async fn insert_and_read_back_with_lines() {
    let (store, _) = store().await;
    let s = store.stores();
    let u = user("ann@example.com").id;
    let a = product("Tea ☕ 'best'", "drinks", 350);
    let b = product("Cake", "food", 1200);
    let o = order(u, "checkout-1", &[(&a, 2), (&b, 1)]);
    assert_eq!(s.orders.insert(&o).await.unwrap(), Placed::Created);
    let back = s.orders.get(o.id).await.unwrap().unwrap();
    assert_eq!(back, o);
    assert_eq!(back.total().get(), 2 * 350 + 1200);
    assert_eq!(s.orders.find_by_key(u, &o.idempotency_key).await.unwrap(), Some(o.clone()));
    assert_eq!(s.orders.find_by_key(u, &IdempotencyKey::parse("other").unwrap()).await.unwrap(), None);
    let stranger = user("x@example.com").id;
    assert_eq!(s.orders.find_by_key(stranger, &o.idempotency_key).await.unwrap(), None);
    assert_eq!(s.orders.get(order(u, "k", &[(&a, 1)]).id).await.unwrap(), None);
}

#[tokio::test]
async fn repeating_an_insert_writes_nothing_and_returns_the_first() {
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

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order() {
    let (store, settings) = store().await;
    let orders = store.stores().orders;
    let u = user("ann@example.com").id;
    let a = product("Tea", "drinks", 350);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let orders = Arc::clone(&orders);
            let o = order(u, "same-key", &[(&a, 1)]);
            tokio::spawn(async move { orders.insert(&o).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Placed::Created => created += 1,
            Placed::Existing(o) => existing.push(o.id),
        }
    }
    assert_eq!(created, 1);
    existing.dedup();
    assert_eq!(existing.len(), 1, "every replay returns the same first order");
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM orders").await, 1);
}

#[tokio::test]
async fn list_for_user_pages_newest_first() {
    let (store, _) = store().await;
    let orders = store.stores().orders;
    let u = user("ann@example.com").id;
    let a = product("Tea", "drinks", 350);
    let b = product("Cake", "food", 1200);
    let mut mine = Vec::new();
    for i in 0..5 {
        let o = order(u, &format!("k{i}"), &[(&a, 1), (&b, i + 1)]);
        orders.insert(&o).await.unwrap();
        mine.push(o);
    }
    orders.insert(&order(user("bob@example.com").id, "k0", &[(&a, 1)])).await.unwrap();
    mine.sort_by_key(|o| std::cmp::Reverse(o.id));
    let first = orders.list_for_user(u, PageRequest::first(2)).await.unwrap();
    assert_eq!(first, mine[..2]);
    let second = orders.list_for_user(u, PageRequest { limit: 2, after: Some(first[1].id.as_uuid()) }).await.unwrap();
    assert_eq!(second, mine[2..4]);
    let third = orders.list_for_user(u, PageRequest { limit: 2, after: Some(second[1].id.as_uuid()) }).await.unwrap();
    assert_eq!(third, mine[4..]);
    assert!(orders.list_for_user(user("c@example.com").id, PageRequest::first(2)).await.unwrap().is_empty());
}

#[tokio::test]
async fn set_status_is_compare_and_set() {
    let (store, _) = store().await;
    let orders = store.stores().orders;
    let a = product("Tea", "drinks", 350);
    let o = order(user("ann@example.com").id, "k", &[(&a, 1)]);
    orders.insert(&o).await.unwrap();
    let at = Timestamp::from_millis(o.updated_at.millis() + 1234).unwrap();
    assert!(orders.set_status(o.id, OrderStatus::Created, OrderStatus::Paid, at).await.unwrap());
    assert!(!orders.set_status(o.id, OrderStatus::Created, OrderStatus::Cancelled, at).await.unwrap());
    let back = orders.get(o.id).await.unwrap().unwrap();
    assert_eq!((back.status, back.updated_at, back.created_at), (OrderStatus::Paid, at, o.created_at));
    let unknown = order(o.user_id, "x", &[(&a, 1)]).id;
    assert!(!orders.set_status(unknown, OrderStatus::Created, OrderStatus::Paid, at).await.unwrap());
}
