//! The CartRepository contract: what every cart adapter must do, whatever its store.
//!
//! Each case takes the carts of a store of its own (a fresh database, a fresh key prefix, ...)
//! and a [`CartFixture`] naming users the store knows, and panics on a breach. An adapter's test
//! file runs every case against its real server with [`cart_contract!`](crate::cart_contract):
//!
//! ```ignore
//! async fn fresh() -> (std::sync::Arc<dyn domain::ports::CartRepository>, adapter_contract::carts::CartFixture) {
//!     /* carts on an empty store, and two users it knows */
//! }
//! adapter_contract::cart_contract!(fresh);
//! ```
//!
//! Cart stores do not check the catalogue (the use case does, before it calls them), so the
//! cases make up product ids.

use domain::models::*;
use domain::ports::{CartRepository, Claim, Clock, SystemClock};
use domain::StoreError;
use futures_util::future::join_all;
use uuid::Uuid;

/// Every case, as one `#[tokio::test]` each: `cart_contract!(fresh)` where `fresh` is an async fn
/// returning (something that derefs to a `dyn CartRepository` on an empty store, a `CartFixture`).
#[macro_export]
macro_rules! cart_contract {
    ($fresh:path) => {
        $crate::cart_contract!(@cases $fresh;
            an_unknown_cart_is_empty,
            add_set_remove_clear,
            a_quantity_above_the_maximum_is_refused_and_changes_nothing,
            a_line_beyond_the_maximum_count_is_refused_and_changes_nothing,
            removing_an_absent_line_reports_it_and_changes_nothing,
            carts_of_different_users_are_separate,
            a_cleared_cart_takes_new_lines,
            concurrent_adds_lose_no_update,
            concurrent_new_lines_never_pass_the_line_limit,
            concurrent_changes_to_many_carts_stay_apart,
            a_settled_claim_removes_what_it_held,
            an_add_after_the_claim_survives_the_settle,
            a_set_after_the_claim_stands,
            a_line_removed_and_added_again_after_the_claim_stands,
            a_new_line_after_the_claim_stays,
            a_clear_after_the_claim_leaves_nothing_to_settle,
            a_second_settle_removes_nothing,
            a_released_claim_changes_nothing,
            one_key_holds_a_cart_at_a_time,
            an_empty_cart_is_claimed_without_holding_it,
            claims_of_different_users_are_separate,
            concurrent_claims_hold_the_cart_for_one_key
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (carts, fixture) = $fresh().await;
                $crate::carts::$case(&*carts, &fixture).await;
            }
        )*
    };
}

/// Users the store knows (a store that checks users, like PostgreSQL's, must have them), with
/// empty carts.
#[derive(Debug, Clone)]
pub struct CartFixture {
    pub users: [UserId; 2],
}

/// A made-up product id, ascending with each call (UUID v7).
pub fn product_id() -> ProductId {
    ProductId::from_uuid(Uuid::now_v7())
}

/// `n` product ids in ascending order.
pub fn product_ids(n: usize) -> Vec<ProductId> {
    let mut ids: Vec<ProductId> = (0..n).map(|_| product_id()).collect();
    ids.sort();
    ids
}

pub fn qty(n: u32) -> Quantity {
    Quantity::from_trusted(n)
}

/// The cart's lines as (product, quantity), in the cart's order (ascending product id).
pub fn lines(cart: &Cart) -> Vec<(ProductId, u32)> {
    cart.items().iter().map(|i| (i.product_id, i.quantity.get())).collect()
}

#[track_caller]
fn assert_rejected(e: StoreError, field: &str) {
    assert!(
        matches!(e, StoreError::Rejected { field: ref f, .. } if f == field),
        "expected Rejected({field}), got {e:?}"
    );
}

pub async fn an_unknown_cart_is_empty(carts: &dyn CartRepository, f: &CartFixture) {
    let cart = carts.get(f.users[0]).await.unwrap();
    assert!(cart.is_empty());
    assert_eq!(cart.user_id, f.users[0]);
}

pub async fn add_set_remove_clear(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(3);
    assert_eq!(lines(&carts.add(u, p[1], qty(2)).await.unwrap()), vec![(p[1], 2)]);
    assert_eq!(lines(&carts.add(u, p[1], qty(3)).await.unwrap()), vec![(p[1], 5)]);
    assert_eq!(lines(&carts.add(u, p[0], qty(1)).await.unwrap()), vec![(p[0], 1), (p[1], 5)]);
    assert_eq!(lines(&carts.set(u, p[1], qty(7)).await.unwrap()), vec![(p[0], 1), (p[1], 7)]);
    assert_eq!(lines(&carts.set(u, p[2], qty(4)).await.unwrap()), vec![(p[0], 1), (p[1], 7), (p[2], 4)]);
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0], 1), (p[1], 7), (p[2], 4)]);

    assert_eq!(lines(&carts.remove(u, p[1]).await.unwrap().unwrap()), vec![(p[0], 1), (p[2], 4)]);
    assert_eq!(carts.remove(u, p[1]).await.unwrap(), None);
    carts.clear(u).await.unwrap();
    carts.clear(u).await.unwrap();
    let cart = carts.get(u).await.unwrap();
    assert!(cart.is_empty());
    assert_eq!(cart.user_id, u);
}

pub async fn a_quantity_above_the_maximum_is_refused_and_changes_nothing(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_id();
    carts.add(u, p, qty(Quantity::MAX - 1)).await.unwrap();
    assert_rejected(carts.add(u, p, qty(2)).await.unwrap_err(), "quantity");
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, Quantity::MAX - 1)]);
    assert_eq!(lines(&carts.add(u, p, qty(1)).await.unwrap()), vec![(p, Quantity::MAX)]);
    assert_eq!(lines(&carts.set(u, p, qty(Quantity::MAX)).await.unwrap()), vec![(p, Quantity::MAX)]);
    assert_rejected(carts.add(u, p, qty(1)).await.unwrap_err(), "quantity");
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, Quantity::MAX)]);
}

pub async fn a_line_beyond_the_maximum_count_is_refused_and_changes_nothing(
    carts: &dyn CartRepository,
    f: &CartFixture,
) {
    let u = f.users[0];
    let ids = product_ids(Cart::MAX_LINES);
    for &p in &ids {
        carts.add(u, p, qty(1)).await.unwrap();
    }
    let extra = product_id();
    assert_rejected(carts.add(u, extra, qty(1)).await.unwrap_err(), "product_id");
    assert_rejected(carts.set(u, extra, qty(1)).await.unwrap_err(), "product_id");
    let cart = carts.get(u).await.unwrap();
    assert_eq!(cart.items().len(), Cart::MAX_LINES);
    assert!(cart.items().iter().all(|i| i.product_id != extra));
    // Lines already there still change, and a freed line can be taken.
    assert_eq!(lines(&carts.add(u, ids[5], qty(1)).await.unwrap())[5], (ids[5], 2));
    assert_eq!(carts.set(u, ids[6], qty(9)).await.unwrap().items().len(), Cart::MAX_LINES);
    carts.remove(u, ids[0]).await.unwrap().unwrap();
    assert_eq!(carts.add(u, extra, qty(1)).await.unwrap().items().len(), Cart::MAX_LINES);
}

pub async fn removing_an_absent_line_reports_it_and_changes_nothing(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    assert_eq!(carts.remove(u, p[0]).await.unwrap(), None, "empty cart");
    carts.add(u, p[1], qty(3)).await.unwrap();
    assert_eq!(carts.remove(u, p[0]).await.unwrap(), None, "other line");
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[1], 3)]);
}

pub async fn carts_of_different_users_are_separate(carts: &dyn CartRepository, f: &CartFixture) {
    let [a, b] = f.users;
    let p = product_ids(2);
    carts.add(a, p[0], qty(1)).await.unwrap();
    carts.add(b, p[0], qty(5)).await.unwrap();
    carts.add(b, p[1], qty(2)).await.unwrap();
    assert_eq!(lines(&carts.get(a).await.unwrap()), vec![(p[0], 1)]);
    assert_eq!(lines(&carts.get(b).await.unwrap()), vec![(p[0], 5), (p[1], 2)]);
    carts.clear(b).await.unwrap();
    assert_eq!(lines(&carts.get(a).await.unwrap()), vec![(p[0], 1)]);
    assert!(carts.get(b).await.unwrap().is_empty());
    assert_eq!(carts.remove(a, p[1]).await.unwrap(), None, "b's line is not a's");
}

pub async fn a_cleared_cart_takes_new_lines(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(4)).await.unwrap();
    carts.clear(u).await.unwrap();
    assert_eq!(lines(&carts.add(u, p[0], qty(1)).await.unwrap()), vec![(p[0], 1)], "the old quantity is gone");
    assert_eq!(lines(&carts.set(u, p[1], qty(2)).await.unwrap()), vec![(p[0], 1), (p[1], 2)]);
}

pub async fn concurrent_adds_lose_no_update(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    let adds = (0..40).map(|i| carts.add(u, p[i % 2], qty(3)));
    for r in join_all(adds).await {
        r.unwrap();
    }
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0], 60), (p[1], 60)]);
}

pub async fn concurrent_new_lines_never_pass_the_line_limit(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let ids = product_ids(Cart::MAX_LINES + 20);
    let adds = ids.iter().map(|&p| carts.add(u, p, qty(1)));
    let mut refused = 0;
    for r in join_all(adds).await {
        match r {
            Ok(_) => {}
            Err(StoreError::Rejected { field, .. }) if field == "product_id" => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 20);
    assert_eq!(carts.get(u).await.unwrap().items().len(), Cart::MAX_LINES);
}

pub async fn concurrent_changes_to_many_carts_stay_apart(carts: &dyn CartRepository, f: &CartFixture) {
    let [a, b] = f.users;
    let p = &product_ids(4);
    let changes = (0..24).map(|i| async move {
        let user = if i % 2 == 0 { a } else { b };
        carts.add(user, p[i % 4], qty(1)).await.map(|_| ())
    });
    for r in join_all(changes).await {
        r.unwrap();
    }
    assert_eq!(lines(&carts.get(a).await.unwrap()), vec![(p[0], 6), (p[2], 6)]);
    assert_eq!(lines(&carts.get(b).await.unwrap()), vec![(p[1], 6), (p[3], 6)]);
}

// Claims: the interleavings of a checkout (claim, order, settle) with the cart's own changes.
// Each case plays one interleaving step by step, so it is deterministic on every store.

pub fn checkout_key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

/// Claims the cart for `key` and returns the held lines and whether the claim is new; panics if
/// another key holds it.
pub async fn claim(carts: &dyn CartRepository, user: UserId, key: &str) -> (Vec<(ProductId, u32)>, bool) {
    match carts.claim(user, &checkout_key(key), SystemClock.now()).await.unwrap() {
        Claim::Held { cart, fresh } => {
            assert_eq!(cart.user_id, user);
            (lines(&cart), fresh)
        }
        busy => panic!("expected the cart held for {key}, got {busy:?}"),
    }
}

/// The lines a new claim for `key` holds.
pub async fn held(carts: &dyn CartRepository, user: UserId, key: &str) -> Vec<(ProductId, u32)> {
    let (held, fresh) = claim(carts, user, key).await;
    assert!(fresh, "a new claim for {key}");
    held
}

pub async fn a_settled_claim_removes_what_it_held(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(2)).await.unwrap();
    carts.set(u, p[1], qty(3)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 2), (p[1], 3)]);
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert!(carts.get(u).await.unwrap().is_empty());
}

pub async fn an_add_after_the_claim_survives_the_settle(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(1)).await.unwrap();
    carts.add(u, p[1], qty(4)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 1), (p[1], 4)]);
    carts.add(u, p[0], qty(2)).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0], 3), (p[1], 4)]);
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0], 2)], "the 2 added after the claim stay");
}

pub async fn a_set_after_the_claim_stands(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(1)).await.unwrap();
    carts.add(u, p[1], qty(2)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 1), (p[1], 2)]);
    carts.set(u, p[0], qty(5)).await.unwrap();
    // Set to what it was: still a change the user made after the order's snapshot.
    carts.set(u, p[1], qty(2)).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[0], 5), (p[1], 2)]);
}

pub async fn a_line_removed_and_added_again_after_the_claim_stands(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_id();
    carts.add(u, p, qty(3)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p, 3)]);
    carts.remove(u, p).await.unwrap().unwrap();
    carts.add(u, p, qty(3)).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, 3)]);
}

pub async fn a_new_line_after_the_claim_stays(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(1)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 1)]);
    carts.add(u, p[1], qty(6)).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p[1], 6)]);
}

pub async fn a_clear_after_the_claim_leaves_nothing_to_settle(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(1)).await.unwrap();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 1)]);
    carts.clear(u).await.unwrap();
    carts.add(u, p[0], qty(2)).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(
        lines(&carts.get(u).await.unwrap()),
        vec![(p[0], 2)],
        "the line made after the clear is not the held one"
    );
}

pub async fn a_second_settle_removes_nothing(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_id();
    carts.add(u, p, qty(2)).await.unwrap();
    held(carts, u, "k1").await;
    carts.add(u, p, qty(1)).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, 1)]);
    // A settle of a key that never claimed changes nothing either.
    carts.settle(u, &checkout_key("never")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, 1)]);
}

pub async fn a_released_claim_changes_nothing(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_id();
    carts.add(u, p, qty(2)).await.unwrap();
    held(carts, u, "k1").await;
    carts.release(u, &checkout_key("k1")).await.unwrap();
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, 2)]);
    assert_eq!(held(carts, u, "k2").await, vec![(p, 2)], "the cart is free again");
}

pub async fn one_key_holds_a_cart_at_a_time(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_ids(2);
    carts.add(u, p[0], qty(1)).await.unwrap();
    let before = SystemClock.now();
    assert_eq!(held(carts, u, "k1").await, vec![(p[0], 1)]);
    match carts.claim(u, &checkout_key("k2"), SystemClock.now()).await.unwrap() {
        Claim::Busy { key, since } => {
            assert_eq!(key, checkout_key("k1"));
            assert!(since >= before && since <= SystemClock.now(), "since {since}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // The holder gets what it holds, not the cart as it is now (a retry orders the same lines).
    carts.add(u, p[1], qty(2)).await.unwrap();
    assert_eq!(claim(carts, u, "k1").await, (vec![(p[0], 1)], false));
    carts.settle(u, &checkout_key("k1")).await.unwrap();
    assert_eq!(held(carts, u, "k2").await, vec![(p[1], 2)]);
}

pub async fn an_empty_cart_is_claimed_without_holding_it(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    assert_eq!(held(carts, u, "k1").await, vec![]);
    assert_eq!(held(carts, u, "k2").await, vec![], "nothing held: another key may claim");
    let p = product_id();
    carts.add(u, p, qty(1)).await.unwrap();
    assert_eq!(held(carts, u, "k3").await, vec![(p, 1)]);
}

pub async fn claims_of_different_users_are_separate(carts: &dyn CartRepository, f: &CartFixture) {
    let [a, b] = f.users;
    let p = product_id();
    carts.add(a, p, qty(1)).await.unwrap();
    carts.add(b, p, qty(2)).await.unwrap();
    assert_eq!(held(carts, a, "k").await, vec![(p, 1)]);
    assert_eq!(held(carts, b, "k").await, vec![(p, 2)]);
    carts.settle(a, &checkout_key("k")).await.unwrap();
    assert!(carts.get(a).await.unwrap().is_empty());
    assert_eq!(lines(&carts.get(b).await.unwrap()), vec![(p, 2)]);
}

pub async fn concurrent_claims_hold_the_cart_for_one_key(carts: &dyn CartRepository, f: &CartFixture) {
    let u = f.users[0];
    let p = product_id();
    carts.add(u, p, qty(1)).await.unwrap();
    let keys: Vec<IdempotencyKey> = (0..10).map(|i| checkout_key(&format!("k{i}"))).collect();
    let claims = keys.iter().map(|k| carts.claim(u, k, SystemClock.now()));
    let mut holders = Vec::new();
    for (k, r) in keys.iter().zip(join_all(claims).await) {
        match r.unwrap() {
            Claim::Held { cart, fresh } => {
                assert_eq!((lines(&cart), fresh), (vec![(p, 1)], true));
                holders.push(k.clone());
            }
            Claim::Busy { key, .. } => assert_ne!(&key, k),
        }
    }
    assert_eq!(holders.len(), 1, "one holder, got {holders:?}");
}
