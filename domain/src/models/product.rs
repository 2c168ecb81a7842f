//! The product catalogue.

use super::ids::ProductId;
use super::money::Cents;
use super::text::text_type;
use super::time::Timestamp;

text_type!(
    /// A product's name as shown in the shop.
    ProductName, field = "name", min = 1, max = 200, multiline = false
);
text_type!(
    /// Free text about a product; may be empty and span lines.
    Description, field = "description", min = 0, max = 2000, multiline = true
);
text_type!(
    /// The shelf a product sits on; products are listed by category.
    Category, field = "category", min = 1, max = 50, multiline = false
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: ProductName,
    pub description: Description,
    pub category: Category,
    pub price: Cents,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A validated new product.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: ProductName,
    pub description: Description,
    pub category: Category,
    pub price: Cents,
}

/// A validated partial update; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub category: Option<Category>,
    pub price: Option<Cents>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.category.is_none() && self.price.is_none()
    }
}
