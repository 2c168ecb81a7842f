//! UserRepository against a real PostgreSQL (SHOPBENCH_TEST_PG): the contract every user store
//! keeps (adapter-contract), then what crosses ports in this store.

mod common;

use common::*;
use domain::ports::UserRepository;
use std::sync::Arc;

async fn fresh() -> Arc<dyn UserRepository> {
    store().await.0.stores().users
}

adapter_contract::user_contract!(fresh);

#[tokio::test]
async fn delete_removes_the_user_and_its_cart_but_not_its_orders() {
    let (store, settings) = store().await;
    let s = store.stores();
    let u = user("ann@example.com");
    s.users.insert(&u, &token()).await.unwrap();
    let p = product("Tea", "drinks", 350);
    s.catalogue.insert(&p).await.unwrap();
    s.carts.add(u.id, p.id, qty(2)).await.unwrap();
    let o = order(u.id, "k1", &[(&p, 1)]);
    s.orders.insert(&o).await.unwrap();

    assert!(s.users.delete(u.id).await.unwrap());
    assert!(!s.users.delete(u.id).await.unwrap());
    assert_eq!(s.users.get(u.id).await.unwrap(), None);
    assert!(s.carts.get(u.id).await.unwrap().is_empty());
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM cart_items").await, 0);
    assert_eq!(s.orders.get(o.id).await.unwrap(), Some(o));
}
