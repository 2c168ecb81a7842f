//! Money in integer minor units (cents). One currency per shop; no floats anywhere.

use crate::error::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(i64);

impl Cents {
    /// The highest price accepted: 100 million major units. With at most 999 of each of at most
    /// 100 lines, any order total stays far below `i64::MAX`.
    pub const MAX_PRICE: i64 = 10_000_000_000;

    /// Validates a price sent by a client; `field` names it in the error.
    pub fn price(raw: i64, field: &str) -> Result<Self, ValidationError> {
        if raw < 0 {
            return Err(ValidationError::new(field, "must not be negative"));
        }
        if raw > Self::MAX_PRICE {
            return Err(ValidationError::new(field, format!("must be at most {}", Self::MAX_PRICE)));
        }
        Ok(Self(raw))
    }
    pub fn from_trusted(v: i64) -> Self {
        Self(v)
    }
    pub fn get(&self) -> i64 {
        self.0
    }
    pub fn times(&self, n: u32) -> Self {
        Self(self.0 * i64::from(n))
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|c| c.0).sum())
    }
}
