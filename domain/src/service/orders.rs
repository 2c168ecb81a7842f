use super::{new_uuid, Credentials, Shop};
use crate::error::DomainError;
use crate::models::*;
use crate::ports::Placed;

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

impl Shop {
    /// Turns the cart into an order with the prices of this moment, then empties the cart.
    ///
    /// Idempotent per (user, key): a repeated key returns the first order and writes nothing, so a
    /// client or proxy may retry freely. The order is written before the cart is cleared; if the
    /// process dies in between, the retry finds the order by its key and the cart still holds the
    /// items (nothing is lost or ordered twice); the user can clear it.
    pub async fn checkout(
        &self,
        creds: &Credentials,
        user: UserId,
        key: IdempotencyKey,
    ) -> Result<Checkout, DomainError> {
        self.require_user(creds, user).await?;
        if let Some(order) = self.stores.orders.find_by_key(user, &key).await? {
            return Ok(Checkout::Replayed(order));
        }
        let cart = self.stores.carts.get(user).await?;
        if cart.is_empty() {
            // A concurrent checkout with this key may have emptied the cart since the look-up
            // above; it wrote its order before clearing the cart, so the order is visible now.
            if let Some(order) = self.stores.orders.find_by_key(user, &key).await? {
                return Ok(Checkout::Replayed(order));
            }
            return Err(DomainError::Conflict { code: "cart_empty", message: "the cart is empty".into(), field: None });
        }
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
        match self.stores.orders.insert(&order).await? {
            Placed::Existing(first) => Ok(Checkout::Replayed(first)),
            Placed::Created => {
                self.stores.carts.clear(user).await?;
                Ok(Checkout::Created(order))
            }
        }
    }

    pub async fn order(&self, creds: &Credentials, user: UserId, id: OrderId) -> Result<Order, DomainError> {
        self.require_user(creds, user).await?;
        match self.stores.orders.get(id).await? {
            Some(o) if o.user_id == user => Ok(o),
            _ => Err(DomainError::NotFound { entity: "order" }),
        }
    }

    pub async fn orders(
        &self,
        creds: &Credentials,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, DomainError> {
        self.require_user(creds, user).await?;
        let items = self.stores.orders.list_for_user(user, page).await?;
        Ok(Page::from_items(items, page.limit, |o| o.id.as_uuid()))
    }

    /// Moves an order along created -> paid -> shipped, or to cancelled. The user may pay and
    /// cancel; shipping is the admin's. Asking for the status the order already has is a no-op,
    /// so a retried request succeeds.
    pub async fn change_order_status(
        &self,
        creds: &Credentials,
        user: UserId,
        id: OrderId,
        to: OrderStatus,
    ) -> Result<Order, DomainError> {
        let mut order = self.order(creds, user, id).await?;
        if to == OrderStatus::Shipped {
            self.require_admin(creds)?;
        }
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
        if !self.stores.orders.set_status(id, order.status, to, at).await? {
            // Someone else moved it first: report against the status it has now.
            let now = self.order(creds, user, id).await?;
            if now.status == to {
                return Ok(now);
            }
            return Err(DomainError::Conflict {
                code: "invalid_transition",
                message: format!("the order became {} meanwhile", now.status.as_str()),
                field: Some("status".into()),
            });
        }
        order.status = to;
        order.updated_at = at;
        Ok(order)
    }
}
