//! Carts: per user, a set of product ids with quantities.

use super::ids::{ProductId, UserId};
use crate::error::{StoreError, ValidationError};

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

/// A change to one cart line. Every cart store applies it atomically with `LineChange::apply`'s
/// rules (the Redis script runs the same arithmetic on the server with these limits), so the
/// limits and their messages live here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineChange {
    /// Adds to the line's quantity (creating the line).
    Add(Quantity),
    /// Sets the line's quantity (creating the line).
    Set(Quantity),
}

/// A cart limit that a change would break; the change is refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartLimit {
    /// More than `Quantity::MAX` of one product.
    Quantity,
    /// A new line in a cart that has `Cart::MAX_LINES` already.
    Lines,
}

impl LineChange {
    /// The line's quantity after the change, given its current quantity (`None`: no such line)
    /// and how many lines the cart has.
    pub fn apply(self, current: Option<u32>, lines: usize) -> Result<u32, CartLimit> {
        if current.is_none() && lines >= Cart::MAX_LINES {
            return Err(CartLimit::Lines);
        }
        let next = match self {
            LineChange::Add(q) => current.unwrap_or(0) + q.get(),
            LineChange::Set(q) => q.get(),
        };
        if next > Quantity::MAX {
            return Err(CartLimit::Quantity);
        }
        Ok(next)
    }
}

impl From<CartLimit> for StoreError {
    fn from(limit: CartLimit) -> Self {
        match limit {
            CartLimit::Quantity => StoreError::Rejected {
                field: "quantity".into(),
                message: format!("the cart may hold at most {} of one product", Quantity::MAX),
            },
            CartLimit::Lines => StoreError::Rejected {
                field: "product_id".into(),
                message: format!("a cart holds at most {} different products", Cart::MAX_LINES),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_respect_the_quantity_and_line_limits() {
        let q = Quantity::from_trusted;
        assert_eq!(LineChange::Add(q(2)).apply(Some(3), 1), Ok(5));
        assert_eq!(LineChange::Add(q(2)).apply(None, 0), Ok(2));
        assert_eq!(LineChange::Set(q(7)).apply(Some(3), 1), Ok(7));
        assert_eq!(LineChange::Add(q(1)).apply(Some(Quantity::MAX - 1), 1), Ok(Quantity::MAX));
        assert_eq!(LineChange::Add(q(2)).apply(Some(Quantity::MAX - 1), 1), Err(CartLimit::Quantity));
        assert_eq!(LineChange::Set(q(1)).apply(None, Cart::MAX_LINES), Err(CartLimit::Lines));
        // A line already in a full cart may still change.
        assert_eq!(LineChange::Add(q(1)).apply(Some(1), Cart::MAX_LINES), Ok(2));
    }

    #[test]
    fn limits_name_the_field_at_fault() {
        for (limit, field) in [(CartLimit::Quantity, "quantity"), (CartLimit::Lines, "product_id")] {
            match StoreError::from(limit) {
                StoreError::Rejected { field: f, .. } => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
