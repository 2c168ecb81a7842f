//! The request deadline (`http.request_timeout_ms`, app/src/deadline.rs): a request whose store is
//! stuck is answered 503 within its budget, and a write answered so is not applied later.
//! Carts in PostgreSQL only (the pg stage).
#![cfg(not(feature = "stage-redis"))]

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Carts in PostgreSQL only: a cart add there takes the user's row lock first, which a session of
/// the test holds, as a rejoin's table locks or a hung backend would hold the write.
#[tokio::test]
async fn a_write_stuck_past_the_deadline_answers_503_and_never_commits() {
    let budget = Duration::from_millis(1500);
    let hold = Duration::from_secs(5);
    let app = spawn_app_with(|s| s.http.request_timeout_ms = budget.as_millis() as u64).await;
    let p = app.product("Glue", "tools", 300).await;
    let p = id_of(&p).to_string();
    let (user, token) = app.user().await;
    let uid: uuid::Uuid = user.parse().unwrap();

    let db = test_support::pg::connect(&app.db).await;
    db.batch_execute("BEGIN").await.unwrap();
    db.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&uid]).await.unwrap();
    let locked = Instant::now();
    let r = app
        .post(&format!("/users/{user}/cart/items"))
        .bearer(&token)
        .json(&json!({"product_id": p, "quantity": 2}))
        .send()
        .await;
    let answered = locked.elapsed();
    r.assert_error(503, "unavailable", None);
    assert!(answered >= budget, "answered after {answered:?}, before the budget");
    assert!(answered < hold, "answered after {answered:?}: the service waited for the lock");
    tokio::time::sleep(hold.saturating_sub(locked.elapsed())).await;
    db.batch_execute("COMMIT").await.unwrap();

    // The lock is gone: a write that had been left running would commit now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.assert_status(200)["items"], json!([]), "the add answered 503 was not applied");
    // And the service goes on: the same add now succeeds, once.
    app.add_to_cart(&user, &token, &p, 2).await;
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.assert_status(200)["items"][0]["quantity"], 2);
}

#[tokio::test]
async fn requests_within_the_budget_are_untouched() {
    let app = spawn_app_with(|s| s.http.request_timeout_ms = 3000).await;
    let (user, token) = app.user().await;
    app.get(&format!("/users/{user}/cart")).bearer(&token).send().await.assert_status(200);
}

/// `X-Request-Start` as nginx sets it, for a moment `ago` before now (negative: in the future).
fn sent_ago(ago: f64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    format!("t={:.3}", now - ago)
}

/// A write that waited (in the socket of a frozen instance) longer than the budget since the proxy
/// sent it is refused without running: the proxy has given up on it and may have resent it.
#[tokio::test]
async fn a_write_the_proxy_sent_longer_ago_than_the_budget_is_refused_unapplied() {
    let app = spawn_app_with(|s| s.http.request_timeout_ms = 2000).await;
    let p = app.product("Glue", "tools", 300).await;
    let p = id_of(&p).to_string();
    let (user, token) = app.user().await;
    let add = |start: String| {
        app.post(&format!("/users/{user}/cart/items"))
            .bearer(&token)
            .header("X-Request-Start", &start)
            .json(&json!({"product_id": p, "quantity": 2}))
    };
    add(sent_ago(10.0)).send().await.assert_error(503, "unavailable", None);
    add(sent_ago(2.5)).send().await.assert_error(503, "unavailable", None);
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).send().await;
    assert_eq!(cart.assert_status(200)["items"], json!([]), "a refused write changed nothing");
    // Sent a moment ago, or stamped by a clock ahead of ours: run as usual.
    add(sent_ago(0.2)).send().await.assert_status(200);
    add(sent_ago(-30.0)).send().await.assert_status(200);
    // A read counts from its arrival: the proxy may resend it after a timeout, and it changes nothing.
    let cart = app.get(&format!("/users/{user}/cart")).bearer(&token).header("X-Request-Start", &sent_ago(10.0));
    assert_eq!(cart.send().await.assert_status(200)["items"][0]["quantity"], 4);
}
