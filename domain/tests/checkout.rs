mod common;
use common::*;
use domain::models::*;
use domain::ports::{CartRepository, Claim, Clock, OrderRepository, Placed, StoreResult, SystemClock};
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
    /// A line the user adds right after the other checkout completed.
    then_add: Option<(ProductId, Quantity)>,
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
            if let Some((p, q)) = self.then_add {
                self.carts.add(user, p, q).await?;
            }
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
    let overtaken =
        Arc::new(OvertakenOnce { inner: stores.orders.clone(), carts, other: Mutex::new(None), then_add: None });
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

/// The memory store's carts, except that one change runs inside the next claim, right after it
/// (between the checkout's read of the cart and its settle): the interleaving of a cart change
/// racing a checkout, replayed deterministically.
struct ChangeAfterClaim {
    inner: Arc<dyn CartRepository>,
    change: Mutex<Option<CartChange>>,
}

/// A change to run on the carts, as a closure over the store.
type CartChange =
    Box<dyn FnOnce(Arc<dyn CartRepository>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

#[async_trait::async_trait]
impl CartRepository for ChangeAfterClaim {
    async fn get(&self, user: UserId) -> StoreResult<Cart> {
        self.inner.get(user).await
    }
    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.inner.add(user, product, quantity).await
    }
    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        self.inner.set(user, product, quantity).await
    }
    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>> {
        self.inner.remove(user, product).await
    }
    async fn clear(&self, user: UserId) -> StoreResult<()> {
        self.inner.clear(user).await
    }
    async fn claim(&self, user: UserId, key: &IdempotencyKey, now: Timestamp) -> StoreResult<Claim> {
        let claim = self.inner.claim(user, key, now).await?;
        let change = self.change.lock().unwrap().take();
        if let Some(change) = change {
            change(self.inner.clone()).await;
        }
        Ok(claim)
    }
    async fn settle(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        self.inner.settle(user, key).await
    }
    async fn release(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        self.inner.release(user, key).await
    }
}

/// A shop whose next checkout has `change` run on the cart between its claim and its settle.
fn shop_with_change_after_claim() -> (Shop, Arc<ChangeAfterClaim>) {
    let store = adapter_memory::MemoryStore::new();
    let mut stores = store.stores();
    let racing = Arc::new(ChangeAfterClaim { inner: stores.carts.clone(), change: Mutex::new(None) });
    stores.carts = racing.clone();
    (Shop::new(stores, Arc::new(SystemClock), &ApiToken::from_client(ADMIN)), racing)
}

async fn lines_of(shop: &Shop, t: &ApiToken, user: UserId) -> Vec<(ProductId, u32)> {
    shop.cart(&bearer(t), user).await.unwrap().items().iter().map(|i| (i.product_id, i.quantity.get())).collect()
}

#[tokio::test]
async fn a_cart_change_racing_a_checkout_is_kept_and_not_ordered() {
    // add vs checkout, set vs checkout, remove + add vs checkout: what the order holds and what
    // the cart keeps, for each interleaving.
    type Race = fn(UserId, ProductId) -> CartChange;
    let cases: [(&str, Race, u32); 3] = [
        ("add 2", |u, p| Box::new(move |c| Box::pin(async move { c.add(u, p, qty(2)).await.map(drop).unwrap() })), 2),
        ("set 5", |u, p| Box::new(move |c| Box::pin(async move { c.set(u, p, qty(5)).await.map(drop).unwrap() })), 5),
        (
            "remove, add 3",
            |u, p| {
                Box::new(move |c| {
                    Box::pin(async move {
                        c.remove(u, p).await.unwrap().unwrap();
                        c.add(u, p, qty(3)).await.map(drop).unwrap();
                    })
                })
            },
            3,
        ),
    ];
    for (name, race, kept) in cases {
        let (shop, racing) = shop_with_change_after_claim();
        let (ann, t) = sign_up(&shop, "ann@example.com").await;
        let p = product(&shop, "Glue", 300).await;
        shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
        *racing.change.lock().unwrap() = Some(race(ann.id, p.id));
        let order = shop.checkout(&bearer(&t), ann.id, key("k")).await.unwrap();
        assert_eq!(order.order().lines[0].quantity.get(), 1, "{name}: the order holds what the cart held");
        assert_eq!(lines_of(&shop, &t, ann.id).await, vec![(p.id, kept)], "{name}: the racing change is kept");
    }
}

#[tokio::test]
async fn concurrent_checkouts_with_other_keys_order_one_cart_once() {
    let shop = shop();
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(3)).await.unwrap();
    let creds = bearer(&t);
    let checkouts = (0..10).map(|i| shop.checkout(&creds, ann.id, key(&format!("k{i}"))));
    let mut created = 0;
    for r in futures_util::future::join_all(checkouts).await {
        match r {
            Ok(Checkout::Created(_)) => created += 1,
            Err(DomainError::Conflict { code: "cart_empty" | "checkout_in_progress", .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(shop.orders(&bearer(&t), ann.id, PageRequest::first(20)).await.unwrap().items.len(), 1);
    assert!(shop.cart(&bearer(&t), ann.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_left_by_a_checkout_that_placed_its_order_is_settled_by_the_next_checkout() {
    let store = adapter_memory::MemoryStore::new();
    let stores = store.stores();
    let shop = Shop::new(stores.clone(), Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
    // A checkout that claimed and wrote its order, then died before its settle.
    let Claim::Held { cart, .. } = stores.carts.claim(ann.id, &key("dead"), SystemClock.now()).await.unwrap() else {
        panic!("held")
    };
    let now = SystemClock.now();
    let order = Order {
        id: OrderId::from_uuid(uuid::Uuid::now_v7()),
        user_id: ann.id,
        idempotency_key: key("dead"),
        status: OrderStatus::Created,
        lines: vec![OrderLine {
            product_id: p.id,
            name: p.name.clone(),
            unit_price: p.price,
            quantity: cart.items()[0].quantity,
        }],
        created_at: now,
        updated_at: now,
    };
    stores.orders.insert(&order).await.unwrap();
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(4)).await.unwrap();
    // The next checkout settles the dead one's claim and orders only what came after it.
    let next = shop.checkout(&bearer(&t), ann.id, key("next")).await.unwrap();
    assert!(matches!(next, Checkout::Created(_)));
    assert_eq!(next.order().lines[0].quantity.get(), 4);
    assert!(shop.cart(&bearer(&t), ann.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_left_by_a_checkout_that_wrote_nothing_blocks_only_until_it_expires() {
    let store = adapter_memory::MemoryStore::new();
    let stores = store.stores();
    let clock = Arc::new(FixedClock(Mutex::new(SystemClock.now())));
    let shop = Shop::new(stores.clone(), clock.clone(), &ApiToken::from_client(ADMIN));
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(2)).await.unwrap();
    stores.carts.claim(ann.id, &key("dead"), clock.now()).await.unwrap();
    match shop.checkout(&bearer(&t), ann.id, key("next")).await {
        Err(DomainError::Conflict { code: "checkout_in_progress", .. }) => {}
        other => panic!("{other:?}"),
    }
    clock.advance_ms(domain::service::CLAIM_EXPIRES_AFTER_MS + 1);
    let next = shop.checkout(&bearer(&t), ann.id, key("next")).await.unwrap();
    assert_eq!(next.order().lines[0].quantity.get(), 2, "the dead claim's lines are ordered once, now");
    assert!(shop.cart(&bearer(&t), ann.id).await.unwrap().is_empty());
}

struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    fn advance_ms(&self, ms: i64) {
        let mut t = self.0.lock().unwrap();
        *t = Timestamp::from_millis(t.millis() + ms).unwrap();
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// The memory store's orders, except that the first compare-and-set of a status loses to another
/// change made at that moment (`race`: the status the other request sets first).
struct Overtaken {
    inner: Arc<dyn OrderRepository>,
    race: Mutex<Option<OrderStatus>>,
}

#[async_trait::async_trait]
impl OrderRepository for Overtaken {
    async fn insert(&self, order: &Order) -> StoreResult<Placed> {
        self.inner.insert(order).await
    }
    async fn get(&self, id: OrderId) -> StoreResult<Option<Order>> {
        self.inner.get(id).await
    }
    async fn find_by_key(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<Option<Order>> {
        self.inner.find_by_key(user, key).await
    }
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> StoreResult<Vec<Order>> {
        self.inner.list_for_user(user, page).await
    }
    async fn set_status(&self, id: OrderId, from: OrderStatus, to: OrderStatus, at: Timestamp) -> StoreResult<bool> {
        let race = self.race.lock().unwrap().take();
        if let Some(other) = race {
            assert!(self.inner.set_status(id, from, other, at).await?);
        }
        self.inner.set_status(id, from, to, at).await
    }
}

#[tokio::test]
async fn a_status_change_racing_another_is_judged_against_the_status_it_left() {
    // (first request's status, the racing one's, the outcome of the first)
    let cases = [
        (OrderStatus::Cancelled, OrderStatus::Paid, Ok(OrderStatus::Cancelled)),
        (OrderStatus::Paid, OrderStatus::Cancelled, Err("invalid_transition")),
        (OrderStatus::Paid, OrderStatus::Paid, Ok(OrderStatus::Paid)),
    ];
    for (wanted, racing, outcome) in cases {
        let store = adapter_memory::MemoryStore::new();
        let mut stores = store.stores();
        let overtaken = Arc::new(Overtaken { inner: stores.orders.clone(), race: Mutex::new(None) });
        stores.orders = overtaken.clone();
        let shop = Shop::new(stores, Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
        let (ann, t) = sign_up(&shop, "ann@example.com").await;
        let p = product(&shop, "Box", 10).await;
        shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(1)).await.unwrap();
        let id = shop.checkout(&bearer(&t), ann.id, key("k")).await.unwrap().order().id;
        *overtaken.race.lock().unwrap() = Some(racing);
        let got = shop.change_order_status(&bearer(&t), ann.id, id, wanted).await;
        match (got, outcome) {
            (Ok(o), Ok(s)) => assert_eq!(o.status, s, "{wanted:?} racing {racing:?}"),
            (Err(DomainError::Conflict { code, .. }), Err(c)) => assert_eq!(code, c),
            (got, want) => panic!("{wanted:?} racing {racing:?}: {got:?}, wanted {want:?}"),
        }
        let stored = shop.order(&bearer(&t), ann.id, id).await.unwrap().status;
        assert_eq!(stored, outcome.unwrap_or(racing), "{wanted:?} racing {racing:?}");
    }
}

#[tokio::test]
async fn a_replay_overtaken_by_its_first_checkout_leaves_later_lines_in_the_cart() {
    // The replay looks its key up before the first checkout wrote its order, and claims the cart
    // after that checkout settled and the user added a line: that line was not ordered and stays.
    let store = adapter_memory::MemoryStore::new();
    let mut stores = store.stores();
    let shop = Shop::new(stores.clone(), Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
    let (ann, t) = sign_up(&shop, "ann@example.com").await;
    let p = product(&shop, "Glue", 300).await;
    let later = product(&shop, "Tape", 100).await;
    let overtaken = Arc::new(OvertakenOnce {
        inner: stores.orders.clone(),
        carts: stores.carts.clone(),
        other: Mutex::new(None),
        then_add: Some((later.id, qty(1))),
    });
    stores.orders = overtaken.clone();
    let shop = Shop::new(stores, Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
    shop.add_to_cart(&bearer(&t), ann.id, p.id, qty(2)).await.unwrap();
    let now = SystemClock.now();
    let first = Order {
        id: OrderId::from_uuid(uuid::Uuid::now_v7()),
        user_id: ann.id,
        idempotency_key: key("once"),
        status: OrderStatus::Created,
        lines: vec![OrderLine { product_id: p.id, name: p.name.clone(), unit_price: p.price, quantity: qty(2) }],
        created_at: now,
        updated_at: now,
    };
    *overtaken.other.lock().unwrap() = Some(first.clone());
    match shop.checkout(&bearer(&t), ann.id, key("once")).await {
        Ok(Checkout::Replayed(order)) => assert_eq!(order, first),
        other => panic!("the first checkout's order, replayed: {other:?}"),
    }
    assert_eq!(lines_of(&shop, &t, ann.id).await, vec![(later.id, 1)], "the later line stays");
    // And the cart is free: the next checkout orders it.
    let next = shop.checkout(&bearer(&t), ann.id, key("next")).await.unwrap();
    assert_eq!(next.order().lines.len(), 1);
    assert_eq!(next.order().lines[0].product_id, later.id);
}
