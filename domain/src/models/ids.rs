//! Identifiers. All are UUIDs made by the application (v7: time-ordered, so B-tree inserts stay
//! local), never by a database: pgpool native replication runs every statement on every backend,
//! where `gen_random_uuid()` would give each node a different id.

use crate::error::ValidationError;
use uuid::Uuid;

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
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| ValidationError::new(field, "must be a UUID"))
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
