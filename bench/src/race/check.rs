//! The data check of the race workload: is what one user saw (the answers to its racing
//! requests), what its orders hold and what its cart holds at the end explained by some order of
//! its requests in which each takes effect once, atomically, while it runs?
//!
//! # The model
//!
//! A user's history is a sequence of *groups*: the requests of one group ran at the same time
//! (the two racing requests of a round, with a checkout's retries), and every request of a group
//! ended before the next group began. The check looks at one product `p` at a time; the cart's
//! quantity of `p` is `c` (0 when there is no line).
//!
//! * An **acknowledged add** of `q` (200) took effect once inside its group: `c += q`, and its
//!   answer shows the cart right after it, so `c` is then what the answer shows.
//! * An **acknowledged set** to `q` (PUT, 200; it adds the line if needed): `c = q`, and the answer
//!   likewise. A removal (DELETE, 200) is a set to 0. A set is absolute: whatever was in the line
//!   before it is legitimately gone, unless a checkout had ordered it.
//! * A change answered with a **4xx** was not applied (a definite answer): no effect.
//! * A change with **no definite answer** (no answer, a 5xx) *may* have taken effect, once, at
//!   any moment from its group until [`LATE_SECS`] after the client saw it fail (a web instance may
//!   still finish it after nginx gave up), or never.
//! * A **checkout** whose key placed an order `O` *claims* the cart at one moment (it orders what
//!   the cart holds then: `O`'s quantity of `p` equals `c`, 0 when `O` has no line of `p`; no
//!   other claim may be held) and *settles* at a later one: the held quantity leaves the cart
//!   (`c -= held`) unless the line was set or removed since the claim (then the set stands). Until
//!   the settle the held line is still in the cart, so an answer in between shows it (an add of
//!   1 to a held line of 1 answers 2; after the settle 1 is left and 1 is ordered). The claim lies
//!   between the first attempt with the key and the attempt answered 201 (or, when only replays
//!   (200) were seen, the first replay); the settle by the key's last attempt (a replay settles a
//!   claim its first attempt left), or at any time when that attempt failed too.
//!   Orders nobody was told about (every attempt failed) are matched to the keys whose outcome is
//!   unknown, oldest first; one left over may have been claimed and settled at any time.
//! * A checkout answered **409 `cart_empty`** saw `c = 0` and no claim while it ran; `checkout_in_progress`
//!   (another key held the cart) changes nothing and tells nothing.
//! * A **read** of the cart (GET, 200) shows `c` at some moment of its group; the final read, after
//!   everything, shows `c` at the end.
//!
//! A product's history is **consistent** when some such order exists. When none does, the check
//! asks which fault would explain it: if the history becomes consistent once quantity may vanish
//! from the cart at any moment, an acknowledged change was **lost** (its effect is in neither the
//! cart nor an order, or an answer showed a line that then was not there); if it becomes
//! consistent once quantity may appear, a line was **doubled** (ordered and still in the cart, or
//! ordered twice: the orders took more than the acknowledged changes put in). Both counts are per
//! (user, product) history.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use uuid::Uuid;

/// Product -> quantity.
pub type Lines = BTreeMap<Uuid, u32>;

/// How long after the client saw a change fail it may still take effect (above nginx's 5 s read
/// timeout and the service's bounded store calls).
pub const LATE_SECS: f64 = 10.0;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add(u32),
    Set(u32),
    Remove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// 200 with the cart after the change.
    Acked(Lines),
    /// A 4xx: not applied.
    Refused(u16),
    /// No answer or a 5xx: may have been applied.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// 201 (a new order) or 200 (the key's order, replayed).
    Ordered { order: Uuid, status: u16 },
    /// 409 cart_empty.
    Empty,
    /// 409 checkout_in_progress: another key holds the cart.
    Busy,
    /// Another 4xx.
    Refused(u16),
    /// No answer or a 5xx.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Change {
        product: Uuid,
        change: Change,
        outcome: ChangeOutcome,
    },
    /// `None`: the read failed.
    Read {
        cart: Option<Lines>,
    },
    Checkout {
        key: String,
        outcome: CheckoutOutcome,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub group: u32,
    /// When the answer came, seconds since the workload's start.
    pub at: f64,
    /// The base URL it was sent to.
    pub url: String,
    pub req: Request,
}

/// Everything one user did and what the store holds for it at the end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserHistory {
    pub user: Uuid,
    pub events: Vec<Event>,
    /// Every order the store holds for the user: id -> lines.
    pub orders: BTreeMap<Uuid, Lines>,
    /// The cart read after everything.
    pub cart: Lines,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// (user, product) histories explained only if quantity vanished.
    pub lost: Vec<String>,
    /// (user, product) histories explained only if quantity appeared.
    pub doubled: Vec<String>,
    /// Orders acknowledged under one key with different ids (also counted by the order check).
    pub duplicated_keys: Vec<String>,
    pub histories: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Add(u32),
    /// Also marks a held line as set since the claim.
    Set(u32),
    /// A checkout's claim: requires no other claim and `c == o` (what the order got), holds `o`.
    Claim(u32),
    /// The claim's settle: the held quantity goes, unless the line was set since the claim.
    Settle,
    /// 409 cart_empty: no claim held (`c == 0` is the op's check).
    Empty,
    /// Only the check below.
    Nothing,
}

/// A state's hold: 0 none, else the held quantity + 1, with [`RESET`] when the line was set
/// since the claim.
const RESET: u32 = 1 << 31;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Op {
    first: u32,
    last: u32,
    must: bool,
    effect: Effect,
    /// `c` right after the effect.
    then: Option<u32>,
    /// An op (index) that must have taken effect first (a settle's claim).
    after: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relax {
    Exact,
    Vanish,
    Appear,
    Both,
}

/// Whether some order of `ops` explains them (see the module doc), quantities above `cap` being
/// one value ("more than anything observed").
fn consistent(ops: &[Op], relax: Relax, cap: u32) -> bool {
    let big = cap + 1;
    let last_group = ops.iter().map(|o| o.last).max().unwrap_or(0);
    // Slot i of a state's mask: whether active[i] has taken effect.
    let mut active: Vec<Option<usize>> = Vec::new();
    let mut states: HashSet<State> = [(0, 0, 0)].into();
    for g in 0..=last_group {
        admit(ops, g, &mut active);
        // Closure: any pending active op may take effect next; quantity may vanish or appear
        // in the relaxed models.
        let mut todo: Vec<State> = states.iter().copied().collect();
        while let Some(state) = todo.pop() {
            for s in next_states(ops, &active, state, relax, big) {
                if states.insert(s) {
                    todo.push(s);
                }
            }
        }
        states = retire(ops, g, &mut active, states);
        if states.is_empty() {
            return false;
        }
    }
    true
}

/// A state of the search: the quantity, the claim held (`RESET` marks one a set overrode), and
/// which active ops have taken effect.
type State = (u32, u32, u64);

/// The ops whose window opens at group `g` take a free slot of `active`.
fn admit(ops: &[Op], g: u32, active: &mut Vec<Option<usize>>) {
    for (i, _) in ops.iter().enumerate().filter(|(_, o)| o.first == g) {
        let slot = match active.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                active.push(None);
                active.len() - 1
            }
        };
        if slot >= 64 {
            // Beyond what a state can track: treat the op as never applied (only a may-op
            // can be dropped without a false alarm; a history this dense does not occur).
            active.pop();
            continue;
        }
        active[slot] = Some(i);
    }
}

/// The states one step from `(c, hold, mask)`: a pending active op takes effect, or (relaxed
/// models) quantity vanishes or appears.
fn next_states(ops: &[Op], active: &[Option<usize>], (c, hold, mask): State, relax: Relax, big: u32) -> Vec<State> {
    let mut next = Vec::new();
    for (slot, op) in active.iter().enumerate() {
        let Some(i) = op else { continue };
        if mask & (1 << slot) != 0 {
            continue;
        }
        let op = &ops[*i];
        if let Some(first) = op.after {
            // Still active: it must have taken effect in this state; retired: it did.
            if active.iter().position(|a| *a == Some(first)).is_some_and(|s| mask & (1 << s) == 0) {
                continue;
            }
        }
        let (after, hold) = match op.effect {
            Effect::Add(q) => ((c + q).min(big), hold),
            Effect::Set(q) => (q.min(big), if hold == 0 { 0 } else { hold | RESET }),
            Effect::Claim(o) if hold == 0 && c == o => (c, o + 1),
            Effect::Claim(_) => continue,
            Effect::Settle if hold == 0 => continue,
            Effect::Settle if hold & RESET != 0 => (c, 0),
            Effect::Settle => (c.saturating_sub(hold - 1), 0),
            Effect::Empty if hold != 0 => continue,
            Effect::Empty | Effect::Nothing => (c, hold),
        };
        if op.then.is_some_and(|t| t != after) {
            continue;
        }
        next.push((after, hold, mask | (1 << slot)));
    }
    if matches!(relax, Relax::Vanish | Relax::Both) {
        next.extend((0..c).map(|v| (v, hold, mask)));
    }
    if matches!(relax, Relax::Appear | Relax::Both) {
        next.extend((c + 1..=big).map(|v| (v, hold, mask)));
    }
    next
}

/// Ops whose window ends at group `g`: a must-op has taken effect (the states where it has not
/// are dropped); its slot is freed.
fn retire(ops: &[Op], g: u32, active: &mut [Option<usize>], mut states: HashSet<State>) -> HashSet<State> {
    for (slot, entry) in active.iter_mut().enumerate() {
        let Some(i) = *entry else { continue };
        let op = &ops[i];
        if op.last != g {
            continue;
        }
        let bit = 1u64 << slot;
        states =
            states.into_iter().filter(|(_, _, m)| !op.must || m & bit != 0).map(|(c, h, m)| (c, h, m & !bit)).collect();
        *entry = None;
    }
    states
}

/// Which key each stored order belongs to, and the order of each key.
struct Keys {
    /// key -> (first group, last group the effect may lie in, order)
    effects: BTreeMap<String, (u32, u32, Option<Uuid>)>,
    /// key -> the last group its settle may lie in (its last attempt; absent: the end).
    settle_by: BTreeMap<String, u32>,
    /// Orders matched to no key.
    stray: Vec<Uuid>,
    duplicated: Vec<String>,
}

fn keys(h: &UserHistory) -> Keys {
    let mut effects: BTreeMap<String, (u32, u32, Option<Uuid>)> = BTreeMap::new();
    let mut created: BTreeMap<String, u32> = BTreeMap::new();
    let mut replayed: BTreeMap<String, u32> = BTreeMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut duplicated = Vec::new();
    for e in &h.events {
        let Request::Checkout { key, outcome } = &e.req else { continue };
        let entry = effects.entry(key.clone()).or_insert((e.group, e.group, None));
        entry.1 = entry.1.max(e.group);
        match outcome {
            CheckoutOutcome::Ordered { order, status } => {
                match entry.2 {
                    Some(o) if o != *order => {
                        duplicated.push(format!("user {} key {key}: acknowledged as {o} and {order}", h.user))
                    }
                    _ => entry.2 = Some(*order),
                }
                let at = if *status == 201 { &mut created } else { &mut replayed };
                at.entry(key.clone()).or_insert(e.group);
            }
            CheckoutOutcome::Unknown(_) => {
                unknown.insert(key.clone());
            }
            _ => {}
        }
    }
    for (key, entry) in effects.iter_mut() {
        if let Some(g) = created.get(key).or(replayed.get(key)) {
            entry.1 = *g;
        }
    }
    let told: BTreeSet<Uuid> = effects.values().filter_map(|e| e.2).collect();
    let mut stray: Vec<Uuid> = h.orders.keys().filter(|o| !told.contains(o)).copied().collect();
    // UUID v7 ids sort by creation: match the oldest to the earliest unknown key.
    let mut candidates: Vec<(u32, String)> =
        effects.iter().filter(|(k, e)| e.2.is_none() && unknown.contains(*k)).map(|(k, e)| (e.0, k.clone())).collect();
    candidates.sort();
    let mut candidates = candidates.into_iter();
    stray.retain(|order| match candidates.next() {
        Some((_, key)) => {
            effects.get_mut(&key).expect("a key").2 = Some(*order);
            false
        }
        None => true,
    });
    let mut settle_by = BTreeMap::new();
    for e in &h.events {
        if let Request::Checkout { key, outcome } = &e.req {
            if matches!(outcome, CheckoutOutcome::Unknown(_)) {
                settle_by.remove(key);
            } else {
                settle_by.insert(key.clone(), e.group);
            }
        }
    }
    Keys { effects, settle_by, stray, duplicated }
}

/// One product's ops.
fn ops_for(h: &UserHistory, keys: &Keys, p: Uuid, final_group: u32) -> Vec<Op> {
    let mut ops = Vec::new();
    let one = |g: u32, effect, then| Op { first: g, last: g, must: true, effect, then, after: None };
    for e in &h.events {
        match &e.req {
            Request::Change { product, change, outcome } if *product == p => {
                let effect = match change {
                    Change::Add(q) => Effect::Add(*q),
                    Change::Set(q) => Effect::Set(*q),
                    Change::Remove => Effect::Set(0),
                };
                match outcome {
                    ChangeOutcome::Acked(cart) => {
                        ops.push(one(e.group, effect, Some(cart.get(&p).copied().unwrap_or(0))))
                    }
                    ChangeOutcome::Refused(_) => {}
                    ChangeOutcome::Unknown(_) => {
                        // Until the last group that began within LATE_SECS of the failure; the
                        // final read too when the history ended sooner.
                        let later = h.events.iter().any(|x| x.at > e.at + LATE_SECS);
                        let last = if later {
                            let within = h.events.iter().filter(|x| x.at <= e.at + LATE_SECS).map(|x| x.group);
                            within.max().unwrap_or(e.group).max(e.group)
                        } else {
                            final_group
                        };
                        ops.push(Op { first: e.group, last, must: false, effect, then: None, after: None });
                    }
                }
            }
            Request::Change { product, outcome: ChangeOutcome::Acked(cart), .. } if *product != p => {
                // Any acknowledged answer shows this product's line too.
                ops.push(one(e.group, Effect::Nothing, Some(cart.get(&p).copied().unwrap_or(0))));
            }
            Request::Read { cart: Some(cart) } => {
                ops.push(one(e.group, Effect::Nothing, Some(cart.get(&p).copied().unwrap_or(0))))
            }
            Request::Checkout { key, outcome: CheckoutOutcome::Empty }
                if keys.effects.get(key).is_none_or(|k| k.2.is_none()) =>
            {
                ops.push(one(e.group, Effect::Empty, Some(0)));
            }
            _ => {}
        }
    }
    // A checkout's claim lies in its window, its settle after the claim and by the key's last
    // attempt (a replay settles a claim its first attempt left), or at any time when that
    // attempt failed too.
    let mut checkout = |first: u32, claim_by: u32, settle_by: u32, order: &Uuid| {
        let o = h.orders.get(order).and_then(|l| l.get(&p)).copied().unwrap_or(0);
        let claim = ops.len();
        ops.push(Op { first, last: claim_by, must: true, effect: Effect::Claim(o), then: None, after: None });
        let last = settle_by.max(claim_by);
        ops.push(Op { first, last, must: true, effect: Effect::Settle, then: None, after: Some(claim) });
    };
    for (key, (first, last, order)) in &keys.effects {
        let Some(order) = order else { continue };
        checkout(*first, *last, keys.settle_by.get(key).copied().unwrap_or(final_group), order);
    }
    for order in &keys.stray {
        checkout(0, final_group, final_group, order);
    }
    ops.push(one(final_group, Effect::Nothing, Some(h.cart.get(&p).copied().unwrap_or(0))));
    ops
}

/// The events of one product, the orders holding it and the final cart, for a report.
pub fn describe(h: &UserHistory, p: Uuid) -> String {
    let short = |id: &Uuid| {
        let s = id.simple().to_string();
        format!("…{}", &s[s.len() - 8..])
    };
    let q = |l: &Lines| l.get(&p).copied().unwrap_or(0);
    let mut parts = Vec::new();
    for e in &h.events {
        let what = match &e.req {
            Request::Change { product, change, outcome } if *product == p => {
                let c = match change {
                    Change::Add(n) => format!("add {n}"),
                    Change::Set(n) => format!("set {n}"),
                    Change::Remove => "remove".into(),
                };
                let o = match outcome {
                    ChangeOutcome::Acked(cart) => format!("200 (line {})", q(cart)),
                    ChangeOutcome::Refused(s) => format!("{s}"),
                    ChangeOutcome::Unknown(why) => format!("failed: {why}"),
                };
                format!("{c} -> {o}")
            }
            Request::Change { outcome: ChangeOutcome::Acked(cart), .. } => format!("other change -> line {}", q(cart)),
            Request::Change { .. } => continue,
            Request::Read { cart: Some(cart) } => format!("read -> line {}", q(cart)),
            Request::Read { cart: None } => continue,
            Request::Checkout { key, outcome } => {
                let o = match outcome {
                    CheckoutOutcome::Ordered { order, status } => {
                        format!("{status} order {} (line {})", short(order), h.orders.get(order).map_or(0, &q))
                    }
                    CheckoutOutcome::Empty => "409 cart_empty".into(),
                    CheckoutOutcome::Busy => "409 checkout_in_progress".into(),
                    CheckoutOutcome::Refused(s) => format!("{s}"),
                    CheckoutOutcome::Unknown(why) => format!("failed: {why}"),
                };
                format!("checkout {key} -> {o}")
            }
        };
        parts.push(format!("g{} {:.3}s {}: {what}", e.group, e.at, e.url));
    }
    let orders: Vec<String> =
        h.orders.iter().filter(|(_, l)| q(l) > 0).map(|(id, l)| format!("{} x{}", short(id), q(l))).collect();
    format!(
        "user {} product {}: {}; orders holding it: [{}]; final cart line {}",
        h.user,
        short(&p),
        parts.join("; "),
        orders.join(", "),
        q(&h.cart)
    )
}

/// Checks every product of every history (see the module doc).
pub fn check(histories: &[UserHistory]) -> Verdict {
    let mut v = Verdict::default();
    for h in histories {
        let keys = keys(h);
        v.duplicated_keys.extend(keys.duplicated.iter().cloned());
        let final_group = h.events.iter().map(|e| e.group).max().map_or(0, |g| g + 1);
        let mut products: BTreeSet<Uuid> = h.cart.keys().copied().collect();
        for l in h.orders.values() {
            products.extend(l.keys());
        }
        for e in &h.events {
            match &e.req {
                Request::Change { product, outcome, .. } => {
                    products.insert(*product);
                    if let ChangeOutcome::Acked(cart) = outcome {
                        products.extend(cart.keys());
                    }
                }
                Request::Read { cart: Some(cart) } => products.extend(cart.keys()),
                _ => {}
            }
        }
        for p in products {
            v.histories += 1;
            let ops = ops_for(h, &keys, p, final_group);
            // Above every value the cart can reach without quantity appearing: all adds on top of
            // the largest set or observed value (a settle subtracts from exact values then).
            let adds: u32 = ops.iter().map(|o| if let Effect::Add(q) = o.effect { q } else { 0 }).sum();
            let most = ops
                .iter()
                .flat_map(|o| {
                    let e = match o.effect {
                        Effect::Set(q) | Effect::Claim(q) => q,
                        _ => 0,
                    };
                    [e, o.then.unwrap_or(0)]
                })
                .max()
                .unwrap_or(0);
            let cap = adds + most;
            if consistent(&ops, Relax::Exact, cap) {
                continue;
            }
            let vanish = consistent(&ops, Relax::Vanish, cap);
            let appear = consistent(&ops, Relax::Appear, cap);
            let text = describe(h, p);
            if vanish || !appear {
                v.lost.push(text.clone());
            }
            if appear || (!vanish && consistent(&ops, Relax::Both, cap)) {
                v.doubled.push(text);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }
    const A: u128 = 10;
    const B: u128 = 11;

    fn lines(l: &[(u128, u32)]) -> Lines {
        l.iter().map(|(p, q)| (id(*p), *q)).collect()
    }

    /// Builds a history: events in groups, the stored orders, the final cart.
    struct H {
        h: UserHistory,
        t: f64,
    }

    impl H {
        fn new() -> H {
            H { h: UserHistory { user: id(1), ..UserHistory::default() }, t: 0.0 }
        }
        fn ev(&mut self, group: u32, req: Request) -> &mut H {
            self.t += 0.01;
            self.h.events.push(Event { group, at: self.t, url: "http://n0".into(), req });
            self
        }
        fn change(&mut self, g: u32, p: u128, change: Change, outcome: ChangeOutcome) -> &mut H {
            self.ev(g, Request::Change { product: id(p), change, outcome })
        }
        fn add(&mut self, g: u32, p: u128, q: u32, cart: &[(u128, u32)]) -> &mut H {
            self.change(g, p, Change::Add(q), ChangeOutcome::Acked(lines(cart)))
        }
        fn set(&mut self, g: u32, p: u128, q: u32, cart: &[(u128, u32)]) -> &mut H {
            self.change(g, p, Change::Set(q), ChangeOutcome::Acked(lines(cart)))
        }
        fn checkout(&mut self, g: u32, key: &str, outcome: CheckoutOutcome) -> &mut H {
            self.ev(g, Request::Checkout { key: key.into(), outcome })
        }
        fn ordered(&mut self, g: u32, key: &str, order: u128, status: u16, l: &[(u128, u32)]) -> &mut H {
            self.h.orders.insert(id(order), lines(l));
            self.checkout(g, key, CheckoutOutcome::Ordered { order: id(order), status })
        }
        fn end(&mut self, cart: &[(u128, u32)]) -> Verdict {
            self.h.cart = lines(cart);
            check(std::slice::from_ref(&self.h))
        }
    }

    fn ok(v: &Verdict) -> bool {
        v.lost.is_empty() && v.doubled.is_empty()
    }

    #[test]
    fn an_add_racing_a_checkout_either_stays_or_is_ordered() {
        // The add landed after the claim: it stays in the cart.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .add(1, B, 1, &[(A, 1), (B, 1)])
            .ordered(1, "k", 90, 201, &[(A, 1)])
            .end(&[(B, 1)]);
        assert!(ok(&v), "{v:?}");
        // Before the claim: ordered with the rest.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .add(1, B, 1, &[(A, 1), (B, 1)])
            .ordered(1, "k", 90, 201, &[(A, 1), (B, 1)])
            .end(&[]);
        assert!(ok(&v), "{v:?}");
        // After the settle: the answer shows the cart without A.
        let v =
            H::new().add(0, A, 1, &[(A, 1)]).add(1, B, 1, &[(B, 1)]).ordered(1, "k", 90, 201, &[(A, 1)]).end(&[(B, 1)]);
        assert!(ok(&v), "{v:?}");
        assert_eq!(v.histories, 2);
    }

    #[test]
    fn an_add_to_a_held_line_shows_it_and_keeps_only_itself() {
        // B was left in the cart by an earlier round; the checkout claims A and B, the add of B
        // lands before the settle: its answer shows 2, the order takes 1, 1 stays.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .add(1, B, 1, &[(A, 1), (B, 1)])
            .add(2, B, 1, &[(A, 1), (B, 2)])
            .ordered(2, "k", 90, 201, &[(A, 1), (B, 1)])
            .end(&[(B, 1)]);
        assert!(ok(&v), "{v:?}");
        // The same answer with the settle removing everything: the add is lost.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .add(1, B, 1, &[(A, 1), (B, 1)])
            .add(2, B, 1, &[(A, 1), (B, 2)])
            .ordered(2, "k", 90, 201, &[(A, 1), (B, 1)])
            .end(&[]);
        assert_eq!((v.lost.len(), v.doubled.len()), (1, 0), "{v:?}");
        // A set racing the claim: the set stands after the settle, whatever was held.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .set(1, A, 5, &[(A, 5)])
            .ordered(1, "k", 90, 201, &[(A, 1)])
            .ev(2, Request::Read { cart: Some(lines(&[(A, 5)])) })
            .end(&[(A, 5)]);
        assert!(ok(&v), "{v:?}");
    }

    #[test]
    fn a_lost_add_is_found() {
        // The add was answered 200 but is neither in the order nor in the cart (the old
        // clear-the-whole-cart checkout).
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .add(1, B, 1, &[(A, 1), (B, 1)])
            .ordered(1, "k", 90, 201, &[(A, 1)])
            .end(&[]);
        assert_eq!(v.lost.len(), 1, "{v:?}");
        assert!(v.doubled.is_empty(), "{v:?}");
        assert!(v.lost[0].contains("add 1 -> 200 (line 1)"), "{}", v.lost[0]);
    }

    #[test]
    fn a_set_racing_a_checkout_stands_or_is_ordered() {
        let base = || {
            let mut h = H::new();
            h.add(0, A, 1, &[(A, 1)]).set(1, A, 5, &[(A, 5)]);
            h
        };
        // Ordered the 1, the 5 stands; or ordered the 5.
        assert!(ok(&base().ordered(1, "k", 90, 201, &[(A, 1)]).end(&[(A, 5)])));
        assert!(ok(&base().ordered(1, "k", 90, 201, &[(A, 5)]).end(&[])));
        // The order has 1 and the cart nothing: the set was lost.
        let v = base().ordered(1, "k", 90, 201, &[(A, 1)]).end(&[]);
        assert_eq!((v.lost.len(), v.doubled.len()), (1, 0), "{v:?}");
        // The order has the 5 and the cart still 5: ordered and kept, doubled.
        let v = base().ordered(1, "k", 90, 201, &[(A, 5)]).end(&[(A, 5)]);
        assert_eq!((v.lost.len(), v.doubled.len()), (0, 1), "{v:?}");
    }

    #[test]
    fn a_doubled_line_is_found() {
        // Two checkouts with other keys both ordered the one line.
        let v = H::new()
            .add(0, A, 2, &[(A, 2)])
            .ordered(1, "k1", 90, 201, &[(A, 2)])
            .ordered(1, "k2", 91, 201, &[(A, 2)])
            .end(&[]);
        assert_eq!((v.lost.len(), v.doubled.len()), (0, 1), "{v:?}");
        // The right answer: one order, the other 409 cart_empty or checkout_in_progress.
        let v = H::new()
            .add(0, A, 2, &[(A, 2)])
            .ordered(1, "k1", 90, 201, &[(A, 2)])
            .checkout(1, "k2", CheckoutOutcome::Busy)
            .checkout(1, "k2", CheckoutOutcome::Empty)
            .end(&[]);
        assert!(ok(&v), "{v:?}");
        // cart_empty while the line was there all along (never ordered): a contradiction.
        let v = H::new().add(0, A, 2, &[(A, 2)]).checkout(1, "k2", CheckoutOutcome::Empty).end(&[(A, 2)]);
        assert!(!ok(&v), "{v:?}");
    }

    #[test]
    fn a_replay_racing_an_add_orders_nothing_more() {
        let base = || {
            let mut h = H::new();
            h.add(0, A, 1, &[(A, 1)]).ordered(1, "k", 90, 201, &[(A, 1)]);
            h.add(2, B, 1, &[(B, 1)]).ordered(2, "k", 90, 200, &[(A, 1)]);
            h
        };
        assert!(ok(&base().end(&[(B, 1)])));
        let v = base().end(&[]);
        assert_eq!(v.lost.len(), 1, "{v:?}");
        // A failed first attempt whose retry is answered 200: the order came from the first.
        let v = H::new()
            .add(0, A, 1, &[(A, 1)])
            .checkout(1, "k", CheckoutOutcome::Unknown("502".into()))
            .ordered(1, "k", 90, 200, &[(A, 1)])
            .end(&[]);
        assert!(ok(&v), "{v:?}");
    }

    #[test]
    fn changes_of_unknown_outcome_may_or_may_not_have_happened() {
        let unknown = ChangeOutcome::Unknown("504 Gateway Time-out".into());
        for cart in [&[(A, 1)][..], &[(A, 1), (B, 1)]] {
            let v = H::new()
                .add(0, A, 1, &[(A, 1)])
                .change(1, B, Change::Add(1), unknown.clone())
                .ev(2, Request::Read { cart: Some(lines(cart)) })
                .end(cart);
            assert!(ok(&v), "{cart:?}: {v:?}");
        }
        // Applied twice is not one of the choices.
        let v = H::new().add(0, A, 1, &[(A, 1)]).change(1, A, Change::Add(1), unknown.clone()).end(&[(A, 3)]);
        assert_eq!(v.doubled.len(), 1, "{v:?}");
        // An order nobody was told about (every attempt failed) is matched to the unknown key.
        let mut h = H::new();
        h.add(0, A, 1, &[(A, 1)]).checkout(1, "k", CheckoutOutcome::Unknown("timeout".into()));
        h.h.orders.insert(id(95), lines(&[(A, 1)]));
        assert!(ok(&h.end(&[])));
    }
}
