//! Extractors: the only way request data reaches a handler. Each one turns a malformed request
//! into an `ApiError` naming what is wrong (body field path, query or path parameter, header),
//! so a handler only ever sees well-typed input.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use domain::models::{ApiToken, IdempotencyKey, OrderId, ProductId, UserId};
use domain::{Credentials, ValidationError};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// The largest request body accepted, in bytes (`http.max_body_bytes`), kept in app data.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON request body of type `T`. Requires `Content-Type: application/json` (415 otherwise),
/// at most `BodyLimit` bytes (413), and a body `T` accepts (400 naming the field path).
#[derive(Debug)]
pub struct Json<T>(pub T);

/// Like [`Json`], but an empty body (with any or no content type) stands for `T::default()`.
#[derive(Debug)]
pub struct JsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            require_json(&req)?;
            let body = read_body(&req, payload).await?;
            parse_json(&body).map(Json)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonOrEmpty<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, payload).await?;
            if body.is_empty() {
                return Ok(JsonOrEmpty(T::default()));
            }
            require_json(&req)?;
            parse_json(&body).map(JsonOrEmpty)
        })
    }
}

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = matches!(req.mime_type(), Ok(Some(m)) if m.essence_str() == "application/json");
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be sent with Content-Type: application/json",
        )
        .with_field("Content-Type"))
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body must be at most {limit} bytes"))
}

/// Reads the whole body, refusing it as soon as it is known to exceed the limit.
async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<Bytes, ApiError> {
    let limit = req.app_data::<BodyLimit>().map_or(64 * 1024, |l| l.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(None, format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON so that errors name the field path, e.g. `price_cents` or `items.2.quantity`.
/// Every request body is an object: serde would also accept a struct as an array of its
/// fields in order (`["a@b.org", "Ann"]`), which the API does not offer. One leading UTF-8 byte
/// order mark is skipped (RFC 8259 §8.1 allows it; some Windows clients send one).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(None, "the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = dotted(e.path());
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(None, json_message(inner))
        } else {
            field_error(&path, json_message(inner))
        }
    })?;
    // Trailing data after the value is as malformed as a missing brace.
    de.end().map_err(|e| ApiError::bad_request(None, json_message(e)))?;
    Ok(value)
}

/// serde_json appends the position to its messages; a field error is located by its field
/// instead, a syntax error keeps the position in words.
fn json_message(e: serde_json::Error) -> String {
    let message = e.to_string();
    let (line, column) = (e.line(), e.column());
    match message.strip_suffix(&format!(" at line {line} column {column}")) {
        Some(m) if e.is_syntax() || e.is_eof() => format!("malformed JSON: {m} (line {line}, column {column})"),
        Some(m) => m.to_string(),
        None => message,
    }
}

/// The path as the domain names fields: `lines.0.quantity` (empty at the root).
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let parts: Vec<String> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    parts.join(".")
}

/// A serde error at `path` as a 400. "missing field" and "unknown field" errors are reported at
/// the enclosing object; the field they name is appended so `field` always points at it.
fn field_error(path: &str, message: String) -> ApiError {
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string);
    let at = (!path.is_empty()).then(|| path.to_string());
    let field = match (at, named) {
        (Some(at), Some(name)) if at == name || at.ends_with(&format!(".{name}")) => Some(at),
        (Some(at), Some(name)) => Some(format!("{at}.{name}")),
        (None, named) => named,
        (at, None) => at,
    };
    ApiError::bad_request(field, message)
}

/// The query string as `T` (400 naming the parameter on an unknown name or a bad value).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(Query))
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    require_utf8_query(query)?;
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = dotted(e.path());
        field_error(&path, e.into_inner().to_string())
    })
}

/// Percent-escapes must decode to UTF-8: `form_urlencoded` would quietly turn `%FF` into U+FFFD,
/// and a filter or id would then be judged on text the client never sent.
fn require_utf8_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if std::str::from_utf8(&percent_decoded(name)).is_err() || std::str::from_utf8(&percent_decoded(value)).is_err()
        {
            let name = String::from_utf8_lossy(&percent_decoded(name)).into_owned();
            return Err(ApiError::bad_request(Some(name), "must be percent-encoded UTF-8"));
        }
    }
    Ok(())
}

/// The bytes of a query component, `%XX` decoded as `form_urlencoded` does (a `%` not followed
/// by two hex digits stays as it is).
fn percent_decoded(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A path parameter that is an id; its name in the route pattern is the one in the error.
pub trait PathId: Sized {
    const PARAM: &'static str;
    fn parse(raw: &str) -> Result<Self, ValidationError>;
}

macro_rules! path_id {
    ($ty:ty, $param:literal) => {
        impl PathId for $ty {
            const PARAM: &'static str = $param;
            fn parse(raw: &str) -> Result<Self, ValidationError> {
                <$ty>::parse(raw, $param)
            }
        }
    };
}
path_id!(UserId, "user_id");
path_id!(ProductId, "product_id");
path_id!(OrderId, "order_id");

/// An id from the path, e.g. `Id<UserId>` for `{user_id}`. Not a UUID: 400 naming the parameter.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

impl<T: PathId> FromRequest for Id<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = match req.match_info().get(T::PARAM) {
            Some(raw) => T::parse(raw).map(Id).map_err(ApiError::bad_parameter),
            None => Err(ApiError::internal(format!("route {:?} has no {{{}}}", req.match_pattern(), T::PARAM))),
        };
        ready(id)
    }
}

/// The caller's bearer token. Routes that need one take this extractor, so a request without
/// a token is refused with 401 before its body is looked at; the domain decides what it grants.
#[derive(Debug, Clone)]
pub struct Bearer(pub Credentials);

impl FromRequest for Bearer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(bearer_token(req).map(|t| Bearer(Credentials::Bearer(t))))
    }
}

fn bearer_token(req: &HttpRequest) -> Result<ApiToken, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Err(ApiError::unauthenticated("a bearer token is required (Authorization: Bearer <token>)"));
    };
    // Two credentials are ambiguous: a proxy may have checked the one this code would not use.
    if values.next().is_some() {
        return Err(ApiError::unauthenticated("send one Authorization header").with_field("Authorization"));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    match token {
        Some(t) => Ok(ApiToken::from_client(t)),
        None => {
            Err(ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
                .with_field("Authorization"))
        }
    }
}

/// The `Idempotency-Key` header of a checkout; required.
#[derive(Debug, Clone)]
pub struct IdempotencyKeyHeader(pub IdempotencyKey);

impl FromRequest for IdempotencyKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut values = req.headers().get_all(IdempotencyKey::FIELD);
        let key = match (values.next(), values.next()) {
            (None, _) => Err(ApiError::bad_request(
                Some(IdempotencyKey::FIELD.into()),
                "the Idempotency-Key header is required: any 1 to 100 visible ASCII characters, the same on a retry",
            )),
            // Which of two keys would a retry repeat? Refused rather than guessed.
            (Some(_), Some(_)) => {
                Err(ApiError::bad_request(Some(IdempotencyKey::FIELD.into()), "send one Idempotency-Key header"))
            }
            (Some(v), None) => IdempotencyKey::parse(&String::from_utf8_lossy(v.as_bytes()))
                .map(IdempotencyKeyHeader)
                .map_err(ApiError::bad_parameter),
        };
        ready(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        product_id: uuid::Uuid,
        quantity: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, expecting = "a JSON object")]
    #[allow(dead_code)]
    struct Body {
        name: String,
        lines: Vec<Line>,
    }

    fn field_of(json: &str) -> (Option<String>, String) {
        let e = parse_json::<Body>(json.as_bytes()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        (e.field, e.message)
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let (field, message) = field_of(r#"{"name": 5, "lines": []}"#);
        assert_eq!(field.as_deref(), Some("name"));
        assert!(message.contains("expected a string"), "{message}");
        let (field, _) = field_of(r#"{"name": "x", "lines": [{"product_id": "not-a-uuid", "quantity": 1}]}"#);
        assert_eq!(field.as_deref(), Some("lines.0.product_id"));
    }

    #[test]
    fn missing_and_unknown_fields_are_named_in_full() {
        assert_eq!(field_of(r#"{"lines": []}"#).0.as_deref(), Some("name"));
        assert_eq!(field_of(r#"{"name": "x", "lines": [], "admin": true}"#).0.as_deref(), Some("admin"));
        let id = uuid::Uuid::nil();
        let nested = format!(r#"{{"name": "x", "lines": [{{"product_id": "{id}", "quantity": 1, "x": 1}}]}}"#);
        assert_eq!(field_of(&nested).0.as_deref(), Some("lines.0.x"));
        let missing = format!(r#"{{"name": "x", "lines": [{{"product_id": "{id}"}}]}}"#);
        assert_eq!(field_of(&missing).0.as_deref(), Some("lines.0.quantity"));
    }

    #[test]
    fn malformed_json_is_a_400_without_a_field() {
        for bad in ["{", "{\"name\": }", "", r#"{"name": "x", "lines": []} {}"#, "[1]", "null"] {
            let (field, message) = field_of(bad);
            assert_eq!(field, None, "{bad:?}: {message}");
        }
        assert!(field_of("{").1.starts_with("malformed JSON"), "{}", field_of("{").1);
        assert!(field_of("[1]").1.contains("a JSON object"), "{}", field_of("[1]").1);
        assert!(field_of(r#"["x", []]"#).1.contains("a JSON object"), "a struct as an array is refused");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Paging {
        limit: Option<i64>,
        after: Option<String>,
    }

    #[test]
    fn a_byte_order_mark_before_the_body_is_skipped_once() {
        let ok: Paging = parse_json(b"\xEF\xBB\xBF{\"limit\": 5}").unwrap();
        assert_eq!(ok.limit, Some(5));
        assert!(parse_json::<Paging>(b"\xEF\xBB\xBF\xEF\xBB\xBF{}").is_err());
        assert!(parse_json::<Paging>(b" \xEF\xBB\xBF{}").is_err());
    }

    #[test]
    fn query_text_must_decode_to_utf8() {
        assert_eq!(percent_decoded("a%C3%A9+%2"), b"a\xC3\xA9+%2");
        let e = parse_query::<Paging>("after=%FF%FE").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::BAD_REQUEST, Some("after")));
        assert_eq!(parse_query::<Paging>("limit=1&x%FF=1").unwrap_err().field.as_deref(), Some("x\u{FFFD}"));
        let q: Paging = parse_query("after=caf%C3%A9&limit=2").unwrap();
        assert_eq!(q.after.as_deref(), Some("café"));
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let q: Paging = parse_query("limit=5&after=abc").unwrap();
        assert_eq!((q.limit, q.after.as_deref()), (Some(5), Some("abc")));
        assert_eq!(parse_query::<Paging>("limit=five").unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(parse_query::<Paging>("limt=5").unwrap_err().field.as_deref(), Some("limt"));
        assert_eq!(parse_query::<Paging>("limit=1&limit=2").unwrap_err().field.as_deref(), Some("limit"));
        assert!(parse_query::<Paging>("").is_ok());
    }
}
