//! Hostile input, by hand: what a fuzzer rarely sends on purpose. Every refusal is checked for
//! its exact status, error code and field, and for losing nothing: the store reads back the same
//! after it. (scripts/fuzz-api runs schemathesis for the generated half.)

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- what the store holds, read back through the API ----

async fn all_users(app: &TestApp) -> Value {
    app.get("/users?limit=100").admin().send().await.assert_status(200)["items"].clone()
}

async fn all_products(app: &TestApp) -> Value {
    app.get("/products?limit=100").send().await.assert_status(200)["items"].clone()
}

async fn cart_of(app: &TestApp, user: &str) -> Value {
    app.get(&format!("/users/{user}/cart")).admin().send().await.assert_status(200)["items"].clone()
}

async fn orders_of(app: &TestApp, user: &str) -> Value {
    app.get(&format!("/users/{user}/orders?limit=100")).admin().send().await.assert_status(200)["items"].clone()
}

async fn user_of(app: &TestApp, user: &str) -> Value {
    app.get(&format!("/users/{user}")).admin().send().await.assert_status(200).clone()
}

/// Everything one user owns, to compare before and after a refused request.
async fn state_of(app: &TestApp, user: &str) -> Value {
    json!({"user": user_of(app, user).await, "cart": cart_of(app, user).await, "orders": orders_of(app, user).await})
}

/// A user with `quantity` of a fresh product in the cart; returns (user id, token, product id).
async fn shopper(app: &TestApp, quantity: i64) -> (String, String, String) {
    let (user, token) = app.user().await;
    let product = app.product("Kettle", "kitchen", 2500).await;
    let product = id_of(&product).to_string();
    app.add_to_cart(&user, &token, &product, quantity).await;
    (user, token, product)
}

fn new_product(price: &str) -> String {
    format!(r#"{{"name": "Lamp", "description": "", "category": "home", "price_cents": {price}}}"#)
}

/// One HTTP/1.1 exchange written by hand, for what reqwest will not send (chunked bodies, bytes
/// that are not text in a header, a header twice, a Content-Length with no body behind it).
/// Returns the status, the body as JSON (`Null` if it is not) and how long the answer took. Reads
/// while writing, since the server may answer (413) before the request is all sent, and stops at
/// the end of the response rather than of the connection: after refusing a chunked body actix
/// keeps reading it, to reuse the connection. A server that never answers fails the test in 10 s.
async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, Value, Duration) {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = conn.split();
    let write = async {
        let _ = writer.write_all(request).await;
    };
    let read = async {
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return response,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
            if let Some(head_end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if response.len() >= head_end + 4 + length {
                    return response;
                }
            }
        }
    };
    let (_, response) = tokio::join!(write, tokio::time::timeout(Duration::from_secs(10), read));
    let response = response.expect("an answer within 10 s");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, json, elapsed)
}

fn assert_json_error(status: u16, body: &Value, want_status: u16, code: &str, field: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["field"].as_str(), field, "{body}");
}

// ---- malformed bodies ----

#[tokio::test]
async fn malformed_and_truncated_json_is_a_400_without_a_field_and_creates_nothing() {
    let app = spawn_app().await;
    let (user, _, product) = shopper(&app, 1).await;
    let before = (all_users(&app).await, all_products(&app).await, state_of(&app, &user).await);

    let sign_ups: &[&[u8]] = &[
        br#"{"email": "a@b.org", "name": "An"#,
        br#"{"email": "a@b.org", "name": "Ann""#,
        br#"{"email": "a@b.org", "name": "Ann",}"#,
        br#"{"email": "a@b.org" "name": "Ann"}"#,
        br#"{'email': 'a@b.org', 'name': 'Ann'}"#,
        br#"{email: "a@b.org", name: "Ann"}"#,
        br#"{"email": "a@b.org", "name": "Ann"}}"#,
        br#"{"email": "a@b.org", "name": "Ann"} // a comment"#,
        br#"{"email": "a@b.org", "name": NaN}"#,
        br#"{"email": "a@b.org", "name": "\x41"}"#,
        br#"{"email": "a@b.org", "name": "\u00"}"#,
        b"{\"email\": \"a@b.org\", \"name\": \"Ann\0\"}",
        b"{\"email\": \"a@b.org\", \"name\": \"\xff\xfe\"}",
        b"{\"email\": \"a@b.org\", \"name\": \"\xed\xa0\x80\"}",
        br#"{"email": "a@b.org", "name": "\ud800"}"#,
        br#"{"email": "a@b.org", "name": "\udc00 after a lone low surrogate"}"#,
        br#"{"email": "a@b.org", "name": "\ud800\u0041"}"#,
        b"\0",
        b"{",
        b"}",
        b" ",
    ];
    for body in sign_ups {
        let r = app.post("/users").raw(Some("application/json"), body.to_vec()).send().await;
        r.assert_error(400, "bad_request", None);
        assert!(r.body["message"].as_str().unwrap().len() < 200, "a short message: {}", r.text);
    }
    for body in [&new_product("1")[..20], r#"{"name": "Lamp", "price_cents": }"#] {
        let r = app.post("/products").admin().raw(Some("application/json"), body).send().await;
        r.assert_error(400, "bad_request", None);
    }
    let items = format!("/users/{user}/cart/items");
    let r = app.post(&items).admin().raw(Some("application/json"), format!(r#"{{"product_id": "{product}""#)).send();
    r.await.assert_error(400, "bad_request", None);
    let r = app.put(&format!("{items}/{product}")).admin().raw(Some("application/json"), r#"{"quantity": 5"#).send();
    r.await.assert_error(400, "bad_request", None);
    let r = app.patch(&format!("/users/{user}")).admin().raw(Some("application/json"), r#"{"name": "X"#).send();
    r.await.assert_error(400, "bad_request", None);

    let after = (all_users(&app).await, all_products(&app).await, state_of(&app, &user).await);
    assert_eq!(before, after, "nothing was created or changed");
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_and_the_service_stays_up() {
    let app = spawn_app().await;
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let r = app.post("/users").raw(Some("application/json"), arrays.clone()).send().await;
    r.assert_error(400, "bad_request", None);

    let as_a_field = format!(r#"{{"email": {arrays}, "name": "Ann"}}"#);
    let r = app.post("/users").raw(Some("application/json"), as_a_field).send().await;
    r.assert_error(400, "bad_request", Some("email"));

    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let r = app.post("/users").raw(Some("application/json"), objects).send().await;
    r.assert_error(400, "bad_request", Some("a"));

    // Unclosed: 30 000 openings and nothing else.
    let r = app.post("/products").admin().raw(Some("application/json"), "{\"name\":".to_string() + &"[".repeat(30_000));
    r.send().await.assert_error(400, "bad_request", Some("name"));

    app.get("/health").send().await.assert_status(200);
    assert_eq!(all_users(&app).await, json!([]));
}

#[tokio::test]
async fn duplicate_keys_are_a_400_naming_the_key() {
    let app = spawn_app().await;
    let (user, _, product) = shopper(&app, 2).await;
    let before = (all_products(&app).await, state_of(&app, &user).await);

    let r = app.post("/users").raw(Some("application/json"), r#"{"email": "a@b.org", "name": "A", "name": "B"}"#);
    r.send().await.assert_error(400, "bad_request", Some("name"));
    let body = r#"{"name": "Lamp", "description": "", "category": "home", "price_cents": 1, "price_cents": 0}"#;
    let r = app.post("/products").admin().raw(Some("application/json"), body).send().await;
    r.assert_error(400, "bad_request", Some("price_cents"));
    let body = format!(r#"{{"product_id": "{product}", "quantity": 1, "quantity": 900}}"#);
    let r = app.post(&format!("/users/{user}/cart/items")).admin().raw(Some("application/json"), body).send().await;
    r.assert_error(400, "bad_request", Some("quantity"));
    let r = app.patch(&format!("/users/{user}")).admin().raw(Some("application/json"), r#"{"name": "A", "name": "B"}"#);
    r.send().await.assert_error(400, "bad_request", Some("name"));
    let r =
        app.patch(&format!("/products/{product}")).admin().raw(Some("application/json"), r#"{"name":"A","name":"B"}"#);
    r.send().await.assert_error(400, "bad_request", Some("name"));

    assert_eq!(before, (all_products(&app).await, state_of(&app, &user).await));
    assert_eq!(all_users(&app).await.as_array().unwrap().len(), 1);
}

/// RFC 8259 §8.1 lets a parser ignore a byte order mark before a JSON text; some clients
/// (PowerShell 5, .NET's default UTF-8 encoder) send one. Anything else before the `{` is refused.
#[tokio::test]
async fn a_leading_byte_order_mark_is_ignored() {
    let app = spawn_app().await;
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), br#"{"email": "bom@b.org", "name": "Bo"}"#].concat();
    let r = app.post("/users").raw(Some("application/json"), with_bom).send().await;
    assert_eq!(r.assert_status(201)["user"]["name"], "Bo");

    let twice = [b"\xEF\xBB\xBF\xEF\xBB\xBF".as_slice(), br#"{"email": "c@b.org", "name": "C"}"#].concat();
    app.post("/users").raw(Some("application/json"), twice).send().await.assert_error(400, "bad_request", None);
    let late = [b" \xEF\xBB\xBF".as_slice(), br#"{"email": "d@b.org", "name": "D"}"#].concat();
    app.post("/users").raw(Some("application/json"), late).send().await.assert_error(400, "bad_request", None);
    let utf16 = [b"\xFF\xFE".as_slice(), "{\"email\": \"e@b.org\", \"name\": \"E\"}".as_bytes()].concat();
    app.post("/users").raw(Some("application/json"), utf16).send().await.assert_error(400, "bad_request", None);
    assert_eq!(all_users(&app).await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_json_content_types_are_read() {
    let app = spawn_app().await;
    let (user, _, product) = shopper(&app, 3).await;
    let before = (all_products(&app).await, state_of(&app, &user).await);
    let sign_up = |n: u32| format!(r#"{{"email": "ct{n}@b.org", "name": "Ct"}}"#);

    // RFC 8259: JSON is UTF-8 and a charset parameter has no effect; the media type is case-insensitive.
    let accepted = [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        "application/json; charset=iso-8859-1",
    ];
    for (n, ct) in accepted.iter().enumerate() {
        app.post("/users").raw(Some(ct), sign_up(n as u32)).send().await.assert_status(201);
    }
    let refused = [
        Some("text/plain"),
        Some("text/json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json-patch+json"),
        Some("application/problem+json"),
        Some("application/jsonx"),
        Some("*/*"),
        Some("application/"),
        Some("json"),
        Some(""),
        None,
    ];
    for ct in refused {
        let r = app.post("/users").raw(ct, sign_up(99)).send().await;
        r.assert_error(415, "unsupported_media_type", Some("Content-Type"));
    }
    let items = format!("/users/{user}/cart/items");
    let r = app.put(&format!("{items}/{product}")).admin().raw(Some("text/plain"), r#"{"quantity": 9}"#).send();
    r.await.assert_error(415, "unsupported_media_type", Some("Content-Type"));
    let r = app.patch(&format!("/products/{product}")).admin().raw(None, r#"{"price_cents": 1}"#).send();
    r.await.assert_error(415, "unsupported_media_type", Some("Content-Type"));

    assert_eq!(before, (all_products(&app).await, state_of(&app, &user).await));
    assert_eq!(all_users(&app).await.as_array().unwrap().len(), 1 + accepted.len());
}

// ---- numbers ----

/// Prices are whole cents in 64 bits. A fraction or an exponent is refused even when it is whole
/// (`1.0`): a client sending dollars as floats must not have 10.0 taken as ten cents. `-0` is the
/// integer zero; serde_json reads it as the float -0.0, so `-0.0` is taken as 0 too.
#[tokio::test]
async fn odd_and_huge_prices() {
    let app = spawn_app().await;
    let not_integers = [
        "1e30",
        "1e2",
        "1.5",
        "1.0",
        "0.0",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "123456789012345678901234567890",
    ];
    for price in not_integers {
        let r = app.post("/products").admin().raw(Some("application/json"), new_product(price)).send().await;
        r.assert_error(400, "bad_request", Some("price_cents"));
        assert!(r.body["message"].as_str().unwrap().contains("an integer"), "{price}: {}", r.text);
    }
    for price in ["\"12\"", "null", "true", "[]", "{}"] {
        let r = app.post("/products").admin().raw(Some("application/json"), new_product(price)).send().await;
        r.assert_error(400, "bad_request", Some("price_cents"));
    }
    // Not JSON numbers at all: malformed documents, which name no field.
    for price in ["0x10", "+1", "01", ".5", "1.", "Infinity", "NaN", "1e400", "-"] {
        let r = app.post("/products").admin().raw(Some("application/json"), new_product(price)).send().await;
        r.assert_error(400, "bad_request", None);
    }
    for price in ["-1", "10000000001", "9223372036854775807", "-9223372036854775808"] {
        let r = app.post("/products").admin().raw(Some("application/json"), new_product(price)).send().await;
        r.assert_error(422, "validation_failed", Some("price_cents"));
    }
    assert_eq!(all_products(&app).await, json!([]), "nothing was created");

    let zero = app.post("/products").admin().raw(Some("application/json"), new_product("-0")).send().await;
    assert_eq!(zero.assert_status(201)["price_cents"], 0);
    let max = app.post("/products").admin().raw(Some("application/json"), new_product("10000000000")).send().await;
    assert_eq!(max.assert_status(201)["price_cents"], 10_000_000_000i64);

    let path = format!("/products/{}", id_of(&max.body));
    for price in ["1e30", "1.5", "\"12\"", "null", "9223372036854775808"] {
        let r = app.patch(&path).admin().raw(Some("application/json"), format!(r#"{{"price_cents": {price}}}"#)).send();
        r.await.assert_error(400, "bad_request", Some("price_cents"));
    }
    let r = app.patch(&path).admin().json(&json!({"price_cents": -5})).send().await;
    r.assert_error(422, "validation_failed", Some("price_cents"));
    assert_eq!(all_products(&app).await.as_array().unwrap().len(), 2);
    assert_eq!(app.get(&path).send().await.body, max.body, "the product is unchanged");
}

#[tokio::test]
async fn zero_negative_and_huge_quantities_change_no_cart() {
    let app = spawn_app().await;
    let (user, token, product) = shopper(&app, 1).await;
    let before = state_of(&app, &user).await;
    let items = format!("/users/{user}/cart/items");
    let line = format!("{items}/{product}");
    let add = |q: &str| {
        let body = format!(r#"{{"product_id": "{product}", "quantity": {q}}}"#);
        app.post(&items).bearer(&token).raw(Some("application/json"), body).send()
    };
    let set =
        |q: &str| app.put(&line).bearer(&token).raw(Some("application/json"), format!(r#"{{"quantity": {q}}}"#)).send();

    for q in ["0", "-0", "-1", "1000", "999", "4294967297", "9223372036854775807", "-9223372036854775808"] {
        // 999 more on a line holding 1 would make 1000.
        add(q).await.assert_error(422, "validation_failed", Some("quantity"));
    }
    for q in ["0", "-0", "-1", "1000", "4294967296", "-9223372036854775808"] {
        set(q).await.assert_error(422, "validation_failed", Some("quantity"));
    }
    for q in ["1.5", "1e2", "2.0", "\"1\"", "null", "9223372036854775808", "[1]"] {
        add(q).await.assert_error(400, "bad_request", Some("quantity"));
        set(q).await.assert_error(400, "bad_request", Some("quantity"));
    }
    assert_eq!(state_of(&app, &user).await, before, "the cart holds what it held");

    set("999").await.assert_status(200);
    add("1").await.assert_error(422, "validation_failed", Some("quantity"));
    assert_eq!(cart_of(&app, &user).await, json!([{"product_id": product, "quantity": 999}]));
}

// ---- strings ----

#[tokio::test]
async fn strings_over_their_limits_are_refused_whole() {
    let app = spawn_app().await;
    let (user, token, product) = shopper(&app, 1).await;
    let before = (all_users(&app).await, all_products(&app).await, state_of(&app, &user).await);

    let long_email = format!("{}@example.com", "a".repeat(243));
    let cases = [
        (json!({"email": "big@b.org", "name": "n".repeat(101)}), "name"),
        (json!({"email": "big@b.org", "name": "🦀".repeat(101)}), "name"),
        (json!({"email": "big@b.org", "name": "n".repeat(60_000)}), "name"),
        (json!({"email": long_email, "name": "N"}), "email"),
    ];
    for (body, field) in cases {
        app.post("/users").json(&body).send().await.assert_error(422, "validation_failed", Some(field));
    }
    let product_cases = [
        (json!({"name": "p".repeat(201), "description": "", "category": "c", "price_cents": 1}), "name"),
        (json!({"name": "P", "description": "d".repeat(2001), "category": "c", "price_cents": 1}), "description"),
        (json!({"name": "P", "description": "", "category": "c".repeat(51), "price_cents": 1}), "category"),
    ];
    for (body, field) in product_cases {
        app.post("/products").admin().json(&body).send().await.assert_error(422, "validation_failed", Some(field));
    }
    let r = app.patch(&format!("/users/{user}")).bearer(&token).json(&json!({"name": "x".repeat(101)})).send().await;
    r.assert_error(422, "validation_failed", Some("name"));
    let r = app.patch(&format!("/products/{product}")).admin().json(&json!({"description": "d".repeat(2001)}));
    r.send().await.assert_error(422, "validation_failed", Some("description"));
    // Over the body limit the field does not matter: 413 before anything is parsed.
    let r = app.post("/users").json(&json!({"email": "big@b.org", "name": "n".repeat(70_000)})).send().await;
    r.assert_error(413, "payload_too_large", None);
    let r = app.get(&format!("/products?category={}", "c".repeat(51))).send().await;
    r.assert_error(400, "bad_request", Some("category"));
    let r = app.get(&format!("/products?category={}", "c".repeat(20_000))).send().await;
    r.assert_error(400, "bad_request", Some("category"));

    assert_eq!(before, (all_users(&app).await, all_products(&app).await, state_of(&app, &user).await));
    // The bounds count characters: 100 crabs (400 bytes) are a fine name.
    app.post("/users").json(&json!({"email": "crab@b.org", "name": "🦀".repeat(100)})).send().await.assert_status(201);
}

#[tokio::test]
async fn unicode_is_stored_verbatim_and_control_characters_are_refused() {
    let app = spawn_app().await;
    // Not normalised (e + combining accent stays two code points), bidi and format characters
    // kept, astral planes and joined emoji intact.
    let names = [
        "Zoe\u{301} Ωmega",
        "\u{202e}txt.exe",
        "👩‍👩‍👧 family",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "日本語のテキスト",
        "zero\u{200b}width",
        "a\u{feff}b",
        "مرحبا",
    ];
    for (i, name) in names.iter().enumerate() {
        let r = app.post("/users").json(&json!({"email": format!("u{i}@b.org"), "name": name})).send().await;
        let user = r.assert_status(201)["user"].clone();
        assert_eq!(user_of(&app, id_of(&user)).await["name"], *name, "read back verbatim");
    }
    let r = app.post("/users").json(&json!({"email": "ÜNÏ@Exämple.ORG", "name": "U"})).send().await;
    assert_eq!(r.assert_status(201)["user"]["email"], "ünï@exämple.org", "emails are lower-cased, also beyond ASCII");

    let body = json!({"name": "Tee 👕", "description": "line one\nline\ttwo", "category": "über", "price_cents": 1});
    let p = app.post("/products").admin().json(&body).send().await.assert_status(201).clone();
    let listed = app.get("/products?category=%C3%BCber").send().await;
    assert_eq!(listed.assert_status(200)["items"], json!([p]), "a percent-encoded category finds it");

    let before = (all_users(&app).await, all_products(&app).await);
    for bad in ["nul\u{0}", "bell\u{7}", "del\u{7f}", "c1\u{85}control", "c1\u{9f}", "new\nline", "esc\u{1b}[31m"] {
        let r = app.post("/users").json(&json!({"email": "c@b.org", "name": bad})).send().await;
        r.assert_error(422, "validation_failed", Some("name"));
        let r = app.post("/users").json(&json!({"email": format!("c{bad}@b.org"), "name": "C"})).send().await;
        r.assert_error(422, "validation_failed", Some("email"));
        let body = json!({"name": "P", "description": "", "category": bad, "price_cents": 1});
        app.post("/products").admin().json(&body).send().await.assert_error(422, "validation_failed", Some("category"));
        let r = app.patch(&format!("/products/{}", id_of(&p))).admin().json(&json!({"name": bad})).send().await;
        r.assert_error(422, "validation_failed", Some("name"));
    }
    let r = app
        .post("/products")
        .admin()
        .json(&json!({"name": "P", "description": "nul\u{0}", "category": "c", "price_cents": 1}));
    r.send().await.assert_error(422, "validation_failed", Some("description"));
    let r = app.get("/products?category=a%00b").send().await;
    r.assert_error(400, "bad_request", Some("category"));
    // Percent-encoding that does not decode to UTF-8 is not text.
    let r = app.get("/products?category=%FF%FE").send().await;
    r.assert_error(400, "bad_request", Some("category"));
    let r = app.get("/products?caf%C3=1").send().await;
    r.assert_status(400);
    assert_eq!(before, (all_users(&app).await, all_products(&app).await));
}

// ---- ids, query values ----

/// Ids are UUIDs in their one documented spelling (36 characters with hyphens, any case); the
/// other spellings a UUID library reads (simple, braced, URN) would give one resource many URLs.
#[tokio::test]
async fn path_ids_that_are_not_uuids_are_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (user, _, product) = shopper(&app, 1).await;
    let order = app.checkout(&user, ADMIN_TOKEN, "k").await.assert_status(201).clone();
    let order = id_of(&order).to_string();
    let before = (all_products(&app).await, state_of(&app, &user).await);

    let not_ids = |id: &str| {
        vec![
            "not-a-uuid".to_string(),
            "123".to_string(),
            "%00".to_string(),
            "%20".to_string(),
            "%F0%9F%A6%80".to_string(),
            "..%2F..%2Fetc%2Fpasswd".to_string(),
            format!("{id}x"),
            format!("{id}%20"),
            format!("%20{id}"),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.replace('-', ""),
            id.replace('-', "_"),
            format!("{}-", &id[..35]),
            "0".repeat(20_000),
        ]
    };
    for bad in not_ids(&user) {
        for (method, path) in [
            ("GET", format!("/users/{bad}")),
            ("DELETE", format!("/users/{bad}")),
            ("GET", format!("/users/{bad}/cart")),
            ("DELETE", format!("/users/{bad}/cart")),
            ("GET", format!("/users/{bad}/orders")),
            ("GET", format!("/users/{bad}/orders/{order}")),
        ] {
            let r = app.call(method.parse().unwrap(), &path).admin().send().await;
            r.assert_error(400, "bad_request", Some("user_id"));
        }
    }
    for bad in not_ids(&product) {
        app.get(&format!("/products/{bad}")).send().await.assert_error(400, "bad_request", Some("product_id"));
        let r = app.delete(&format!("/products/{bad}")).admin().send().await;
        r.assert_error(400, "bad_request", Some("product_id"));
        let r = app.put(&format!("/users/{user}/cart/items/{bad}")).admin().json(&json!({"quantity": 5})).send().await;
        r.assert_error(400, "bad_request", Some("product_id"));
        let r = app.delete(&format!("/users/{user}/cart/items/{bad}")).admin().send().await;
        r.assert_error(400, "bad_request", Some("product_id"));
    }
    for bad in not_ids(&order) {
        let r = app.get(&format!("/users/{user}/orders/{bad}")).admin().send().await;
        r.assert_error(400, "bad_request", Some("order_id"));
        let r = app.patch(&format!("/users/{user}/orders/{bad}")).admin().json(&json!({"status": "cancelled"})).send();
        r.await.assert_error(400, "bad_request", Some("order_id"));
    }
    // In bodies and queries the same spellings are refused.
    for bad in [product.replace('-', ""), format!("{{{product}}}"), format!("urn:uuid:{product}")] {
        let r = app.post(&format!("/users/{user}/cart/items")).admin().json(&json!({"product_id": bad, "quantity": 1}));
        r.send().await.assert_error(400, "bad_request", Some("product_id"));
        let r = app.get(&format!("/products?after={bad}")).send().await;
        r.assert_error(400, "bad_request", Some("after"));
    }
    assert_eq!(before, (all_products(&app).await, state_of(&app, &user).await));

    // Upper case is the same UUID (RFC 4122: case-insensitive on input).
    let upper = app.get(&format!("/users/{}", user.to_uppercase())).admin().send().await;
    assert_eq!(upper.assert_status(200)["id"], user);
}

#[tokio::test]
async fn bad_query_values_are_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (user, _, _) = shopper(&app, 1).await;
    for (query, field) in [
        ("limit=99999999999999999999", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=-0", "limit"),
        ("limit=101", "limit"),
        ("limit=1e1", "limit"),
        ("limit=1.0", "limit"),
        ("limit=", "limit"),
        ("limit=%00", "limit"),
        ("limit=5&limit=5", "limit"),
        ("after=", "after"),
        ("after=%FF", "after"),
        ("category=", "category"),
        ("category=%FF", "category"),
        ("category=a&category=b", "category"),
        ("sort=price", "sort"),
        ("LIMIT=5", "LIMIT"),
    ] {
        let r = app.get(&format!("/products?{query}")).send().await;
        r.assert_error(400, "bad_request", Some(field));
    }
    for (query, field) in [("limit=0", "limit"), ("after=1", "after"), ("status=created", "status")] {
        let r = app.get(&format!("/users/{user}/orders?{query}")).admin().send().await;
        r.assert_error(400, "bad_request", Some(field));
        let r = app.get(&format!("/users?{query}")).admin().send().await;
        r.assert_error(400, "bad_request", Some(field));
    }
}

// ---- who may do what ----

#[tokio::test]
async fn other_users_tokens_open_nothing_and_change_nothing() {
    let app = spawn_app().await;
    let (ann, ann_token, product) = shopper(&app, 2).await;
    let order = app.checkout(&ann, &ann_token, "first").await.assert_status(201).clone();
    let order = id_of(&order).to_string();
    app.add_to_cart(&ann, &ann_token, &product, 1).await;
    let (bob, bob_token) = app.user().await;
    let before = (state_of(&app, &ann).await, state_of(&app, &bob).await, all_products(&app).await);

    let a = format!("/users/{ann}");
    let line = json!({"product_id": product, "quantity": 5});
    let calls = [
        app.get(&a),
        app.patch(&a).json(&json!({"name": "Mallory"})),
        app.patch(&a).json(&json!({"email": "mallory@evil.org"})),
        app.delete(&a),
        app.get(&format!("{a}/cart")),
        app.delete(&format!("{a}/cart")),
        app.post(&format!("{a}/cart/items")).json(&line),
        app.put(&format!("{a}/cart/items/{product}")).json(&json!({"quantity": 9})),
        app.delete(&format!("{a}/cart/items/{product}")),
        app.post(&format!("{a}/orders")).header("Idempotency-Key", "first"),
        app.post(&format!("{a}/orders")).header("Idempotency-Key", "mallory"),
        app.get(&format!("{a}/orders")),
        app.get(&format!("{a}/orders/{order}")),
        app.patch(&format!("{a}/orders/{order}")).json(&json!({"status": "cancelled"})),
        // Admin-only routes.
        app.get("/users"),
        app.post("/products").json(&json!({"name": "P", "description": "", "category": "c", "price_cents": 1})),
        app.patch(&format!("/products/{product}")).json(&json!({"price_cents": 1})),
        app.delete(&format!("/products/{product}")),
    ];
    for call in calls {
        call.bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    }
    // Ann's order under Bob's own path: not found, whoever asks.
    for token in [bob_token.as_str(), ADMIN_TOKEN] {
        let r = app.get(&format!("/users/{bob}/orders/{order}")).bearer(token).send().await;
        r.assert_error(404, "not_found", None);
        let r = app.patch(&format!("/users/{bob}/orders/{order}")).bearer(token).json(&json!({"status": "paid"}));
        r.send().await.assert_error(404, "not_found", None);
    }
    // A user token does not tell which user ids exist; the admin's does.
    let ghost = format!("/users/{}", uuid::Uuid::now_v7());
    app.get(&ghost).bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    app.get(&ghost).admin().send().await.assert_error(404, "not_found", None);

    let after = (state_of(&app, &ann).await, state_of(&app, &bob).await, all_products(&app).await);
    assert_eq!(before, after, "nothing of ann's, bob's or the catalogue changed");

    // A deleted user's token opens nothing any more, not even its own (gone) routes.
    app.delete(&format!("/users/{bob}")).bearer(&bob_token).send().await.assert_status(204);
    for path in [format!("/users/{bob}"), format!("/users/{bob}/cart"), format!("/users/{ann}/cart")] {
        app.get(&path).bearer(&bob_token).send().await.assert_error(403, "forbidden", None);
    }
    assert_eq!(state_of(&app, &ann).await, before.0);
}

#[tokio::test]
async fn authorization_header_variants() {
    let app = spawn_app().await;
    let (ann, token, _) = shopper(&app, 1).await;
    let path = format!("/users/{ann}");
    let get = |value: &str| app.get(&path).header("Authorization", value).send();

    // The scheme is case-insensitive, and spaces around the token are not part of it (RFC 9110 §11).
    for ok in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer    {token}"),
        format!("  Bearer {token}  "),
    ] {
        get(&ok).await.assert_status(200);
    }
    for malformed in [
        String::new(),
        " ".into(),
        "Bearer".into(),
        "Bearer ".into(),
        format!("Bearer\t{token}"),
        format!("Bearer{token}"),
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("Bearer: {token}"),
        token.clone(),
    ] {
        get(&malformed).await.assert_error(401, "unauthenticated", Some("Authorization"));
    }
    // A token that is not ann's, however it looks: 403.
    for wrong in
        [format!("Bearer {token} {token}"), format!("Bearer {token}x"), format!("Bearer {}", "a".repeat(20_000))]
    {
        get(&wrong).await.assert_error(403, "forbidden", None);
    }
    // Bytes that are not text, and two Authorization headers (which one did a proxy check?):
    // both malformed.
    let head = |auth: &[u8]| {
        [format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").as_bytes(), auth, b"\r\n\r\n"].concat()
    };
    for auth in [
        [b"Authorization: Bearer ".as_slice(), "t\u{f6}k\u{e9}n".as_bytes()].concat(),
        b"Authorization: Bearer \xff\xfe".to_vec(),
        format!("Authorization: Bearer {token}\r\nAuthorization: Bearer {ADMIN_TOKEN}").into_bytes(),
        format!("Authorization: Bearer {ADMIN_TOKEN}\r\nAuthorization: Bearer {token}").into_bytes(),
        format!("Authorization: Bearer {token}\r\nAuthorization: Bearer {token}").into_bytes(),
    ] {
        let (status, body, _) = raw_http(&app, &head(&auth)).await;
        assert_json_error(status, &body, 401, "unauthenticated", Some("Authorization"));
    }

    // A refused header on a write changes nothing.
    let before = state_of(&app, &ann).await;
    let r = app.patch(&path).header("Authorization", "Bearer").json(&json!({"name": "Mallory"})).send().await;
    r.assert_error(401, "unauthenticated", Some("Authorization"));
    let r = app
        .patch(&path)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .json(&json!({"name": "Mallory"}))
        .send()
        .await;
    r.assert_error(401, "unauthenticated", Some("Authorization"));
    assert_eq!(state_of(&app, &ann).await, before);
}

// ---- idempotency ----

#[tokio::test]
async fn a_replayed_idempotency_key_returns_the_first_order_whatever_changed_since() {
    let app = spawn_app().await;
    let (ann, token, kettle) = shopper(&app, 2).await;
    let first = app.checkout(&ann, &token, "K-1").await.assert_status(201).clone();

    // Since then: the cart is filled differently and the price changed.
    let toaster = app.product("Toaster", "kitchen", 4000).await;
    app.add_to_cart(&ann, &token, id_of(&toaster), 3).await;
    app.patch(&format!("/products/{kettle}")).admin().json(&json!({"price_cents": 1})).send().await.assert_status(200);
    let before = state_of(&app, &ann).await;

    let orders = format!("/users/{ann}/orders");
    let replay = |body: Option<&'static str>| {
        let call = app.post(&orders).bearer(&token).header("Idempotency-Key", "K-1");
        match body {
            Some(b) => call.raw(Some("application/json"), b),
            None => call,
        }
    };
    for body in [None, Some("{}"), Some(" { } ")] {
        let r = replay(body).send().await;
        assert_eq!(r.assert_status(200), &first, "the first order, as it was");
    }
    // Surrounding spaces are not part of a header value (RFC 9110 §5.5): the same key.
    let r = app.post(&orders).bearer(&token).header("Idempotency-Key", "  K-1  ").send().await;
    assert_eq!(r.assert_status(200), &first);
    // The admin replaying for ann gets ann's order too.
    let r = app.post(&orders).admin().header("Idempotency-Key", "K-1").send().await;
    assert_eq!(r.assert_status(200), &first);
    // A different body is refused before the key is looked at.
    replay(Some(r#"{"lines": []}"#)).send().await.assert_error(400, "bad_request", Some("lines"));
    replay(Some("[]")).send().await.assert_error(400, "bad_request", None);
    replay(Some(r#"{"coupon": "FREE"}"#)).send().await.assert_error(400, "bad_request", Some("coupon"));
    assert_eq!(state_of(&app, &ann).await, before, "one order; the new cart untouched");

    // Keys belong to their user: bob's "K-1" is bob's own checkout, never ann's order.
    let (bob, bob_token) = app.user().await;
    let r = app.checkout(&bob, &bob_token, "K-1").await;
    r.assert_error(409, "cart_empty", None);
    app.add_to_cart(&bob, &bob_token, id_of(&toaster), 1).await;
    let bobs = app.checkout(&bob, &bob_token, "K-1").await.assert_status(201).clone();
    assert_ne!(id_of(&bobs), id_of(&first));
    assert_eq!(bobs["user_id"], bob);
    assert_eq!(state_of(&app, &ann).await, before);

    // Keys are case-sensitive: "k-1" is a new key, and orders what the cart holds now.
    let second = app.checkout(&ann, &token, "k-1").await.assert_status(201).clone();
    assert_eq!(second["lines"][0]["product_id"], id_of(&toaster));
    assert_eq!(orders_of(&app, &ann).await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn idempotency_key_header_variants() {
    let app = spawn_app().await;
    let (ann, token, _) = shopper(&app, 1).await;
    let orders = format!("/users/{ann}/orders");
    let before = state_of(&app, &ann).await;
    for bad in ["k".repeat(101), "k".repeat(10_000), "a b".into(), "a\tb".into(), String::new(), " ".into()] {
        let r = app.post(&orders).bearer(&token).header("Idempotency-Key", &bad).send().await;
        r.assert_error(400, "bad_request", Some("Idempotency-Key"));
    }
    let head = |keys: &[u8]| {
        [
            format!("POST {orders} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n")
                .as_bytes(),
            keys,
            b"\r\n\r\n",
        ]
        .concat()
    };
    for keys in [
        b"Idempotency-Key: k\xc3\xa9".as_slice(),
        b"Idempotency-Key: \xff",
        b"Idempotency-Key: k1\r\nIdempotency-Key: k2",
        b"Idempotency-Key: k1\r\nIdempotency-Key: k1",
    ] {
        let (status, body, _) = raw_http(&app, &head(keys)).await;
        assert_json_error(status, &body, 400, "bad_request", Some("Idempotency-Key"));
    }
    assert_eq!(state_of(&app, &ann).await, before, "no order, the cart as it was");
    app.checkout(&ann, &token, &"~".repeat(100)).await.assert_status(201);
}

// ---- sizes ----

#[tokio::test]
async fn oversize_bodies_are_refused_without_reading_them() {
    let app = spawn_app().await;
    let (ann, _, product) = shopper(&app, 1).await;
    let before = (all_users(&app).await, state_of(&app, &ann).await);

    // A declared length over the limit is refused at once, before a byte of the body arrives.
    let head = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n";
    let (status, body, elapsed) = raw_http(&app, head.as_bytes()).await;
    assert_json_error(status, &body, 413, "payload_too_large", None);
    assert!(elapsed < Duration::from_secs(5), "answered without waiting for the body: {elapsed:?}");

    // Chunked, no length given: refused once more than the limit has arrived, in any chunking.
    let sign_up = format!(r#"{{"email": "big@b.org", "name": "{}"}}"#, "n".repeat(70_000));
    for chunk_size in [1000, 65_536, 70_000] {
        let mut body = Vec::new();
        for chunk in sign_up.as_bytes().chunks(chunk_size) {
            body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let head = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let (status, json, _) = raw_http(&app, &[head.as_bytes(), &body].concat()).await;
        assert_json_error(status, &json, 413, "payload_too_large", None);
    }
    // A chunk that claims to be huge and keeps coming.
    let head = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let request = [head.as_bytes(), b"FFFFFFFF\r\n", sign_up.as_bytes()].concat();
    let (status, json, _) = raw_http(&app, &request).await;
    assert_json_error(status, &json, 413, "payload_too_large", None);

    let big = format!(r#"{{"quantity": 5, "pad": "{}"}}"#, " ".repeat(1 << 20));
    let r =
        app.put(&format!("/users/{ann}/cart/items/{product}")).admin().raw(Some("application/json"), big).send().await;
    r.assert_error(413, "payload_too_large", None);
    let r = app.post(&format!("/users/{ann}/orders")).admin().header("Idempotency-Key", "big");
    let r = r.raw(Some("application/json"), format!("{{{}}}", " ".repeat(70_000))).send().await;
    r.assert_error(413, "payload_too_large", None);

    assert_eq!(before, (all_users(&app).await, state_of(&app, &ann).await));
    app.get("/health").send().await.assert_status(200);
}

/// Requests that are not well-formed HTTP never reach the application: actix-http answers them
/// itself, with a bare status and no JSON body (it has no hook for one). They are 4xx, and the
/// service goes on serving.
#[tokio::test]
async fn requests_that_are_not_http_get_a_4xx_from_the_http_layer() {
    let app = spawn_app().await;
    let cases: [(&[u8], u16); 6] = [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n", 400),
        (b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}", 400),
        (b"HELLO\r\n\r\n", 400),
        (&[b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ".as_slice(), &vec![b'a'; 200_000], b"\r\n\r\n"].concat(), 431),
    ];
    for (request, status) in cases {
        let (got, body, _) = raw_http(&app, request).await;
        assert_eq!(
            (got, body),
            (status, Value::Null),
            "{}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
    }
    app.get("/health").send().await.assert_status(200);
    assert_eq!(all_users(&app).await, json!([]));
}
