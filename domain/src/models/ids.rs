//! Identifiers. All are UUIDs made by the application (v7: time-ordered, so B-tree inserts stay
//! local), never by a database: pgpool native replication runs every statement on every backend,
//! where `gen_random_uuid()` would give each node a different id.

use crate::error::ValidationError;
use uuid::Uuid;

/// Reads a UUID from client text in its one documented spelling: 36 characters with hyphens,
/// any case (RFC 4122 reads case-insensitively). `Uuid::parse_str` also takes the simple,
/// braced and URN forms, which would give one resource several URLs.
pub fn parse_uuid(raw: &str) -> Option<Uuid> {
    if raw.len() != 36 {
        return None;
    }
    Uuid::parse_str(raw).ok()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(id: Uuid) -> Self { Self(id) }
            pub fn as_uuid(&self) -> Uuid { self.0 }
            /// Parses a path or body value; `field` names it in the error.
            pub fn parse(raw: &str, field: &str) -> Result<Self, ValidationError> {
                parse_uuid(raw)
                    .map(Self)
                    .ok_or_else(|| ValidationError::new(field, "must be a UUID"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
        }
    };
}

id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A product's id.
    ProductId
);
id_type!(
    /// An order's id.
    OrderId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_in_the_hyphenated_spelling_only() {
        let id = "0190b3c4-7d2a-7f00-8000-00000000000a";
        assert_eq!(UserId::parse(id, "user_id").unwrap().to_string(), id);
        assert_eq!(UserId::parse(&id.to_uppercase(), "user_id").unwrap().to_string(), id, "any case");
        let simple = id.replace('-', "");
        for bad in [simple.as_str(), &format!("{{{id}}}"), &format!("urn:uuid:{id}"), &format!(" {id}"), "", "x"] {
            assert_eq!(UserId::parse(bad, "user_id").unwrap_err().field, "user_id", "{bad:?}");
        }
    }
}
