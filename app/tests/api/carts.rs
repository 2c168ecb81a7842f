use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_cart_is_filled_changed_and_emptied() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let a = app.product("Apple", "food", 50).await;
    let b = app.product("Bread", "food", 300).await;
    let (a, b) = (id_of(&a), id_of(&b));
    let cart = format!("/users/{user}/cart");

    let empty = app.get(&cart).bearer(&token).send().await;
    assert_eq!(empty.assert_status(200), &json!({"user_id": user, "items": []}));

    app.add_to_cart(&user, &token, b, 1).await;
    app.add_to_cart(&user, &token, a, 2).await;
    let summed = app.add_to_cart(&user, &token, a, 3).await;
    let mut expected = vec![json!({"product_id": a, "quantity": 5}), json!({"product_id": b, "quantity": 1})];
    expected.sort_by(|x, y| x["product_id"].as_str().cmp(&y["product_id"].as_str()));
    assert_eq!(summed["items"], json!(expected), "adding sums into the line; items sorted by product id");

    let set = app.put(&format!("{cart}/items/{a}")).bearer(&token).json(&json!({"quantity": 2})).send().await;
    let set = set.assert_status(200);
    let line = set["items"].as_array().unwrap().iter().find(|i| i["product_id"] == a).unwrap();
    assert_eq!(line["quantity"], 2, "PUT sets the quantity");

    let removed = app.delete(&format!("{cart}/items/{b}")).bearer(&token).send().await;
    assert_eq!(removed.assert_status(200)["items"], json!([{"product_id": a, "quantity": 2}]));
    app.delete(&format!("{cart}/items/{b}")).bearer(&token).send().await.assert_error(404, "not_found", None);

    assert_eq!(&app.get(&cart).bearer(&token).send().await.body, removed.assert_status(200), "stored");
    assert!(app.delete(&cart).bearer(&token).send().await.assert_status(204).is_null());
    assert_eq!(app.get(&cart).bearer(&token).send().await.body["items"], json!([]));
    app.delete(&cart).bearer(&token).send().await.assert_status(204);
}

#[tokio::test]
async fn put_adds_a_missing_line() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let p = app.product("Apple", "food", 50).await;
    let r = app
        .put(&format!("/users/{user}/cart/items/{}", id_of(&p)))
        .bearer(&token)
        .json(&json!({"quantity": 7}))
        .send()
        .await;
    assert_eq!(r.assert_status(200)["items"], json!([{"product_id": id_of(&p), "quantity": 7}]));
}

#[tokio::test]
async fn quantities_and_products_are_checked() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let p = app.product("Apple", "food", 50).await;
    let p = id_of(&p);
    let items = format!("/users/{user}/cart/items");
    let post = |body: serde_json::Value| app.post(&items).bearer(&token).json(&body).send();

    for q in [0, -1, 1000] {
        post(json!({"product_id": p, "quantity": q})).await.assert_error(422, "validation_failed", Some("quantity"));
    }
    post(json!({"product_id": uuid::Uuid::now_v7(), "quantity": 1})).await.assert_error(
        422,
        "validation_failed",
        Some("product_id"),
    );
    post(json!({"product_id": "apple", "quantity": 1})).await.assert_error(400, "bad_request", Some("product_id"));
    post(json!({"product_id": p, "quantity": "2"})).await.assert_error(400, "bad_request", Some("quantity"));
    post(json!({"product_id": p})).await.assert_error(400, "bad_request", Some("quantity"));
    post(json!({"product_id": p, "quantity": 1, "price_cents": 0})).await.assert_error(
        400,
        "bad_request",
        Some("price_cents"),
    );

    // A line never exceeds 999, and a refused add changes nothing.
    app.add_to_cart(&user, &token, p, 999).await;
    post(json!({"product_id": p, "quantity": 1})).await.assert_error(422, "validation_failed", Some("quantity"));
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.body["items"], json!([{"product_id": p, "quantity": 999}]));

    let put = format!("{items}/{p}");
    app.put(&put).bearer(&token).json(&json!({"quantity": 1000})).send().await.assert_error(
        422,
        "validation_failed",
        Some("quantity"),
    );
    app.put(&put).bearer(&token).json(&json!({"quantity": 1.0})).send().await.assert_error(
        400,
        "bad_request",
        Some("quantity"),
    );
    app.put(&format!("{items}/not-a-uuid")).bearer(&token).json(&json!({"quantity": 1})).send().await.assert_error(
        400,
        "bad_request",
        Some("product_id"),
    );
    let ghost = format!("{items}/{}", uuid::Uuid::now_v7());
    app.put(&ghost).bearer(&token).json(&json!({"quantity": 1})).send().await.assert_error(
        422,
        "validation_failed",
        Some("product_id"),
    );
}

#[tokio::test]
async fn a_cart_belongs_to_its_user() {
    let app = spawn_app().await;
    let (ann, ann_token) = app.user().await;
    let (_, bob_token) = app.user().await;
    let p = app.product("Apple", "food", 50).await;
    let cart = format!("/users/{ann}/cart");
    let body = json!({"product_id": id_of(&p), "quantity": 1});

    app.get(&cart).bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    app.post(&format!("{cart}/items")).bearer(&bob_token).json(&body).send().await.assert_error(403, "forbidden", None);
    app.delete(&cart).bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    app.get(&cart).send().await.assert_error(401, "unauthenticated", None);
    // No token is refused before the body is looked at.
    app.post(&format!("{cart}/items")).raw(Some("application/json"), "{").send().await.assert_error(
        401,
        "unauthenticated",
        None,
    );
    app.post(&format!("{cart}/items")).admin().json(&body).send().await.assert_status(200);
    let seen = app.get(&cart).bearer(&ann_token).send().await;
    assert_eq!(seen.assert_status(200)["items"][0]["quantity"], 1, "the admin filled ann's cart");
    let nobody = format!("/users/{}/cart", uuid::Uuid::now_v7());
    app.get(&nobody).admin().send().await.assert_error(404, "not_found", None);
    app.get("/users/me/cart").bearer(&ann_token).send().await.assert_error(400, "bad_request", Some("user_id"));
}

/// A stage-redis build keeps the carts in Redis: none reach PostgreSQL's `cart_items`, checkout
/// still turns the Redis cart into a PostgreSQL order and empties the cart, and a replayed
/// checkout returns the same order.
#[cfg(feature = "stage-redis")]
#[tokio::test]
async fn carts_live_in_redis_in_a_stage_redis_build() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let tea = app.product("Tea", "drinks", 300).await;
    app.add_to_cart(&user, &token, id_of(&tea), 2).await;

    let pg = test_support::pg::connect(&app.db).await;
    let count = |sql: &'static str| {
        let pg = &pg;
        async move { pg.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM cart_items").await, 0, "the cart is not in postgres");
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.assert_status(200)["items"], json!([{"product_id": id_of(&tea), "quantity": 2}]));

    let order = app.checkout(&user, &token, "redis-1").await;
    assert_eq!(order.assert_status(201)["total_cents"], 600);
    assert_eq!(count("SELECT count(*) FROM orders").await, 1);
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.assert_status(200)["items"], json!([]), "checkout emptied the Redis cart");
    assert_eq!(app.checkout(&user, &token, "redis-1").await.assert_status(200)["id"], order.body["id"], "a replay");

    // The adapter's metrics reach /metrics: where reads went, store timings by operation.
    let metrics = app.get("/metrics").send().await;
    assert!(metrics.text.contains("shop_redis_reads_total{"), "{}", metrics.text);
    assert!(metrics.text.lines().any(|l| l.starts_with("shop_store_seconds_bucket{")
        && l.contains(r#"store="redis""#)
        && l.contains(r#"op="carts.add""#)));
}
