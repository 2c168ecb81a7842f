//! Carts: per user, a set of product ids with quantities.

use super::ids::{ProductId, UserId};
use crate::error::ValidationError;

/// How many of one product: 1..=999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 999;

    pub fn parse(raw: i64, field: &str) -> Result<Self, ValidationError> {
        if (1..=i64::from(Self::MAX)).contains(&raw) {
            Ok(Self(raw as u32))
        } else {
            Err(ValidationError::new(field, format!("must be between 1 and {}", Self::MAX)))
        }
    }
    pub fn from_trusted(v: u32) -> Self {
        Self(v)
    }
    pub fn get(&self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// A user's cart. Items are kept sorted by product id so every store returns the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub user_id: UserId,
    items: Vec<CartItem>,
}

impl Cart {
    /// At most this many distinct products in one cart; stores enforce it atomically.
    pub const MAX_LINES: usize = 100;

    pub fn new(user_id: UserId, mut items: Vec<CartItem>) -> Self {
        items.sort_by_key(|i| i.product_id);
        Self { user_id, items }
    }
    pub fn empty(user_id: UserId) -> Self {
        Self { user_id, items: Vec::new() }
    }
    pub fn items(&self) -> &[CartItem] {
        &self.items
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
