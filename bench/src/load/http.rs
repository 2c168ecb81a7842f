//! The HTTP form of each planned action (DESIGN.md's API) and what its response means to the
//! plan. Pure: the Goose layer sends what this builds.

use crate::load::plan::{Action, Outcome};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    /// Path and query, e.g. `/products?limit=20&category=category-03`.
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
    /// The statuses that count as success.
    pub expect: &'static [u16],
}

/// Percent-encodes a query value (unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn request_of(action: &Action) -> HttpRequest {
    let req = |method, path: String, body| HttpRequest { method, path, body, idempotency_key: None, expect: &[200] };
    match action {
        Action::SignUp { email, name } => HttpRequest {
            expect: &[201],
            ..req(Method::Post, "/users".into(), Some(json!({ "email": email, "name": name })))
        },
        Action::ListProducts { category, after, limit } => {
            let mut path = format!("/products?limit={limit}");
            if let Some(c) = category {
                path.push_str(&format!("&category={}", encode(c)));
            }
            if let Some(a) = after {
                path.push_str(&format!("&after={a}"));
            }
            req(Method::Get, path, None)
        }
        Action::GetProduct { product } => req(Method::Get, format!("/products/{product}"), None),
        Action::GetCart { user } => req(Method::Get, format!("/users/{user}/cart"), None),
        Action::AddItem { user, product, quantity } => req(
            Method::Post,
            format!("/users/{user}/cart/items"),
            Some(json!({ "product_id": product, "quantity": quantity })),
        ),
        Action::SetQuantity { user, product, quantity } => {
            req(Method::Put, format!("/users/{user}/cart/items/{product}"), Some(json!({ "quantity": quantity })))
        }
        Action::RemoveItem { user, product } => {
            req(Method::Delete, format!("/users/{user}/cart/items/{product}"), None)
        }
        Action::Checkout { user, key } => HttpRequest {
            idempotency_key: Some(key.clone()),
            // 200 is the replay of a key already used: still the order, still a success.
            expect: &[201, 200],
            ..req(Method::Post, format!("/users/{user}/orders"), Some(json!({})))
        },
        Action::ListOrders { user } => req(Method::Get, format!("/users/{user}/orders"), None),
        Action::GetOrder { user, order } => req(Method::Get, format!("/users/{user}/orders/{order}"), None),
        Action::PayOrder { user, order } => {
            req(Method::Patch, format!("/users/{user}/orders/{order}"), Some(json!({ "status": "paid" })))
        }
        Action::CreateProduct(spec) => HttpRequest {
            expect: &[201],
            ..req(Method::Post, "/products".into(), Some(serde_json::to_value(spec).expect("plain struct")))
        },
        Action::EditProduct { product, price_cents, description } => req(
            Method::Patch,
            format!("/products/{product}"),
            Some(json!({ "price_cents": price_cents, "description": description })),
        ),
    }
}

/// The part of an answer that names what was made (a user, order or product).
#[derive(Deserialize)]
pub(crate) struct WithId {
    pub(crate) id: Uuid,
}
/// The sign-up answer: the new user and its token.
#[derive(Deserialize)]
pub(crate) struct SignedUp {
    pub(crate) user: WithId,
    pub(crate) token: String,
}
#[derive(Deserialize)]
struct Page {
    items: Vec<WithId>,
    next: Option<Uuid>,
}
#[derive(Deserialize)]
struct Line {
    product_id: Uuid,
    quantity: u32,
}
#[derive(Deserialize)]
struct Cart {
    items: Vec<Line>,
}

/// Reads a response: `Err(reason)` when the status is not the expected one or the body is not
/// what the API promises (both are failed requests).
pub fn outcome_of(action: &Action, expect: &[u16], status: u16, body: &[u8]) -> Result<Outcome, String> {
    if !expect.contains(&status) {
        return Err(format!("status {status}"));
    }
    fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| format!("bad body: {e}"))
    }
    Ok(match action {
        Action::SignUp { .. } => {
            let s: SignedUp = parse(body)?;
            Outcome::SignedUp { user: s.user.id, token: s.token }
        }
        Action::ListProducts { .. } | Action::ListOrders { .. } => {
            let p: Page = parse(body)?;
            let ids = p.items.into_iter().map(|i| i.id).collect();
            match action {
                Action::ListOrders { .. } => Outcome::Orders { ids },
                _ => Outcome::Page { ids, next: p.next },
            }
        }
        Action::GetCart { .. } | Action::AddItem { .. } | Action::SetQuantity { .. } | Action::RemoveItem { .. } => {
            let c: Cart = parse(body)?;
            Outcome::Cart { items: c.items.into_iter().map(|l| (l.product_id, l.quantity)).collect() }
        }
        Action::Checkout { .. } => Outcome::Ordered { order: parse::<WithId>(body)?.id },
        Action::CreateProduct(_) | Action::EditProduct { .. } => {
            Outcome::ProductSaved { product: parse::<WithId>(body)?.id }
        }
        Action::GetProduct { .. } | Action::GetOrder { .. } | Action::PayOrder { .. } => {
            parse::<WithId>(body)?;
            Outcome::Done
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::plan::NewProductSpec;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn requests_follow_the_api() {
        let r =
            request_of(&Action::ListProducts { category: Some("toys & games".into()), after: Some(id(1)), limit: 20 });
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, format!("/products?limit=20&category=toys%20%26%20games&after={}", id(1)));
        let r = request_of(&Action::Checkout { user: id(2), key: "k-1".into() });
        assert_eq!((r.method, r.path.as_str()), (Method::Post, format!("/users/{}/orders", id(2)).as_str()));
        assert_eq!(r.idempotency_key.as_deref(), Some("k-1"));
        assert_eq!(r.expect, &[201, 200]);
        let r = request_of(&Action::SetQuantity { user: id(2), product: id(3), quantity: 4 });
        assert_eq!(r.method, Method::Put);
        assert_eq!(r.path, format!("/users/{}/cart/items/{}", id(2), id(3)));
        assert_eq!(r.body, Some(json!({ "quantity": 4 })));
        let spec = NewProductSpec { name: "n".into(), description: "d".into(), category: "c".into(), price_cents: 5 };
        let r = request_of(&Action::CreateProduct(spec));
        assert_eq!(r.body, Some(json!({ "name": "n", "description": "d", "category": "c", "price_cents": 5 })));
        assert_eq!(r.expect, &[201]);
        let r = request_of(&Action::PayOrder { user: id(2), order: id(9) });
        assert_eq!((r.method, r.body), (Method::Patch, Some(json!({ "status": "paid" }))));
    }

    #[test]
    fn responses_feed_the_plan() {
        let signup = Action::SignUp { email: "a@b.example".into(), name: "A".into() };
        let body = format!(r#"{{"user":{{"id":"{}","email":"a@b.example"}},"token":"abc"}}"#, id(5));
        assert_eq!(
            outcome_of(&signup, &[201], 201, body.as_bytes()),
            Ok(Outcome::SignedUp { user: id(5), token: "abc".into() })
        );
        let list = Action::ListProducts { category: None, after: None, limit: 2 };
        let body = format!(r#"{{"items":[{{"id":"{}"}},{{"id":"{}"}}],"next":"{}"}}"#, id(1), id(2), id(2));
        assert_eq!(
            outcome_of(&list, &[200], 200, body.as_bytes()),
            Ok(Outcome::Page { ids: vec![id(1), id(2)], next: Some(id(2)) })
        );
        let cart = Action::GetCart { user: id(5) };
        let body = format!(r#"{{"user_id":"{}","items":[{{"product_id":"{}","quantity":3}}]}}"#, id(5), id(1));
        assert_eq!(outcome_of(&cart, &[200], 200, body.as_bytes()), Ok(Outcome::Cart { items: vec![(id(1), 3)] }));
    }

    #[test]
    fn wrong_status_or_body_is_a_failure() {
        let get = Action::GetProduct { product: id(1) };
        assert_eq!(outcome_of(&get, &[200], 503, b"{}"), Err("status 503".into()));
        assert!(outcome_of(&get, &[200], 200, b"<html>").unwrap_err().starts_with("bad body"));
        let checkout = Action::Checkout { user: id(1), key: "k".into() };
        let body = format!(r#"{{"id":"{}"}}"#, id(8));
        assert_eq!(outcome_of(&checkout, &[201, 200], 200, body.as_bytes()), Ok(Outcome::Ordered { order: id(8) }));
    }
}
