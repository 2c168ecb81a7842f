//! What the clients saw during one fault's load: every request with its time and outcome, the
//! orders they were told were placed, and each shopper's cart as the answers showed it.
//! Fed by the Goose load as an [`Observer`]; read by the analysis and the data checks.

use crate::load::ops::Op;
use crate::load::plan::{Action, Outcome};
use crate::load::{Finished, Observer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

/// One finished request; times in seconds since the timeline's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Req {
    /// The Goose user.
    pub user: usize,
    pub op: Op,
    pub start: f64,
    pub end: f64,
    /// Why it failed, as the client saw it ("502 Bad Gateway", "503 unavailable",
    /// "connect: Connection refused (os error 111)"); `None` for a success.
    pub error: Option<String>,
}

impl Req {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A checkout the client saw acknowledged (201 new, 200 replay of its key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedOrder {
    pub user: Uuid,
    pub key: String,
    pub order: Uuid,
    pub status: u16,
}

type Lines = BTreeMap<Uuid, u32>;

/// A catalogue write (a product created, or repriced) and what the client learnt of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProductWrite {
    pub price_cents: i64,
    pub start: f64,
    pub end: f64,
    /// Acknowledged (201 or 200); otherwise it failed without a definite answer (a 5xx, or no
    /// answer) and may still have been applied.
    pub acked: bool,
}

/// A shopper's cart as far as the answers tell: known after any acknowledged cart answer,
/// unknown after a change whose outcome the client does not know (failed, or still in flight).
#[derive(Clone, Debug, PartialEq)]
enum CartView {
    Known(Lines),
    Unknown,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Req>,
    /// Per Goose user: the request it has in flight.
    in_flight: HashMap<usize, Action>,
    orders: Vec<AckedOrder>,
    carts: HashMap<Uuid, CartView>,
    /// Answers that contradict an earlier acknowledged cart change.
    cart_contradictions: Vec<String>,
    /// Per shopper: cart changes that failed without a definite answer (a 5xx, or no answer):
    /// the service may still apply them, later than the failure the client saw.
    unsettled: HashMap<Uuid, Vec<Action>>,
    /// Answers that differed from the acknowledged changes only by such failed changes.
    late: u64,
    /// Per product: the catalogue writes of the load (creates and reprices).
    products: HashMap<Uuid, Vec<ProductWrite>>,
}

pub struct Timeline {
    t0: Instant,
    inner: Mutex<Inner>,
}

/// What the timeline holds once the load has ended.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub requests: Vec<Req>,
    pub orders: Vec<AckedOrder>,
    /// Each shopper's cart where the client knows it (its last acknowledged state, with no
    /// change of unknown outcome after it).
    pub known_carts: BTreeMap<Uuid, Vec<(Uuid, u32)>>,
    pub cart_contradictions: Vec<String>,
    /// Per shopper: its failed cart changes of unknown outcome (see [`late_effect`]).
    pub unsettled: BTreeMap<Uuid, Vec<Action>>,
    /// Cart answers explained by a change the client had seen fail, applied after all.
    pub late_applied: u64,
    /// Per product created or repriced during the load: its writes, in the order they ended.
    pub products: BTreeMap<Uuid, Vec<ProductWrite>>,
}

impl Timeline {
    pub fn new(t0: Instant) -> Timeline {
        Timeline { t0, inner: Mutex::new(Inner::default()) }
    }

    /// Seconds since the start.
    pub fn at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    pub fn now(&self) -> f64 {
        self.at(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finished requests so far: (ok, failed).
    pub fn counts(&self) -> (u64, u64) {
        let inner = self.lock();
        let failed = inner.requests.iter().filter(|r| !r.ok()).count() as u64;
        (inner.requests.len() as u64 - failed, failed)
    }

    /// Ends the timeline: requests still in flight leave their carts unknown.
    pub fn finish(&self) -> Seen {
        let mut inner = self.lock();
        let pending: Vec<Action> = inner.in_flight.drain().map(|(_, a)| a).collect();
        for a in pending {
            if let Some(user) = cart_user(&a) {
                inner.carts.insert(user, CartView::Unknown);
            }
        }
        let known_carts = inner
            .carts
            .iter()
            .filter_map(|(u, c)| match c {
                CartView::Known(lines) => Some((*u, lines.iter().map(|(p, q)| (*p, *q)).collect())),
                CartView::Unknown => None,
            })
            .collect();
        let mut requests = std::mem::take(&mut inner.requests);
        requests.sort_by(|a, b| a.end.total_cmp(&b.end));
        Seen {
            requests,
            orders: std::mem::take(&mut inner.orders),
            known_carts,
            cart_contradictions: std::mem::take(&mut inner.cart_contradictions),
            unsettled: inner.unsettled.drain().collect(),
            late_applied: inner.late,
            products: inner
                .products
                .drain()
                .map(|(p, mut w)| {
                    w.sort_by(|a, b| a.end.total_cmp(&b.end));
                    (p, w)
                })
                .collect(),
        }
    }
}

/// The shopper whose cart `a` may change.
fn cart_user(a: &Action) -> Option<Uuid> {
    match a {
        Action::AddItem { user, .. }
        | Action::SetQuantity { user, .. }
        | Action::RemoveItem { user, .. }
        | Action::Checkout { user, .. } => Some(*user),
        _ => None,
    }
}

/// The reason a client would give for a failed request: status and the API's error code, the
/// title of a proxy's error page, or the transport error.
pub fn reason(status: Option<u16>, body: &[u8], transport: Option<&str>, outcome: &str) -> String {
    let Some(status) = status else {
        // "connect: ...: tcp connect error: Connection refused (os error 111)" -> its last part.
        let detail = transport.unwrap_or("").rsplit(": ").next().unwrap_or("").trim();
        let kind = outcome.split(':').next().unwrap_or(outcome);
        return if detail.is_empty() { kind.to_string() } else { format!("{kind}: {detail}") };
    };
    if (200..300).contains(&status) {
        // The status was fine but the body was not what the API promises.
        return outcome.split(':').next().unwrap_or(outcome).to_string();
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(code) = v.get("code").and_then(|c| c.as_str()) {
            return format!("{status} {code}");
        }
    }
    let text = String::from_utf8_lossy(body);
    if let Some(title) = text.split("<title>").nth(1).and_then(|t| t.split("</title>").next()) {
        return title.trim().to_string();
    }
    format!("{status}")
}

fn apply_change(before: &Lines, a: &Action) -> Option<Lines> {
    let mut after = before.clone();
    match a {
        Action::AddItem { product, quantity, .. } => *after.entry(*product).or_default() += quantity,
        Action::SetQuantity { product, quantity, .. } => {
            after.insert(*product, *quantity);
        }
        Action::RemoveItem { product, .. } => {
            after.remove(product);
        }
        _ => return None,
    }
    Some(after)
}

/// Which of the failed changes `unsettled` (applied in their order, before `then`) turn `before`
/// into `got`: a request the client saw fail may still have been applied (nginx gave up waiting;
/// the service went on). `None` when no subset explains `got`.
pub fn late_effect(before: &Lines, unsettled: &[Action], then: Option<&Action>, got: &Lines) -> Option<Vec<usize>> {
    let n = unsettled.len().min(10);
    for mask in 1u32..(1 << n) {
        let mut cart = before.clone();
        for (i, a) in unsettled.iter().enumerate().take(n) {
            if mask & (1 << i) != 0 {
                cart = match a {
                    Action::Checkout { .. } => Lines::new(),
                    other => apply_change(&cart, other).unwrap_or(cart),
                };
            }
        }
        if let Some(a) = then {
            cart = apply_change(&cart, a).unwrap_or(cart);
        }
        if &cart == got {
            return Some((0..n).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    None
}

/// Lines as `[2x…1f3a09bc, ...]`: the end of each product id (UUID v7 ids share their start).
pub fn show(lines: &Lines) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|(p, q)| {
            let id = p.simple().to_string();
            format!("{q}x…{}", &id[id.len() - 8..])
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A failure after which the change may still be applied: no answer, or a 5xx.
fn unsettled_failure(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

impl Inner {
    /// A cart `got` after `a` (a change, or a read) at `end` s, checked against the cart known
    /// for `user` with `a` applied: a difference that changes the client saw fail account for is
    /// their late effect (they are settled then); any other difference is a contradiction.
    fn check_cart(&mut self, user: Uuid, a: &Action, got: &Lines, end: f64) {
        let Some(CartView::Known(before)) = self.carts.get(&user) else { return };
        let expected = apply_change(before, a).unwrap_or_else(|| before.clone());
        if expected == *got {
            return;
        }
        let pending = self.unsettled.get(&user).map(Vec::as_slice).unwrap_or(&[]);
        let change = (!matches!(a, Action::GetCart { .. })).then_some(a);
        if let Some(applied) = late_effect(before, pending, change, got) {
            self.late += 1;
            let left = self.unsettled.entry(user).or_default();
            let mut i = 0;
            left.retain(|_| {
                i += 1;
                !applied.contains(&(i - 1))
            });
        } else {
            let what = match a {
                Action::GetCart { .. } => "reading the cart".to_string(),
                other => other.op().to_string(),
            };
            let line = format!(
                "user {user}: after {what} at {end:.2} s the cart is {}, the acknowledged changes make it {}",
                show(got),
                show(&expected)
            );
            self.cart_contradictions.push(line);
        }
    }
}

impl Observer for Timeline {
    fn sent(&self, user: usize, action: &Action, _at: Instant) {
        self.lock().in_flight.insert(user, action.clone());
    }

    fn finished(&self, f: &Finished<'_>) {
        let (start, end) = (self.at(f.started), self.at(f.ended));
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.in_flight.remove(&f.user);
        let error = f.outcome.as_ref().err().map(|o| reason(f.status, f.body, f.transport_error, o));
        inner.requests.push(Req { user: f.user, op: f.action.op(), start, end, error });
        let a = f.action;
        match (a, f.outcome) {
            (Action::SignUp { .. }, Ok(Outcome::SignedUp { user, .. })) => {
                inner.carts.insert(*user, CartView::Known(Lines::new()));
            }
            (Action::Checkout { user, key }, Ok(Outcome::Ordered { order })) => {
                let status = f.status.unwrap_or(0);
                inner.orders.push(AckedOrder { user: *user, key: key.clone(), order: *order, status });
                // A new order empties the cart; a replay leaves it as it is (the first attempt
                // may or may not have emptied it).
                let view = if status == 201 { CartView::Known(Lines::new()) } else { CartView::Unknown };
                inner.carts.insert(*user, view);
            }
            (Action::Checkout { user, .. }, Err(_)) => {
                if unsettled_failure(f.status) {
                    inner.unsettled.entry(*user).or_default().push(a.clone());
                }
                let was = inner.carts.insert(*user, CartView::Unknown);
                let empty = f.status == Some(409) && String::from_utf8_lossy(f.body).contains("\"cart_empty\"");
                if let (true, Some(CartView::Known(lines))) = (empty, was) {
                    if !lines.is_empty() {
                        inner.cart_contradictions.push(format!(
                            "user {user}: checkout found the cart empty; the acknowledged cart was {}",
                            show(&lines)
                        ));
                    }
                }
            }
            (
                Action::AddItem { user, .. }
                | Action::SetQuantity { user, .. }
                | Action::RemoveItem { user, .. }
                | Action::GetCart { user },
                Ok(Outcome::Cart { items }),
            ) => {
                let got: Lines = items.iter().copied().collect();
                inner.check_cart(*user, a, &got, end);
                inner.carts.insert(*user, CartView::Known(got));
            }
            (Action::AddItem { user, .. } | Action::SetQuantity { user, .. } | Action::RemoveItem { user, .. }, _) => {
                if f.outcome.is_err() && unsettled_failure(f.status) {
                    inner.unsettled.entry(*user).or_default().push(a.clone());
                }
                inner.carts.insert(*user, CartView::Unknown);
            }
            (Action::CreateProduct(spec), Ok(Outcome::ProductSaved { product })) => {
                let w = ProductWrite { price_cents: spec.price_cents, start, end, acked: true };
                inner.products.entry(*product).or_default().push(w);
            }
            (Action::EditProduct { product, price_cents, .. }, outcome) => {
                // A create that failed has no id to look for; a reprice refused (4xx) changed nothing.
                let acked = outcome.is_ok();
                if acked || unsettled_failure(f.status) {
                    let w = ProductWrite { price_cents: *price_cents, start, end, acked };
                    inner.products.entry(*product).or_default().push(w);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    struct Feed<'a> {
        tl: &'a Timeline,
        t: Instant,
    }

    impl Feed<'_> {
        fn send(&mut self, user: usize, a: Action, status: Option<u16>, body: &str, outcome: Result<Outcome, String>) {
            self.tl.sent(user, &a, self.t);
            let ended = self.t + Duration::from_millis(10);
            self.tl.finished(&Finished {
                user,
                action: &a,
                host: "http://127.0.0.1:1/",
                started: self.t,
                ended,
                status,
                body: body.as_bytes(),
                transport_error: status
                    .is_none()
                    .then_some("error sending request: tcp connect error: Connection refused"),
                outcome: &outcome,
            });
            self.t = ended;
        }
    }

    #[test]
    fn reasons_read_like_what_the_client_got() {
        assert_eq!(
            reason(Some(503), br#"{"code":"unavailable","message":"x"}"#, None, "status 503"),
            "503 unavailable"
        );
        let page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>";
        assert_eq!(reason(Some(502), page, None, "status 502"), "502 Bad Gateway");
        assert_eq!(reason(Some(500), b"oops", None, "status 500"), "500");
        assert_eq!(
            reason(None, b"", Some("error sending request: client error (Connect): Connection refused"), "connect"),
            "connect: Connection refused"
        );
        assert_eq!(reason(Some(200), b"<html>", None, "bad body: expected value"), "bad body");
    }

    #[test]
    fn a_failed_change_applied_later_is_not_a_contradiction() {
        let tl = Timeline::new(Instant::now());
        let mut f = Feed { tl: &tl, t: Instant::now() };
        let (u, p, q) = (id(1), id(10), id(11));
        let cart = |items: Vec<(Uuid, u32)>| Ok(Outcome::Cart { items });
        let signed = Ok(Outcome::SignedUp { user: u, token: "t".into() });
        f.send(0, Action::SignUp { email: "e".into(), name: "n".into() }, Some(201), "", signed);
        f.send(0, Action::AddItem { user: u, product: p, quantity: 1 }, Some(200), "", cart(vec![(p, 1)]));
        // nginx gives up on an add (504) that the service applies a moment later; the read in
        // between still shows the cart without it.
        let add_q = Action::AddItem { user: u, product: q, quantity: 2 };
        f.send(0, add_q, Some(504), "<title>504 Gateway Time-out</title>", Err("status 504".into()));
        f.send(0, Action::GetCart { user: u }, Some(200), "", cart(vec![(p, 1)]));
        f.send(0, Action::SetQuantity { user: u, product: p, quantity: 3 }, Some(200), "", cart(vec![(p, 3), (q, 2)]));
        // A 4xx is a definite answer: a removal refused is not waiting anywhere.
        let remove = Action::RemoveItem { user: u, product: id(12) };
        f.send(0, remove, Some(404), r#"{"code":"not_found"}"#, Err("status 404".into()));
        let seen = tl.finish();
        assert_eq!(seen.late_applied, 1);
        assert!(seen.cart_contradictions.is_empty(), "{:?}", seen.cart_contradictions);
        assert_eq!(seen.unsettled.get(&u).map(Vec::len), Some(0), "the late add is settled");
        let before: Lines = [(p, 3)].into();
        let pending = [Action::RemoveItem { user: u, product: p }, Action::Checkout { user: u, key: "k".into() }];
        assert_eq!(late_effect(&before, &pending, None, &Lines::new()), Some(vec![0]));
        let add = Action::AddItem { user: u, product: q, quantity: 1 };
        assert_eq!(late_effect(&before, &pending[1..], Some(&add), &[(q, 1)].into()), Some(vec![0]));
        assert_eq!(late_effect(&before, &pending, None, &[(p, 4)].into()), None);
    }

    #[test]
    fn orders_carts_and_contradictions() {
        let tl = Timeline::new(Instant::now());
        let mut f = Feed { tl: &tl, t: Instant::now() };
        let (u, p, q) = (id(1), id(10), id(11));
        let cart = |items: Vec<(Uuid, u32)>| Ok(Outcome::Cart { items });
        f.send(
            0,
            Action::SignUp { email: "e".into(), name: "n".into() },
            Some(201),
            "",
            Ok(Outcome::SignedUp { user: u, token: "t".into() }),
        );
        f.send(0, Action::AddItem { user: u, product: p, quantity: 2 }, Some(200), "", cart(vec![(p, 2)]));
        f.send(0, Action::AddItem { user: u, product: q, quantity: 1 }, Some(200), "", cart(vec![(p, 2), (q, 1)]));
        // The answer to a quantity change misses the acknowledged add of q.
        f.send(0, Action::SetQuantity { user: u, product: p, quantity: 5 }, Some(200), "", cart(vec![(p, 5)]));
        let key = "checkout-1".to_string();
        f.send(
            0,
            Action::Checkout { user: u, key: key.clone() },
            Some(201),
            "",
            Ok(Outcome::Ordered { order: id(99) }),
        );
        // A second shopper: a failed add leaves its cart unknown, a read makes it known again.
        let v = id(2);
        f.send(
            1,
            Action::SignUp { email: "f".into(), name: "n".into() },
            Some(201),
            "",
            Ok(Outcome::SignedUp { user: v, token: "t".into() }),
        );
        f.send(1, Action::AddItem { user: v, product: p, quantity: 1 }, None, "", Err("connect".into()));
        f.send(1, Action::GetCart { user: v }, Some(200), "", cart(vec![(p, 1)]));
        f.send(
            1,
            Action::RemoveItem { user: v, product: p },
            Some(502),
            "<title>502 Bad Gateway</title>",
            Err("status 502".into()),
        );
        // A third whose add is still in flight when the load ends.
        let w = id(3);
        f.send(
            2,
            Action::SignUp { email: "g".into(), name: "n".into() },
            Some(201),
            "",
            Ok(Outcome::SignedUp { user: w, token: "t".into() }),
        );
        tl.sent(2, &Action::AddItem { user: w, product: q, quantity: 1 }, Instant::now());

        assert_eq!(tl.counts(), (8, 2));
        let seen = tl.finish();
        assert_eq!(seen.orders, vec![AckedOrder { user: u, key, order: id(99), status: 201 }]);
        assert_eq!(seen.known_carts.get(&u), Some(&vec![]), "emptied by the new order");
        assert_eq!(seen.known_carts.get(&v), None, "the failed removal may have happened");
        assert_eq!(seen.known_carts.get(&w), None, "an add was in flight");
        assert_eq!(seen.cart_contradictions.len(), 1, "{:?}", seen.cart_contradictions);
        assert!(seen.cart_contradictions[0].contains("PUT"), "{:?}", seen.cart_contradictions);
        let errors: Vec<&str> = seen.requests.iter().filter_map(|r| r.error.as_deref()).collect();
        assert_eq!(errors, ["connect: Connection refused", "502 Bad Gateway"]);
    }
}
