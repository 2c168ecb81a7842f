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

    /// Lets the user itself or the admin through. An unknown user is `NotFound` (for callers with a
    /// token), so a wrong guess of an id and a wrong token are told apart only by someone who has one.
    pub(crate) async fn require_user(&self, creds: &Credentials, user: UserId) -> Result<(), DomainError> {
        let Credentials::Bearer(token) = creds else { return Err(DomainError::Unauthenticated) };
        if self.is_admin(creds) {
            return match self.stores.users.token_hash(user).await? {
                Some(_) => Ok(()),
                None => Err(DomainError::NotFound { entity: "user" }),
            };
        }
        match self.stores.users.token_hash(user).await? {
            None => Err(DomainError::NotFound { entity: "user" }),
            Some(hash) if hash.matches(token) => Ok(()),
            Some(_) => Err(DomainError::Forbidden),
        }
    }
}
