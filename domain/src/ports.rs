//! Ports: what the use cases need from the outside world. Adapters implement them; the app picks
//! one adapter per port and stage. All are object-safe (`Arc<dyn ...>`).
//!
//! Error contract shared by every method: `StoreError::Unavailable` when the store failed. An
//! adapter may retry internally, but only where the retry cannot apply a change twice; every
//! write below is written to be safe to repeat (ids come from the application).

use crate::error::StoreError;
use crate::models::*;
use async_trait::async_trait;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user with the hash of its token. Repeating the call with the same id is a
    /// no-op (`Ok`). `StoreError::Conflict { field: "email" }` when another user has the email.
    async fn insert(&self, user: &User, token: &TokenHash) -> StoreResult<()>;
    async fn get(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The stored token hash, `None` for an unknown user.
    async fn token_hash(&self, id: UserId) -> StoreResult<Option<TokenHash>>;
    /// Replaces email and name. `Ok(false)` for an unknown user; `Conflict { field: "email" }`.
    async fn update(&self, user: &User) -> StoreResult<bool>;
    /// Removes the user (its cart too, where the cart lives in the same store). `Ok(false)` if unknown.
    async fn delete(&self, id: UserId) -> StoreResult<bool>;
    /// Users in ascending id order, after `page.after`.
    async fn list(&self, page: PageRequest) -> StoreResult<Vec<User>>;
}

#[async_trait]
pub trait Catalogue: Send + Sync {
    /// Stores a new product. Repeating the call with the same id is a no-op.
    async fn insert(&self, product: &Product) -> StoreResult<()>;
    async fn get(&self, id: ProductId) -> StoreResult<Option<Product>>;
    /// The products that exist among `ids`, in any order; unknown ids are left out.
    async fn get_many(&self, ids: &[ProductId]) -> StoreResult<Vec<Product>>;
    /// Replaces every field but `id` and `created_at`. `Ok(false)` for an unknown product.
    async fn update(&self, product: &Product) -> StoreResult<bool>;
    /// `Ok(false)` for an unknown product.
    async fn delete(&self, id: ProductId) -> StoreResult<bool>;
    /// Products (of one category, if given) after `page.after`, at most `page.limit`, in an order
    /// the adapter keeps stable between calls (ascending id, or token order where the store has it).
    async fn list(&self, category: Option<&Category>, page: PageRequest) -> StoreResult<Vec<Product>>;
}

#[async_trait]
pub trait CartRepository: Send + Sync {
    /// The user's cart; an empty cart if it has none.
    async fn get(&self, user: UserId) -> StoreResult<Cart>;
    /// Adds `quantity` to the product's line (creating it), atomically, and returns the cart.
    /// `Rejected { field: "quantity" }` if the line would exceed `Quantity::MAX`;
    /// `Rejected { field: "product_id" }` if a new line would exceed `Cart::MAX_LINES`.
    /// Nothing is changed when it fails.
    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart>;
    /// Sets the product's line to `quantity` (creating it) and returns the cart; same limits as `add`.
    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart>;
    /// Removes the product's line; `Ok(None)` if it was not in the cart.
    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>>;
    /// Empties the cart (no-op when already empty).
    async fn clear(&self, user: UserId) -> StoreResult<()>;

    /// Holds the cart's current lines for the checkout `key`, so that the checkout later removes
    /// exactly what it ordered (`settle`) while the cart stays free for other changes meanwhile.
    /// Atomic. Re-entrant: the key that holds the claim gets the lines it holds, not the cart as it
    /// is now (`fresh: false`). An empty cart is `Held` with no lines and `fresh`, and then nothing
    /// is held (nothing to settle). `Busy` names the other key that holds the cart and since when;
    /// nothing is changed then.
    async fn claim(&self, user: UserId, key: &IdempotencyKey, now: Timestamp) -> StoreResult<Claim>;
    /// Ends the claim of `key` by removing what it holds from the cart, atomically: each held line
    /// loses the held quantity, unless the line was set, removed or cleared since the claim (then
    /// the later change stands as it is); what was added to a line since stays. A no-op when `key`
    /// holds no claim, so settling twice removes once.
    async fn settle(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()>;
    /// Ends the claim of `key` without changing the cart; a no-op when `key` holds no claim.
    async fn release(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()>;
}

/// What `CartRepository::claim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lines the claim holds for this key (none when the cart was empty); `fresh` when this
    /// call made the claim, not when the key already held it.
    Held { cart: Cart, fresh: bool },
    /// Another checkout holds the cart.
    Busy { key: IdempotencyKey, since: Timestamp },
}

/// What `OrderRepository::insert` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The order was stored.
    Created,
    /// An order with this user's idempotency key (or this id) already existed; nothing was written.
    Existing(Order),
}

#[async_trait]
pub trait OrderRepository: Send + Sync {
    /// Stores the order with all its lines atomically, unless the same user already has an order
    /// with the same idempotency key, which is then returned. Safe to repeat.
    async fn insert(&self, order: &Order) -> StoreResult<Placed>;
    async fn get(&self, id: OrderId) -> StoreResult<Option<Order>>;
    async fn find_by_key(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<Option<Order>>;
    /// The user's orders, newest first (descending id: UUID v7 ids are time-ordered), after `page.after`.
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> StoreResult<Vec<Order>>;
    /// Moves the order from `from` to `to` only if its status is still `from` (compare-and-set);
    /// `Ok(false)` if the order is unknown or its status is no longer `from`.
    async fn set_status(&self, id: OrderId, from: OrderStatus, to: OrderStatus, at: Timestamp) -> StoreResult<bool>;
}

/// Readiness of the stores behind the ports, for `/health/ready`.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// A short name of the store for the readiness report, e.g. "postgres".
    fn name(&self) -> &str;
    async fn check(&self) -> StoreResult<()>;
}

/// Where time comes from; a port so tests can fix it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock, truncated to milliseconds.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(chrono::Utc::now())
    }
}
