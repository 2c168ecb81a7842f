use crate::helpers::*;
use serde_json::{json, Value};

fn new_product() -> Value {
    json!({"name": "Kettle", "description": "Boils water.\nFast.", "category": "kitchen", "price_cents": 2599})
}

#[tokio::test]
async fn the_admin_creates_products_anyone_reads_them() {
    let app = spawn_app().await;
    let r = app.post("/products").admin().json(&new_product()).send().await;
    let created = r.assert_status(201).clone();
    let id = id_of(&created);
    assert_eq!(r.header("location"), Some(format!("/products/{id}").as_str()));
    for (k, v) in new_product().as_object().unwrap() {
        assert_eq!(&created[k], v, "{k}");
    }
    assert_eq!(created["created_at"], created["updated_at"]);
    let got = app.get(&format!("/products/{id}")).send().await;
    assert_eq!(got.assert_status(200), &created, "public read, as stored");
}

#[tokio::test]
async fn only_the_admin_writes_the_catalogue() {
    let app = spawn_app().await;
    let (_, token) = app.user().await;
    app.post("/products").bearer(&token).json(&new_product()).send().await.assert_error(403, "forbidden", None);
    app.post("/products").json(&new_product()).send().await.assert_error(401, "unauthenticated", None);
    let p = app.product("Mug", "kitchen", 500).await;
    let path = format!("/products/{}", id_of(&p));
    app.patch(&path).bearer(&token).json(&json!({"price_cents": 1})).send().await.assert_error(403, "forbidden", None);
    app.delete(&path).bearer(&token).send().await.assert_error(403, "forbidden", None);
    app.delete(&path).send().await.assert_error(401, "unauthenticated", None);
    assert_eq!(app.get(&path).send().await.assert_status(200)["price_cents"], 500, "nothing changed");
    let list = app.get("/products").send().await;
    assert_eq!(list.assert_status(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn product_bounds_are_checked_field_by_field() {
    let app = spawn_app().await;
    let with = |k: &str, v: Value| {
        let mut p = new_product();
        p[k] = v;
        p
    };
    let rule_breakers = [
        (with("price_cents", json!(-1)), "price_cents"),
        (with("price_cents", json!(10_000_000_001_i64)), "price_cents"),
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("description", json!("x".repeat(2001))), "description"),
        (with("category", json!(" ")), "category"),
        (with("category", json!("c".repeat(51))), "category"),
        (with("description", json!("bell\u{7}")), "description"),
    ];
    for (body, field) in rule_breakers {
        app.post("/products").admin().json(&body).send().await.assert_error(422, "validation_failed", Some(field));
    }
    let mut missing = new_product();
    missing.as_object_mut().unwrap().remove("description");
    let malformed = [
        (with("price_cents", json!(1.5)), "price_cents"),
        (with("price_cents", json!("100")), "price_cents"),
        (with("price_cents", json!(1e30)), "price_cents"),
        (with("name", json!({"en": "Kettle"})), "name"),
        (with("colour", json!("red")), "colour"),
        (missing, "description"),
    ];
    for (body, field) in malformed {
        app.post("/products").admin().json(&body).send().await.assert_error(400, "bad_request", Some(field));
    }
    assert!(app.get("/products").send().await.body["items"].as_array().unwrap().is_empty(), "nothing was stored");

    // The bounds themselves are accepted.
    let edge = json!({
        "name": "n".repeat(200), "description": "d".repeat(2000), "category": "c".repeat(50),
        "price_cents": 10_000_000_000_i64
    });
    let created = app.post("/products").admin().json(&edge).send().await.assert_status(201).clone();
    assert_eq!(created["price_cents"], 10_000_000_000_i64);
    let free = app.post("/products").admin().json(&with("price_cents", json!(0))).send().await;
    assert_eq!(free.assert_status(201)["price_cents"], 0);
}

#[tokio::test]
async fn sql_like_and_unusual_text_is_stored_verbatim() {
    let app = spawn_app().await;
    let name = "Robert'); DROP TABLE products;--";
    let description = "Quotes ' \" ` \\ backslash; 100% _wild_ *; emoji 🦀; 日本語\n\ttabbed";
    let category = "'; DELETE FROM carts; --";
    let body = json!({"name": name, "description": description, "category": category, "price_cents": 1});
    let created = app.post("/products").admin().json(&body).send().await.assert_status(201).clone();
    let got = app.get(&format!("/products/{}", id_of(&created))).send().await;
    let got = got.assert_status(200);
    assert_eq!(
        (&got["name"], &got["description"], &got["category"]),
        (&json!(name), &json!(description), &json!(category))
    );
    // The table is still there, and the category filter matches the odd text exactly.
    let q = format!("/products?category={}", urlencode(category));
    let listed = app.get(&q).send().await;
    assert_eq!(listed.assert_status(200)["items"].as_array().unwrap().len(), 1);
    let pattern = app.get("/products?category=%25").send().await;
    assert!(pattern.assert_status(200)["items"].as_array().unwrap().is_empty(), "% is not a wildcard");
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn paging_through_products_with_next_visits_each_once() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = app.product(&format!("Tool {i}"), "tools", 100 + i).await;
        ids.push(id_of(&p).to_string());
    }
    app.product("Pan", "kitchen", 900).await;
    ids.sort();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &after {
            Some(a) => format!("/products?category=tools&limit=2&after={a}"),
            None => "/products?category=tools&limit=2".to_string(),
        };
        let page = app.get(&q).send().await.assert_status(200).clone();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        assert!(items.iter().all(|p| p["category"] == "tools"));
        seen.extend(items.iter().map(|p| id_of(p).to_string()));
        match page["next"].as_str() {
            Some(n) => {
                assert_eq!(Some(n), items.last().map(id_of), "next is the last id of a full page");
                after = Some(n.to_string());
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, ids, "every product once, in id order");
    assert_eq!(pages, 3);

    let all = app.get("/products").send().await;
    assert_eq!(all.assert_status(200)["items"].as_array().unwrap().len(), 6, "default limit covers all 6");
    assert!(all.body["next"].is_null());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=", "limit"),
        ("after=1", "after"),
        ("category=", "category"),
        ("sort=price", "sort"),
    ] {
        app.get(&format!("/products?{query}")).send().await.assert_error(400, "bad_request", Some(field));
    }
}

#[tokio::test]
async fn patching_a_product_keeps_the_rest_and_moves_updated_at() {
    let app = spawn_app().await;
    let p = app.product("Mug", "kitchen", 500).await;
    let path = format!("/products/{}", id_of(&p));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = app.patch(&path).admin().json(&json!({"price_cents": 450, "name": "Big Mug"})).send().await;
    let after = r.assert_status(200).clone();
    assert_eq!((&after["price_cents"], &after["name"]), (&json!(450), &json!("Big Mug")));
    assert_eq!(
        (&after["category"], &after["description"], &after["created_at"]),
        (&p["category"], &p["description"], &p["created_at"])
    );
    assert!(after["updated_at"].as_str().unwrap() > p["updated_at"].as_str().unwrap(), "{after}");
    assert_eq!(app.get(&path).send().await.body, after, "stored");

    app.patch(&path).admin().json(&json!({"price_cents": -5})).send().await.assert_error(
        422,
        "validation_failed",
        Some("price_cents"),
    );
    app.patch(&path).admin().json(&json!({"price_cents": null})).send().await.assert_error(
        400,
        "bad_request",
        Some("price_cents"),
    );
    app.patch(&path).admin().json(&json!({"id": uuid::Uuid::now_v7()})).send().await.assert_error(
        400,
        "bad_request",
        Some("id"),
    );
    let unknown = format!("/products/{}", uuid::Uuid::now_v7());
    app.patch(&unknown).admin().json(&json!({"name": "x"})).send().await.assert_error(404, "not_found", None);
    app.patch("/products/nope").admin().json(&json!({"name": "x"})).send().await.assert_error(
        400,
        "bad_request",
        Some("product_id"),
    );
}

#[tokio::test]
async fn deleting_a_product() {
    let app = spawn_app().await;
    let p = app.product("Mug", "kitchen", 500).await;
    let path = format!("/products/{}", id_of(&p));
    assert!(app.delete(&path).admin().send().await.assert_status(204).is_null());
    app.get(&path).send().await.assert_error(404, "not_found", None);
    app.delete(&path).admin().send().await.assert_error(404, "not_found", None);
    app.get("/products/12345").send().await.assert_error(400, "bad_request", Some("product_id"));
    app.delete("/products/12345").admin().send().await.assert_error(400, "bad_request", Some("product_id"));
}

/// A stage-cassandra build keeps the catalogue in Cassandra: no product reaches PostgreSQL's
/// `products`, reads and pages come from the ring, and checkout prices the order from it.
#[cfg(feature = "stage-cassandra")]
#[tokio::test]
async fn the_catalogue_lives_in_cassandra_in_a_stage_cassandra_build() {
    let app = spawn_app().await;
    let tea = app.product("Tea", "drinks", 300).await;
    let pg = test_support::pg::connect(&app.db).await;
    let in_pg: i64 = pg.query_one("SELECT count(*) FROM products", &[]).await.unwrap().get(0);
    assert_eq!(in_pg, 0, "the product is not in postgres");

    let got = app.get(&format!("/products/{}", id_of(&tea))).send().await;
    assert_eq!(got.assert_status(200), &tea);
    let page = app.get("/products?category=drinks").send().await;
    assert_eq!(page.assert_status(200)["items"], json!([tea.clone()]));

    let (user, token) = app.user().await;
    app.add_to_cart(&user, &token, id_of(&tea), 2).await;
    let order = app.checkout(&user, &token, "cassandra-1").await;
    assert_eq!(order.assert_status(201)["total_cents"], 600);
    assert_eq!(order.body["lines"][0]["unit_price_cents"], 300, "the price read from cassandra");
}
