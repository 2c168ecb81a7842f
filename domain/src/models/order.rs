//! Orders: a snapshot of a cart at checkout, with the prices of that moment.

use super::cart::Quantity;
use super::ids::{OrderId, ProductId, UserId};
use super::money::Cents;
use super::product::ProductName;
use super::time::Timestamp;
use crate::error::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Created,
    Paid,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [Self::Created, Self::Paid, Self::Shipped, Self::Cancelled];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| ValidationError::new("status", "must be one of created, paid, shipped, cancelled"))
    }
    /// created -> paid -> shipped; created or paid -> cancelled. Shipped and cancelled are final.
    pub fn can_become(&self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!((self, next), (Created, Paid) | (Paid, Shipped) | (Created | Paid, Cancelled))
    }
}

/// The client's `Idempotency-Key`: 1..=100 visible ASCII characters. The same key from the same
/// user always yields the same order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const FIELD: &'static str = "Idempotency-Key";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > 100 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new(Self::FIELD, "must be 1 to 100 visible ASCII characters"));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    /// The product's name at checkout.
    pub name: ProductName,
    /// The product's price at checkout.
    pub unit_price: Cents,
    pub quantity: Quantity,
}

impl OrderLine {
    pub fn total(&self) -> Cents {
        self.unit_price.times(self.quantity.get())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub idempotency_key: IdempotencyKey,
    pub status: OrderStatus,
    /// Sorted by product id, never empty.
    pub lines: Vec<OrderLine>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Order {
    pub fn total(&self) -> Cents {
        self.lines.iter().map(OrderLine::total).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn only_forward_transitions_are_allowed() {
        let allowed: Vec<_> = OrderStatus::ALL
            .iter()
            .flat_map(|a| OrderStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(allowed, vec![(Created, Paid), (Created, Cancelled), (Paid, Shipped), (Paid, Cancelled)]);
    }

    #[test]
    fn status_round_trips_through_text() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(OrderStatus::parse("lost").unwrap_err().field, "status");
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("checkout-1").is_ok());
        for bad in ["", " a", "ключ", &"k".repeat(101)] {
            assert_eq!(IdempotencyKey::parse(bad).unwrap_err().field, "Idempotency-Key");
        }
    }
}
