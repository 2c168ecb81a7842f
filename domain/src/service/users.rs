use super::{new_uuid, Credentials, Shop};
use crate::error::DomainError;
use crate::models::*;

impl Shop {
    /// Creates a user and returns it with its API token, the only time the token is seen.
    pub async fn sign_up(&self, new: NewUser) -> Result<(User, ApiToken), DomainError> {
        let user =
            User { id: UserId::from_uuid(new_uuid()), email: new.email, name: new.name, created_at: self.clock.now() };
        let token = ApiToken::generate();
        self.stores.users.insert(&user, &token.hash()).await?;
        Ok((user, token))
    }

    pub async fn user(&self, creds: &Credentials, id: UserId) -> Result<User, DomainError> {
        self.require_user(creds, id).await?;
        self.stores.users.get(id).await?.ok_or(DomainError::NotFound { entity: "user" })
    }

    pub async fn update_user(&self, creds: &Credentials, id: UserId, patch: UserPatch) -> Result<User, DomainError> {
        let mut user = self.user(creds, id).await?;
        if let Some(email) = patch.email {
            user.email = email;
        }
        if let Some(name) = patch.name {
            user.name = name;
        }
        match self.stores.users.update(&user).await? {
            true => Ok(user),
            false => Err(DomainError::NotFound { entity: "user" }),
        }
    }

    /// Removes the user and its cart. Orders are kept: they are the shop's records.
    pub async fn delete_user(&self, creds: &Credentials, id: UserId) -> Result<(), DomainError> {
        self.require_user(creds, id).await?;
        self.stores.carts.clear(id).await?;
        match self.stores.users.delete(id).await? {
            true => Ok(()),
            false => Err(DomainError::NotFound { entity: "user" }),
        }
    }

    /// All users, for the admin.
    pub async fn users(&self, creds: &Credentials, page: PageRequest) -> Result<Page<User>, DomainError> {
        self.require_admin(creds)?;
        let items = self.stores.users.list(page.with_lookahead()).await?;
        Ok(Page::from_items(items, page, |u| u.id.as_uuid()))
    }
}
