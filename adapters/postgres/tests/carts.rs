//! CartRepository against a real PostgreSQL (SHOPBENCH_TEST_PG).

mod common;

use common::*;
use domain::models::*;
use domain::StoreError;
use std::sync::Arc;

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

fn lines(cart: &Cart) -> Vec<(ProductId, u32)> {
    cart.items().iter().map(|i| (i.product_id, i.quantity.get())).collect()
}

#[tokio::test]
async fn add_set_remove_clear() {
    let (store, _, u, p) = setup().await;
    let carts = store.stores().carts;
    assert!(carts.get(u).await.unwrap().is_empty());
    assert_eq!(lines(&carts.add(u, p[1].id, qty(2)).await.unwrap()), vec![(p[1].id, 2)]);
    assert_eq!(lines(&carts.add(u, p[1].id, qty(3)).await.unwrap()), vec![(p[1].id, 5)]);
    assert_eq!(lines(&carts.add(u, p[0].id, qty(1)).await.unwrap()), vec![(p[0].id, 1), (p[1].id, 5)]);
    assert_eq!(lines(&carts.set(u, p[1].id, qty(7)).await.unwrap()), vec![(p[0].id, 1), (p[1].id, 7)]);
    assert_eq!(lines(&carts.set(u, p[2].id, qty(4)).await.unwrap()), vec![(p[0].id, 1), (p[1].id, 7), (p[2].id, 4)]);
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0].id, 1), (p[1].id, 7), (p[2].id, 4)]);

    assert_eq!(lines(&carts.remove(u, p[1].id).await.unwrap().unwrap()), vec![(p[0].id, 1), (p[2].id, 4)]);
    assert_eq!(carts.remove(u, p[1].id).await.unwrap(), None);
    carts.clear(u).await.unwrap();
    carts.clear(u).await.unwrap();
    assert!(carts.get(u).await.unwrap().is_empty());
    assert_eq!(carts.get(u).await.unwrap().user_id, u);
}

#[tokio::test]
async fn a_quantity_above_the_maximum_is_refused_and_changes_nothing() {
    let (store, _, u, p) = setup().await;
    let carts = store.stores().carts;
    carts.add(u, p[0].id, qty(998)).await.unwrap();
    let e = carts.add(u, p[0].id, qty(2)).await.unwrap_err();
    assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "quantity"), "{e:?}");
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0].id, 998)]);
    assert_eq!(lines(&carts.add(u, p[0].id, qty(1)).await.unwrap()), vec![(p[0].id, 999)]);
    assert_eq!(lines(&carts.set(u, p[0].id, qty(999)).await.unwrap()), vec![(p[0].id, 999)]);
}

#[tokio::test]
async fn a_line_beyond_the_maximum_count_is_refused_and_changes_nothing() {
    let (store, settings, u, _) = setup().await;
    let s = store.stores();
    let mut ids = Vec::new();
    for i in 0..Cart::MAX_LINES {
        let p = product(&format!("L{i}"), "many", 1);
        s.catalogue.insert(&p).await.unwrap();
        s.carts.add(u, p.id, qty(1)).await.unwrap();
        ids.push(p.id);
    }
    let extra = product("one too many", "many", 1);
    s.catalogue.insert(&extra).await.unwrap();
    for e in [s.carts.add(u, extra.id, qty(1)).await.unwrap_err(), s.carts.set(u, extra.id, qty(1)).await.unwrap_err()]
    {
        assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "product_id"), "{e:?}");
    }
    let cart = s.carts.get(u).await.unwrap();
    assert_eq!(cart.items().len(), Cart::MAX_LINES);
    assert!(cart.items().iter().all(|i| i.product_id != extra.id));
    // Lines already there still change.
    assert_eq!(s.carts.add(u, ids[5], qty(1)).await.unwrap().items().len(), Cart::MAX_LINES);
    let n = count(&sql(&settings).await, "SELECT count(*) FROM cart_items").await;
    assert_eq!(n, Cart::MAX_LINES as i64);
}

#[tokio::test]
async fn concurrent_adds_lose_no_update() {
    let (store, _, u, p) = setup().await;
    let carts = store.stores().carts;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let carts = Arc::clone(&carts);
            let pid = p[i % 2].id;
            tokio::spawn(async move { carts.add(u, pid, qty(3)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0].id, 60), (p[1].id, 60)]);
}

#[tokio::test]
async fn concurrent_new_lines_never_pass_the_line_limit() {
    let (store, _, u, _) = setup().await;
    let s = store.stores();
    let mut ids = Vec::new();
    for i in 0..Cart::MAX_LINES + 20 {
        let p = product(&format!("L{i}"), "many", 1);
        s.catalogue.insert(&p).await.unwrap();
        ids.push(p.id);
    }
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|pid| {
            let carts = Arc::clone(&s.carts);
            tokio::spawn(async move { carts.add(u, pid, qty(1)).await })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => {}
            Err(StoreError::Rejected { field, .. }) if field == "product_id" => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 20);
    assert_eq!(s.carts.get(u).await.unwrap().items().len(), Cart::MAX_LINES);
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
