//! The OrderRepository contract: what every order store must do. An adapter's test file runs each
//! case against a fresh store of its real server with `order_contract!(fresh)`, where `fresh` is
//! an async fn returning something that derefs to a `dyn OrderRepository` on an empty store.
//! Orders name users and products by id only (no store checks them), so the cases make ids up.

use crate::catalogue::product;
use domain::models::*;
use domain::ports::{Clock, OrderRepository, Placed, SystemClock};
use futures_util::future::join_all;
use uuid::Uuid;

#[macro_export]
macro_rules! order_contract {
    ($fresh:path) => {
        $crate::order_contract!(@cases $fresh;
            insert_and_read_back_with_lines,
            repeating_an_insert_writes_nothing_and_returns_the_first,
            concurrent_inserts_with_one_key_make_one_order,
            list_for_user_pages_newest_first,
            set_status_is_compare_and_set
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let orders = $fresh().await;
                $crate::orders::$case(&*orders).await;
            }
        )*
    };
}

pub fn user_id() -> UserId {
    UserId::from_uuid(Uuid::now_v7())
}

/// A new order of `user` with this key and (product, quantity) lines.
pub fn order(user: UserId, key: &str, lines: &[(&Product, u32)]) -> Order {
    let t = SystemClock.now();
    let mut lines: Vec<OrderLine> = lines
        .iter()
        .map(|(p, q)| OrderLine {
            product_id: p.id,
            name: p.name.clone(),
            unit_price: p.price,
            quantity: Quantity::from_trusted(*q),
        })
        .collect();
    lines.sort_by_key(|l| l.product_id);
    Order {
        id: OrderId::from_uuid(Uuid::now_v7()),
        user_id: user,
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        status: OrderStatus::Created,
        lines,
        created_at: t,
        updated_at: t,
    }
}

pub async fn insert_and_read_back_with_lines(orders: &dyn OrderRepository) {
    let u = user_id();
    let a = product("Tea ☕ 'best'", "drinks", 350);
    let b = product("Cake", "food", 1200);
    let o = order(u, "checkout-1", &[(&a, 2), (&b, 1)]);
    assert_eq!(orders.insert(&o).await.unwrap(), Placed::Created);
    let back = orders.get(o.id).await.unwrap().unwrap();
    assert_eq!(back, o);
    assert_eq!(back.total().get(), 2 * 350 + 1200);
    assert_eq!(orders.find_by_key(u, &o.idempotency_key).await.unwrap(), Some(o.clone()));
    assert_eq!(orders.find_by_key(u, &IdempotencyKey::parse("other").unwrap()).await.unwrap(), None);
    assert_eq!(orders.find_by_key(user_id(), &o.idempotency_key).await.unwrap(), None);
    assert_eq!(orders.get(order(u, "k", &[(&a, 1)]).id).await.unwrap(), None);
}

pub async fn repeating_an_insert_writes_nothing_and_returns_the_first(orders: &dyn OrderRepository) {
    let u = user_id();
    let a = product("Tea", "drinks", 350);
    let first = order(u, "key-1", &[(&a, 2)]);
    assert_eq!(orders.insert(&first).await.unwrap(), Placed::Created);
    assert_eq!(orders.insert(&first).await.unwrap(), Placed::Existing(first.clone()), "the same order again");
    let replay = order(u, "key-1", &[(&a, 5)]);
    assert_eq!(orders.insert(&replay).await.unwrap(), Placed::Existing(first.clone()), "another with its key");
    assert_eq!(orders.get(replay.id).await.unwrap(), None);
    assert_eq!(orders.list_for_user(u, PageRequest::first(10)).await.unwrap(), vec![first]);
    // The same key of another user is another order.
    assert_eq!(orders.insert(&order(user_id(), "key-1", &[(&a, 1)])).await.unwrap(), Placed::Created);
}

pub async fn concurrent_inserts_with_one_key_make_one_order(orders: &dyn OrderRepository) {
    let u = user_id();
    let a = product("Tea", "drinks", 350);
    let tries: Vec<Order> = (0..10).map(|_| order(u, "same-key", &[(&a, 1)])).collect();
    let placed = join_all(tries.iter().map(|o| orders.insert(o))).await;
    let mut created = 0;
    let mut existing = Vec::new();
    for p in placed {
        match p.unwrap() {
            Placed::Created => created += 1,
            Placed::Existing(o) => existing.push(o.id),
        }
    }
    assert_eq!(created, 1);
    existing.dedup();
    assert_eq!(existing.len(), 1, "every replay returns the same first order");
    assert_eq!(orders.list_for_user(u, PageRequest::first(20)).await.unwrap().len(), 1);
}

pub async fn list_for_user_pages_newest_first(orders: &dyn OrderRepository) {
    let u = user_id();
    let a = product("Tea", "drinks", 350);
    let b = product("Cake", "food", 1200);
    let mut mine = Vec::new();
    for i in 0..5 {
        let o = order(u, &format!("k{i}"), &[(&a, 1), (&b, i + 1)]);
        orders.insert(&o).await.unwrap();
        mine.push(o);
    }
    orders.insert(&order(user_id(), "k0", &[(&a, 1)])).await.unwrap();
    mine.sort_by_key(|o| std::cmp::Reverse(o.id));
    let first = orders.list_for_user(u, PageRequest::first(2)).await.unwrap();
    assert_eq!(first, mine[..2]);
    let second = orders.list_for_user(u, PageRequest { limit: 2, after: Some(first[1].id.as_uuid()) }).await.unwrap();
    assert_eq!(second, mine[2..4]);
    let third = orders.list_for_user(u, PageRequest { limit: 2, after: Some(second[1].id.as_uuid()) }).await.unwrap();
    assert_eq!(third, mine[4..]);
    assert!(orders.list_for_user(user_id(), PageRequest::first(2)).await.unwrap().is_empty());
}

pub async fn set_status_is_compare_and_set(orders: &dyn OrderRepository) {
    let a = product("Tea", "drinks", 350);
    let o = order(user_id(), "k", &[(&a, 1)]);
    orders.insert(&o).await.unwrap();
    let at = Timestamp::from_millis(o.updated_at.millis() + 1234).unwrap();
    assert!(orders.set_status(o.id, OrderStatus::Created, OrderStatus::Paid, at).await.unwrap());
    assert!(!orders.set_status(o.id, OrderStatus::Created, OrderStatus::Cancelled, at).await.unwrap());
    let back = orders.get(o.id).await.unwrap().unwrap();
    assert_eq!((back.status, back.updated_at, back.created_at), (OrderStatus::Paid, at, o.created_at));
    let unknown = order(o.user_id, "x", &[(&a, 1)]).id;
    assert!(!orders.set_status(unknown, OrderStatus::Created, OrderStatus::Paid, at).await.unwrap());
}
