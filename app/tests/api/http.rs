//! The HTTP layer's own rules: routing errors, content types, body size.

use crate::helpers::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let r = app.get("/nope").send().await;
    r.assert_error(404, "not_found", None);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    app.get("/products/").send().await.assert_error(404, "not_found", None);

    let r = app.put("/users").json(&json!({})).send().await;
    r.assert_error(405, "method_not_allowed", None);
    assert_eq!(r.header("allow"), Some("POST, GET, HEAD"));
    let r = app.post("/users/00000000-0000-0000-0000-000000000000/cart").send().await;
    r.assert_error(405, "method_not_allowed", None);
    assert_eq!(r.header("allow"), Some("GET, HEAD, DELETE"));
}

#[tokio::test]
async fn head_answers_every_get_route_like_get_without_a_body() {
    let app = spawn_app().await;
    let product = app.product("Hammer", "tools", 1250).await;
    let (user, token) = app.user().await;
    app.add_to_cart(&user, &token, id_of(&product), 1).await;
    let order = app.checkout(&user, &token, "head-1").await.assert_status(201).clone();
    let fill = |path: &str| {
        path.replace("{user_id}", &user).replace("{product_id}", id_of(&product)).replace("{order_id}", id_of(&order))
    };
    let mut checked = 0;
    for route in app::routes::TABLE.iter().filter(|r| r.method == "GET") {
        let path = fill(route.path);
        let get = app.get(&path).admin().send().await;
        let head = app.head(&path).admin().send().await;
        assert_eq!((head.status, get.status), (200, 200), "HEAD {path}: {}", get.text);
        assert_eq!(head.header("content-type"), get.header("content-type"), "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} sent a body: {}", head.text);
        checked += 1;
    }
    assert_eq!(checked, 10, "every GET route of the table");

    // Errors too: the status and headers of GET, no body.
    let (get, head) =
        (app.get(&fill("/users/{user_id}")).send().await, app.head(&fill("/users/{user_id}")).send().await);
    assert_eq!((head.status, get.status), (401, 401));
    assert_eq!(head.header("www-authenticate"), Some("Bearer"));
    let missing = "/products/00000000-0000-0000-0000-000000000000";
    assert_eq!((app.head(missing).send().await.status, app.get(missing).send().await.status), (404, 404));
    let page = "/products?limit=0";
    assert_eq!((app.head(page).send().await.status, app.get(page).send().await.status), (400, 400));
    // HEAD is not a way around a method the path does not serve.
    let r = app.head(&fill("/users/{user_id}/cart/items")).admin().send().await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn bodies_must_be_json() {
    let app = spawn_app().await;
    let body = r#"{"email": "a@b.org", "name": "Ann"}"#;
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx"), None] {
        let r = app.post("/users").raw(ct, body).send().await;
        r.assert_error(415, "unsupported_media_type", Some("Content-Type"));
    }
    let r = app.post("/users").raw(Some("application/json; charset=utf-8"), body).send().await;
    r.assert_status(201);
    let r = app.post("/users").raw(Some("Application/JSON"), r#"{"email": "b@b.org", "name": "Bo"}"#).send().await;
    r.assert_status(201);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_just_under_are_read() {
    let app = spawn_app().await;
    let limit = 64 * 1024;
    // Exactly at the limit: read and judged on its content (a name this long breaks a rule).
    let name = "x".repeat(limit - r#"{"email":"a@b.org","name":""}"#.len());
    let at_limit = format!(r#"{{"email":"a@b.org","name":"{name}"}}"#);
    assert_eq!(at_limit.len(), limit);
    app.post("/users").raw(Some("application/json"), at_limit).send().await.assert_error(
        422,
        "validation_failed",
        Some("name"),
    );
    let over = format!(r#"{{"email":"a@b.org","name":"{name}x"}}"#);
    app.post("/users").raw(Some("application/json"), over).send().await.assert_error(413, "payload_too_large", None);
}

#[tokio::test]
async fn the_body_limit_is_configurable_and_holds_without_content_length() {
    let app = spawn_app_with(|s| s.http.max_body_bytes = 100).await;
    let ok = app.post("/users").json(&json!({"email": "a@b.org", "name": "Ann"})).send().await;
    ok.assert_status(201);
    let big = json!({"email": "b@b.org", "name": "x".repeat(100)});
    app.post("/users").json(&big).send().await.assert_error(413, "payload_too_large", None);

    // Chunked: the size is unknown until the body arrives.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let chunk = format!(r#"{{"email":"c@b.org","name":"{}"}}"#, "y".repeat(150));
    let request = format!(
        "POST /users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains(r#""code":"payload_too_large""#), "{response}");
}
