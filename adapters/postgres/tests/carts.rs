//! CartRepository against a real PostgreSQL (SHOPBENCH_TEST_PG): the contract every cart store
//! keeps (adapter-contract), then what is PostgreSQL's own (users checked, catalogue alongside,
//! the add ids of `cart_adds`).

mod common;

use adapter_contract::carts::{lines, CartFixture};
use common::*;
use domain::models::*;
use domain::ports::CartRepository;
use domain::StoreError;
use std::sync::Arc;

/// Carts on a fresh database with two users.
async fn fresh() -> (Arc<dyn CartRepository>, CartFixture) {
    let (store, _) = store().await;
    let s = store.stores();
    let users = [user("ann@example.com"), user("bob@example.com")];
    for u in &users {
        s.users.insert(u, &token()).await.unwrap();
    }
    (s.carts, CartFixture { users: [users[0].id, users[1].id] })
}

adapter_contract::cart_contract!(fresh);

async fn setup() -> (adapter_postgres::PgStore, adapter_postgres::PgSettings, UserId, Vec<Product>) {
    let (store, settings) = store().await;
    let s = store.stores();
    let u = user("ann@example.com");
    s.users.insert(&u, &token()).await.unwrap();
    let mut products = Vec::new();
    for i in 0..3 {
        let p = product(&format!("P{i}"), "c", 100);
        s.catalogue.insert(&p).await.unwrap();
        products.push(p);
    }
    products.sort_by_key(|p| p.id);
    (store, settings, u.id, products)
}

/// Deleting a product leaves its cart lines (checkout refuses them: the use case's job), as in
/// every store: carts in Redis cannot cascade. The store itself does not check the catalogue.
#[tokio::test]
async fn a_deleted_product_stays_in_carts() {
    let (store, _, u, p) = setup().await;
    let s = store.stores();
    s.carts.add(u, p[0].id, qty(1)).await.unwrap();
    s.carts.add(u, p[1].id, qty(1)).await.unwrap();
    assert!(s.catalogue.delete(p[0].id).await.unwrap());
    assert_eq!(lines(&s.carts.get(u).await.unwrap()), vec![(p[0].id, 1), (p[1].id, 1)]);
    // A change that raced with the delete (the use case checked the product just before) lands.
    assert_eq!(lines(&s.carts.add(u, p[0].id, qty(2)).await.unwrap()), vec![(p[0].id, 3), (p[1].id, 1)]);
    assert_eq!(lines(&s.carts.remove(u, p[0].id).await.unwrap().unwrap()), vec![(p[1].id, 1)]);
}

#[tokio::test]
async fn an_unknown_user_gets_no_cart_line() {
    let (store, settings, _, p) = setup().await;
    let carts = store.stores().carts;
    let stranger = user("stranger@example.com").id;
    assert!(carts.get(stranger).await.unwrap().is_empty());
    let e = carts.add(stranger, p[0].id, qty(1)).await.unwrap_err();
    assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "user_id"), "{e:?}");
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM cart_items").await, 0);
}

#[tokio::test]
async fn an_add_forgets_the_users_expired_add_ids() {
    let (store, settings, u, p) = setup().await;
    let c = sql(&settings).await;
    let expired = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_600_000_000, 0));
    c.execute("INSERT INTO cart_adds (user_id, add_id) VALUES ($1, $2)", &[&u.as_uuid(), &expired]).await.unwrap();
    store.stores().carts.add(u, p[0].id, qty(1)).await.unwrap();
    let left: Vec<uuid::Uuid> =
        c.query("SELECT add_id FROM cart_adds", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], expired);
}
