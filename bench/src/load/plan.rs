//! What the simulated people do, independent of how it is sent: the same plans drive the Goose
//! users (over HTTP) and the storage floor (straight into the stores), so both measure one mix.
//!
//! A shopper's session: sign up, browse category pages and product pages, change the cart many
//! times (adds, quantity changes, removals: the agony of choice), view the cart, check out with an
//! idempotency key, look at the orders, sometimes pay. Then a new shopper signs up, so sign-ups
//! keep happening during the measured window and carts and order lists stay realistically small.
//! A merchant (admin token) browses, creates and edits products.

use crate::load::ops::Op;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

/// One request, with every id resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SignUp { email: String, name: String },
    ListProducts { category: Option<String>, after: Option<Uuid>, limit: u32 },
    GetProduct { product: Uuid },
    GetCart { user: Uuid },
    AddItem { user: Uuid, product: Uuid, quantity: u32 },
    SetQuantity { user: Uuid, product: Uuid, quantity: u32 },
    RemoveItem { user: Uuid, product: Uuid },
    Checkout { user: Uuid, key: String },
    ListOrders { user: Uuid },
    GetOrder { user: Uuid, order: Uuid },
    PayOrder { user: Uuid, order: Uuid },
    CreateProduct(NewProductSpec),
    EditProduct { product: Uuid, price_cents: i64, description: String },
}

impl Action {
    pub fn op(&self) -> Op {
        match self {
            Action::SignUp { .. } => Op::SignUp,
            Action::ListProducts { .. } => Op::ListProducts,
            Action::GetProduct { .. } => Op::GetProduct,
            Action::GetCart { .. } => Op::GetCart,
            Action::AddItem { .. } => Op::AddItem,
            Action::SetQuantity { .. } => Op::SetQuantity,
            Action::RemoveItem { .. } => Op::RemoveItem,
            Action::Checkout { .. } => Op::Checkout,
            Action::ListOrders { .. } => Op::ListOrders,
            Action::GetOrder { .. } => Op::GetOrder,
            Action::PayOrder { .. } => Op::PayOrder,
            Action::CreateProduct(_) => Op::CreateProduct,
            Action::EditProduct { .. } => Op::EditProduct,
        }
    }
}

/// What came back, as far as the plans care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    SignedUp {
        user: Uuid,
        token: String,
    },
    Page {
        ids: Vec<Uuid>,
        next: Option<Uuid>,
    },
    Cart {
        items: Vec<(Uuid, u32)>,
    },
    Ordered {
        order: Uuid,
    },
    Orders {
        ids: Vec<Uuid>,
    },
    ProductSaved {
        product: Uuid,
    },
    /// A success the plan learns nothing from (a product page, one order, a status change).
    Done,
    Failed,
}

/// A product to create (seeding and the merchant).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NewProductSpec {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
}

/// The names of the `n` catalogue categories (seeding and browsing agree on them).
pub fn categories(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("category-{i:02}")).collect()
}

/// The seeded catalogue: `count` products spread evenly over `categories`, with varied prices.
pub fn seed_catalogue(count: usize, categories: &[String]) -> Vec<NewProductSpec> {
    (0..count)
        .map(|i| NewProductSpec {
            name: format!("Seeded product {i:04}"),
            description: format!("A product of the bench catalogue, number {i}."),
            category: categories[i % categories.len()].clone(),
            price_cents: 99 + (i as i64 * 7919) % 50_000,
        })
        .collect()
}

/// Session shape, shared by every user of a run.
#[derive(Clone, Debug)]
pub struct JourneyConfig {
    pub categories: Vec<String>,
    /// Products per list page.
    pub page_limit: u32,
    /// Category pages looked at per session (inclusive range).
    pub list_pages: (u32, u32),
    /// Product pages opened after each list page.
    pub views_per_page: (u32, u32),
    /// Cart changes per session (adds, quantity changes, removals).
    pub cart_changes: (u32, u32),
    /// Percent of orders paid right after checkout.
    pub pay_percent: u32,
    /// Part of every shopper's email, so that runs against the same database never reuse one
    /// (plans are reproducible from their seed; emails must still be unique).
    pub email_tag: String,
}

impl Default for JourneyConfig {
    fn default() -> Self {
        JourneyConfig {
            categories: categories(10),
            page_limit: 20,
            list_pages: (1, 3),
            views_per_page: (1, 3),
            cart_changes: (4, 10),
            pay_percent: 50,
            email_tag: "t".into(),
        }
    }
}

impl JourneyConfig {
    /// The same journey with a fresh random email tag (one per load or floor run).
    pub fn for_new_run(&self) -> JourneyConfig {
        JourneyConfig { email_tag: format!("{:08x}", rand::random::<u32>()), ..self.clone() }
    }
}

/// The plan of one simulated person.
#[derive(Clone)]
pub enum Person {
    Shopper(Shopper),
    Merchant(Merchant),
    /// Only opens product pages, as fast as it can (the throughput comparison with pgbench -S).
    Reader(Reader),
}

impl Person {
    pub fn next_action(&mut self) -> Action {
        match self {
            Person::Shopper(s) => s.next_action(),
            Person::Merchant(m) => m.next_action(),
            Person::Reader(r) => r.next_action(),
        }
    }
    pub fn apply(&mut self, op: Op, outcome: Outcome) {
        match self {
            Person::Shopper(s) => s.apply(op, outcome),
            Person::Merchant(m) => m.apply(op, outcome),
            Person::Reader(_) => {}
        }
    }
    /// The bearer token to send, if any.
    pub fn token(&self) -> Option<&str> {
        match self {
            Person::Shopper(s) => s.auth.as_ref().map(|(_, t)| t.as_str()),
            Person::Merchant(m) => Some(&m.admin_token),
            Person::Reader(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    SignUp,
    Browse,
    View,
    Add,
    Change,
    Remove,
    ViewCart,
    Checkout,
    ListOrders,
    GetOrder,
    Pay,
}

/// Ids remembered from list pages; old ones fall out.
const SEEN_MAX: usize = 200;

/// Times one checkout (one idempotency key) is sent before the shopper gives up on it.
const CHECKOUT_TRIES: u32 = 3;

#[derive(Clone)]
pub struct Shopper {
    cfg: Arc<JourneyConfig>,
    rng: StdRng,
    steps: VecDeque<Step>,
    auth: Option<(Uuid, String)>,
    seen: Vec<Uuid>,
    /// The category being paged through and the `next` of its last page.
    listing: Option<(Option<String>, Option<Uuid>)>,
    cart: Vec<(Uuid, u32)>,
    orders: Vec<Uuid>,
    /// The order placed in this session and not paid yet.
    unpaid: Option<Uuid>,
    sessions: u64,
    /// The idempotency key of a checkout that failed and how often it was sent: a client that
    /// got no answer sends the same key again (the order may exist), never a new one.
    checkout: Option<(String, u32)>,
}

impl Shopper {
    pub fn new(cfg: Arc<JourneyConfig>, seed: u64) -> Self {
        Shopper {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            steps: VecDeque::new(),
            auth: None,
            seen: Vec::new(),
            listing: None,
            cart: Vec::new(),
            orders: Vec::new(),
            unpaid: None,
            sessions: 0,
            checkout: None,
        }
    }

    /// How many sessions (sign-ups) were started.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    fn range(&mut self, (lo, hi): (u32, u32)) -> u32 {
        self.rng.gen_range(lo..=hi.max(lo))
    }

    fn plan_session(&mut self) {
        self.sessions += 1;
        self.auth = None;
        self.cart.clear();
        self.orders.clear();
        self.unpaid = None;
        self.checkout = None;
        self.listing = None;
        let mut steps = vec![Step::SignUp];
        for _ in 0..self.range(self.cfg.list_pages) {
            steps.push(Step::Browse);
            for _ in 0..self.range(self.cfg.views_per_page) {
                steps.push(Step::View);
            }
        }
        // The agony of choice: the first change is always an add; later ones add, change a
        // quantity, remove, or go back to a product page.
        steps.push(Step::Add);
        for _ in 1..self.range(self.cfg.cart_changes) {
            let step = match self.rng.gen_range(0..100) {
                0..=34 => Step::Add,
                35..=64 => Step::Change,
                65..=84 => Step::Remove,
                _ => Step::View,
            };
            steps.push(step);
        }
        steps.extend([Step::ViewCart, Step::Checkout, Step::ListOrders, Step::GetOrder]);
        if self.rng.gen_range(0..100) < self.cfg.pay_percent {
            steps.push(Step::Pay);
        }
        self.steps = steps.into();
    }

    fn random_uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    fn browse(&mut self) -> Action {
        let limit = self.cfg.page_limit;
        if let Some((category, Some(after))) = self.listing.clone() {
            if self.rng.gen_bool(0.6) {
                return Action::ListProducts { category, after: Some(after), limit };
            }
        }
        // One browse in five looks at the whole catalogue.
        let category =
            if self.rng.gen_range(0..5) == 0 { None } else { self.cfg.categories.choose(&mut self.rng).cloned() };
        self.listing = Some((category.clone(), None));
        Action::ListProducts { category, after: None, limit }
    }

    pub fn next_action(&mut self) -> Action {
        loop {
            let Some(step) = self.steps.pop_front() else {
                self.plan_session();
                continue;
            };
            let user = match (step, &self.auth) {
                (Step::SignUp, _) => {
                    let id = self.random_uuid().simple().to_string();
                    return Action::SignUp {
                        email: format!("shopper-{}-{id}@bench.example", self.cfg.email_tag),
                        name: format!("Shopper {}", &id[..8]),
                    };
                }
                (_, Some((user, _))) => *user,
                // The sign-up failed: start over with a new person.
                (_, None) => {
                    self.steps.clear();
                    continue;
                }
            };
            match step {
                Step::SignUp => unreachable!(),
                Step::Browse => return self.browse(),
                Step::View => match self.seen.choose(&mut self.rng) {
                    Some(&product) => return Action::GetProduct { product },
                    None => {
                        self.steps.push_front(Step::View);
                        return self.browse();
                    }
                },
                Step::Add => return self.add(user, Step::Add),
                Step::Change => {
                    let Some(&(product, current)) = self.cart.choose(&mut self.rng) else {
                        return self.add(user, Step::Change);
                    };
                    let mut quantity = self.rng.gen_range(1..=5);
                    if quantity == current {
                        quantity = current % 5 + 1;
                    }
                    return Action::SetQuantity { user, product, quantity };
                }
                Step::Remove => match self.cart.choose(&mut self.rng) {
                    Some(&(product, _)) => return Action::RemoveItem { user, product },
                    None => continue,
                },
                Step::ViewCart => return Action::GetCart { user },
                Step::Checkout => {
                    if let Some((key, sent)) = &mut self.checkout {
                        *sent += 1;
                        return Action::Checkout { user, key: key.clone() };
                    }
                    if self.cart.is_empty() {
                        return self.add(user, Step::Checkout);
                    }
                    let key = format!("checkout-{}", self.random_uuid().simple());
                    self.checkout = Some((key.clone(), 1));
                    return Action::Checkout { user, key };
                }
                Step::ListOrders => return Action::ListOrders { user },
                Step::GetOrder => match self.orders.first() {
                    Some(&order) => return Action::GetOrder { user, order },
                    None => continue,
                },
                Step::Pay => match self.unpaid {
                    Some(order) => return Action::PayOrder { user, order },
                    None => continue,
                },
            }
        }
    }

    /// An add of a product not in the cart yet (any seen one if all are); browses first when
    /// nothing has been seen. `then` is kept at the front if it still has to happen.
    fn add(&mut self, user: Uuid, then: Step) -> Action {
        if then != Step::Add && then != Step::Change {
            self.steps.push_front(then);
        }
        let fresh: Vec<Uuid> = self.seen.iter().copied().filter(|p| !self.cart.iter().any(|(c, _)| c == p)).collect();
        let pick = fresh.choose(&mut self.rng).or_else(|| self.seen.choose(&mut self.rng)).copied();
        match pick {
            Some(product) => {
                let quantity = self.rng.gen_range(1..=3);
                Action::AddItem { user, product, quantity }
            }
            None => {
                self.steps.push_front(Step::Add);
                self.browse()
            }
        }
    }

    pub fn apply(&mut self, op: Op, outcome: Outcome) {
        match outcome {
            Outcome::SignedUp { user, token } => self.auth = Some((user, token)),
            Outcome::Page { ids, next } => {
                if let Some((_, n)) = &mut self.listing {
                    *n = next;
                }
                for id in ids {
                    if !self.seen.contains(&id) {
                        self.seen.push(id);
                    }
                }
                if self.seen.len() > SEEN_MAX {
                    let extra = self.seen.len() - SEEN_MAX;
                    self.seen.drain(..extra);
                }
            }
            Outcome::Cart { items } => self.cart = items,
            Outcome::Ordered { order } => {
                self.checkout = None;
                self.orders.insert(0, order);
                self.unpaid = Some(order);
                self.cart.clear();
            }
            Outcome::Orders { ids } => self.orders = ids,
            Outcome::ProductSaved { .. } => {}
            Outcome::Done => {
                if op == Op::PayOrder {
                    self.unpaid = None;
                }
            }
            Outcome::Failed => match op {
                Op::SignUp => self.steps.clear(),
                // The cart (or the order) may or may not have changed: read it back before the
                // next change, as a person would reload the page.
                Op::AddItem | Op::SetQuantity | Op::RemoveItem => self.steps.push_front(Step::ViewCart),
                // Then the same key again, a few times at most.
                Op::Checkout => {
                    match &self.checkout {
                        Some((_, sent)) if *sent < CHECKOUT_TRIES => self.steps.push_front(Step::Checkout),
                        _ => self.checkout = None,
                    }
                    self.steps.push_front(Step::ViewCart);
                }
                Op::PayOrder => self.unpaid = None,
                Op::ListProducts => self.listing = None,
                _ => {}
            },
        }
    }
}

#[derive(Clone)]
pub struct Merchant {
    cfg: Arc<JourneyConfig>,
    rng: StdRng,
    admin_token: String,
    steps: VecDeque<MerchantStep>,
    /// Products the merchant may edit: its own and those seen on list pages.
    known: Vec<Uuid>,
    created: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MerchantStep {
    Browse,
    Create,
    Edit,
}

impl Merchant {
    pub fn new(cfg: Arc<JourneyConfig>, admin_token: String, seed: u64) -> Self {
        Merchant {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            admin_token,
            steps: VecDeque::new(),
            known: Vec::new(),
            created: 0,
        }
    }

    pub fn next_action(&mut self) -> Action {
        let step = match self.steps.pop_front() {
            Some(s) => s,
            None => {
                use MerchantStep::*;
                self.steps = [Create, Edit, Edit, Edit].into();
                Browse
            }
        };
        match step {
            MerchantStep::Browse => Action::ListProducts {
                category: self.cfg.categories.choose(&mut self.rng).cloned(),
                after: None,
                limit: self.cfg.page_limit,
            },
            MerchantStep::Edit if !self.known.is_empty() => {
                let product = *self.known.choose(&mut self.rng).expect("not empty");
                let price_cents = self.rng.gen_range(99..=50_000);
                Action::EditProduct { product, price_cents, description: format!("Repriced at {price_cents} cents.") }
            }
            MerchantStep::Create | MerchantStep::Edit => {
                self.created += 1;
                let n = self.created;
                let tag: u32 = self.rng.gen();
                Action::CreateProduct(NewProductSpec {
                    name: format!("New product {tag:08x}-{n}"),
                    description: "Added by the merchant during the run.".into(),
                    category: self.cfg.categories.choose(&mut self.rng).cloned().unwrap_or_else(|| "misc".into()),
                    price_cents: self.rng.gen_range(99..=50_000),
                })
            }
        }
    }

    pub fn apply(&mut self, _op: Op, outcome: Outcome) {
        match outcome {
            Outcome::Page { ids, .. } => {
                for id in ids {
                    if !self.known.contains(&id) {
                        self.known.push(id);
                    }
                }
            }
            Outcome::ProductSaved { product } if !self.known.contains(&product) => self.known.push(product),
            _ => {}
        }
        if self.known.len() > SEEN_MAX {
            let extra = self.known.len() - SEEN_MAX;
            self.known.drain(..extra);
        }
    }
}

#[derive(Clone)]
pub struct Reader {
    rng: StdRng,
    products: Arc<Vec<Uuid>>,
}

impl Reader {
    /// `products` must not be empty.
    pub fn new(products: Arc<Vec<Uuid>>, seed: u64) -> Self {
        assert!(!products.is_empty(), "a reader needs products to read");
        Reader { rng: StdRng::seed_from_u64(seed), products }
    }

    pub fn next_action(&mut self) -> Action {
        Action::GetProduct { product: *self.products.choose(&mut self.rng).expect("not empty") }
    }
}

/// Which users are merchants: Goose hands scenarios to users round-robin by weight; the floor
/// uses the same proportions (largest remainder), so both run the same mix.
pub fn merchants_among(users: usize, shopper_weight: usize, merchant_weight: usize) -> usize {
    let total = shopper_weight + merchant_weight;
    if total == 0 || merchant_weight == 0 {
        return 0;
    }
    if shopper_weight == 0 {
        return users;
    }
    // Round half up, but keep at least one merchant when there is room for one.
    let m = (users * merchant_weight * 2 + total) / (2 * total);
    m.max(1).min(users.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays a shopper against a tiny fake shop that answers every request as the API would.
    fn play(steps: usize, seed: u64) -> (Vec<Action>, Shopper) {
        let catalogue: Vec<Uuid> = (0..30u128).map(Uuid::from_u128).collect();
        let mut s = Shopper::new(Arc::new(JourneyConfig::default()), seed);
        let mut cart: Vec<(Uuid, u32)> = Vec::new();
        let mut orders = Vec::new();
        let mut actions = Vec::new();
        for i in 0..steps {
            let a = s.next_action();
            let outcome = match &a {
                Action::SignUp { .. } => {
                    cart.clear();
                    orders.clear();
                    Outcome::SignedUp { user: Uuid::from_u128(1000 + i as u128), token: "t".into() }
                }
                Action::ListProducts { after, limit, .. } => {
                    let start = after.map_or(0, |a| a.as_u128() as usize + 1);
                    let ids: Vec<Uuid> = catalogue.iter().skip(start).take(*limit as usize).copied().collect();
                    let next = if ids.len() == *limit as usize { ids.last().copied() } else { None };
                    Outcome::Page { ids, next }
                }
                Action::AddItem { product, quantity, .. } => {
                    match cart.iter_mut().find(|(p, _)| p == product) {
                        Some(line) => line.1 += quantity,
                        None => cart.push((*product, *quantity)),
                    }
                    Outcome::Cart { items: cart.clone() }
                }
                Action::SetQuantity { product, quantity, .. } => {
                    match cart.iter_mut().find(|(p, _)| p == product) {
                        Some(line) => line.1 = *quantity,
                        None => cart.push((*product, *quantity)),
                    }
                    Outcome::Cart { items: cart.clone() }
                }
                Action::RemoveItem { product, .. } => {
                    assert!(cart.iter().any(|(p, _)| p == product), "removes only what is in the cart");
                    cart.retain(|(p, _)| p != product);
                    Outcome::Cart { items: cart.clone() }
                }
                Action::GetCart { .. } => Outcome::Cart { items: cart.clone() },
                Action::Checkout { .. } => {
                    assert!(!cart.is_empty(), "checks out only a filled cart");
                    cart.clear();
                    let order = Uuid::from_u128(5000 + i as u128);
                    orders.insert(0, order);
                    Outcome::Ordered { order }
                }
                Action::ListOrders { .. } => Outcome::Orders { ids: orders.clone() },
                Action::GetOrder { order, .. } | Action::PayOrder { order, .. } => {
                    assert!(orders.contains(order));
                    Outcome::Done
                }
                Action::GetProduct { .. } => Outcome::Done,
                other => panic!("a shopper does not {other:?}"),
            };
            s.apply(a.op(), outcome);
            actions.push(a);
        }
        (actions, s)
    }

    #[test]
    fn a_session_signs_up_browses_changes_the_cart_checks_out_and_looks_at_orders() {
        let (actions, _) = play(60, 7);
        let ops: Vec<Op> = actions.iter().map(Action::op).collect();
        assert_eq!(ops[0], Op::SignUp);
        let first_checkout = ops.iter().position(|o| *o == Op::Checkout).expect("a checkout");
        let session = &ops[..first_checkout];
        assert!(session.contains(&Op::ListProducts) && session.contains(&Op::GetProduct));
        assert!(session.contains(&Op::AddItem) && session.contains(&Op::GetCart));
        assert_eq!(ops[first_checkout + 1], Op::ListOrders);
        assert_eq!(ops[first_checkout + 2], Op::GetOrder);
        assert!(ops[first_checkout..].contains(&Op::SignUp), "a new shopper follows");
    }

    #[test]
    fn long_runs_cover_every_shopper_operation_and_stay_consistent() {
        let (actions, s) = play(3000, 42);
        for op in [
            Op::SignUp,
            Op::ListProducts,
            Op::GetProduct,
            Op::AddItem,
            Op::SetQuantity,
            Op::RemoveItem,
            Op::GetCart,
            Op::Checkout,
            Op::ListOrders,
            Op::GetOrder,
            Op::PayOrder,
        ] {
            let n = actions.iter().filter(|a| a.op() == op).count();
            assert!(n > 0, "{op} never happened");
        }
        assert!(s.sessions() > 50, "{} sessions", s.sessions());
        let gets = actions.iter().filter(|a| a.op().is_read()).count();
        assert!(gets * 3 > actions.len(), "reads are a large share: {gets} of {}", actions.len());
    }

    #[test]
    fn plans_are_reproducible_from_the_seed() {
        assert_eq!(play(200, 3).0, play(200, 3).0);
        assert_ne!(play(200, 3).0, play(200, 4).0);
    }

    #[test]
    fn a_failed_cart_change_is_followed_by_reading_the_cart() {
        let mut s = Shopper::new(Arc::new(JourneyConfig::default()), 1);
        assert_eq!(s.next_action().op(), Op::SignUp);
        s.apply(Op::SignUp, Outcome::SignedUp { user: Uuid::from_u128(1), token: "t".into() });
        s.apply(Op::AddItem, Outcome::Failed);
        assert_eq!(s.next_action().op(), Op::GetCart);
    }

    #[test]
    fn a_failed_checkout_is_sent_again_with_the_same_key() {
        let mut s = Shopper::new(Arc::new(JourneyConfig::default()), 5);
        s.next_action();
        s.apply(Op::SignUp, Outcome::SignedUp { user: Uuid::from_u128(1), token: "t".into() });
        s.apply(Op::ListProducts, Outcome::Page { ids: vec![Uuid::from_u128(7)], next: None });
        s.apply(Op::AddItem, Outcome::Cart { items: vec![(Uuid::from_u128(7), 1)] });
        s.steps = [Step::Checkout, Step::ListOrders].into();
        let Action::Checkout { key, .. } = s.next_action() else { panic!("a checkout") };
        let mut keys = vec![];
        for _ in 1..CHECKOUT_TRIES {
            s.apply(Op::Checkout, Outcome::Failed);
            assert_eq!(s.next_action().op(), Op::GetCart, "the cart is read back first");
            match s.next_action() {
                Action::Checkout { key: again, .. } => keys.push(again),
                other => panic!("expected the checkout again, got {other:?}"),
            }
        }
        assert!(keys.iter().all(|k| *k == key), "{key} then {keys:?}");
        s.apply(Op::Checkout, Outcome::Failed);
        assert_eq!(s.next_action().op(), Op::GetCart);
        assert_eq!(s.next_action().op(), Op::ListOrders, "given up after {CHECKOUT_TRIES} tries");
        s.steps = [Step::Checkout].into();
        let Action::Checkout { key: next, .. } = s.next_action() else { panic!("a checkout") };
        assert_ne!(next, key, "a new checkout has a new key");
        s.apply(Op::Checkout, Outcome::Ordered { order: Uuid::from_u128(9) });
        assert_eq!(s.checkout, None);
    }

    #[test]
    fn a_failed_sign_up_starts_a_new_person() {
        let mut s = Shopper::new(Arc::new(JourneyConfig::default()), 1);
        let first = s.next_action();
        s.apply(Op::SignUp, Outcome::Failed);
        let again = s.next_action();
        assert_eq!(again.op(), Op::SignUp);
        assert_ne!(first, again, "with a new email");
    }

    #[test]
    fn the_merchant_creates_then_edits_what_it_knows() {
        let mut m = Merchant::new(Arc::new(JourneyConfig::default()), "admin".into(), 9);
        let browse = m.next_action();
        assert_eq!(browse.op(), Op::ListProducts);
        m.apply(Op::ListProducts, Outcome::Page { ids: vec![], next: None });
        let create = m.next_action();
        assert_eq!(create.op(), Op::CreateProduct);
        m.apply(Op::CreateProduct, Outcome::ProductSaved { product: Uuid::from_u128(77) });
        for _ in 0..3 {
            match m.next_action() {
                Action::EditProduct { product, .. } => assert_eq!(product, Uuid::from_u128(77)),
                other => panic!("expected an edit, got {other:?}"),
            }
        }
        assert_eq!(m.next_action().op(), Op::ListProducts, "then it browses again");
    }

    #[test]
    fn merchants_follow_the_weights() {
        assert_eq!(merchants_among(16, 15, 1), 1);
        assert_eq!(merchants_among(16, 7, 1), 2);
        assert_eq!(merchants_among(16, 1, 0), 0);
        assert_eq!(merchants_among(1, 15, 1), 0, "a single user shops");
        assert_eq!(merchants_among(4, 1, 1), 2);
    }

    #[test]
    fn the_seed_catalogue_spreads_over_categories() {
        let cats = categories(10);
        let seed = seed_catalogue(500, &cats);
        assert_eq!(seed.len(), 500);
        for c in &cats {
            assert_eq!(seed.iter().filter(|p| &p.category == c).count(), 50);
        }
        assert!(seed.iter().all(|p| (99..=50_099).contains(&p.price_cents)));
        let mut names: Vec<_> = seed.iter().map(|p| &p.name).collect();
        names.dedup();
        assert_eq!(names.len(), 500);
    }
}
