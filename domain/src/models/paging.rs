//! Keyset paging: a page size and the id of the last item of the previous page.

use crate::error::ValidationError;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The last id of the previous page; `None` starts at the beginning.
    pub after: Option<Uuid>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    pub fn parse(limit: Option<i64>, after: Option<&str>) -> Result<Self, ValidationError> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) if (1..=i64::from(Self::MAX_LIMIT)).contains(&l) => l as u32,
            Some(_) => return Err(ValidationError::new("limit", format!("must be between 1 and {}", Self::MAX_LIMIT))),
        };
        let after = after
            .map(|a| super::ids::parse_uuid(a).ok_or_else(|| ValidationError::new("after", "must be a UUID")))
            .transpose()?;
        Ok(Self { limit, after })
    }
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

/// One page of results; `next` is the `after` value for the following page, if there may be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit` items; a full page points at its last item.
    pub fn from_items(items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> Uuid) -> Self {
        let next = if items.len() as u32 >= limit { items.last().map(&id_of) } else { None };
        Self { items, next }
    }
}
