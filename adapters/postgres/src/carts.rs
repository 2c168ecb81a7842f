//! `CartRepository` on PostgreSQL.
//!
//! Adding or setting a line runs in one transaction that first locks the user's row
//! (`SELECT ... FOR NO KEY UPDATE`; pgpool-II sends locking SELECTs to every backend). Under that
//! lock the cart is read, the limits are checked, and the line is written, so concurrent changes
//! to one cart queue up instead of losing updates or slipping past `Cart::MAX_LINES`, and a
//! refused change writes nothing. Remove, clear, claim and settle take the same lock first: a
//! claim reads the lines without locking them, and pgpool commits the main node last, so only the
//! user's lock makes it wait until a change has committed on every node (`remove_once`). Every statement touches a row count that is the same on every
//! backend (pgpool-II rolls back a statement whose counts differ).
//!
//! Adding is the one change that doubles when repeated, yet the retry loop must be free to repeat
//! it when a COMMIT got no answer (pgpool lost, session dropped). So each `add` call has an id
//! (UUID v7, made here) that its transaction records in `cart_adds`; an attempt after the first
//! looks for the id under the user's lock and, if an earlier attempt committed, returns the cart
//! without adding again. Ids older than `ADD_IDS_KEPT` are removed by the user's later adds.

use crate::cluster::{with_conn, Cluster, Conn, DbError};
use crate::conn::{prepare_cached, rollback, BEGIN, COMMIT};
use crate::rows;
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{CartRepository, Claim, StoreResult};
use domain::StoreError;
use futures_util::future::{join3, join4, join5};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_postgres::SimpleQueryMessage;
use uuid::Uuid;

pub const GET: &str = "SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY product_id";
/// `GET` in the simple protocol for the plain read (see `catalogue::get_simple`); the key is a
/// typed UUID formatted here.
fn get_simple(user: Uuid) -> String {
    format!("SELECT product_id, quantity FROM cart_items WHERE user_id = '{}' ORDER BY product_id", user.hyphenated())
}
pub const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";
/// An add keeps the line's stamp (`since`), a set replaces it: see `settle`.
pub const UPSERT_ADD: &str = "INSERT INTO cart_items (user_id, product_id, quantity, since) VALUES ($1, $2, $3, $4) \
                          ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity";
const UPSERT_SET: &str = "INSERT INTO cart_items (user_id, product_id, quantity, since) VALUES ($1, $2, $3, $4) \
                          ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity, \
                          since = EXCLUDED.since";
const REMOVE: &str = "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2";
const CLEAR: &str = "DELETE FROM cart_items WHERE user_id = $1";
const ADD_SEEN: &str = "SELECT 1 FROM cart_adds WHERE user_id = $1 AND add_id = $2";
/// Records this add and forgets the user's adds older than the bound `$3`, in one round trip.
/// ON CONFLICT DO NOTHING: the id is never there on the main node (just checked under the lock),
/// but a node that diverged may have it (see `orders::find_on_main`); its row count then differs
/// and pgpool-II detaches it, where a unique violation on it alone would only end the session.
pub const ADD_RECORD: &str = "WITH expired AS (DELETE FROM cart_adds WHERE user_id = $1 AND add_id < $3) \
                          INSERT INTO cart_adds (user_id, add_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// Claims the cart's lines for a checkout unless a claim exists; returns what it now holds.
/// `HAVING`: an empty cart is not claimed (no row).
const CLAIM: &str = "INSERT INTO cart_claims (user_id, idempotency_key, since, products, quantities, stamps) \
                     SELECT $1, $2, $3, array_agg(product_id ORDER BY product_id), \
                     array_agg(quantity ORDER BY product_id), array_agg(since ORDER BY product_id) \
                     FROM cart_items WHERE user_id = $1 HAVING count(*) > 0 \
                     ON CONFLICT (user_id) DO NOTHING RETURNING products, quantities";
const CLAIM_HELD: &str = "SELECT idempotency_key, since, products, quantities FROM cart_claims WHERE user_id = $1";
/// Ends the claim of key `$2` and subtracts what it holds from the lines still stamped as when
/// claimed: lines left with nothing go, the others keep what was added since. One statement
/// (its data-modifying parts see one snapshot and touch disjoint rows); under the user's lock.
const SETTLE: &str = "WITH c AS (DELETE FROM cart_claims WHERE user_id = $1 AND idempotency_key = $2 \
                        RETURNING products, quantities, stamps), \
                      h AS (SELECT h.* FROM c, unnest(c.products, c.quantities, c.stamps) AS h(product_id, quantity, stamp)), \
                      gone AS (DELETE FROM cart_items ci USING h WHERE ci.user_id = $1 \
                        AND ci.product_id = h.product_id AND ci.since IS NOT DISTINCT FROM h.stamp \
                        AND ci.quantity <= h.quantity RETURNING 1) \
                      UPDATE cart_items ci SET quantity = ci.quantity - h.quantity FROM h WHERE ci.user_id = $1 \
                        AND ci.product_id = h.product_id AND ci.since IS NOT DISTINCT FROM h.stamp \
                        AND ci.quantity > h.quantity";
const RELEASE: &str = "DELETE FROM cart_claims WHERE user_id = $1 AND idempotency_key = $2";

/// How long the id of an add is kept: far longer than any retry of it lasts (seconds).
const ADD_IDS_KEPT: Duration = Duration::from_secs(15 * 60);

pub(crate) struct PgCarts(pub(crate) Arc<Cluster>);

/// A change to a line; an add carries the id that tells a retry whether an earlier attempt
/// already added.
#[derive(Clone, Copy)]
enum Change {
    Add(Quantity, Uuid),
    Set(Quantity),
}

impl Change {
    fn line(self) -> LineChange {
        match self {
            Change::Add(q, _) => LineChange::Add(q),
            Change::Set(q) => LineChange::Set(q),
        }
    }
}

/// The smallest UUID v7 of the moment `ADD_IDS_KEPT` ago: add ids below it are expired.
fn expiry_bound(now: SystemTime) -> Uuid {
    let then = now.checked_sub(ADD_IDS_KEPT).unwrap_or(SystemTime::UNIX_EPOCH);
    let ms = then.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// The cart after the change, or the limit it would break (the domain's rules).
fn apply(user: UserId, items: &[CartItem], product: ProductId, change: Change) -> Result<Cart, StoreError> {
    let current = items.iter().find(|i| i.product_id == product).map(|i| i.quantity.get());
    let next = change.line().apply(current, items.len())?;
    let mut lines: Vec<CartItem> = items.iter().filter(|i| i.product_id != product).copied().collect();
    lines.push(CartItem { product_id: product, quantity: Quantity::from_trusted(next) });
    Ok(Cart::new(user, lines))
}

impl PgCarts {
    async fn change(&self, op: Change, user: UserId, product: ProductId) -> StoreResult<Cart> {
        match op {
            Change::Add(..) => {
                with_conn!(self.0, "carts.add", |c, retries| change_once(&mut c, op, user, product, retries).await)
            }
            Change::Set(_) => {
                with_conn!(self.0, "carts.set", |c, retries| change_once(&mut c, op, user, product, retries).await)
            }
        }
    }
}

/// One attempt of `add` or `set`: lock the user's row, read, check, write, commit, in two round
/// trips (BEGIN, lock and read together; write and COMMIT together). `retries` > 0 means an
/// earlier attempt may have committed.
async fn change_once(
    c: &mut Conn,
    op: Change,
    user: UserId,
    product: ProductId,
    retries: u32,
) -> Result<Cart, DbError> {
    let (u, p) = (user.as_uuid(), product.as_uuid());
    // The add's id, or a fresh id for a set, stamps a line this change creates or replaces.
    let (upsert, stamp) = match op {
        Change::Add(_, id) => (UPSERT_ADD, id),
        Change::Set(_) => (UPSERT_SET, Uuid::now_v7()),
    };
    let (client, cache) = c.parts();
    let lock = prepare_cached(cache, &*client, LOCK_USER).await?;
    let get = prepare_cached(cache, &*client, GET).await?;
    let seen = prepare_cached(cache, &*client, ADD_SEEN).await?;
    let upsert = prepare_cached(cache, &*client, upsert).await?;
    let record = prepare_cached(cache, &*client, ADD_RECORD).await?;
    let client = &*client;
    // Under the lock an earlier attempt has either committed or left no trace. After the locking
    // read pgpool-II reads from the main node only (see `orders::find_on_main`).
    let replayed = match (op, retries > 0) {
        (Change::Add(_, id), true) => Some(id),
        _ => None,
    };
    let (begun, locked, seen, items) = join4(
        client.batch_execute(BEGIN),
        client.query_opt(&lock, &[&u]),
        async {
            match replayed {
                Some(id) => client.query_opt(&seen, &[&u, &id]).await.map(|r| r.is_some()),
                None => Ok(false),
            }
        },
        client.query(&get, &[&u]),
    )
    .await;
    let read = (|| -> Result<_, DbError> {
        begun?;
        Ok((locked?.is_some(), seen?, items?.iter().map(rows::cart_item).collect::<Vec<CartItem>>()))
    })();
    let cart = match read {
        Ok((false, ..)) => Err(StoreError::Rejected { field: "user_id".into(), message: "no such user".into() }.into()),
        Ok((true, true, items)) => Ok(Err(Cart::new(user, items))),
        // A refusal writes nothing.
        Ok((true, false, items)) => apply(user, &items, product, op).map(Ok).map_err(DbError::from),
        Err(e) => Err(e),
    };
    let cart = match cart {
        Ok(Ok(cart)) => cart,
        Ok(Err(replayed)) => {
            rollback(client).await;
            return Ok(replayed);
        }
        Err(e) => {
            rollback(client).await;
            return Err(e);
        }
    };
    let qty = cart.items().iter().find(|i| i.product_id == product).map_or(0, |i| i.quantity.get());
    let bound = expiry_bound(SystemTime::now());
    // COMMIT after a failed statement rolls back: the first error is the answer.
    let (written, recorded, committed) = join3(
        client.execute(&upsert, &[&u, &p, &(qty as i32), &stamp]),
        async {
            match op {
                Change::Add(_, id) => client.execute(&record, &[&u, &id, &bound]).await.map(|_| ()),
                Change::Set(_) => Ok(()),
            }
        },
        client.batch_execute(COMMIT),
    )
    .await;
    written?;
    recorded?;
    committed?;
    Ok(cart)
}

/// One attempt of `claim`, in one round trip: under the user's lock, claim the lines, and read
/// the claim there now is (this one, or another key's).
async fn claim_once(c: &mut Conn, user: UserId, key: &IdempotencyKey, now: Timestamp) -> Result<Claim, DbError> {
    let u = user.as_uuid();
    let (client, cache) = c.parts();
    let lock = prepare_cached(cache, &*client, LOCK_USER).await?;
    let claim = prepare_cached(cache, &*client, CLAIM).await?;
    let held = prepare_cached(cache, &*client, CLAIM_HELD).await?;
    let client = &*client;
    let (begun, locked, claimed, held, committed) = join5(
        client.batch_execute(BEGIN),
        client.query_opt(&lock, &[&u]),
        client.query_opt(&claim, &[&u, &key.as_str(), &now.as_datetime()]),
        client.query_opt(&held, &[&u]),
        client.batch_execute(COMMIT),
    )
    .await;
    begun?;
    let (locked, claimed, held) = (locked?, claimed?, held?);
    committed?;
    if locked.is_none() {
        return Err(StoreError::Rejected { field: "user_id".into(), message: "no such user".into() }.into());
    }
    Ok(match (claimed, held) {
        (Some(row), _) => {
            Claim::Held { cart: held_cart(user, row.get("products"), row.get("quantities"))?, fresh: true }
        }
        (None, None) => Claim::Held { cart: Cart::empty(user), fresh: true },
        (None, Some(row)) if row.get::<_, &str>("idempotency_key") == key.as_str() => {
            Claim::Held { cart: held_cart(user, row.get("products"), row.get("quantities"))?, fresh: false }
        }
        (None, Some(row)) => Claim::Busy {
            key: IdempotencyKey::from_trusted(row.get("idempotency_key")),
            since: rows::ts(row.get("since")),
        },
    })
}

/// One attempt of `remove`, in one round trip: under the user's lock, delete the line and read
/// the cart. The lock is why: a claim reads the lines under it, and pgpool-II commits the main
/// node last, so a remove without it could be committed on backend 1 and not yet on the main node
/// when a claim ran, and the claim then held other lines on each backend (or a row on one and none
/// on the other: "kind mismatch", the session ended). Under the lock the claim waits until the
/// remove has committed everywhere. A user that is gone has no lines: `None`, as in every store.
async fn remove_once(c: &mut Conn, user: UserId, product: ProductId, retries: u32) -> Result<Option<Cart>, DbError> {
    let (u, p) = (user.as_uuid(), product.as_uuid());
    let (client, cache) = c.parts();
    let lock = prepare_cached(cache, &*client, LOCK_USER).await?;
    let remove = prepare_cached(cache, &*client, REMOVE).await?;
    let get = prepare_cached(cache, &*client, GET).await?;
    let client = &*client;
    let (begun, locked, removed, items, committed) = join5(
        client.batch_execute(BEGIN),
        client.query_opt(&lock, &[&u]),
        client.execute(&remove, &[&u, &p]),
        client.query(&get, &[&u]),
        client.batch_execute(COMMIT),
    )
    .await;
    begun?;
    let (locked, removed, items) = (locked?, removed?, items?);
    committed?;
    // After a failed attempt that may have committed, no line means this call removed it.
    if locked.is_none() || (removed == 0 && retries == 0) {
        return Ok(None);
    }
    Ok(Some(Cart::new(user, items.iter().map(rows::cart_item).collect())))
}

/// One attempt of `clear`, in one round trip, under the user's lock for the reason `remove_once`
/// gives. Repeating it is a no-op.
async fn clear_once(c: &mut Conn, user: UserId) -> Result<(), DbError> {
    let u = user.as_uuid();
    let (client, cache) = c.parts();
    let lock = prepare_cached(cache, &*client, LOCK_USER).await?;
    let clear = prepare_cached(cache, &*client, CLEAR).await?;
    let client = &*client;
    let (begun, locked, cleared, committed) = join4(
        client.batch_execute(BEGIN),
        client.query_opt(&lock, &[&u]),
        client.execute(&clear, &[&u]),
        client.batch_execute(COMMIT),
    )
    .await;
    begun?;
    locked?;
    cleared?;
    committed?;
    Ok(())
}

fn held_cart(user: UserId, products: Vec<Uuid>, quantities: Vec<i32>) -> Result<Cart, DbError> {
    if products.len() != quantities.len() {
        return Err(StoreError::Unavailable("a cart claim's arrays differ in length".into()).into());
    }
    let items = products
        .into_iter()
        .zip(quantities)
        .map(|(p, q)| CartItem { product_id: ProductId::from_uuid(p), quantity: Quantity::from_trusted(q as u32) })
        .collect();
    Ok(Cart::new(user, items))
}

/// One attempt of `settle`, in one round trip, under the user's lock so that no add or set
/// computes a quantity from a line this changes meanwhile (a user that is gone has no claim left:
/// nothing to settle). Repeating it after a lost COMMIT finds no claim: a no-op.
async fn settle_once(c: &mut Conn, user: UserId, key: &IdempotencyKey) -> Result<(), DbError> {
    let u = user.as_uuid();
    let (client, cache) = c.parts();
    let lock = prepare_cached(cache, &*client, LOCK_USER).await?;
    let settle = prepare_cached(cache, &*client, SETTLE).await?;
    let client = &*client;
    let (begun, locked, settled, committed) = join4(
        client.batch_execute(BEGIN),
        client.query_opt(&lock, &[&u]),
        client.execute(&settle, &[&u, &key.as_str()]),
        client.batch_execute(COMMIT),
    )
    .await;
    begun?;
    locked?;
    settled?;
    committed?;
    Ok(())
}

#[async_trait]
impl CartRepository for PgCarts {
    async fn get(&self, user: UserId) -> StoreResult<Cart> {
        with_conn!(self.0, "carts.get", |c, _retries| {
            let messages = c.client.simple_query(&get_simple(user.as_uuid())).await?;
            let items = messages
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some(rows::cart_item_text(r)),
                    _ => None,
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Cart::new(user, items))
        })
    }

    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change(Change::Add(quantity, Uuid::now_v7()), user, product).await
    }

    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.change(Change::Set(quantity), user, product).await
    }

    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>> {
        with_conn!(self.0, "carts.remove", |c, retries| remove_once(&mut c, user, product, retries).await)
    }

    async fn clear(&self, user: UserId) -> StoreResult<()> {
        with_conn!(self.0, "carts.clear", |c, _retries| clear_once(&mut c, user).await)
    }

    async fn claim(&self, user: UserId, key: &IdempotencyKey, now: Timestamp) -> StoreResult<Claim> {
        with_conn!(self.0, "carts.claim", |c, _retries| claim_once(&mut c, user, key, now).await)
    }

    async fn settle(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        with_conn!(self.0, "carts.settle", |c, _retries| settle_once(&mut c, user, key).await)
    }

    async fn release(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        with_conn!(self.0, "carts.release", |c, _retries| {
            let st = c.prepare(RELEASE).await?;
            c.client.execute(&st, &[&user.as_uuid(), &key.as_str()]).await?;
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
        let id = Uuid::now_v7();
        let cart = apply(user, &[item(p, 998)], p, Change::Add(q(1), id)).unwrap();
        assert_eq!(cart.items(), &[item(p, 999)]);
        let e = apply(user, &[item(p, 998)], p, Change::Add(q(2), id)).unwrap_err();
        assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "quantity"), "{e:?}");
        let full: Vec<CartItem> = (0..Cart::MAX_LINES).map(|_| item(ProductId::from_uuid(Uuid::now_v7()), 1)).collect();
        let e = apply(user, &full, p, Change::Set(q(1))).unwrap_err();
        assert!(matches!(e, StoreError::Rejected { ref field, .. } if field == "product_id"), "{e:?}");
        // A line already in a full cart may still change.
        let existing = full[7].product_id;
        assert_eq!(apply(user, &full, existing, Change::Set(q(5))).unwrap().items().len(), Cart::MAX_LINES);
    }

    #[test]
    fn add_ids_expire_after_the_kept_time_only() {
        let now = SystemTime::now();
        let bound = expiry_bound(now);
        assert_eq!(bound.get_version_num(), 7);
        let (secs, _) = bound.get_timestamp().unwrap().to_unix();
        let kept = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() - secs;
        assert!((ADD_IDS_KEPT.as_secs() - 1..=ADD_IDS_KEPT.as_secs()).contains(&kept), "{kept}");
        // A fresh id is above the bound (kept), one from before the bound below it (expired).
        assert!(Uuid::now_v7() > bound);
        let old = uuid::Timestamp::from_unix(uuid::NoContext, secs - 1, 0);
        assert!(Uuid::new_v7(old) < bound);
    }
}
