//! Checked text fields. Every string a client sends passes one of these before it reaches a store:
//! trimmed, bounded in characters, and free of control characters (PostgreSQL rejects NUL bytes,
//! and a 500 for bad input is a bug).

use crate::error::ValidationError;

/// Trims `raw` and checks it is `min..=max` characters with no control characters
/// (newlines and tabs are allowed only when `multiline`). The bound holds for the raw input too,
/// so what a client may send is exactly what the API document says (`maxLength`).
pub(crate) fn checked(
    raw: &str,
    field: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, ValidationError> {
    if raw.chars().count() > max {
        return Err(ValidationError::new(field, format!("must have at most {max} characters")));
    }
    let s = raw.trim();
    let n = s.chars().count();
    if n < min {
        let what =
            if min == 1 { "must not be empty".to_string() } else { format!("must have at least {min} characters") };
        return Err(ValidationError::new(field, what));
    }
    if s.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r'))) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(s.to_string())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, min = $min:literal, max = $max:literal, multiline = $ml:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;
            /// Validates client input; the error names the field.
            pub fn parse(raw: &str) -> Result<Self, $crate::error::ValidationError> {
                $crate::models::text::checked(raw, $field, $min, $max, $ml).map(Self)
            }
            pub fn as_str(&self) -> &str { &self.0 }
            pub fn into_string(self) -> String { self.0 }
            /// For adapters reading back what was validated on the way in.
            pub fn from_trusted(s: String) -> Self { Self(s) }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) }
        }
    };
}
pub(crate) use text_type;
