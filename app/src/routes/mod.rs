//! The route table: the one list of (method, path pattern, handler) that the app registers and
//! that the OpenAPI conformance test compares with docs/openapi.yaml.

pub mod carts;
pub mod health;
pub mod orders;
pub mod products;
pub mod users;

use crate::error::ApiError;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpResponse, ResponseError};
use domain::ports::HealthCheck;
use domain::Shop;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler shares.
pub struct AppState {
    pub shop: Shop,
    pub health: Vec<Arc<dyn HealthCheck>>,
    pub metrics: PrometheusHandle,
}

pub type State = web::Data<AppState>;

/// One route: `mount` attaches the handler to an `actix_web::Route` already guarded by `method`.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub mount: fn(actix_web::Route) -> actix_web::Route,
}

macro_rules! route {
    ($method:literal, $path:literal, $handler:path) => {
        Route { method: $method, path: $path, mount: |r| r.to($handler) }
    };
}

pub const TABLE: &[Route] = &[
    route!("GET", "/health", health::live),
    route!("GET", "/health/ready", health::ready),
    route!("GET", "/metrics", health::metrics),
    route!("POST", "/users", users::create),
    route!("GET", "/users", users::list),
    route!("GET", "/users/{user_id}", users::get),
    route!("PATCH", "/users/{user_id}", users::update),
    route!("DELETE", "/users/{user_id}", users::delete),
    route!("POST", "/products", products::create),
    route!("GET", "/products", products::list),
    route!("GET", "/products/{product_id}", products::get),
    route!("PATCH", "/products/{product_id}", products::update),
    route!("DELETE", "/products/{product_id}", products::delete),
    route!("GET", "/users/{user_id}/cart", carts::get),
    route!("DELETE", "/users/{user_id}/cart", carts::clear),
    route!("POST", "/users/{user_id}/cart/items", carts::add),
    route!("PUT", "/users/{user_id}/cart/items/{product_id}", carts::set),
    route!("DELETE", "/users/{user_id}/cart/items/{product_id}", carts::remove),
    route!("POST", "/users/{user_id}/orders", orders::checkout),
    route!("GET", "/users/{user_id}/orders", orders::list),
    route!("GET", "/users/{user_id}/orders/{order_id}", orders::get),
    route!("PATCH", "/users/{user_id}/orders/{order_id}", orders::update),
];

/// Registers `TABLE`, one resource per path; a known path with another method gets a JSON 405
/// with `Allow`, and an unknown path a JSON 404. Every GET route also answers HEAD (RFC 9110
/// 9.3.2): the same handler, so the same status and headers; actix-web sends no body for HEAD.
pub fn register(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for r in TABLE {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        let mut allowed = Vec::new();
        for r in TABLE.iter().filter(|r| r.path == path) {
            let method = Method::from_bytes(r.method.as_bytes()).expect("TABLE holds valid methods");
            resource = resource.route((r.mount)(web::route().method(method.clone())));
            allowed.push(r.method);
            if method == Method::GET {
                resource = resource.route((r.mount)(web::route().method(Method::HEAD)));
                allowed.push("HEAD");
            }
        }
        let allow = allowed.join(", ");
        resource = resource.default_service(web::to(move || method_not_allowed(allow.clone())));
        cfg.service(resource);
    }
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    ApiError::not_found("no such route").error_response()
}

async fn method_not_allowed(allow: String) -> HttpResponse {
    let mut res =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("this path allows {allow}"))
            .error_response();
    if let Ok(v) = HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

/// Safety net for error responses made by actix itself rather than by an `ApiError` (which are
/// plain text): they get the JSON error body of their status, so clients see one error shape.
pub fn json_errors<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    tracing::debug!(status = %res.status(), "replacing a non-JSON error body");
    let json: HttpResponse<BoxBody> = ApiError::for_status(res.status()).error_response();
    let res: ServiceResponse<EitherBody<B, BoxBody>> = ServiceResponse::new(req, json).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for r in TABLE {
            assert!(seen.insert((r.method, r.path)), "{} {} twice", r.method, r.path);
            assert!(Method::from_bytes(r.method.as_bytes()).is_ok());
        }
    }

    #[actix_web::test]
    async fn plain_text_errors_become_json_and_json_errors_are_kept() {
        let text = TestRequest::default().to_srv_response(HttpResponse::BadGateway().body("upstream broke"));
        let ErrorHandlerResponse::Response(res) = json_errors(text).unwrap() else { panic!("expected a response") };
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal");
        assert_eq!(body["message"], "bad gateway");

        let own = TestRequest::default().to_srv_response(ApiError::not_found("user not found").error_response());
        let ErrorHandlerResponse::Response(res) = json_errors(own).unwrap() else { panic!("expected a response") };
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        assert_eq!(&body[..], br#"{"code":"not_found","message":"user not found"}"#);
    }
}
