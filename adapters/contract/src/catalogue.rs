//! The Catalogue contract: what every catalogue adapter must do, whatever its store.
//!
//! Each case takes a catalogue on an empty store of its own (a fresh database, keyspace, ...) and
//! panics on a breach. An adapter's test file runs every case against its real server with
//! [`catalogue_contract!`](crate::catalogue_contract):
//!
//! ```ignore
//! async fn fresh() -> std::sync::Arc<dyn domain::ports::Catalogue> { /* an empty store */ }
//! adapter_contract::catalogue_contract!(fresh);
//! ```
//!
//! Ordering: a category's pages are in ascending id; the whole catalogue's pages are in an order
//! the adapter keeps stable (ascending id, or token order for a partitioned store). Both must
//! cover every product exactly once.

use domain::models::*;
use domain::ports::{Catalogue, Clock, SystemClock};
use std::collections::HashSet;
use uuid::Uuid;

/// Every case, as one `#[tokio::test]` each: `catalogue_contract!(fresh)` where `fresh` is an
/// async fn returning something that derefs to a `dyn Catalogue` on an empty store.
#[macro_export]
macro_rules! catalogue_contract {
    ($fresh:path) => {
        $crate::catalogue_contract!(@cases $fresh;
            insert_get_update_delete,
            a_repeated_insert_changes_nothing,
            unknown_products_are_reported,
            get_many_returns_the_known_ones,
            list_pages_cover_everything_once,
            category_pages_ascend_by_id,
            a_page_is_full_while_products_remain,
            an_update_moves_a_product_between_categories,
            a_deleted_product_leaves_every_listing,
            an_update_racing_a_delete_leaves_no_listing,
            text_is_verbatim_and_prices_reach_the_maximum
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let catalogue = $fresh().await;
                $crate::catalogue::$case(&*catalogue).await;
            }
        )*
    };
}

/// A valid product with a new (time-ordered) id.
pub fn product(name: &str, category: &str, price: i64) -> Product {
    let t = SystemClock.now();
    Product {
        id: ProductId::from_uuid(Uuid::now_v7()),
        name: ProductName::parse(name).unwrap(),
        description: Description::parse("A thing.\nTwo lines.").unwrap(),
        category: Category::parse(category).unwrap(),
        price: Cents::price(price, "price_cents").unwrap(),
        created_at: t,
        updated_at: t,
    }
}

fn category(c: &str) -> Category {
    Category::parse(c).unwrap()
}

/// Every product, walking the whole catalogue (or one category) `limit` at a time.
pub async fn walk(cat: &dyn Catalogue, category: Option<&Category>, limit: u32) -> Vec<Product> {
    let mut seen = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..10_000 {
        let got = cat.list(category, page).await.unwrap();
        assert!(got.len() <= limit as usize, "a page holds at most `limit` products");
        seen.extend(got.clone());
        if got.len() < limit as usize {
            return seen;
        }
        page.after = Some(got.last().unwrap().id.as_uuid());
    }
    panic!("paging does not end");
}

pub async fn insert_get_update_delete(cat: &dyn Catalogue) {
    let mut p = product("Green tea", "drinks", 450);
    cat.insert(&p).await.unwrap();
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()));

    let created = p.created_at;
    p.name = ProductName::parse("Sencha").unwrap();
    p.description = Description::parse("").unwrap();
    p.price = Cents::from_trusted(0);
    p.updated_at = Timestamp::from_millis(created.millis() + 1).unwrap();
    assert!(cat.update(&p).await.unwrap());
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()));
    let mut changed_created = p.clone();
    changed_created.created_at = Timestamp::from_millis(0).unwrap();
    changed_created.updated_at = Timestamp::from_millis(created.millis() + 2).unwrap();
    assert!(cat.update(&changed_created).await.unwrap());
    let expected = Product { updated_at: changed_created.updated_at, ..p.clone() };
    assert_eq!(cat.get(p.id).await.unwrap(), Some(expected), "created_at is never replaced");

    assert!(cat.delete(p.id).await.unwrap());
    assert!(!cat.delete(p.id).await.unwrap());
    assert_eq!(cat.get(p.id).await.unwrap(), None);
    assert!(!cat.update(&p).await.unwrap(), "a deleted product cannot be updated");
}

pub async fn a_repeated_insert_changes_nothing(cat: &dyn Catalogue) {
    let p = product("Green tea", "drinks", 450);
    cat.insert(&p).await.unwrap();
    cat.insert(&p).await.unwrap();
    assert_eq!(walk(cat, None, 10).await, vec![p.clone()], "a repeat inserts nothing");
    assert_eq!(walk(cat, Some(&p.category), 10).await, vec![p.clone()]);

    // A repeat after an update keeps the update.
    let mut changed = p.clone();
    changed.price = Cents::from_trusted(500);
    changed.updated_at = Timestamp::from_millis(p.updated_at.millis() + 1).unwrap();
    assert!(cat.update(&changed).await.unwrap());
    cat.insert(&p).await.unwrap();
    assert_eq!(cat.get(p.id).await.unwrap(), Some(changed.clone()));
    assert_eq!(walk(cat, Some(&p.category), 10).await, vec![changed]);
}

pub async fn unknown_products_are_reported(cat: &dyn Catalogue) {
    let p = product("Ghost", "x", 1);
    assert_eq!(cat.get(p.id).await.unwrap(), None);
    assert!(!cat.update(&p).await.unwrap());
    assert!(!cat.delete(p.id).await.unwrap());
    assert!(cat.list(None, PageRequest::first(5)).await.unwrap().is_empty(), "a failed update creates nothing");
    assert!(cat.list(Some(&p.category), PageRequest::first(5)).await.unwrap().is_empty());
}

pub async fn get_many_returns_the_known_ones(cat: &dyn Catalogue) {
    let a = product("A", "x", 1);
    let b = product("B", "y", 2);
    cat.insert(&a).await.unwrap();
    cat.insert(&b).await.unwrap();
    let unknown = product("C", "x", 3).id;
    let mut got = cat.get_many(&[b.id, unknown, a.id]).await.unwrap();
    got.sort_by_key(|p| p.id);
    assert_eq!(got, vec![a, b]);
    assert!(cat.get_many(&[]).await.unwrap().is_empty());
    assert_eq!(cat.get_many(&[unknown]).await.unwrap(), vec![]);
}

pub async fn list_pages_cover_everything_once(cat: &dyn Catalogue) {
    let mut all = Vec::new();
    for i in 0..11 {
        let p = product(&format!("P{i}"), if i % 3 == 0 { "snacks" } else { "drinks" }, i * 100);
        cat.insert(&p).await.unwrap();
        all.push(p);
    }
    for limit in [1, 4, 11, 100] {
        let seen = walk(cat, None, limit).await;
        let ids: HashSet<ProductId> = seen.iter().map(|p| p.id).collect();
        assert_eq!((seen.len(), ids.len()), (all.len(), all.len()), "limit {limit}: every product exactly once");
        let mut sorted = seen.clone();
        sorted.sort_by_key(|p| p.id);
        all.sort_by_key(|p| p.id);
        assert_eq!(sorted, all, "limit {limit}: the products as stored");
        assert_eq!(walk(cat, None, limit).await, seen, "limit {limit}: the same order on every walk");
    }
}

pub async fn category_pages_ascend_by_id(cat: &dyn Catalogue) {
    let mut drinks = Vec::new();
    for i in 0..9 {
        let c = if i % 3 == 0 { "snacks" } else { "drinks" };
        let p = product(&format!("P{i}"), c, i * 100);
        cat.insert(&p).await.unwrap();
        if c == "drinks" {
            drinks.push(p);
        }
    }
    drinks.sort_by_key(|p| p.id);
    let c = category("drinks");
    let first = cat.list(Some(&c), PageRequest::first(4)).await.unwrap();
    assert_eq!(first, drinks[..4]);
    let rest = cat.list(Some(&c), PageRequest { limit: 4, after: Some(first[3].id.as_uuid()) }).await.unwrap();
    assert_eq!(rest, drinks[4..]);
    let past_end = cat.list(Some(&c), PageRequest { limit: 4, after: Some(drinks[5].id.as_uuid()) }).await.unwrap();
    assert!(past_end.is_empty());
    assert!(cat.list(Some(&category("DRINKS")), PageRequest::first(4)).await.unwrap().is_empty(), "exact match");
    assert!(cat.list(Some(&category("none")), PageRequest::first(4)).await.unwrap().is_empty());
}

/// The shop asks for one product more than a page shows and sets the page's `next` only when it
/// comes back, so a store must fill a page while products remain (a short page ends the paging)
/// and never return more than asked.
pub async fn a_page_is_full_while_products_remain(cat: &dyn Catalogue) {
    for i in 0..5 {
        cat.insert(&product(&format!("P{i}"), "tools", 100)).await.unwrap();
    }
    cat.insert(&product("Other", "kitchen", 100)).await.unwrap();
    let tools = category("tools");
    for (category, count) in [(Some(&tools), 5), (None, 6)] {
        for limit in 1..=count + 2 {
            let first = cat.list(category, PageRequest::first(limit)).await.unwrap();
            assert_eq!(first.len() as u32, limit.min(count), "{category:?}, limit {limit}");
            let after = Some(first.last().unwrap().id.as_uuid());
            let rest = cat.list(category, PageRequest { limit, after }).await.unwrap();
            let left = count - first.len() as u32;
            assert_eq!(rest.len() as u32, limit.min(left), "{category:?}, limit {limit}, the page after the first");
        }
    }
}

pub async fn an_update_moves_a_product_between_categories(cat: &dyn Catalogue) {
    let mut p = product("Mug", "kitchen", 900);
    let stays = product("Plate", "kitchen", 700);
    cat.insert(&p).await.unwrap();
    cat.insert(&stays).await.unwrap();
    p.category = category("gifts");
    p.updated_at = Timestamp::from_millis(p.created_at.millis() + 1).unwrap();
    assert!(cat.update(&p).await.unwrap());
    assert_eq!(walk(cat, Some(&category("kitchen")), 10).await, vec![stays.clone()]);
    assert_eq!(walk(cat, Some(&category("gifts")), 10).await, vec![p.clone()]);

    // And back, then a change of price only: one listing, the latest fields.
    p.category = category("kitchen");
    p.updated_at = Timestamp::from_millis(p.created_at.millis() + 2).unwrap();
    assert!(cat.update(&p).await.unwrap());
    p.price = Cents::from_trusted(950);
    p.updated_at = Timestamp::from_millis(p.created_at.millis() + 3).unwrap();
    assert!(cat.update(&p).await.unwrap());
    assert!(walk(cat, Some(&category("gifts")), 10).await.is_empty());
    let mut kitchen = vec![p.clone(), stays];
    kitchen.sort_by_key(|p| p.id);
    assert_eq!(walk(cat, Some(&category("kitchen")), 10).await, kitchen);
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p));
}

pub async fn a_deleted_product_leaves_every_listing(cat: &dyn Catalogue) {
    let mut p = product("Lamp", "home", 2500);
    let other = product("Rug", "home", 4000);
    cat.insert(&p).await.unwrap();
    cat.insert(&other).await.unwrap();
    p.category = category("light");
    p.updated_at = Timestamp::from_millis(p.created_at.millis() + 1).unwrap();
    assert!(cat.update(&p).await.unwrap());
    assert!(cat.delete(p.id).await.unwrap());
    assert_eq!(walk(cat, None, 10).await, vec![other.clone()]);
    assert_eq!(walk(cat, Some(&category("home")), 10).await, vec![other]);
    assert!(walk(cat, Some(&category("light")), 10).await.is_empty());
    assert!(cat.get_many(&[p.id]).await.unwrap().is_empty());
}

/// A product updated and deleted at the same moment ends deleted and listed nowhere, whichever
/// of the two goes first. The update starts 0-3 ms after the delete, as a second admin's request
/// would, so its `updated_at` is later than anything the delete read.
pub async fn an_update_racing_a_delete_leaves_no_listing(cat: &dyn Catalogue) {
    for round in 0..48u64 {
        let p = product("Racer", "race", 100);
        cat.insert(&p).await.unwrap();
        let update = async {
            tokio::time::sleep(std::time::Duration::from_micros(round % 24 * 250)).await;
            let renamed =
                Product { name: ProductName::parse("Renamed").unwrap(), updated_at: SystemClock.now(), ..p.clone() };
            cat.update(&renamed).await.unwrap()
        };
        let (_, deleted) = futures_util::future::join(update, cat.delete(p.id)).await;
        assert!(deleted.unwrap(), "the delete finds the product, renamed or not");
        assert_eq!(cat.get(p.id).await.unwrap(), None);
    }
    let listed: Vec<ProductId> = walk(cat, Some(&category("race")), 50).await.iter().map(|p| p.id).collect();
    assert!(listed.is_empty(), "deleted products still on their category's pages: {listed:?}");
    assert!(walk(cat, None, 50).await.is_empty(), "deleted products still in the catalogue");
}

pub async fn text_is_verbatim_and_prices_reach_the_maximum(cat: &dyn Catalogue) {
    let mut p = product("'; DELETE FROM products; --", "%_\\", Cents::MAX_PRICE);
    p.description = Description::parse("$1 ${x} \"quoted\"\n\tindented — 日本語 🍵").unwrap();
    cat.insert(&p).await.unwrap();
    assert_eq!(cat.get(p.id).await.unwrap(), Some(p.clone()));
    let listed = cat.list(Some(&p.category), PageRequest::first(5)).await.unwrap();
    assert_eq!(listed, vec![p.clone()]);
    assert_eq!(cat.list(None, PageRequest::first(5)).await.unwrap(), vec![p]);
}
