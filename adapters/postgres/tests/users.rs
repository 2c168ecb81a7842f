//! UserRepository against a real PostgreSQL (SHOPBENCH_TEST_PG).

mod common;

use common::*;
use domain::models::*;
use domain::StoreError;

#[tokio::test]
async fn insert_get_and_token_round_trip() {
    let (store, _) = store().await;
    let users = store.stores().users;
    let u = user("ann@example.com");
    let t = token();
    users.insert(&u, &t).await.unwrap();
    assert_eq!(users.get(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(users.token_hash(u.id).await.unwrap(), Some(t));
    let unknown = user("nobody@example.com").id;
    assert_eq!(users.get(unknown).await.unwrap(), None);
    assert_eq!(users.token_hash(unknown).await.unwrap(), None);
}

#[tokio::test]
async fn repeating_an_insert_is_a_no_op() {
    let (store, settings) = store().await;
    let users = store.stores().users;
    let u = user("ann@example.com");
    let t = token();
    users.insert(&u, &t).await.unwrap();
    users.insert(&u, &t).await.unwrap();
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_on_email_and_writes_nothing() {
    let (store, settings) = store().await;
    let users = store.stores().users;
    users.insert(&user("ann@example.com"), &token()).await.unwrap();
    let e = users.insert(&user("ann@example.com"), &token()).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { ref field } if field == "email"), "{e:?}");
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM users").await, 1);

    let mut bob = user("bob@example.com");
    users.insert(&bob, &token()).await.unwrap();
    bob.email = Email::parse("ann@example.com").unwrap();
    let e = users.update(&bob).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { ref field } if field == "email"), "{e:?}");
    assert_eq!(users.get(bob.id).await.unwrap().unwrap().email.as_str(), "bob@example.com");
}

#[tokio::test]
async fn update_replaces_email_and_name_and_reports_unknown_users() {
    let (store, _) = store().await;
    let users = store.stores().users;
    let mut u = user("ann@example.com");
    users.insert(&u, &token()).await.unwrap();
    u.email = Email::parse("ann@example.org").unwrap();
    u.name = UserName::parse("Anna Ærøskøbing 🛒").unwrap();
    assert!(users.update(&u).await.unwrap());
    assert!(users.update(&u).await.unwrap(), "same values again: still found");
    assert_eq!(users.get(u.id).await.unwrap(), Some(u));
    assert!(!users.update(&user("x@example.com")).await.unwrap());
}

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

#[tokio::test]
async fn list_pages_in_ascending_id_order() {
    let (store, _) = store().await;
    let users = store.stores().users;
    let mut all = Vec::new();
    for i in 0..7 {
        let u = user(&format!("u{i}@example.com"));
        users.insert(&u, &token()).await.unwrap();
        all.push(u);
    }
    all.sort_by_key(|u| u.id);
    let first = users.list(PageRequest::first(3)).await.unwrap();
    assert_eq!(first, all[..3]);
    let second = users.list(PageRequest { limit: 3, after: Some(first[2].id.as_uuid()) }).await.unwrap();
    assert_eq!(second, all[3..6]);
    let third = users.list(PageRequest { limit: 3, after: Some(second[2].id.as_uuid()) }).await.unwrap();
    assert_eq!(third, all[6..]);
}

#[tokio::test]
async fn sql_like_text_and_unicode_are_stored_verbatim_and_timestamps_keep_milliseconds() {
    let (store, _) = store().await;
    let users = store.stores().users;
    let mut u = user("o'brien+x@example.com");
    u.name = UserName::parse("Robert'); DROP TABLE users;-- \\ % _ 名前 ❤").unwrap();
    u.created_at = Timestamp::from_millis(1_700_000_000_123).unwrap();
    users.insert(&u, &token()).await.unwrap();
    let back = users.get(u.id).await.unwrap().unwrap();
    assert_eq!(back, u);
    assert_eq!(back.created_at.millis(), 1_700_000_000_123);
    assert_eq!(users.list(PageRequest::first(10)).await.unwrap().len(), 1);
}
