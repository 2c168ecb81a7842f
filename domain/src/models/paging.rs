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
    /// What to ask a store for: one item more than the page holds, so that a full last page can
    /// be told from a page with more after it (`Page::from_items` drops the extra item).
    pub fn with_lookahead(self) -> Self {
        Self { limit: self.limit.saturating_add(1), ..self }
    }
}

/// One page of results; `next` is the `after` value for the following page, `None` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// Builds a page from what a store returned for `page.with_lookahead()`: the first `page.limit`
    /// items, and a `next` (the last of them) only if the store had at least one more.
    pub fn from_items(mut items: Vec<T>, page: PageRequest, id_of: impl Fn(&T) -> Uuid) -> Self {
        let more = items.len() > page.limit as usize;
        items.truncate(page.limit as usize);
        let next = if more { items.last().map(&id_of) } else { None };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn the_store_is_asked_for_one_more_than_the_page_holds() {
        let page = PageRequest::parse(Some(3), None).unwrap();
        assert_eq!(page.with_lookahead(), PageRequest { limit: 4, after: None });
        let max = PageRequest::first(PageRequest::MAX_LIMIT).with_lookahead();
        assert_eq!(max.limit, PageRequest::MAX_LIMIT + 1);
    }

    #[test]
    fn next_is_set_only_when_more_items_follow() {
        let page = PageRequest::first(3);
        // The store found one more than the page holds: the page is cut and points at its last.
        let p = Page::from_items(ids(4), page, |u| *u);
        assert_eq!((p.items, p.next), (ids(3), Some(Uuid::from_u128(3))));
        // Exactly a full page and nothing after it: the last page.
        let p = Page::from_items(ids(3), page, |u| *u);
        assert_eq!((p.items, p.next), (ids(3), None));
        let p = Page::from_items(ids(1), page, |u| *u);
        assert_eq!((p.items, p.next), (ids(1), None));
        let p = Page::from_items(Vec::new(), page, |u: &Uuid| *u);
        assert_eq!((p.items, p.next), (Vec::new(), None));
    }
}
