//! One user's own requests racing each other over HTTP, on the stage's real stores (this suite
//! runs on every stage build): a cart change against a checkout, a replayed checkout against a
//! change, checkouts with different keys. Over many rounds, every acknowledged change ends up
//! exactly once in either the cart or an order: never lost, never ordered twice.

use crate::helpers::*;
use serde_json::{json, Value};

const ROUNDS: usize = 25;

/// The quantity of `product` in a cart or order body's lines/items.
fn qty_in(lines: &Value, product: &str) -> i64 {
    lines
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["product_id"] == product)
        .map(|l| l["quantity"].as_i64().unwrap())
        .sum()
}

/// Everything ordered of `product` by the user, over all their orders.
async fn ordered(app: &TestApp, user: &str, token: &str, product: &str) -> (i64, usize) {
    let orders = app.get(&format!("/users/{user}/orders?limit=100")).bearer(token).send().await;
    let items = orders.assert_status(200)["items"].as_array().unwrap().clone();
    (items.iter().map(|o| qty_in(&o["lines"], product)).sum(), items.len())
}

/// The app with one product and one user: (app, product id, user id, the user's token).
async fn shop() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let p = id_of(&app.product("Glue", "tools", 300).await).to_string();
    let (user, token) = app.user().await;
    (app, p, user, token)
}

/// An add of `quantity` to the product's line, ready to send.
fn add<'a>(app: &'a TestApp, user: &str, token: &str, p: &str, quantity: i64) -> Call<'a> {
    app.post(&format!("/users/{user}/cart/items")).bearer(token).json(&json!({"product_id": p, "quantity": quantity}))
}

async fn in_cart(app: &TestApp, user: &str, token: &str, product: &str) -> i64 {
    let cart = app.get(&format!("/users/{user}/cart")).bearer(token).send().await;
    qty_in(&cart.assert_status(200)["items"], product)
}

#[tokio::test]
async fn an_add_racing_a_checkout_is_kept_or_ordered_never_lost() {
    let (app, p, user, token) = shop().await;
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        app.add_to_cart(&user, &token, &p, 1).await;
        acknowledged += 1;
        let adding = add(&app, &user, &token, &p, 2);
        let key = format!("k{round}");
        let (added, checkout) = tokio::join!(adding.send(), app.checkout(&user, &token, &key));
        added.assert_status(200);
        acknowledged += 2;
        assert!([200, 201].contains(&checkout.status), "round {round}: {}", checkout.text);
    }
    let (ordered, _) = ordered(&app, &user, &token, &p).await;
    assert_eq!(ordered + in_cart(&app, &user, &token, &p).await, acknowledged, "ordered {ordered}");
}

#[tokio::test]
async fn a_set_racing_a_checkout_stands_or_is_ordered_whole() {
    let (app, p, user, token) = shop().await;
    for round in 0..ROUNDS {
        app.add_to_cart(&user, &token, &p, 1).await;
        let (before, _) = ordered(&app, &user, &token, &p).await;
        let set = app.put(&format!("/users/{user}/cart/items/{p}")).bearer(&token).json(&json!({"quantity": 5}));
        let key = format!("k{round}");
        let (set, checkout) = tokio::join!(set.send(), app.checkout(&user, &token, &key));
        set.assert_status(200);
        let now_ordered = qty_in(&checkout.assert_status(201)["lines"], &p);
        let left = in_cart(&app, &user, &token, &p).await;
        // The set came after the checkout's claim (1 ordered, 5 stay) or before it (5 ordered).
        assert!(
            (now_ordered, left) == (1, 5) || (now_ordered, left) == (5, 0),
            "round {round}: ordered {now_ordered}, left {left}"
        );
        assert_eq!(ordered(&app, &user, &token, &p).await.0, before + now_ordered);
        app.delete(&format!("/users/{user}/cart")).bearer(&token).send().await.assert_status(204);
    }
}

#[tokio::test]
async fn a_replayed_checkout_racing_an_add_orders_nothing_twice() {
    let (app, p, user, token) = shop().await;
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        app.add_to_cart(&user, &token, &p, 1).await;
        acknowledged += 1;
        let key = format!("k{round}");
        // The first checkout and its replay (a proxy resending it) race an add.
        let adding = add(&app, &user, &token, &p, 3);
        let (first, replay, added) =
            tokio::join!(app.checkout(&user, &token, &key), app.checkout(&user, &token, &key), adding.send());
        added.assert_status(200);
        acknowledged += 3;
        let ids: Vec<&str> = [&first, &replay].iter().filter(|r| r.status < 300).map(|r| id_of(&r.body)).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "round {round}: one key, one order: {ids:?}");
    }
    let (ordered, orders) = ordered(&app, &user, &token, &p).await;
    assert_eq!(orders, ROUNDS, "one order per key");
    assert_eq!(ordered + in_cart(&app, &user, &token, &p).await, acknowledged, "ordered {ordered}");
}

#[tokio::test]
async fn concurrent_checkouts_with_other_keys_order_one_cart_once() {
    let (app, p, user, token) = shop().await;
    for round in 0..5 {
        app.add_to_cart(&user, &token, &p, 2).await;
        let keys: Vec<String> = (0..10).map(|i| format!("r{round}-k{i}")).collect();
        let checkouts = keys.iter().map(|k| app.checkout(&user, &token, k));
        let answers = futures_util::future::join_all(checkouts).await;
        let created = answers.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 1, "round {round}: {:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
        for r in answers.iter().filter(|r| r.status != 201) {
            assert!(["cart_empty", "checkout_in_progress"].contains(&r.code()), "round {round}: {}", r.text);
        }
    }
    let (ordered, orders) = ordered(&app, &user, &token, &p).await;
    assert_eq!((ordered, orders), (10, 5));
    assert_eq!(in_cart(&app, &user, &token, &p).await, 0);
}

#[tokio::test]
async fn a_payment_racing_a_cancellation_ends_cancelled_or_refuses_the_payment() {
    let (app, p, user, token) = shop().await;
    for round in 0..ROUNDS {
        app.add_to_cart(&user, &token, &p, 1).await;
        let order = app.checkout(&user, &token, &format!("k{round}")).await;
        let path = format!("/users/{user}/orders/{}", id_of(order.assert_status(201)));
        let pay = app.patch(&path).bearer(&token).json(&json!({"status": "paid"}));
        let cancel = app.patch(&path).bearer(&token).json(&json!({"status": "cancelled"}));
        let (pay, cancel) = tokio::join!(pay.send(), cancel.send());
        // Paid -> cancelled is legal: the cancellation always succeeds.
        assert_eq!(cancel.assert_status(200)["status"], "cancelled", "round {round}");
        if pay.status != 200 {
            pay.assert_error(409, "invalid_transition", Some("status"));
        }
        let stored = app.get(&path).bearer(&token).send().await;
        assert_eq!(stored.assert_status(200)["status"], "cancelled", "round {round}");
    }
}
