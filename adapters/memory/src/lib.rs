//! One in-memory store implementing every port, behind a single mutex. Not for production:
//! nothing survives a restart and there is no replication. It exists so `cargo run` works with no
//! setup and so the use cases can be tested without servers.

use async_trait::async_trait;
use domain::models::*;
use domain::ports::*;
use domain::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Default)]
struct State {
    users: BTreeMap<UserId, (User, TokenHash)>,
    products: BTreeMap<ProductId, Product>,
    carts: HashMap<UserId, CartState>,
    orders: BTreeMap<OrderId, Order>,
    /// The stamp of the next line set or created (see `Line`).
    next_stamp: u64,
}

/// A cart line. `stamp` changes when the line is set or created and stays when it is added to,
/// so a checkout can tell "added to since I claimed it" from "replaced since".
#[derive(Clone, Copy)]
struct Line {
    qty: Quantity,
    stamp: u64,
}

#[derive(Default)]
struct CartState {
    lines: BTreeMap<ProductId, Line>,
    claim: Option<Held>,
}

/// A checkout's claim: its key, since when, and the lines it holds.
struct Held {
    key: IdempotencyKey,
    since: Timestamp,
    lines: Vec<(ProductId, Line)>,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every write below
        // is a single insert or remove.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Every port backed by this one store.
    pub fn stores(&self) -> domain::Stores {
        domain::Stores {
            users: Arc::new(self.clone()),
            catalogue: Arc::new(self.clone()),
            carts: Arc::new(self.clone()),
            orders: Arc::new(self.clone()),
        }
    }
}

/// Up to `page.limit` values after `page.after`, in key order, that pass `keep`.
fn page_of<K: Ord + Copy, V: Clone>(
    map: &BTreeMap<K, V>,
    page: PageRequest,
    key_of: impl Fn(Uuid) -> K,
    keep: impl Fn(&V) -> bool,
) -> Vec<V> {
    let start = page.after.map(key_of);
    map.iter()
        .filter(|(k, _)| start.is_none_or(|s| **k > s))
        .filter(|(_, v)| keep(v))
        .take(page.limit as usize)
        .map(|(_, v)| v.clone())
        .collect()
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert(&self, user: &User, token: &TokenHash) -> StoreResult<()> {
        let mut s = self.lock();
        if s.users.contains_key(&user.id) {
            return Ok(());
        }
        if s.users.values().any(|(u, _)| u.email == user.email) {
            return Err(StoreError::Conflict { field: "email".into() });
        }
        s.users.insert(user.id, (user.clone(), *token));
        Ok(())
    }
    async fn get(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).map(|(u, _)| u.clone()))
    }
    async fn token_hash(&self, id: UserId) -> StoreResult<Option<TokenHash>> {
        Ok(self.lock().users.get(&id).map(|(_, t)| *t))
    }
    async fn update(&self, user: &User) -> StoreResult<bool> {
        let mut s = self.lock();
        if s.users.values().any(|(u, _)| u.email == user.email && u.id != user.id) {
            return Err(StoreError::Conflict { field: "email".into() });
        }
        match s.users.get_mut(&user.id) {
            Some((u, _)) => {
                *u = user.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, id: UserId) -> StoreResult<bool> {
        let mut s = self.lock();
        s.carts.remove(&id);
        Ok(s.users.remove(&id).is_some())
    }
    async fn list(&self, page: PageRequest) -> StoreResult<Vec<User>> {
        let s = self.lock();
        Ok(page_of(&s.users, page, UserId::from_uuid, |_| true).into_iter().map(|(u, _)| u).collect())
    }
}

#[async_trait]
impl Catalogue for MemoryStore {
    async fn insert(&self, product: &Product) -> StoreResult<()> {
        self.lock().products.entry(product.id).or_insert_with(|| product.clone());
        Ok(())
    }
    async fn get(&self, id: ProductId) -> StoreResult<Option<Product>> {
        Ok(self.lock().products.get(&id).cloned())
    }
    async fn get_many(&self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        let s = self.lock();
        Ok(ids.iter().filter_map(|id| s.products.get(id).cloned()).collect())
    }
    async fn update(&self, product: &Product) -> StoreResult<bool> {
        match self.lock().products.get_mut(&product.id) {
            Some(p) => {
                *p = Product { created_at: p.created_at, ..product.clone() };
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, id: ProductId) -> StoreResult<bool> {
        Ok(self.lock().products.remove(&id).is_some())
    }
    async fn list(&self, category: Option<&Category>, page: PageRequest) -> StoreResult<Vec<Product>> {
        let s = self.lock();
        Ok(page_of(&s.products, page, ProductId::from_uuid, |p| category.is_none_or(|c| &p.category == c)))
    }
}

impl MemoryStore {
    /// Applies the change to the user's cart line, all or nothing, with the cart's limits. A set
    /// (or a new line) gets a new stamp; an add to a line keeps its stamp.
    fn change_cart(&self, user: UserId, product: ProductId, change: LineChange) -> StoreResult<Cart> {
        let mut s = self.lock();
        let stamp = s.next_stamp;
        let lines = &mut s.carts.entry(user).or_default().lines;
        let current = lines.get(&product).copied();
        let next = change.apply(current.map(|l| l.qty.get()), lines.len())?;
        let stamp = match (current, change) {
            (Some(l), LineChange::Add(_)) => l.stamp,
            _ => stamp,
        };
        lines.insert(product, Line { qty: Quantity::from_trusted(next), stamp });
        let cart = cart_of(user, lines);
        s.next_stamp += 1;
        Ok(cart)
    }
}

fn cart_of(user: UserId, lines: &BTreeMap<ProductId, Line>) -> Cart {
    Cart::new(user, lines.iter().map(|(p, l)| CartItem { product_id: *p, quantity: l.qty }).collect())
}

#[async_trait]
impl CartRepository for MemoryStore {
    async fn get(&self, user: UserId) -> StoreResult<Cart> {
        Ok(self.lock().carts.get(&user).map_or_else(|| Cart::empty(user), |c| cart_of(user, &c.lines)))
    }
    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change_cart(user, product, LineChange::Add(quantity))
    }
    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change_cart(user, product, LineChange::Set(quantity))
    }
    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>> {
        let mut s = self.lock();
        let Some(c) = s.carts.get_mut(&user) else { return Ok(None) };
        Ok(c.lines.remove(&product).map(|_| cart_of(user, &c.lines)))
    }
    async fn clear(&self, user: UserId) -> StoreResult<()> {
        // The lines only: a checkout's claim stays, and its settle then finds nothing to remove.
        if let Some(c) = self.lock().carts.get_mut(&user) {
            c.lines.clear();
        }
        Ok(())
    }
    async fn claim(&self, user: UserId, key: &IdempotencyKey, now: Timestamp) -> StoreResult<Claim> {
        let mut s = self.lock();
        let c = s.carts.entry(user).or_default();
        match &c.claim {
            Some(h) if &h.key == key => {
                let held: BTreeMap<ProductId, Line> = h.lines.iter().copied().collect();
                Ok(Claim::Held { cart: cart_of(user, &held), fresh: false })
            }
            Some(h) => Ok(Claim::Busy { key: h.key.clone(), since: h.since }),
            None => {
                if !c.lines.is_empty() {
                    let lines = c.lines.iter().map(|(p, l)| (*p, *l)).collect();
                    c.claim = Some(Held { key: key.clone(), since: now, lines });
                }
                Ok(Claim::Held { cart: cart_of(user, &c.lines), fresh: true })
            }
        }
    }
    async fn settle(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        let mut s = self.lock();
        let Some(c) = s.carts.get_mut(&user) else { return Ok(()) };
        let Some(held) = c.claim.take_if(|h| &h.key == key) else { return Ok(()) };
        for (product, was) in held.lines {
            let Some(now) = c.lines.get_mut(&product).filter(|l| l.stamp == was.stamp) else { continue };
            match now.qty.get().checked_sub(was.qty.get()).filter(|&left| left > 0) {
                Some(left) => now.qty = Quantity::from_trusted(left),
                None => {
                    c.lines.remove(&product);
                }
            }
        }
        Ok(())
    }
    async fn release(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        if let Some(c) = self.lock().carts.get_mut(&user) {
            c.claim.take_if(|h| &h.key == key);
        }
        Ok(())
    }
}

#[async_trait]
impl OrderRepository for MemoryStore {
    async fn insert(&self, order: &Order) -> StoreResult<Placed> {
        let mut s = self.lock();
        let same =
            |o: &&Order| o.id == order.id || (o.user_id == order.user_id && o.idempotency_key == order.idempotency_key);
        if let Some(first) = s.orders.values().find(same) {
            return Ok(Placed::Existing(first.clone()));
        }
        s.orders.insert(order.id, order.clone());
        Ok(Placed::Created)
    }
    async fn get(&self, id: OrderId) -> StoreResult<Option<Order>> {
        Ok(self.lock().orders.get(&id).cloned())
    }
    async fn find_by_key(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<Option<Order>> {
        Ok(self.lock().orders.values().find(|o| o.user_id == user && &o.idempotency_key == key).cloned())
    }
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> StoreResult<Vec<Order>> {
        // Newest first: ids are UUID v7, so descending id order is descending creation order.
        let s = self.lock();
        let after = page.after.map(OrderId::from_uuid);
        Ok(s.orders
            .values()
            .rev()
            .filter(|o| o.user_id == user && after.is_none_or(|a| o.id < a))
            .take(page.limit as usize)
            .cloned()
            .collect())
    }
    async fn set_status(&self, id: OrderId, from: OrderStatus, to: OrderStatus, at: Timestamp) -> StoreResult<bool> {
        match self.lock().orders.get_mut(&id) {
            Some(o) if o.status == from => {
                o.status = to;
                o.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl HealthCheck for MemoryStore {
    fn name(&self) -> &str {
        "memory"
    }
    async fn check(&self) -> StoreResult<()> {
        Ok(())
    }
}
