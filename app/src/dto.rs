//! Wire shapes. Requests are parsed by serde (types, unknown fields) and then into validated
//! domain types by their `parse`; responses are built from domain entities. Field names here are
//! the API: docs/openapi.yaml describes exactly these.

use domain::models::*;
use domain::ValidationError;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// For optional fields of a patch: absent means "keep", but an explicit `null` is a type error
/// (it would otherwise silently mean "keep" too).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A JSON integer that fits in 64 bits (money, quantities). A fraction or an exponent is refused
/// even when the value is whole: a client sending dollars as `10.0` must not have it taken as ten
/// cents. `-0` is the integer zero, but serde_json reads it as the float -0.0 (and cannot tell it
/// from `-0.0`), so negative zero is taken as 0.
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Integer;
    impl Visitor<'_> for Integer {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &"an integer of at most 64 bits"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v == 0.0 && v.is_sign_negative() {
                Ok(0)
            } else {
                Err(E::invalid_type(Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_i64(Integer)
}

fn present_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    integer(d).map(Some)
}

/// A UUID in its documented spelling: 36 characters with hyphens, any case. The other spellings
/// the uuid crate reads (simple, braced, URN) are refused, as they are in paths.
fn uuid_text<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = Uuid;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a UUID like 0190b3c4-7d2a-7f00-8000-000000000001")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
            domain::models::ids::parse_uuid(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
        }
    }
    d.deserialize_str(Text)
}

// ---- requests ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CreateUser {
    pub email: String,
    pub name: String,
}

impl CreateUser {
    pub fn parse(self) -> Result<NewUser, ValidationError> {
        Ok(NewUser { email: Email::parse(&self.email)?, name: UserName::parse(&self.name)? })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateUser {
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
}

impl UpdateUser {
    pub fn parse(self) -> Result<UserPatch, ValidationError> {
        Ok(UserPatch {
            email: self.email.as_deref().map(Email::parse).transpose()?,
            name: self.name.as_deref().map(UserName::parse).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CreateProduct {
    pub name: String,
    pub description: String,
    pub category: String,
    #[serde(deserialize_with = "integer")]
    pub price_cents: i64,
}

impl CreateProduct {
    pub fn parse(self) -> Result<NewProduct, ValidationError> {
        Ok(NewProduct {
            name: ProductName::parse(&self.name)?,
            description: Description::parse(&self.description)?,
            category: Category::parse(&self.category)?,
            price: Cents::price(self.price_cents, "price_cents")?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateProduct {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "present_integer")]
    pub price_cents: Option<i64>,
}

impl UpdateProduct {
    pub fn parse(self) -> Result<ProductPatch, ValidationError> {
        Ok(ProductPatch {
            name: self.name.as_deref().map(ProductName::parse).transpose()?,
            description: self.description.as_deref().map(Description::parse).transpose()?,
            category: self.category.as_deref().map(Category::parse).transpose()?,
            price: self.price_cents.map(|p| Cents::price(p, "price_cents")).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct AddCartItem {
    #[serde(deserialize_with = "uuid_text")]
    pub product_id: Uuid,
    #[serde(deserialize_with = "integer")]
    pub quantity: i64,
}

impl AddCartItem {
    pub fn parse(self) -> Result<(ProductId, Quantity), ValidationError> {
        Ok((ProductId::from_uuid(self.product_id), Quantity::parse(self.quantity, "quantity")?))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct SetCartItem {
    #[serde(deserialize_with = "integer")]
    pub quantity: i64,
}

impl SetCartItem {
    pub fn parse(self) -> Result<Quantity, ValidationError> {
        Quantity::parse(self.quantity, "quantity")
    }
}

/// A checkout takes no fields; `{}` or an empty body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct Checkout {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct UpdateOrder {
    pub status: String,
}

impl UpdateOrder {
    pub fn parse(self) -> Result<OrderStatus, ValidationError> {
        OrderStatus::parse(&self.status)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ValidationError> {
        page(self.limit.as_deref(), self.after.as_deref())
    }
}

/// `limit` arrives as text; a non-number gets the same message as an out-of-range number.
fn page(limit: Option<&str>, after: Option<&str>) -> Result<PageRequest, ValidationError> {
    let limit = limit
        .map(|l| {
            l.parse::<i64>().map_err(|_| {
                ValidationError::new("limit", format!("must be an integer between 1 and {}", PageRequest::MAX_LIMIT))
            })
        })
        .transpose()?;
    PageRequest::parse(limit, after)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductsQuery {
    pub category: Option<String>,
    pub limit: Option<String>,
    pub after: Option<String>,
}

impl ProductsQuery {
    pub fn parse(&self) -> Result<(Option<Category>, PageRequest), ValidationError> {
        let category = self.category.as_deref().map(Category::parse).transpose()?;
        Ok((category, page(self.limit.as_deref(), self.after.as_deref())?))
    }
}

// ---- responses ----

#[derive(Debug, Serialize)]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.as_str().to_string(),
            name: u.name.into_string(),
            created_at: u.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SignedUp {
    pub user: UserBody,
    pub token: String,
}

#[derive(Debug, Serialize)]
pub struct ProductBody {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductBody {
    fn from(p: Product) -> Self {
        Self {
            id: p.id.as_uuid(),
            name: p.name.into_string(),
            description: p.description.into_string(),
            category: p.category.into_string(),
            price_cents: p.price.get(),
            created_at: p.created_at.to_string(),
            updated_at: p.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CartItemBody {
    pub product_id: Uuid,
    pub quantity: u32,
}

#[derive(Debug, Serialize)]
pub struct CartBody {
    pub user_id: Uuid,
    pub items: Vec<CartItemBody>,
}

impl From<Cart> for CartBody {
    fn from(c: Cart) -> Self {
        Self {
            user_id: c.user_id.as_uuid(),
            items: c
                .items()
                .iter()
                .map(|i| CartItemBody { product_id: i.product_id.as_uuid(), quantity: i.quantity.get() })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OrderLineBody {
    pub product_id: Uuid,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: u32,
    pub line_total_cents: i64,
}

#[derive(Debug, Serialize)]
pub struct OrderBody {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: &'static str,
    pub lines: Vec<OrderLineBody>,
    pub total_cents: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Order> for OrderBody {
    fn from(o: Order) -> Self {
        let total_cents = o.total().get();
        Self {
            id: o.id.as_uuid(),
            user_id: o.user_id.as_uuid(),
            status: o.status.as_str(),
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLineBody {
                    product_id: l.product_id.as_uuid(),
                    line_total_cents: l.total().get(),
                    name: l.name.into_string(),
                    unit_price_cents: l.unit_price.get(),
                    quantity: l.quantity.get(),
                })
                .collect(),
            total_cents,
            created_at: o.created_at.to_string(),
            updated_at: o.updated_at.to_string(),
        }
    }
}

/// One page of a listing; `next` is the `after` of the following page, `null` on the last.
#[derive(Debug, Serialize)]
pub struct PageBody<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

impl<T> PageBody<T> {
    pub fn from_page<D>(page: Page<D>) -> Self
    where
        T: From<D>,
    {
        Self { items: page.items.into_iter().map(T::from).collect(), next: page.next }
    }
}
