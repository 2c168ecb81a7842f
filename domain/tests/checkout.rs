mod common;
use common::*;
use domain::models::*;
use domain::ports::{CartRepository, Clock, OrderRepository, Placed, StoreResult, SystemClock};
use domain::{Checkout, DomainError, Shop};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn checkout_snapshots_prices_and_empties_the_cart() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let hammer = product(&shop, "Hammer", 1250).await;
    let saw = product(&shop, "Saw", 999).await;
    shop.add_to_cart(&bearer(&t), ann.id, hammer.id, qty(2)).await.unwrap();
    shop.add_to_cart(&bearer(&t), ann.id, saw.id, qty(1)).await.unwrap();

    let order = match shop.checkout(&bearer(&t), ann.id, key("k1")).await.unwrap() {
        Checkout::Created(o) => o,
        other => panic!("expected a new order, got {other:?}"),
    };
    assert_eq!(order.total().get(), 2 * 1250 + 999);
    assert_eq!(order.status, OrderStatus::Created);
    assert!(shop.cart(&bearer(&t), ann.id).await.unwrap().is_empty());

    // A later price change does not touch the order.
    let patch = ProductPatch { price: Some(Cents::price(1, "price_cents").unwrap()), ..Default::default() };
    shop.update_product(&admin(), hammer.id, patch).await.unwrap();
    let again = shop.order(&bearer(&t), ann.id, order.id).await.unwrap();
    assert_eq!(again.total().get(), 2 * 1250 + 999);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_order_only() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    let first = shop.checkout(&bearer(&t), ann.id, key("same")).await.unwrap();
    // The cart is filled again: a replay must still not make a second order of it.
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(5)).await.unwrap();
    let replay = shop.checkout(&bearer(&t), ann.id, key("same")).await.unwrap();
    assert!(matches!(replay, Checkout::Replayed(_)));
    assert_eq!(replay.order(), first.order());
    assert_eq!(shop.orders(&bearer(&t), ann.id, PageRequest::first(10)).await.unwrap().items.len(), 1);
    assert_eq!(
        shop.cart(&bearer(&t), ann.id).await.unwrap().items()[0].quantity.get(),
        5,
        "a replay leaves the cart alone"
    );
}

#[tokio::test]
async fn an_empty_cart_cannot_be_checked_out() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    match shop.checkout(&bearer(&t), ann.id, key("k")).await {
        Err(DomainError::Conflict { code, .. }) => assert_eq!(code, "cart_empty"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_product_blocks_checkout_until_removed() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Gone", 100).await;
    let q = product(&shop, "Stays", 200).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    shop.add_to_cart(&bearer(&t), ann.id, q.id, qty(1)).await.unwrap();
    shop.delete_product(&admin(), p.id).await.unwrap();
    assert!(matches!(
        shop.checkout(&bearer(&t), ann.id, key("k")).await,
        Err(DomainError::Conflict { code: "product_unavailable", .. })
    ));
    shop.remove_from_cart(&bearer(&t), ann.id, p.id).await.unwrap();
    let order = shop.checkout(&bearer(&t), ann.id, key("k")).await.unwrap();
    assert_eq!(order.order().total().get(), 200);
}

#[tokio::test]
async fn cart_quantities_are_bounded_and_unknown_products_named() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Nail", 1).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(998)).await.unwrap();
    match shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(2)).await {
        Err(DomainError::Invalid(e)) => assert_eq!(e.field, "quantity"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        shop.cart(&bearer(&t), ann.id).await.unwrap().items()[0].quantity.get(),
        998,
        "a refused add changes nothing"
    );
    let set = shop.set_cart_quantity(&bearer(&t), ann.id, p.id, qty(3)).await.unwrap();
    assert_eq!(set.items()[0].quantity.get(), 3);
    let unknown = ProductId::from_uuid(uuid::Uuid::now_v7());
    match shop.add_to_cart(&bearer(&t), ann.id, unknown, qty(1)).await {
        Err(DomainError::Invalid(e)) => assert_eq!(e.field, "product_id"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(shop.remove_from_cart(&bearer(&t), ann.id, unknown).await, Err(DomainError::NotFound { .. })));
}

#[tokio::test]
async fn a_cart_holds_at_most_max_lines_products() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    for i in 0..Cart::MAX_LINES {
        let p = product(&shop, &format!("P{i}"), 1).await;
        shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    }
    let extra = product(&shop, "One too many", 1).await;
    match shop.add_to_cart(&bearer(&t), ann.id, extra.id, qty(1)).await {
        Err(DomainError::Invalid(e)) => assert_eq!(e.field, "product_id"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn status_moves_forward_only_and_shipping_is_for_the_admin() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Box", 10).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    let id = shop.checkout(&bearer(&t), ann.id, key("k")).await.unwrap().order().id;
    let user = bearer(&t);
    assert!(matches!(
        shop.change_order_status(&user, ann.id, id, OrderStatus::Shipped).await,
        Err(DomainError::Forbidden)
    ));
    assert_eq!(shop.change_order_status(&user, ann.id, id, OrderStatus::Paid).await.unwrap().status, OrderStatus::Paid);
    assert_eq!(
        shop.change_order_status(&user, ann.id, id, OrderStatus::Paid).await.unwrap().status,
        OrderStatus::Paid,
        "repeating is a no-op"
    );
    assert_eq!(
        shop.change_order_status(&admin(), ann.id, id, OrderStatus::Shipped).await.unwrap().status,
        OrderStatus::Shipped
    );
    assert!(matches!(
        shop.change_order_status(&user, ann.id, id, OrderStatus::Cancelled).await,
        Err(DomainError::Conflict { code: "invalid_transition", .. })
    ));
}

#[tokio::test]
async fn orders_of_one_user_are_invisible_to_another() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let (bob, bt) = sign_up(&shop, "bob@example.com").await;
    let p = product(&shop, "Box", 10).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    let id = shop.checkout(&bearer(&t), ann.id, key("k")).await.unwrap().order().id;
    assert!(matches!(shop.order(&bearer(&bt), ann.id, id).await, Err(DomainError::Forbidden)));
    assert!(matches!(shop.order(&bearer(&bt), bob.id, id).await, Err(DomainError::NotFound { .. })));
}

#[tokio::test]
async fn pages_follow_the_next_cursor_without_gaps_or_repeats() {
    let shop = shop();
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(product(&shop, &format!("P{i}"), 1).await.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = shop.products(None, page).await.unwrap();
        seen.extend(got.items.iter().map(|p| p.id));
        match got.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    made.sort();
    assert_eq!(seen, made);
}

/// The memory store's orders, except that the first look-up by key misses while another checkout
/// with that key completes meanwhile (its order written, then the cart cleared): the interleaving
/// of two concurrent checkouts with one key that CI once hit (201 and a 409 `cart_empty`).
struct OvertakenOnce {
    inner: Arc<dyn OrderRepository>,
    carts: Arc<dyn CartRepository>,
    other: Mutex<Option<Order>>,
}

#[async_trait::async_trait]
impl OrderRepository for OvertakenOnce {
    async fn insert(&self, order: &Order) -> StoreResult<Placed> {
        self.inner.insert(order).await
    }
    async fn get(&self, id: OrderId) -> StoreResult<Option<Order>> {
        self.inner.get(id).await
    }
    async fn find_by_key(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<Option<Order>> {
        let found = self.inner.find_by_key(user, key).await?;
        let other = self.other.lock().unwrap().take();
        if let Some(other) = other {
            assert_eq!(self.inner.insert(&other).await?, Placed::Created);
            self.carts.clear(user).await?;
        }
        Ok(found)
    }
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> StoreResult<Vec<Order>> {
        self.inner.list_for_user(user, page).await
    }
    async fn set_status(&self, id: OrderId, from: OrderStatus, to: OrderStatus, at: Timestamp) -> StoreResult<bool> {
        self.inner.set_status(id, from, to, at).await
    }
}

#[tokio::test]
async fn a_checkout_overtaken_by_one_with_its_key_replays_that_order() {
    let store = adapter_memory::MemoryStore::new();
    let mut stores = store.stores();
    let carts = stores.carts.clone();
    let overtaken = Arc::new(OvertakenOnce { inner: stores.orders.clone(), carts, other: Mutex::new(None) });
    stores.orders = overtaken.clone();
    let shop = Shop::new(stores, Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(2)).await.unwrap();
    let now = SystemClock.now();
    let first = Order {
        id: OrderId::from_uuid(uuid::Uuid::now_v7()),
        user_id: ann.id,
        idempotency_key: key("twice"),
        status: OrderStatus::Created,
        lines: vec![OrderLine { product_id: p.id, name: p.name.clone(), unit_price: p.price, quantity: qty(2) }],
        created_at: now,
        updated_at: now,
    };
    *overtaken.other.lock().unwrap() = Some(first.clone());

    match shop.checkout(&bearer(&t), ann.id, key("twice")).await {
        Ok(Checkout::Replayed(order)) => assert_eq!(order, first),
        other => panic!("the other checkout's order, replayed: {other:?}"),
    }
    assert_eq!(shop.orders(&bearer(&t), ann.id, PageRequest::first(10)).await.unwrap().items.len(), 1);
}
