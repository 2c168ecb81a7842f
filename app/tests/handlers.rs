//! The HTTP layer without a server or a database: `startup::app` (the route table, middleware
//! and state the service runs) driven by `actix_web::test`, over the memory store or over a
//! stub store that fails the way a driver does.

use actix_web::http::StatusCode;
use actix_web::test::{call_service, init_service, read_body, TestRequest};
use app::config::HttpSettings;
use app::routes::AppState;
use app::startup::app;
use async_trait::async_trait;
use domain::models::{Category, PageRequest, Product, ProductId};
use domain::ports::{Catalogue, HealthCheck, StoreResult};
use domain::{StoreError, StoreFailure, Stores};
use serde_json::{json, Value};
use std::sync::Arc;

const ADMIN: &str = "handler-test-admin";
/// What a driver might say: an address and a user name that must never reach a client.
const DRIVER_DETAIL: &str = "connection to 10.9.8.7:5432 refused (user shop_owner)";

/// A catalogue whose every call fails as an unreachable store.
struct DownCatalogue;

/// Fails as a driver would: what failed (with an address), and the driver's error as its source.
fn down<T>() -> StoreResult<T> {
    let driver = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, DRIVER_DETAIL);
    Err(StoreError::Unavailable(StoreFailure::caused_by("10.9.8.7:5432: error connecting to server", driver)))
}

#[async_trait]
impl Catalogue for DownCatalogue {
    async fn insert(&self, _: &Product) -> StoreResult<()> {
        down()
    }
    async fn get(&self, _: ProductId) -> StoreResult<Option<Product>> {
        down()
    }
    async fn get_many(&self, _: &[ProductId]) -> StoreResult<Vec<Product>> {
        down()
    }
    async fn update(&self, _: &Product) -> StoreResult<bool> {
        down()
    }
    async fn delete(&self, _: ProductId) -> StoreResult<bool> {
        down()
    }
    async fn list(&self, _: Option<&Category>, _: PageRequest) -> StoreResult<Vec<Product>> {
        down()
    }
}

#[async_trait]
impl HealthCheck for DownCatalogue {
    fn name(&self) -> &str {
        "catalogue"
    }
    async fn check(&self) -> StoreResult<()> {
        down()
    }
}

/// The memory store for every port; with `catalogue_down`, the catalogue (and its health) fails.
fn state(catalogue_down: bool) -> actix_web::web::Data<AppState> {
    let memory = adapter_memory::MemoryStore::new();
    let mut stores: Stores = memory.stores();
    let mut health: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(memory)];
    if catalogue_down {
        stores.catalogue = Arc::new(DownCatalogue);
        health.push(Arc::new(DownCatalogue));
    }
    AppState::new(stores, health, ADMIN)
}

/// Sends `req` through the app and returns the status, the Retry-After header and the body.
async fn send(catalogue_down: bool, req: TestRequest) -> (StatusCode, Option<String>, Value) {
    let service = init_service(app(state(catalogue_down), &HttpSettings::default())).await;
    let res = call_service(&service, req.to_request()).await;
    let status = res.status();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body = read_body(res).await;
    let body = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, retry, body)
}

fn new_product(body: Value) -> TestRequest {
    TestRequest::post().uri("/products").insert_header(("Authorization", format!("Bearer {ADMIN}"))).set_json(body)
}

#[actix_web::test]
async fn a_product_is_created_and_read_back_over_the_memory_store() {
    let memory = state(false);
    let service = init_service(app(memory, &HttpSettings::default())).await;
    let body = json!({"name": "Hammer", "description": "Claw hammer", "category": "tools", "price_cents": 1250});
    let res = call_service(&service, new_product(body).to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let id = created["id"].as_str().expect("an id");
    let res = call_service(&service, TestRequest::get().uri(&format!("/products/{id}")).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let read: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    assert_eq!(read, created);
}

#[actix_web::test]
async fn a_store_failure_is_503_unavailable_without_the_drivers_words() {
    let id = uuid::Uuid::now_v7();
    for req in [
        TestRequest::get().uri(&format!("/products/{id}")),
        TestRequest::get().uri("/products?category=tools"),
        new_product(json!({"name": "Hammer", "description": "", "category": "tools", "price_cents": 1})),
    ] {
        let (status, retry, body) = send(true, req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "unavailable", "{body}");
        assert_eq!(retry.as_deref(), Some("1"));
        let text = body.to_string();
        for secret in ["10.9.8.7", "5432", "shop_owner", "refused"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}

#[actix_web::test]
async fn readiness_names_the_store_that_fails() {
    let (status, _, body) = send(true, TestRequest::get().uri("/health/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["stores"], json!({"memory": "ok", "catalogue": "unavailable"}), "{body}");
    assert!(!body.to_string().contains("10.9.8.7"), "{body}");
    let (status, _, body) = send(false, TestRequest::get().uri("/health/ready")).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("ok")), "{body}");
}

#[actix_web::test]
async fn invalid_input_is_refused_naming_the_field_before_any_store_is_called() {
    // The catalogue is down: an answer other than 503 shows the input was refused first.
    let cases = [
        (json!({"name": "Hammer", "description": "", "category": "tools", "price_cents": -5}), 422, "price_cents"),
        (json!({"name": "", "description": "", "category": "tools", "price_cents": 5}), 422, "name"),
        (json!({"name": "Hammer", "description": "", "category": "tools", "price_cents": "5"}), 400, "price_cents"),
        (json!({"name": "Hammer", "description": "", "category": "tools"}), 400, "price_cents"),
    ];
    for (body, status, field) in cases {
        let (got, _, answer) = send(true, new_product(body.clone())).await;
        assert_eq!(got.as_u16(), status, "{body} -> {answer}");
        assert_eq!(answer["field"], field, "{body} -> {answer}");
    }
    let (got, _, answer) = send(true, TestRequest::get().uri("/products/not-a-uuid")).await;
    assert_eq!((got, &answer["field"]), (StatusCode::BAD_REQUEST, &json!("product_id")), "{answer}");
}

#[actix_web::test]
async fn access_is_checked_before_the_store() {
    let body = json!({"name": "Hammer", "description": "", "category": "tools", "price_cents": 1});
    let (status, _, answer) = send(true, TestRequest::post().uri("/products").set_json(&body)).await;
    assert_eq!((status, &answer["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthenticated")), "{answer}");
    let wrong = TestRequest::post().uri("/products").insert_header(("Authorization", "Bearer nope")).set_json(&body);
    let (status, _, answer) = send(true, wrong).await;
    assert_eq!((status, &answer["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{answer}");
}
