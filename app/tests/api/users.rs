use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn sign_up_returns_the_user_and_a_token_that_opens_its_routes() {
    let app = spawn_app().await;
    let r = app.post("/users").json(&json!({"email": "  Ann@Example.COM ", "name": " Ann "})).send().await;
    let body = r.assert_status(201);
    let user = &body["user"];
    assert_eq!(user["email"], "ann@example.com", "trimmed and lower-cased");
    assert_eq!(user["name"], "Ann", "trimmed");
    let token = body["token"].as_str().unwrap();
    assert!(token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    let id = id_of(user);
    assert_eq!(r.header("location"), Some(format!("/users/{id}").as_str()));
    // RFC 3339, UTC, milliseconds.
    let created = user["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == "2024-01-01T00:00:00.000Z".len(), "{created}");

    let got = app.get(&format!("/users/{id}")).bearer(token).send().await;
    assert_eq!(got.assert_status(200), user);
    let by_admin = app.get(&format!("/users/{id}")).admin().send().await;
    assert_eq!(by_admin.assert_status(200), user);
}

#[tokio::test]
async fn a_taken_email_is_a_409_naming_the_field() {
    let app = spawn_app().await;
    app.sign_up("ann@example.com").await;
    let r = app.post("/users").json(&json!({"email": "ANN@example.com", "name": "Other Ann"})).send().await;
    r.assert_error(409, "conflict", Some("email"));
    let list = app.get("/users").admin().send().await;
    assert_eq!(list.assert_status(200)["items"].as_array().unwrap().len(), 1, "nothing was written");
}

#[tokio::test]
async fn malformed_sign_ups_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "Ann"}), "email"),
        (json!({"email": "a@b.org"}), "name"),
        (json!({"email": "a@b.org", "name": "Ann", "is_admin": true}), "is_admin"),
        (json!({"email": "a@b.org", "name": 5}), "name"),
        (json!({"email": null, "name": "Ann"}), "email"),
        (json!({"email": ["a@b.org"], "name": "Ann"}), "email"),
    ];
    for (body, field) in cases {
        let r = app.post("/users").json(&body).send().await;
        r.assert_error(400, "bad_request", Some(field));
    }
    for raw in ["{", "", "[]", r#"{"email": "a@b.org", "name": "Ann"} trailing"#, "\"text\""] {
        let r = app.post("/users").raw(Some("application/json"), raw).send().await;
        r.assert_error(400, "bad_request", None);
    }
}

#[tokio::test]
async fn sign_ups_breaking_a_rule_are_422s_naming_the_field() {
    let app = spawn_app().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases = [
        (json!({"email": "not-an-email", "name": "Ann"}), "email"),
        (json!({"email": long_email, "name": "Ann"}), "email"),
        (json!({"email": "a@b.org", "name": "   "}), "name"),
        (json!({"email": "a@b.org", "name": "x".repeat(101)}), "name"),
        (json!({"email": "a@b.org", "name": "line\nbreak"}), "name"),
        (json!({"email": "a@b.org", "name": "nul\u{0}byte"}), "name"),
    ];
    for (body, field) in cases {
        let r = app.post("/users").json(&body).send().await;
        r.assert_error(422, "validation_failed", Some(field));
    }
    // The bounds are inclusive and count characters, not bytes.
    let r = app.post("/users").json(&json!({"email": "b@b.org", "name": "é".repeat(100)})).send().await;
    assert_eq!(r.assert_status(201)["user"]["name"], "é".repeat(100));
}

#[tokio::test]
async fn sql_like_text_is_stored_and_returned_verbatim() {
    let app = spawn_app().await;
    let name = "Robert'); DROP TABLE users;--";
    let r = app.post("/users").json(&json!({"email": "bobby@tables.org", "name": name})).send().await;
    let body = r.assert_status(201).clone();
    let id = id_of(&body["user"]);
    let token = body["token"].as_str().unwrap();
    let got = app.get(&format!("/users/{id}")).bearer(token).send().await;
    assert_eq!(got.assert_status(200)["name"], name);
    let email = "o'brien\"--@x.org";
    let r = app.patch(&format!("/users/{id}")).bearer(token).json(&json!({"email": email})).send().await;
    assert_eq!(r.assert_status(200)["email"], email);
    assert_eq!(app.get("/users").admin().send().await.assert_status(200)["items"][0]["email"], email);
}

#[tokio::test]
async fn a_user_is_seen_only_with_its_own_or_the_admin_token() {
    let app = spawn_app().await;
    let (ann, ann_token) = app.user().await;
    let (_bob, bob_token) = app.user().await;
    let path = format!("/users/{ann}");

    app.get(&path).bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    let r = app.get(&path).send().await;
    r.assert_error(401, "unauthenticated", None);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    app.get(&path).header("authorization", &format!("Basic {ann_token}")).send().await.assert_status(401);
    app.get(&path).header("authorization", "Bearer ").send().await.assert_status(401);
    app.get(&path).bearer("not-a-real-token").send().await.assert_error(403, "forbidden", None);
    app.get(&path).header("authorization", &format!("bearer {ann_token}")).send().await.assert_status(200);
}

#[tokio::test]
async fn unknown_and_malformed_user_ids() {
    let app = spawn_app().await;
    let (_, token) = app.user().await;
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/users/{unknown}")).admin().send().await.assert_error(404, "not_found", None);
    // A user token must not tell which ids exist.
    app.get(&format!("/users/{unknown}")).bearer(&token).send().await.assert_error(403, "forbidden", None);
    for bad in ["42", "not-a-uuid", "0000"] {
        let r = app.get(&format!("/users/{bad}")).admin().send().await;
        r.assert_error(400, "bad_request", Some("user_id"));
    }
}

#[tokio::test]
async fn listing_users_is_paged_and_for_the_admin_only() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    let mut token = String::new();
    for _ in 0..4 {
        let (id, t) = app.user().await;
        ids.push(id);
        token = t;
    }
    ids.sort();

    let first = app.get("/users?limit=3").admin().send().await;
    let first = first.assert_status(200);
    let page1: Vec<&str> = first["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(page1, ids[..3].iter().map(String::as_str).collect::<Vec<_>>(), "ascending id order");
    let next = first["next"].as_str().unwrap();
    assert_eq!(next, ids[2]);
    let second = app.get(&format!("/users?limit=3&after={next}")).admin().send().await;
    let second = second.assert_status(200);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(id_of(&second["items"][0]), ids[3]);
    assert!(second["next"].is_null());

    app.get("/users").bearer(&token).send().await.assert_error(403, "forbidden", None);
    app.get("/users").send().await.assert_error(401, "unauthenticated", None);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("after=abc", "after"),
        ("page=2", "page"),
    ] {
        app.get(&format!("/users?{query}")).admin().send().await.assert_error(400, "bad_request", Some(field));
    }
}

#[tokio::test]
async fn patching_a_user_changes_only_the_given_fields() {
    let app = spawn_app().await;
    let (id, token) = app.user().await;
    let (_, _) = app.sign_up("taken@example.com").await;
    let path = format!("/users/{id}");
    let before = app.get(&path).bearer(&token).send().await.body;

    let r = app.patch(&path).bearer(&token).json(&json!({"name": "Renamed"})).send().await;
    let after = r.assert_status(200);
    assert_eq!(after["name"], "Renamed");
    assert_eq!((&after["email"], &after["created_at"]), (&before["email"], &before["created_at"]));
    assert_eq!(&app.get(&path).bearer(&token).send().await.body, after, "the change is stored");

    let unchanged = app.patch(&path).bearer(&token).json(&json!({})).send().await;
    assert_eq!(unchanged.assert_status(200), after);

    let r = app.patch(&path).bearer(&token).json(&json!({"email": "TAKEN@example.com"})).send().await;
    r.assert_error(409, "conflict", Some("email"));
    app.patch(&path).bearer(&token).json(&json!({"name": null})).send().await.assert_error(
        400,
        "bad_request",
        Some("name"),
    );
    app.patch(&path).bearer(&token).json(&json!({"nick": "x"})).send().await.assert_error(
        400,
        "bad_request",
        Some("nick"),
    );
    app.patch(&path).bearer(&token).json(&json!({"email": "nope"})).send().await.assert_error(
        422,
        "validation_failed",
        Some("email"),
    );
    let (_, other) = app.user().await;
    app.patch(&path).bearer(&other).json(&json!({"name": "Hijack"})).send().await.assert_error(403, "forbidden", None);
    assert_eq!(app.get(&path).bearer(&token).send().await.body["name"], "Renamed");
}

#[tokio::test]
async fn deleting_a_user_removes_it_and_its_cart() {
    let app = spawn_app().await;
    let (user, token) = app.sign_up("gone@example.com").await;
    let id = id_of(&user).to_string();
    let (_, other) = app.user().await;
    let product = app.product("Mug", "kitchen", 500).await;
    app.add_to_cart(&id, &token, id_of(&product), 1).await;
    let path = format!("/users/{id}");

    app.delete(&path).bearer(&other).send().await.assert_error(403, "forbidden", None);
    app.delete(&path).send().await.assert_error(401, "unauthenticated", None);
    let r = app.delete(&path).bearer(&token).send().await;
    r.assert_status(204);
    assert!(r.text.is_empty());
    app.get(&path).admin().send().await.assert_error(404, "not_found", None);
    app.get(&format!("{path}/cart")).admin().send().await.assert_error(404, "not_found", None);
    app.delete(&path).admin().send().await.assert_error(404, "not_found", None);
    // The email is free again.
    app.sign_up("gone@example.com").await;
}

#[tokio::test]
async fn a_deleted_users_orders_are_kept_and_the_admin_reads_them() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    let product = app.product("Lamp", "home", 2500).await;
    app.add_to_cart(&user, &token, id_of(&product), 2).await;
    let order = app.checkout(&user, &token, "before-delete").await.assert_status(201).clone();
    let orders = format!("/users/{user}/orders");
    let one = format!("{orders}/{}", id_of(&order));
    app.delete(&format!("/users/{user}")).bearer(&token).send().await.assert_status(204);

    // The admin still lists and reads the order, unchanged.
    let page = app.get(&orders).admin().send().await.assert_status(200).clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0], order);
    assert!(page["next"].is_null());
    assert_eq!(app.get(&one).admin().send().await.assert_status(200), &order);
    let page = app.get(&format!("{orders}?limit=1&after={}", id_of(&order))).admin().send().await;
    assert_eq!(page.assert_status(200)["items"], serde_json::json!([]), "past its last order");

    // The deleted user's token opens nothing; no status change, no new checkout.
    app.get(&orders).bearer(&token).send().await.assert_error(403, "forbidden", None);
    app.get(&one).bearer(&token).send().await.assert_error(403, "forbidden", None);
    let cancel = serde_json::json!({"status": "cancelled"});
    app.patch(&one).admin().json(&cancel).send().await.assert_error(404, "not_found", None);
    app.checkout(&user, ADMIN_TOKEN, "after-delete").await.assert_error(404, "not_found", None);
    let missing = format!("{orders}/00000000-0000-7000-8000-000000000000");
    app.get(&missing).admin().send().await.assert_error(404, "not_found", None);

    // An id that never was a user and has no orders is still unknown to the admin.
    let never = "/users/00000000-0000-7000-8000-000000000001/orders";
    app.get(never).admin().send().await.assert_error(404, "not_found", None);
    let never_after = format!("{never}?after={}", id_of(&order));
    app.get(&never_after).admin().send().await.assert_error(404, "not_found", None);
    app.get(&format!("{never}/{}", id_of(&order))).admin().send().await.assert_error(404, "not_found", None);
}
