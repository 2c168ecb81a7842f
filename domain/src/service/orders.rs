use super::{new_uuid, Credentials, Shop};
use crate::error::DomainError;
use crate::models::*;
use crate::ports::{Claim, Placed};

/// The outcome of a checkout: a new order, or the one this idempotency key made before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    Created(Order),
    Replayed(Order),
}

impl Checkout {
    pub fn order(&self) -> &Order {
        match self {
            Checkout::Created(o) | Checkout::Replayed(o) => o,
        }
    }
}

/// A claim older than this belongs to a checkout that died between claiming the cart and placing
/// its order (every store call is bounded far below it); another checkout may then take the cart.
pub const CLAIM_EXPIRES_AFTER_MS: i64 = 30_000;

impl Shop {
    /// Turns the cart into an order with the prices of this moment, then removes from the cart
    /// exactly what was ordered.
    ///
    /// Idempotent per (user, key): a repeated key returns the first order and writes nothing new, so
    /// a client or proxy may retry freely. The cart is first claimed for the key (`CartRepository::
    /// claim`): the claim holds the lines this checkout orders, and only one key holds a cart at a
    /// time, so one cart's content is ordered once however many checkouts race. Changes made to
    /// the cart while the checkout runs are kept: `settle` removes only what the claim held. If the
    /// process dies after the order is written, whoever next touches the claim (a retry with the
    /// key, or a checkout with another key) finds the order by its key and settles the claim.
    pub async fn checkout(
        &self,
        creds: &Credentials,
        user: UserId,
        key: IdempotencyKey,
    ) -> Result<Checkout, DomainError> {
        self.require_user(creds, user).await?;
        if let Some(order) = self.replay(user, &key).await? {
            return Ok(Checkout::Replayed(order));
        }
        let (cart, fresh) = self.claim_cart(user, &key).await?;
        if fresh {
            // A checkout with this key may have written its order and settled its claim since the
            // look-up above (a claim it still held would have been re-entered, not made afresh):
            // then what this claim holds came later and is not ordered.
            if let Some(order) = self.stores.orders.find_by_key(user, &key).await? {
                self.stores.carts.release(user, &key).await?;
                return Ok(Checkout::Replayed(order));
            }
        }
        if cart.is_empty() {
            return Err(DomainError::Conflict { code: "cart_empty", message: "the cart is empty".into(), field: None });
        }
        let lines = match self.order_lines(&cart).await {
            Ok(lines) => lines,
            Err(e) => {
                // Nothing was ordered: free the cart (should this fail, the claim expires).
                let _ = self.stores.carts.release(user, &key).await;
                return Err(e);
            }
        };
        let now = self.clock.now();
        let order = Order {
            id: OrderId::from_uuid(new_uuid()),
            user_id: user,
            idempotency_key: key,
            status: OrderStatus::Created,
            lines,
            created_at: now,
            updated_at: now,
        };
        // A failed insert keeps the claim: the order may have been written, and a retry with the
        // key (or the next checkout) finds out and settles or releases accordingly.
        let placed = self.stores.orders.insert(&order).await?;
        self.stores.carts.settle(user, &order.idempotency_key).await?;
        Ok(match placed {
            Placed::Existing(first) => Checkout::Replayed(first),
            Placed::Created => Checkout::Created(order),
        })
    }

    /// The order this key made before, with its claim settled (in case the checkout that made it
    /// stopped before settling), so that a replayed answer never shows the ordered lines in the cart.
    async fn replay(&self, user: UserId, key: &IdempotencyKey) -> Result<Option<Order>, DomainError> {
        let Some(order) = self.stores.orders.find_by_key(user, key).await? else { return Ok(None) };
        self.stores.carts.settle(user, key).await?;
        Ok(Some(order))
    }

    /// The cart's lines, claimed for `key`. A claim of another key is settled when that key's order
    /// exists, dropped when it has expired, and otherwise answered with 409 `checkout_in_progress`.
    async fn claim_cart(&self, user: UserId, key: &IdempotencyKey) -> Result<(Cart, bool), DomainError> {
        // Each round ends a claim, so two rounds suffice unless checkouts keep overtaking this one.
        for _ in 0..4 {
            let now = self.clock.now();
            match self.stores.carts.claim(user, key, now).await? {
                Claim::Held { cart, fresh } => return Ok((cart, fresh)),
                Claim::Busy { key: other, since } => {
                    if self.stores.orders.find_by_key(user, &other).await?.is_some() {
                        self.stores.carts.settle(user, &other).await?;
                    } else if now.millis() - since.millis() > CLAIM_EXPIRES_AFTER_MS {
                        self.stores.carts.release(user, &other).await?;
                    } else {
                        break;
                    }
                }
            }
        }
        Err(DomainError::Conflict {
            code: "checkout_in_progress",
            message: "another checkout of this cart is in progress; try again".into(),
            field: None,
        })
    }

    /// The order lines for the cart: names and prices of this moment from the catalogue.
    async fn order_lines(&self, cart: &Cart) -> Result<Vec<OrderLine>, DomainError> {
        let ids: Vec<ProductId> = cart.items().iter().map(|i| i.product_id).collect();
        let products = self.stores.catalogue.get_many(&ids).await?;
        let mut lines = Vec::with_capacity(ids.len());
        for item in cart.items() {
            let Some(p) = products.iter().find(|p| p.id == item.product_id) else {
                return Err(DomainError::Conflict {
                    code: "product_unavailable",
                    message: format!("product {} is no longer sold; remove it from the cart", item.product_id),
                    field: Some("product_id".into()),
                });
            };
            lines.push(OrderLine {
                product_id: p.id,
                name: p.name.clone(),
                unit_price: p.price,
                quantity: item.quantity,
            });
        }
        Ok(lines)
    }

    /// One of the user's orders. The admin also reads the orders of a deleted user (orders are
    /// the shop's records and are kept); a user with neither a record nor this order is not found.
    pub async fn order(&self, creds: &Credentials, user: UserId, id: OrderId) -> Result<Order, DomainError> {
        let user_exists = self.user_or_admin(creds, user).await?;
        self.order_of(user, id, user_exists).await
    }

    /// The order if it is the user's; else not found (the order, or the user if it does not exist).
    async fn order_of(&self, user: UserId, id: OrderId, user_exists: bool) -> Result<Order, DomainError> {
        match self.stores.orders.get(id).await? {
            Some(o) if o.user_id == user => Ok(o),
            _ if user_exists => Err(DomainError::NotFound { entity: "order" }),
            _ => Err(DomainError::NotFound { entity: "user" }),
        }
    }

    pub async fn orders(
        &self,
        creds: &Credentials,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, DomainError> {
        let user_exists = self.user_or_admin(creds, user).await?;
        let items = self.stores.orders.list_for_user(user, page.with_lookahead()).await?;
        // The admin reads a deleted user's orders; an id with no user and no orders is unknown.
        if !user_exists && items.is_empty() && !self.has_orders(user, page).await? {
            return Err(DomainError::NotFound { entity: "user" });
        }
        Ok(Page::from_items(items, page, |o| o.id.as_uuid()))
    }

    /// Whether the user has any order; `page` is the request that found none (no second call
    /// when it already started at the beginning).
    async fn has_orders(&self, user: UserId, page: PageRequest) -> Result<bool, DomainError> {
        if page.after.is_none() {
            return Ok(false);
        }
        Ok(!self.stores.orders.list_for_user(user, PageRequest::first(1)).await?.is_empty())
    }

    /// Moves an order along created -> paid -> shipped, or to cancelled. The user may pay and
    /// cancel; shipping is the admin's. Asking for the status the order already has is a no-op,
    /// so a retried request succeeds. A change that races another change of the same order is
    /// judged against the status the other one left (pay, then cancel: cancelled), never refused
    /// only because the other came first.
    pub async fn change_order_status(
        &self,
        creds: &Credentials,
        user: UserId,
        id: OrderId,
        to: OrderStatus,
    ) -> Result<Order, DomainError> {
        // Only a user that exists: the admin reads a deleted user's orders but changes none.
        self.require_user(creds, user).await?;
        let mut order = self.order_of(user, id, true).await?;
        if to == OrderStatus::Shipped {
            self.require_admin(creds)?;
        }
        // Every lost compare-and-set means the status moved forward, which it can do at most twice
        // (created -> paid -> shipped or cancelled), so a third loss is a store at fault.
        for _ in 0..3 {
            if order.status == to {
                return Ok(order);
            }
            if !order.status.can_become(to) {
                return Err(DomainError::Conflict {
                    code: "invalid_transition",
                    message: format!("an order that is {} cannot become {}", order.status.as_str(), to.as_str()),
                    field: Some("status".into()),
                });
            }
            let at = self.clock.now().max(order.updated_at);
            if self.stores.orders.set_status(id, order.status, to, at).await? {
                order.status = to;
                order.updated_at = at;
                return Ok(order);
            }
            // Someone else moved it first: judge the change against the status it has now.
            order = self.order_of(user, id, true).await?;
        }
        Err(DomainError::Unavailable(format!("order {id}: its status kept changing under a compare-and-set").into()))
    }
}
