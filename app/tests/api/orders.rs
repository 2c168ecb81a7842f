use crate::helpers::*;
use serde_json::{json, Value};

/// A user with two products in the cart: 2 x 250 and 1 x 1000.
async fn filled_cart(app: &TestApp) -> (String, String, Value, Value) {
    let (user, token) = app.user().await;
    let a = app.product("Socks", "clothes", 250).await;
    let b = app.product("Shoes", "clothes", 1000).await;
    app.add_to_cart(&user, &token, id_of(&a), 2).await;
    app.add_to_cart(&user, &token, id_of(&b), 1).await;
    (user, token, a, b)
}

#[tokio::test]
async fn checkout_turns_the_cart_into_an_order_and_empties_it() {
    let app = spawn_app().await;
    let (user, token, a, b) = filled_cart(&app).await;
    let r = app.checkout(&user, &token, "order-1").await;
    let order = r.assert_status(201).clone();
    let id = id_of(&order);
    assert_eq!(r.header("location"), Some(format!("/users/{user}/orders/{id}").as_str()));
    assert_eq!((&order["user_id"], &order["status"]), (&json!(user), &json!("created")));
    assert_eq!(order["total_cents"], 1500);
    let mut lines = vec![
        json!({"product_id": id_of(&a), "name": "Socks", "unit_price_cents": 250, "quantity": 2, "line_total_cents": 500}),
        json!({"product_id": id_of(&b), "name": "Shoes", "unit_price_cents": 1000, "quantity": 1, "line_total_cents": 1000}),
    ];
    lines.sort_by(|x, y| x["product_id"].as_str().cmp(&y["product_id"].as_str()));
    assert_eq!(order["lines"], json!(lines));
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.body["items"], json!([]), "the cart is emptied");
    let got = app.get(&format!("/users/{user}/orders/{id}")).bearer(&token).send().await;
    assert_eq!(got.assert_status(200), &order);
}

#[tokio::test]
async fn a_retried_checkout_with_the_same_key_makes_one_order() {
    let app = spawn_app().await;
    let (user, token, a, _) = filled_cart(&app).await;
    let first = app.checkout(&user, &token, "retry-me").await.assert_status(201).clone();
    // The cart is filled again before the retry arrives: the retry must not order it.
    app.add_to_cart(&user, &token, id_of(&a), 1).await;
    let retry = app.checkout(&user, &token, "retry-me").await;
    assert_eq!(retry.assert_status(200), &first, "the same order, status 200");
    let orders = app.get(&format!("/users/{user}/orders")).bearer(&token).send().await;
    assert_eq!(orders.assert_status(200)["items"].as_array().unwrap().len(), 1);
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.body["items"].as_array().unwrap().len(), 1, "the new cart is untouched");
    // A new key is a new order.
    let second = app.checkout(&user, &token, "another").await;
    assert_ne!(id_of(second.assert_status(201)), id_of(&first));
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order() {
    let app = spawn_app().await;
    let (user, token, _, _) = filled_cart(&app).await;
    let (r1, r2) = tokio::join!(app.checkout(&user, &token, "twice"), app.checkout(&user, &token, "twice"));
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "one creates, the other replays: {} / {}", r1.text, r2.text);
    assert_eq!(id_of(&r1.body), id_of(&r2.body));
    let orders = app.get(&format!("/users/{user}/orders")).bearer(&token).send().await;
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn checkout_needs_a_valid_idempotency_key() {
    let app = spawn_app().await;
    let (user, token, _, _) = filled_cart(&app).await;
    let path = format!("/users/{user}/orders");
    let r = app.post(&path).bearer(&token).send().await;
    r.assert_error(400, "bad_request", Some("Idempotency-Key"));
    for bad in ["k".repeat(101), "has space".to_string(), String::new()] {
        let r = app.post(&path).bearer(&token).header("Idempotency-Key", &bad).send().await;
        r.assert_error(400, "bad_request", Some("Idempotency-Key"));
    }
    let key = |k: &str| app.post(&path).bearer(&token).header("Idempotency-Key", k);
    key("k1").json(&json!({"express": true})).send().await.assert_error(400, "bad_request", Some("express"));
    key("k1").raw(Some("text/plain"), "please").send().await.assert_error(
        415,
        "unsupported_media_type",
        Some("Content-Type"),
    );
    key("k1").raw(Some("application/json"), "[").send().await.assert_error(400, "bad_request", None);
    assert!(app.get(&path).bearer(&token).send().await.body["items"].as_array().unwrap().is_empty(), "no order yet");
    key("k".repeat(100).as_str()).json(&json!({})).send().await.assert_status(201);
}

#[tokio::test]
async fn an_empty_cart_cannot_be_ordered() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    app.checkout(&user, &token, "k").await.assert_error(409, "cart_empty", None);
    let (_, token2, _, _) = filled_cart(&app).await;
    let r = app.post(&format!("/users/{user}/orders")).bearer(&token2).header("Idempotency-Key", "k").send().await;
    r.assert_error(403, "forbidden", None);
}

/// A withdrawn product stays in the carts that hold it (on every store: carts in Redis cannot
/// cascade); checkout refuses the cart until the line is removed, and never orders the product.
#[tokio::test]
async fn a_withdrawn_product_stays_in_carts_and_blocks_checkout_until_removed() {
    let app = spawn_app().await;
    let (user, token, a, b) = filled_cart(&app).await;
    app.delete(&format!("/products/{}", id_of(&a))).admin().send().await.assert_status(204);
    let cart_path = format!("/users/{user}/cart");
    let cart = app.get(&cart_path).bearer(&token).send().await.assert_status(200).clone();
    let mut items =
        vec![json!({"product_id": id_of(&a), "quantity": 2}), json!({"product_id": id_of(&b), "quantity": 1})];
    items.sort_by(|x, y| x["product_id"].as_str().cmp(&y["product_id"].as_str()));
    assert_eq!(cart["items"], json!(items));

    let refused = app.checkout(&user, &token, "k").await;
    refused.assert_error(409, "product_unavailable", Some("product_id"));
    assert!(refused.body["message"].as_str().unwrap().contains(id_of(&a)), "{}", refused.text);
    assert_eq!(app.get(&cart_path).bearer(&token).send().await.body, cart, "a refused checkout changes nothing");
    let orders = app.get(&format!("/users/{user}/orders")).bearer(&token).send().await;
    assert!(orders.assert_status(200)["items"].as_array().unwrap().is_empty());

    app.delete(&format!("{cart_path}/items/{}", id_of(&a))).bearer(&token).send().await.assert_status(200);
    let order = app.checkout(&user, &token, "k").await;
    let order = order.assert_status(201);
    assert_eq!(order["total_cents"], 1000);
    assert_eq!(order["lines"].as_array().unwrap().len(), 1);
    assert_eq!(order["lines"][0]["product_id"], id_of(&b));
}

#[tokio::test]
async fn an_order_keeps_the_prices_of_its_checkout() {
    let app = spawn_app().await;
    let (user, token, a, _) = filled_cart(&app).await;
    let order = app.checkout(&user, &token, "k").await.assert_status(201).clone();
    let path = format!("/products/{}", id_of(&a));
    app.patch(&path).admin().json(&json!({"price_cents": 9999, "name": "Gold socks"})).send().await.assert_status(200);
    let again = app.get(&format!("/users/{user}/orders/{}", id_of(&order))).bearer(&token).send().await;
    assert_eq!(again.assert_status(200), &order);
}

#[tokio::test]
async fn orders_are_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let p = app.product("Pen", "office", 100).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        app.add_to_cart(&user, &token, id_of(&p), 1).await;
        let o = app.checkout(&user, &token, &format!("k{i}")).await;
        ids.push(id_of(o.assert_status(201)).to_string());
    }
    ids.reverse();
    let path = format!("/users/{user}/orders");
    let page1 = app.get(&format!("{path}?limit=2")).bearer(&token).send().await.assert_status(200).clone();
    let got: Vec<&str> = page1["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let next = page1["next"].as_str().unwrap();
    let page2 = app.get(&format!("{path}?limit=2&after={next}")).bearer(&token).send().await;
    let page2 = page2.assert_status(200);
    assert_eq!(page2["items"].as_array().unwrap().iter().map(id_of).collect::<Vec<_>>(), [ids[2].as_str()]);
    assert!(page2["next"].is_null());
    app.get(&format!("{path}?limit=500")).bearer(&token).send().await.assert_error(400, "bad_request", Some("limit"));

    let (_, other) = app.user().await;
    app.get(&path).bearer(&other).send().await.assert_error(403, "forbidden", None);
    app.get(&path).send().await.assert_error(401, "unauthenticated", None);
}

#[tokio::test]
async fn an_order_is_seen_only_under_its_user() {
    let app = spawn_app().await;
    let (user, token, _, _) = filled_cart(&app).await;
    let order = app.checkout(&user, &token, "k").await.assert_status(201).clone();
    let (other, other_token) = app.user().await;
    let id = id_of(&order);
    app.get(&format!("/users/{user}/orders/{id}")).bearer(&other_token).send().await.assert_error(
        403,
        "forbidden",
        None,
    );
    let elsewhere = format!("/users/{other}/orders/{id}");
    app.get(&elsewhere).bearer(&other_token).send().await.assert_error(404, "not_found", None);
    let unknown = format!("/users/{user}/orders/{}", uuid::Uuid::now_v7());
    app.get(&unknown).bearer(&token).send().await.assert_error(404, "not_found", None);
    app.get(&format!("/users/{user}/orders/latest")).bearer(&token).send().await.assert_error(
        400,
        "bad_request",
        Some("order_id"),
    );
    app.get(&format!("/users/{user}/orders/{id}")).admin().send().await.assert_status(200);
}

#[tokio::test]
async fn order_status_moves_forward_only() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let p = app.product("Pen", "office", 100).await;
    let mut orders = Vec::new();
    for k in ["a", "b"] {
        app.add_to_cart(&user, &token, id_of(&p), 1).await;
        orders.push(format!("/users/{user}/orders/{}", id_of(app.checkout(&user, &token, k).await.assert_status(201))));
    }
    let set = |path: &str, status: &str, admin: bool| {
        let call = app.patch(path).json(&json!({"status": status}));
        if admin { call.admin() } else { call.bearer(&token) }.send()
    };
    let first = &orders[0];

    let paid = set(first, "paid", false).await;
    assert_eq!(paid.assert_status(200)["status"], "paid");
    assert!(paid.body["updated_at"].as_str() >= paid.body["created_at"].as_str());
    assert_eq!(set(first, "paid", false).await.assert_status(200)["status"], "paid", "repeating is a no-op");
    set(first, "shipped", false).await.assert_error(403, "forbidden", None);
    assert_eq!(set(first, "shipped", true).await.assert_status(200)["status"], "shipped");
    set(first, "cancelled", false).await.assert_error(409, "invalid_transition", Some("status"));
    set(first, "created", true).await.assert_error(409, "invalid_transition", Some("status"));
    let stored = app.get(first).bearer(&token).send().await;
    assert_eq!(stored.body["status"], "shipped");

    let second = &orders[1];
    set(second, "shipped", true).await.assert_error(409, "invalid_transition", Some("status"));
    assert_eq!(set(second, "cancelled", false).await.assert_status(200)["status"], "cancelled");
    set(second, "paid", false).await.assert_error(409, "invalid_transition", Some("status"));

    set(second, "lost", false).await.assert_error(422, "validation_failed", Some("status"));
    app.patch(second).bearer(&token).json(&json!({})).send().await.assert_error(400, "bad_request", Some("status"));
    app.patch(second).bearer(&token).json(&json!({"status": 1})).send().await.assert_error(
        400,
        "bad_request",
        Some("status"),
    );
    let (_, other) = app.user().await;
    app.patch(second).bearer(&other).json(&json!({"status": "paid"})).send().await.assert_error(403, "forbidden", None);
}
