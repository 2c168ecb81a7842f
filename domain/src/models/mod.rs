//! Entities and value types. Each type's `parse` is the only way in from client input, so
//! everything past the HTTP boundary is already valid.

pub mod cart;
pub mod ids;
pub mod money;
pub mod order;
pub mod paging;
pub mod product;
pub(crate) mod text;
pub mod time;
pub mod user;

pub use cart::{Cart, CartItem, CartLimit, LineChange, Quantity};
pub use ids::{OrderId, ProductId, UserId};
pub use money::Cents;
pub use order::{IdempotencyKey, Order, OrderLine, OrderStatus};
pub use paging::{Page, PageRequest};
pub use product::{Category, Description, NewProduct, Product, ProductName, ProductPatch};
pub use time::Timestamp;
pub use user::{ApiToken, Email, NewUser, TokenHash, User, UserName, UserPatch};
