//! Who may do what. A user's routes (profile, cart, orders) take that user's token or the admin
//! token; catalogue writes take the admin token.

use super::Shop;
use crate::error::DomainError;
use crate::models::{ApiToken, UserId};

/// What the caller presented.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Bearer(ApiToken),
}

impl Shop {
    fn is_admin(&self, creds: &Credentials) -> bool {
        matches!(creds, Credentials::Bearer(t) if self.admin.matches(t))
    }

    /// No token: `Unauthenticated`; a token that is not the admin's: `Forbidden`.
    pub(crate) fn require_admin(&self, creds: &Credentials) -> Result<(), DomainError> {
        match creds {
            Credentials::None => Err(DomainError::Unauthenticated),
            _ if self.is_admin(creds) => Ok(()),
            _ => Err(DomainError::Forbidden),
        }
    }

    /// Lets the user itself or the admin through. For anyone but the admin an unknown user is
    /// `Forbidden`, like a wrong token: a token must not tell which user ids exist.
    pub(crate) async fn require_user(&self, creds: &Credentials, user: UserId) -> Result<(), DomainError> {
        match self.user_or_admin(creds, user).await? {
            true => Ok(()),
            false => Err(DomainError::NotFound { entity: "user" }),
        }
    }

    /// Like `require_user`, but lets the admin through for a user that does not exist (any more):
    /// returns whether the user exists. For reading the orders of a deleted user, which are kept.
    pub(crate) async fn user_or_admin(&self, creds: &Credentials, user: UserId) -> Result<bool, DomainError> {
        let Credentials::Bearer(token) = creds else { return Err(DomainError::Unauthenticated) };
        let stored = self.stores.users.token_hash(user).await?;
        match stored {
            None if self.is_admin(creds) => Ok(false),
            _ if self.is_admin(creds) => Ok(true),
            Some(hash) if hash.matches(token) => Ok(true),
            _ => Err(DomainError::Forbidden),
        }
    }
}
