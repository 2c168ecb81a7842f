//! The one error type of the HTTP layer. Every failure a client can see is an `ApiError` and
//! leaves as `{"code", "message", "field"?}`; store failures never show their inner message.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::{DomainError, ValidationError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// 400: the request itself is malformed (syntax, type, unknown or missing field, bad
    /// query/path/header value).
    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        Self { field, ..Self::new(StatusCode::BAD_REQUEST, "bad_request", message) }
    }
    /// 400 from a value check on a query, path or header parameter.
    pub fn bad_parameter(e: ValidationError) -> Self {
        Self::bad_request(Some(e.field), e.message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 500: a bug on our side. The details go to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
    /// The error body for a status that has no more specific code (used for responses made by
    /// actix itself, see `routes::json_errors`).
    pub fn for_status(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            422 => "validation_failed",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "bad_request",
        };
        Self::new(status, code, status.canonical_reason().unwrap_or("error").to_lowercase())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} {}: {}: {}", self.status.as_u16(), self.code, field, self.message),
            None => write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody { code: self.code, message: &self.message, field: self.field.as_deref() };
        let mut res = HttpResponse::build(self.status);
        match self.status {
            StatusCode::UNAUTHORIZED => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        res.json(body)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            // A rule on a value that had the right type: 422 (type and syntax errors are 400).
            DomainError::Invalid(v) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", v.message).with_field(v.field)
            }
            DomainError::NotFound { entity } => Self::not_found(format!("{entity} not found")),
            DomainError::Conflict { code, message, field } => {
                Self { field, ..Self::new(StatusCode::CONFLICT, code, message) }
            }
            DomainError::Unauthenticated => Self::unauthenticated("a bearer token is required"),
            DomainError::Forbidden => Self::new(StatusCode::FORBIDDEN, "forbidden", "this token does not grant that"),
            DomainError::Unavailable(failure) => {
                // `error=<what failed> error.sources=[<the driver's error>, <its cause>, ...]`
                tracing::warn!(error = &failure as &(dyn std::error::Error + 'static), "store unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is unavailable, retry shortly")
            }
        }
    }
}

/// A body value that breaks a domain rule (the value had the right JSON type): 422.
impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        DomainError::Invalid(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: &ApiError) -> serde_json::Value {
        let bytes = e.error_response().into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn domain_errors_map_to_their_status_and_code() {
        let cases: Vec<(DomainError, u16, &str)> = vec![
            (ValidationError::new("name", "must not be empty").into(), 422, "validation_failed"),
            (DomainError::NotFound { entity: "product" }, 404, "not_found"),
            (DomainError::Conflict { code: "cart_empty", message: "empty".into(), field: None }, 409, "cart_empty"),
            (DomainError::Unauthenticated, 401, "unauthenticated"),
            (DomainError::Forbidden, 403, "forbidden"),
            (DomainError::Unavailable("x".into()), 503, "unavailable"),
        ];
        for (domain, status, code) in cases {
            let e = ApiError::from(domain);
            assert_eq!((e.status.as_u16(), e.code), (status, code));
        }
    }

    #[test]
    fn the_body_names_the_field_only_when_there_is_one() {
        let e = ApiError::from(DomainError::from(ValidationError::new("price_cents", "must not be negative")));
        assert_eq!(
            body_of(&e),
            serde_json::json!({"code": "validation_failed", "message": "must not be negative", "field": "price_cents"})
        );
        let e = ApiError::from(DomainError::NotFound { entity: "user" });
        assert_eq!(body_of(&e), serde_json::json!({"code": "not_found", "message": "user not found"}));
    }

    /// A `Write` into a shared buffer, for the log lines of one test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_store_failure_is_logged_with_its_chain_and_answered_without_it() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by 10.1.2.3");
        let failure = domain::StoreFailure::caused_by("10.1.2.3:5432: error connecting to server", refused);
        let e = tracing::subscriber::with_default(subscriber, || ApiError::from(DomainError::Unavailable(failure)));
        let line = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(
            line.contains(
                "store unavailable error=10.1.2.3:5432: error connecting to server error.sources=[refused by 10.1.2.3]"
            ),
            "{line}"
        );
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body_of(&e).to_string().contains("10.1.2.3"));
    }

    #[test]
    fn store_failures_do_not_leak_their_message() {
        let e = ApiError::from(DomainError::Unavailable("connection to 10.1.2.3:5432 refused".into()));
        let body = body_of(&e).to_string();
        assert!(!body.contains("10.1.2.3"), "{body}");
        assert_eq!(e.error_response().headers().get("retry-after").unwrap(), "1");
    }
}
