//! Catalogue against a real PostgreSQL (SHOPBENCH_TEST_PG): the shared catalogue contract
//! (adapters/contract), then what only this adapter promises.

mod common;

use common::*;
use domain::models::*;
use domain::ports::Catalogue;
use std::sync::Arc;

/// A catalogue on a fresh, migrated database.
async fn fresh() -> Arc<dyn Catalogue> {
    store().await.0.stores().catalogue
}

adapter_contract::catalogue_contract!(fresh);

#[tokio::test]
async fn a_repeated_insert_adds_no_row() {
    let (store, settings) = store().await;
    let cat = store.stores().catalogue;
    let p = product("Green tea", "drinks", 450);
    cat.insert(&p).await.unwrap();
    cat.insert(&p).await.unwrap();
    assert_eq!(count(&sql(&settings).await, "SELECT count(*) FROM products").await, 1);
}

#[tokio::test]
async fn the_whole_catalogue_pages_in_ascending_id() {
    let (store, _) = store().await;
    let cat = store.stores().catalogue;
    let mut all = Vec::new();
    for i in 0..9 {
        let p = product(&format!("P{i}"), if i % 3 == 0 { "snacks" } else { "drinks" }, i * 100);
        cat.insert(&p).await.unwrap();
        all.push(p);
    }
    all.sort_by_key(|p| p.id);
    assert_eq!(adapter_contract::catalogue::walk(&*cat, None, 4).await, all);
    let after = PageRequest { limit: 100, after: Some(all[4].id.as_uuid()) };
    assert_eq!(cat.list(None, after).await.unwrap(), all[5..]);
}
