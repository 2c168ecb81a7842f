use super::{Credentials, Shop};
use crate::error::{DomainError, ValidationError};
use crate::models::*;

impl Shop {
    pub async fn cart(&self, creds: &Credentials, user: UserId) -> Result<Cart, DomainError> {
        self.require_user(creds, user).await?;
        Ok(self.stores.carts.get(user).await?)
    }

    /// Adds to the product's quantity. The product must exist (`product_id` is named otherwise).
    pub async fn add_to_cart(
        &self,
        creds: &Credentials,
        user: UserId,
        product: ProductId,
        qty: Quantity,
    ) -> Result<Cart, DomainError> {
        self.require_user(creds, user).await?;
        self.require_product(product).await?;
        Ok(self.stores.carts.add(user, product, qty).await?)
    }

    /// Sets the product's quantity, adding the line if needed.
    pub async fn set_cart_quantity(
        &self,
        creds: &Credentials,
        user: UserId,
        product: ProductId,
        qty: Quantity,
    ) -> Result<Cart, DomainError> {
        self.require_user(creds, user).await?;
        self.require_product(product).await?;
        Ok(self.stores.carts.set(user, product, qty).await?)
    }

    pub async fn remove_from_cart(
        &self,
        creds: &Credentials,
        user: UserId,
        product: ProductId,
    ) -> Result<Cart, DomainError> {
        self.require_user(creds, user).await?;
        self.stores.carts.remove(user, product).await?.ok_or(DomainError::NotFound { entity: "cart item" })
    }

    pub async fn clear_cart(&self, creds: &Credentials, user: UserId) -> Result<(), DomainError> {
        self.require_user(creds, user).await?;
        Ok(self.stores.carts.clear(user).await?)
    }

    async fn require_product(&self, id: ProductId) -> Result<(), DomainError> {
        match self.stores.catalogue.get(id).await? {
            Some(_) => Ok(()),
            None => Err(ValidationError::new("product_id", "no such product").into()),
        }
    }
}
