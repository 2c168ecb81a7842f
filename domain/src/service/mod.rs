//! Use cases. `Shop` holds one adapter per port and is what the HTTP layer calls; every method
//! takes already-validated domain types and the caller's credentials.

mod access;
mod carts;
mod catalogue;
mod orders;
mod users;

pub use access::Credentials;
pub use orders::{Checkout, CLAIM_EXPIRES_AFTER_MS};

use crate::models::{ApiToken, TokenHash};
use crate::ports::{CartRepository, Catalogue, Clock, OrderRepository, UserRepository};
use std::sync::Arc;

/// The adapters a `Shop` works on.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserRepository>,
    pub catalogue: Arc<dyn Catalogue>,
    pub carts: Arc<dyn CartRepository>,
    pub orders: Arc<dyn OrderRepository>,
}

#[derive(Clone)]
pub struct Shop {
    stores: Stores,
    clock: Arc<dyn Clock>,
    admin: TokenHash,
}

impl Shop {
    /// `admin_token` grants catalogue writes and access to every user's routes.
    pub fn new(stores: Stores, clock: Arc<dyn Clock>, admin_token: &ApiToken) -> Self {
        Self { stores, clock, admin: admin_token.hash() }
    }
}

/// A new id: UUID v7, time-ordered.
fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
