//! `spawn_app` starts the real application on a free port against a fresh PostgreSQL database
//! (and, built with the stage-redis feature, with the carts in the test Redis set under a fresh
//! key prefix; built with stage-cassandra, with the catalogue in a fresh keyspace of the test
//! Cassandra ring).
//! Every response a test receives is checked against docs/openapi.yaml on the way: a documented
//! route answering with an undocumented status, or a body that does not fit the documented
//! schema, fails the test that made the request.

use crate::schema::doc;
use adapter_postgres::PgSettings;
use app::{Application, Settings};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: PgSettings,
    client: reqwest::Client,
    /// (METHOD, path template, status) of every documented operation called.
    pub seen: Mutex<BTreeSet<(String, String, u16)>>,
}

/// The app on a fresh database with test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app on a fresh database; `tune` may change the settings first.
pub async fn spawn_app_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = app::telemetry::init(&std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()));
    let db = test_support::pg::fresh_database(&test_support::pg::test_settings()).await;
    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.http.workers = 1;
    settings.admin_token = ADMIN_TOKEN.into();
    settings.postgres = Some(db.clone());
    #[cfg(feature = "stage-redis")]
    {
        let redis = test_support::redis::fresh_prefix(&test_support::redis::test_settings());
        settings.redis = Some(redis);
    }
    #[cfg(feature = "stage-cassandra")]
    {
        let cassandra = test_support::cassandra::fresh_keyspace(&test_support::cassandra::test_settings());
        settings.cassandra = Some(cassandra);
    }
    tune(&mut settings);
    let application = Application::build(settings).await.expect("the application builds");
    let port = application.port();
    tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { address: format!("http://127.0.0.1:{port}"), port, db, client, seen: Mutex::new(BTreeSet::new()) }
}

/// A response, already checked against the document.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_else(|| panic!("no error code in {}: {}", self.status, self.text))
    }
    pub fn field(&self) -> Option<&str> {
        self.body["field"].as_str()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts status, error code and field in one go, with the body in the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert_eq!(self.field(), field, "{}", self.text);
    }
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        &self.body
    }
}

pub struct Call<'a> {
    app: &'a TestApp,
    req: reqwest::RequestBuilder,
    method: Method,
    path: String,
}

impl Call<'_> {
    pub fn bearer(mut self, token: &str) -> Self {
        self.req = self.req.bearer_auth(token);
        self
    }
    pub fn admin(self) -> Self {
        self.bearer(ADMIN_TOKEN)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.req = self.req.header(name, value);
        self
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.req = self.req.json(body);
        self
    }
    /// A body sent as is, with this content type (none if `None`).
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        if let Some(ct) = content_type {
            self.req = self.req.header("content-type", ct);
        }
        self.req = self.req.body(body.into());
        self
    }
    pub async fn send(self) -> Resp {
        let res = self.req.send().await.unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let resp = Resp { status, headers, text, body };
        self.app.conforms(&self.method, &self.path, &resp);
        resp
    }
}

impl TestApp {
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        let req = self.client.request(method.clone(), format!("{}{}", self.address, path));
        Call { app: self, req, method, path: path.to_string() }
    }
    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }
    pub fn put(&self, path: &str) -> Call<'_> {
        self.call(Method::PUT, path)
    }
    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }
    pub fn head(&self, path: &str) -> Call<'_> {
        self.call(Method::HEAD, path)
    }

    /// Holds `resp` to the document: documented status, body matching the documented schema.
    /// Requests outside the document (unknown path or method) must still answer with an Error.
    /// HEAD is held to the GET operation of its path, with an empty body (RFC 9110 9.3.2).
    fn conforms(&self, method: &Method, path_and_query: &str, resp: &Resp) {
        let doc = doc();
        let path = path_and_query.split('?').next().unwrap();
        let context = format!("{method} {path_and_query} -> {}: {}", resp.status, resp.text);
        let head = *method == Method::HEAD;
        if head {
            assert!(resp.text.is_empty(), "HEAD answered with a body\n{context}");
        }
        let documented_as = if head { &Method::GET } else { method };
        let Some(found) = doc.find(documented_as.as_str(), path) else {
            if head {
                return;
            }
            let errors = doc.validate(&json!({"$ref": "#/components/schemas/Error"}), &resp.body);
            assert!(errors.is_empty(), "undocumented request must get an Error body: {errors:?}\n{context}");
            return;
        };
        self.seen.lock().unwrap().insert((method.to_string(), found.template.to_string(), resp.status));
        let documented = doc.response(found.op, resp.status).unwrap_or_else(|| {
            panic!("status {} is not documented for {method} {}\n{context}", resp.status, found.template)
        });
        let content_type = resp.header("content-type").unwrap_or("");
        match documented.get("content") {
            None => assert!(resp.text.is_empty(), "documented without a body, got one\n{context}"),
            Some(content) => {
                let (media, spec) = content.as_object().unwrap().iter().next().expect("one media type");
                assert!(
                    content_type.starts_with(media.as_str()),
                    "content type {content_type:?}, documented {media}\n{context}"
                );
                if media == "application/json" && !head {
                    let errors = doc.validate(&spec["schema"], &resp.body);
                    assert!(errors.is_empty(), "body does not match the document: {errors:#?}\n{context}");
                }
            }
        }
        if let Some(headers) = documented.get("headers").and_then(Value::as_object) {
            for name in headers.keys() {
                assert!(resp.header(name).is_some(), "documented header {name} missing\n{context}");
            }
        }
    }

    // ---- shortcuts for setting up a scene ----

    /// Signs a user up; returns the user object and its token.
    pub async fn sign_up(&self, email: &str) -> (Value, String) {
        let r = self.post("/users").json(&json!({"email": email, "name": "Test User"})).send().await;
        let body = r.assert_status(201).clone();
        let token = body["token"].as_str().unwrap().to_string();
        (body["user"].clone(), token)
    }

    /// A user with a unique email; returns its id and token.
    pub async fn user(&self) -> (String, String) {
        let (user, token) = self.sign_up(&format!("u{}@example.com", uuid::Uuid::new_v4().simple())).await;
        (user["id"].as_str().unwrap().to_string(), token)
    }

    pub async fn product(&self, name: &str, category: &str, price_cents: i64) -> Value {
        let body = json!({"name": name, "description": "", "category": category, "price_cents": price_cents});
        self.post("/products").admin().json(&body).send().await.assert_status(201).clone()
    }

    pub async fn add_to_cart(&self, user: &str, token: &str, product: &str, quantity: i64) -> Value {
        let body = json!({"product_id": product, "quantity": quantity});
        self.post(&format!("/users/{user}/cart/items"))
            .bearer(token)
            .json(&body)
            .send()
            .await
            .assert_status(200)
            .clone()
    }

    pub async fn checkout(&self, user: &str, token: &str, key: &str) -> Resp {
        self.post(&format!("/users/{user}/orders")).bearer(token).header("Idempotency-Key", key).send().await
    }
}

/// The stores `/health/ready` reports, all with `state`: the build's stage decides which.
pub fn stores_all(state: &str) -> Value {
    Value::Object(app::STAGE.stores().iter().map(|s| (s.name().to_string(), json!(state))).collect())
}

pub fn id_of(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))
}
