//! Users and their API tokens.

use super::ids::UserId;
use super::text::text_type;
use super::time::Timestamp;
use crate::error::ValidationError;
use sha2::{Digest, Sha256};

text_type!(
    /// A user's display name.
    UserName, field = "name", min = 1, max = 100, multiline = false
);

/// An email address, lower-cased. Checked for shape only (one `@`, a dotted domain, no spaces):
/// deliverability is not the shop's concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = |m: &str| Err(ValidationError::new("email", m));
        if raw.chars().count() > Self::MAX_CHARS {
            return bad("must have at most 254 characters");
        }
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return bad("must not be empty");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("must not contain spaces or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else { return bad("must contain '@'") };
        let domain_ok = !domain.contains('@') && domain.contains('.') && domain.split('.').all(|part| !part.is_empty());
        if local.is_empty() || !domain_ok {
            return bad("must look like name@example.com");
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: UserName,
    pub created_at: Timestamp,
}

/// A validated sign-up.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: UserName,
}

/// A validated partial update; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub name: Option<UserName>,
}

/// A bearer token as handed to the client once, at sign-up. 32 random bytes, hex.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hex::encode(bytes))
    }
    pub fn from_client(s: &str) -> Self {
        Self(s.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// What the store keeps of a token. A plain SHA-256 is enough: the token has 256 random bits,
/// so there is nothing to brute-force, and checking stays cheap on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Compares in constant time, so response timing tells nothing about how much matched.
    pub fn matches(&self, token: &ApiToken) -> bool {
        let other = token.hash();
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lowercased_and_trimmed() {
        assert_eq!(Email::parse("  Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected_naming_the_field() {
        for bad in ["", "ann", "ann@", "@x.org", "a@b", "a b@x.org", "a@@x.org", "a@x..org", "a@x.org\0"] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(UserName::parse("  Ann ").unwrap().as_str(), "Ann");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse(&format!(" {} ", "x".repeat(99))).is_err(), "the raw input is bounded too");
        assert!(UserName::parse(&"é".repeat(100)).is_ok(), "bounds count characters, not bytes");
        assert_eq!(UserName::parse("a\0b").unwrap_err().field, "name");
    }

    #[test]
    fn token_hash_matches_only_its_token() {
        let t = ApiToken::generate();
        assert_eq!(t.as_str().len(), 64);
        assert!(t.hash().matches(&t));
        assert!(!t.hash().matches(&ApiToken::generate()));
    }
}
