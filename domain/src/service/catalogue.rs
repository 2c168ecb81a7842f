use super::{new_uuid, Credentials, Shop};
use crate::error::DomainError;
use crate::models::*;

impl Shop {
    pub async fn create_product(&self, creds: &Credentials, new: NewProduct) -> Result<Product, DomainError> {
        self.require_admin(creds)?;
        let now = self.clock.now();
        let product = Product {
            id: ProductId::from_uuid(new_uuid()),
            name: new.name,
            description: new.description,
            category: new.category,
            price: new.price,
            created_at: now,
            updated_at: now,
        };
        self.stores.catalogue.insert(&product).await?;
        Ok(product)
    }

    pub async fn product(&self, id: ProductId) -> Result<Product, DomainError> {
        self.stores.catalogue.get(id).await?.ok_or(DomainError::NotFound { entity: "product" })
    }

    pub async fn products(&self, category: Option<&Category>, page: PageRequest) -> Result<Page<Product>, DomainError> {
        let items = self.stores.catalogue.list(category, page.with_lookahead()).await?;
        Ok(Page::from_items(items, page, |p| p.id.as_uuid()))
    }

    pub async fn update_product(
        &self,
        creds: &Credentials,
        id: ProductId,
        patch: ProductPatch,
    ) -> Result<Product, DomainError> {
        self.require_admin(creds)?;
        let mut p = self.product(id).await?;
        if patch.is_empty() {
            return Ok(p);
        }
        if let Some(v) = patch.name {
            p.name = v;
        }
        if let Some(v) = patch.description {
            p.description = v;
        }
        if let Some(v) = patch.category {
            p.category = v;
        }
        if let Some(v) = patch.price {
            p.price = v;
        }
        p.updated_at = self.clock.now().max(p.created_at);
        match self.stores.catalogue.update(&p).await? {
            true => Ok(p),
            false => Err(DomainError::NotFound { entity: "product" }),
        }
    }

    /// Carts may still name a deleted product; checkout then refuses until it is removed.
    pub async fn delete_product(&self, creds: &Credentials, id: ProductId) -> Result<(), DomainError> {
        self.require_admin(creds)?;
        match self.stores.catalogue.delete(id).await? {
            true => Ok(()),
            false => Err(DomainError::NotFound { entity: "product" }),
        }
    }
}
