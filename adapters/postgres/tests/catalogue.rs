//! Catalogue against a real PostgreSQL (SHOPBENCH_TEST_PG).

mod common;

use common::*;
use domain::models::*;

#[tokio::test]
async fn insert_get_update_delete() {
    let (store, settings) = store().await;
    let cat = store.stores().catalogue;
    let mut p = product("Green tea", "drinks", 450);
    cat.insert(&p).await.unwrap();
    cat.insert(&p).await.unwrap();
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM products").await, 1, "a repeat inserts nothing");
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()));

    let created = p.created_at;
    p.name = ProductName::parse("Sencha").unwrap();
    p.description = Description::parse("").unwrap();
    p.category = Category::parse("tea").unwrap();
    p.price = Cents::from_trusted(0);
    p.updated_at = Timestamp::from_millis(created.millis() + 1).unwrap();
    assert!(cat.update(&p).await.unwrap());
    let mut changed_created = p.clone();
    changed_created.created_at = Timestamp::from_millis(0).unwrap();
    assert!(cat.update(&changed_created).await.unwrap());
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()), "created_at is never replaced");

    assert!(cat.delete(p.id).await.unwrap());
    assert!(!cat.delete(p.id).await.unwrap());
    assert_eq!(cat.get(p.id).await.unwrap(), None);
    assert!(!cat.update(&p).await.unwrap());
}

#[tokio::test]
async fn get_many_returns_the_known_ones() {
    let (store, _) = store().await;
    let cat = store.stores().catalogue;
    let a = product("A", "x", 1);
    let b = product("B", "y", 2);
    cat.insert(&a).await.unwrap();
    cat.insert(&b).await.unwrap();
    let unknown = product("C", "x", 3).id;
    let mut got = cat.get_many(&[b.id, unknown, a.id]).await.unwrap();
    got.sort_by_key(|p| p.id);
    assert_eq!(got, vec![a, b]);
    assert!(cat.get_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_pages_by_id_with_and_without_category() {
    let (store, _) = store().await;
    let cat = store.stores().catalogue;
    let mut drinks = Vec::new();
    let mut all = Vec::new();
    for i in 0..9 {
        let category = if i % 3 == 0 { "snacks" } else { "drinks" };
        let p = product(&format!("P{i}"), category, i * 100);
        cat.insert(&p).await.unwrap();
        if category == "drinks" {
            drinks.push(p.clone());
        }
        all.push(p);
    }
    all.sort_by_key(|p| p.id);
    drinks.sort_by_key(|p| p.id);

    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let got = cat.list(None, page).await.unwrap();
        seen.extend(got.clone());
        if got.len() < 4 {
            break;
        }
        page.after = Some(got.last().unwrap().id.as_uuid());
    }
    assert_eq!(seen, all);

    let c = Category::parse("drinks").unwrap();
    let first = cat.list(Some(&c), PageRequest::first(4)).await.unwrap();
    assert_eq!(first, drinks[..4]);
    let rest = cat.list(Some(&c), PageRequest { limit: 4, after: Some(first[3].id.as_uuid()) }).await.unwrap();
    assert_eq!(rest, drinks[4..]);
    let none = cat.list(Some(&Category::parse("DRINKS").unwrap()), PageRequest::first(4)).await.unwrap();
    assert!(none.is_empty(), "categories match exactly");
}

#[tokio::test]
async fn text_is_verbatim_and_prices_reach_the_maximum() {
    let (store, _) = store().await;
    let cat = store.stores().catalogue;
    let mut p = product("'; DELETE FROM products; --", "%_\\", Cents::MAX_PRICE);
    p.description = Description::parse("$1 ${x} \"quoted\"\n\tindented — 日本語 🍵").unwrap();
    cat.insert(&p).await.unwrap();
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()));
    let listed = cat.list(Some(&p.category), PageRequest::first(5)).await.unwrap();
    assert_eq!(listed, vec![p]);
}
