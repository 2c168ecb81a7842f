//! `CartRepository` on PostgreSQL.
//!
//! Adding or setting a line runs in one transaction that first locks the user's row
//! (`SELECT ... FOR NO KEY UPDATE`; pgpool-II sends locking SELECTs to every backend). Under that
//! lock the cart is read, the limits are checked, and the line is written, so concurrent changes
//! to one cart queue up instead of losing updates or slipping past `Cart::MAX_LINES`, and a
//! refused change writes nothing. Every statement touches a row count that is the same on every
//! backend (pgpool-II rolls back a statement whose counts differ).

use crate::cluster::{with_conn, Cluster, Conn, DbError};
use crate::conn::prepare_cached;
use crate::rows;
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{CartRepository, StoreResult};
use domain::StoreError;
use std::sync::Arc;

const GET: &str = "SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY product_id";
const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";
const UPSERT: &str = "INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($1, $2, $3) \
                      ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity";
const REMOVE: &str = "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2";
const CLEAR: &str = "DELETE FROM cart_items WHERE user_id = $1";

pub(crate) struct PgCarts(pub(crate) Arc<Cluster>);

/// How a change computes the line's new quantity from the current one.
#[derive(Clone, Copy)]
enum Change {
    Add(Quantity),
    Set(Quantity),
}

/// The cart after the change, or why the change is refused.
fn apply(user: UserId, items: &[CartItem], product: ProductId, change: Change) -> Result<Cart, StoreError> {
    let current = items.iter().find(|i| i.product_id == product).map(|i| i.quantity.get());
    if current.is_none() && items.len() >= Cart::MAX_LINES {
        return Err(StoreError::Rejected {
            field: "product_id".into(),
            message: format!("a cart holds at most {} different products", Cart::MAX_LINES),
        });
    }
    let next = match change {
        Change::Add(q) => current.unwrap_or(0) + q.get(),
        Change::Set(q) => q.get(),
    };
    if next > Quantity::MAX {
        return Err(StoreError::Rejected {
            field: "quantity".into(),
            message: format!("the cart may hold at most {} of one product", Quantity::MAX),
        });
    }
    let mut lines: Vec<CartItem> = items.iter().filter(|i| i.product_id != product).copied().collect();
    lines.push(CartItem { product_id: product, quantity: Quantity::from_trusted(next) });
    Ok(Cart::new(user, lines))
}

impl PgCarts {
    async fn change(&self, op: Change, user: UserId, product: ProductId) -> StoreResult<Cart> {
        match op {
            Change::Add(_) => {
                with_conn!(self.0, "carts.add", |c, _retries| change_once(&mut c, op, user, product).await)
            }
            Change::Set(_) => {
                with_conn!(self.0, "carts.set", |c, _retries| change_once(&mut c, op, user, product).await)
            }
        }
    }
}

/// One attempt of `add` or `set`: lock the user's row, read, check, write, commit.
async fn change_once(c: &mut Conn, op: Change, user: UserId, product: ProductId) -> Result<Cart, DbError> {
    let (u, p) = (user.as_uuid(), product.as_uuid());
    let (client, cache) = c.parts();
    let tx = client.transaction().await?;
    let lock = prepare_cached(cache, &tx, LOCK_USER).await?;
    if tx.query_opt(&lock, &[&u]).await?.is_none() {
        return Err(StoreError::Rejected { field: "user_id".into(), message: "no such user".into() }.into());
    }
    let get = prepare_cached(cache, &tx, GET).await?;
    let items: Vec<CartItem> = tx.query(&get, &[&u]).await?.iter().map(rows::cart_item).collect();
    // A refusal returns here; dropping `tx` rolls back, so nothing was written.
    let cart = apply(user, &items, product, op)?;
    let qty = cart.items().iter().find(|i| i.product_id == product).map_or(0, |i| i.quantity.get());
    let upsert = prepare_cached(cache, &tx, UPSERT).await?;
    tx.execute(&upsert, &[&u, &p, &(qty as i32)]).await?;
    match op {
        // Adding twice would double the quantity: a COMMIT whose outcome is unknown must not be
        // retried.
        Change::Add(_) => tx.commit().await.map_err(DbError::Ambiguous)?,
        // Setting the same quantity again is harmless.
        Change::Set(_) => tx.commit().await?,
    }
    Ok(cart)
}

#[async_trait]
impl CartRepository for PgCarts {
    async fn get(&self, user: UserId) -> StoreResult<Cart> {
        with_conn!(self.0, "carts.get", |c, _retries| {
            let st = c.prepare(GET).await?;
            Ok(Cart::new(user, c.client.query(&st, &[&user.as_uuid()]).await?.iter().map(rows::cart_item).collect()))
        })
    }

    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change(Change::Add(quantity), user, product).await
    }

    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change(Change::Set(quantity), user, product).await
    }

    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>> {
        with_conn!(self.0, "carts.remove", |c, _retries| {
            let st = c.prepare(REMOVE).await?;
            if c.client.execute(&st, &[&user.as_uuid(), &product.as_uuid()]).await? == 0 {
                return Ok(None);
            }
            let st = c.prepare(GET).await?;
            let items = c.client.query(&st, &[&user.as_uuid()]).await?.iter().map(rows::cart_item).collect();
            Ok(Some(Cart::new(user, items)))
        })
    }

    async fn clear(&self, user: UserId) -> StoreResult<()> {
        with_conn!(self.0, "carts.clear", |c, _retries| {
            let st = c.prepare(CLEAR).await?;
            c.client.execute(&st, &[&user.as_uuid()]).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn item(p: ProductId, q: u32) -> CartItem {
        CartItem { product_id: p, quantity: Quantity::from_trusted(q) }
    }

    #[test]
    fn limits_are_checked_before_anything_is_written() {
        let user = UserId::from_uuid(Uuid::now_v7());
        let p = ProductId::from_uuid(Uuid::now_v7());
        let q = Quantity::from_trusted;
        let cart = apply(user, &[item(p, 998)], p, Change::Add(q(1))).unwrap();
        assert_eq!(cart.items(), &[item(p, 999)]);
        let e = apply(user, &[item(p, 998)], p, Change::Add(q(2))).unwrap_err();
        assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "quantity"), "{e:?}");
        let full: Vec<CartItem> = (0..Cart::MAX_LINES).map(|_| item(ProductId::from_uuid(Uuid::now_v7()), 1)).collect();
        let e = apply(user, &full, p, Change::Set(q(1))).unwrap_err();
        assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "product_id"), "{e:?}");
        // A line already in a full cart may still change.
        let existing = full[7].product_id;
        assert_eq!(apply(user, &full, existing, Change::Set(q(5))).unwrap().items().len(), Cart::MAX_LINES);
    }
}
