//! `CartRepository` on Redis: one hash per user (key = prefix + user id; field = product id,
//! value = quantity), changed only by one Lua script (`change.lua`) on the master.
//!
//! The script reads the cart, checks `Quantity::MAX` and `Cart::MAX_LINES`, and writes, all in
//! one step (Redis runs a script alone), so concurrent changes to one cart queue up instead of
//! losing updates or slipping past a limit, and a refused change writes nothing.
//!
//! Retrying is safe: every call has an id (UUID v7) that the script stores in the same hash
//! ("op:<id>" -> time) together with the change. A retry after an error (connection lost, master
//! failed over, WAIT not satisfied) runs the script again with the same id; if an earlier attempt
//! was applied, the script applies nothing and returns the cart. Ids are kept `KEEP_IDS`, far
//! longer than any retry lasts, and removed by the user's later changes.
//!
//! Durability and read-your-writes (docs/redis.md): the script and a `WAIT` for every replica
//! attached to the master go out in one pipeline on one connection (checked by `CLIENT ID` before
//! and after). A change is acknowledged only when at least `min_replica_acks` replicas (or all
//! the set has, if fewer) confirmed it; replicas that did not confirm in time leave the read set.

use crate::router::{Node, Role, Router, View};
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{CartRepository, Claim, StoreResult};
use domain::{StoreError, StoreFailure};
use fred::prelude::*;
use fred::types::CustomCommand;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use uuid::Uuid;

const LUA: &str = include_str!("change.lua");

/// How long the id of a change is kept for its retries: far beyond `failover_wait`.
const KEEP_IDS: Duration = Duration::from_secs(120);
/// Pause between attempts of an operation: short, the first retry usually finds a new master.
const BACKOFF_STEP: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

fn sha() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| fred::types::scripts::Script::from_lua(LUA).sha1().to_string())
}

pub(crate) struct RedisCarts(pub(crate) Arc<Router>);

/// One change to a cart.
#[derive(Clone, Debug)]
enum Change {
    Add(ProductId, Quantity),
    Set(ProductId, Quantity),
    Remove(ProductId),
    Clear,
    /// A checkout's claim, settle or release, by its idempotency key.
    Claim(IdempotencyKey),
    Settle(IdempotencyKey),
    Release(IdempotencyKey),
}

impl Change {
    fn name(&self) -> &'static str {
        match self {
            Change::Add(..) => "carts.add",
            Change::Set(..) => "carts.set",
            Change::Remove(_) => "carts.remove",
            Change::Clear => "carts.clear",
            Change::Claim(_) => "carts.claim",
            Change::Settle(_) => "carts.settle",
            Change::Release(_) => "carts.release",
        }
    }

    /// ARGV of `change.lua`.
    fn args(&self, id: &str, now_ms: u128) -> Vec<String> {
        let (kind, product, qty, checkout) = match self {
            Change::Add(p, q) => ("add", p.to_string(), q.get(), ""),
            Change::Set(p, q) => ("set", p.to_string(), q.get(), ""),
            Change::Remove(p) => ("remove", p.to_string(), 0, ""),
            Change::Clear => ("clear", String::new(), 0, ""),
            Change::Claim(k) => ("claim", String::new(), 0, k.as_str()),
            Change::Settle(k) => ("settle", String::new(), 0, k.as_str()),
            Change::Release(k) => ("release", String::new(), 0, k.as_str()),
        };
        vec![
            kind.to_string(),
            id.to_string(),
            now_ms.to_string(),
            KEEP_IDS.as_millis().to_string(),
            product,
            qty.to_string(),
            Quantity::MAX.to_string(),
            Cart::MAX_LINES.to_string(),
            checkout.to_string(),
        ]
    }
}

/// What a change did.
enum Outcome {
    Cart(Cart),
    /// Remove of a line that is not in the cart.
    Absent,
    /// What a claim found: the lines held for the key, or the key that holds the cart.
    Claim(Claim),
}

/// Why one attempt failed.
enum Failure {
    /// The caller's answer (a limit, or a failure that a retry cannot fix).
    Final(StoreError),
    /// Worth another attempt, maybe on another master.
    Retry(String),
}

/// Errors that say the node or the connection is gone or not the master any more, not that the
/// command was wrong.
fn retryable(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Routing | ErrorKind::Backpressure => true,
        // READONLY (the node became a replica), LOADING, MASTERDOWN, BUSY, TRYAGAIN ...
        ErrorKind::Unknown => !e.details().starts_with("ERR"),
        _ => false,
    }
}

fn key(router: &Router, user: UserId) -> String {
    format!("{}{}", router.settings.key_prefix, user)
}

/// The cart from a hash's fields (change ids and a checkout's claim are skipped).
fn decode(user: UserId, fields: HashMap<String, String>) -> Result<Cart, String> {
    let mut items = Vec::with_capacity(fields.len());
    for (field, value) in fields {
        if field.starts_with("op:") || field == "claim" {
            continue;
        }
        // "quantity:stamp" (the stamp is the script's business), or a bare quantity.
        let qty = value.split_once(':').map_or(value.as_str(), |(q, _)| q);
        items.push(item(&field, qty)?);
    }
    Ok(Cart::new(user, items))
}

fn item(product: &str, qty: &str) -> Result<CartItem, String> {
    let product_id = ProductId::from_uuid(Uuid::parse_str(product).map_err(|_| format!("bad cart field {product:?}"))?);
    let q: u32 = qty.parse().map_err(|_| format!("bad quantity {qty:?}"))?;
    if !(1..=Quantity::MAX).contains(&q) {
        return Err(format!("quantity {q} out of range"));
    }
    Ok(CartItem { product_id, quantity: Quantity::from_trusted(q) })
}

/// The script's reply: status, then product/quantity pairs.
fn outcome(user: UserId, reply: Value) -> Result<Outcome, Failure> {
    let bad = |why: String| Failure::Final(StoreError::Unavailable(format!("unexpected script reply: {why}").into()));
    let Value::Array(items) = reply else { return Err(bad(format!("{reply:?}"))) };
    let texts: Vec<String> = items.iter().filter_map(Value::as_string).collect();
    if texts.len() != items.len() || texts.is_empty() {
        return Err(bad(format!("{items:?}")));
    }
    let cart = |texts: &[String]| {
        let mut lines = Vec::with_capacity(texts.len() / 2);
        for pair in texts.chunks(2) {
            let [p, q] = pair else { return Err(bad("odd reply".into())) };
            lines.push(item(p, q).map_err(bad)?);
        }
        Ok(Cart::new(user, lines))
    };
    match texts[0].as_str() {
        "done" => Ok(Outcome::Cart(cart(&texts[1..])?)),
        "held" => Ok(Outcome::Claim(Claim::Held { cart: cart(&texts[1..])?, fresh: true })),
        "holding" => Ok(Outcome::Claim(Claim::Held { cart: cart(&texts[1..])?, fresh: false })),
        "busy" => {
            let [_, key, since] = &texts[..] else { return Err(bad(format!("{texts:?}"))) };
            let since = since.parse().ok().and_then(Timestamp::from_millis).ok_or_else(|| bad(since.clone()))?;
            Ok(Outcome::Claim(Claim::Busy { key: IdempotencyKey::from_trusted(key.clone()), since }))
        }
        "absent" => Ok(Outcome::Absent),
        "too_many" => Err(Failure::Final(CartLimit::Quantity.into())),
        "too_many_lines" => Err(Failure::Final(CartLimit::Lines.into())),
        other => Err(bad(other.to_string())),
    }
}

/// The confirmed offset that proves a replica holds a write `acks` replicas confirmed (see
/// `RedisCarts::drop_laggards`).
fn confirmed_bar(role: &Role, acks: usize) -> i64 {
    let mut offsets: Vec<i64> = role.replicas.values().copied().collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    match acks {
        0 => role.offset,
        n => offsets.get(n - 1).copied().unwrap_or(role.offset),
    }
}

fn backoff(attempt: u32) -> Duration {
    (BACKOFF_STEP * attempt).min(BACKOFF_MAX)
}

fn custom(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, None, false)
}

impl RedisCarts {
    /// Runs `change` on the master until it is applied and confirmed, refused, or the
    /// failover window is over.
    async fn change(&self, user: UserId, change: Change) -> StoreResult<Outcome> {
        let router = &self.0;
        let started = Instant::now();
        let deadline = started + router.settings.failover_wait();
        let id = Uuid::now_v7().simple().to_string();
        let mut attempt = 0u32;
        let result = loop {
            let view = router.view();
            let why = match view.master.clone().filter(|m| m.connected()) {
                Some(master) => match self.attempt(&master, &view, user, &change, &id).await {
                    Ok(out) => {
                        metrics::counter!("shop_redis_writes_total", "node" => master.addr.clone()).increment(1);
                        break Ok(out);
                    }
                    Err(Failure::Final(e)) => break Err(e),
                    Err(Failure::Retry(why)) => format!("{}: {why}", master.addr),
                },
                None => "no reachable master".to_string(),
            };
            if Instant::now() >= deadline {
                tracing::error!(op = change.name(), error = %why, "redis write failed for the whole failover window");
                break Err(StoreError::Unavailable(format!("redis: {why}").into()));
            }
            attempt += 1;
            tracing::debug!(op = change.name(), attempt, error = %why, "redis write retried");
            metrics::counter!("shop_redis_write_retries_total").increment(1);
            router.refresh_soon();
            tokio::time::sleep(backoff(attempt)).await;
        };
        metrics::histogram!("shop_store_seconds", "store" => "redis", "op" => change.name())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// One attempt: `CLIENT ID`, `EVALSHA`, `WAIT`, `CLIENT ID` in one pipeline.
    async fn attempt(
        &self,
        master: &Node,
        view: &View,
        user: UserId,
        change: &Change,
        id: &str,
    ) -> Result<Outcome, Failure> {
        let router = &self.0;
        let settings = &router.settings;
        let required = settings.min_replica_acks.min(view.known);
        let waited_for = view.attached.max(required);
        let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut args = vec![sha().to_string(), "1".to_string(), key(router, user)];
        args.extend(change.args(id, now_ms));
        let client = master.client();
        let mut loaded = false;
        let (reply, acks) = loop {
            let p = client.pipeline();
            let queued = async {
                let _: () = p.custom(custom("CLIENT"), vec!["ID"]).await?;
                let _: () = p.custom(custom("EVALSHA"), args.clone()).await?;
                if waited_for > 0 {
                    let _: () = p.wait(waited_for as i64, settings.replica_wait().as_millis() as i64).await?;
                }
                let _: () = p.custom(custom("CLIENT"), vec!["ID"]).await?;
                Ok::<_, Error>(())
            };
            queued.await.map_err(|e| Failure::Retry(e.to_string()))?;
            let mut results = p.try_all::<Value>().await.into_iter();
            let mut next = || results.next().unwrap_or_else(|| Err(Error::new(ErrorKind::Unknown, "short reply")));
            let id_before = next();
            let reply = next();
            let acks = if waited_for > 0 { Some(next()) } else { None };
            let id_after = next();
            match &reply {
                Err(e) if e.details().starts_with("NOSCRIPT") && !loaded => {
                    // A node that restarted or was promoted has no scripts cached.
                    client.script_load::<String, _>(LUA).await.map_err(|e| Failure::Retry(e.to_string()))?;
                    loaded = true;
                    continue;
                }
                Err(e) if retryable(e) => return Err(Failure::Retry(e.to_string())),
                Err(e) => {
                    tracing::error!(node = %master.addr, error = %e, "redis cart script failed");
                    return Err(Failure::Final(StoreError::Unavailable(StoreFailure::caused_by(
                        format!("redis: {e}"),
                        e.clone(),
                    ))));
                }
                Ok(_) => {}
            }
            let same = match (&id_before, &id_after) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                // WAIT only counts for the connection that wrote; a reconnect in between would
                // count nothing. Retry: the script sees the id and only writes it again.
                return Err(Failure::Retry("the connection changed within the pipeline".into()));
            }
            let acks = match acks {
                None => 0,
                Some(Ok(v)) => v.as_i64().unwrap_or(0).max(0) as usize,
                Some(Err(e)) => return Err(Failure::Retry(e.to_string())),
            };
            break (reply.unwrap_or(Value::Null), acks);
        };
        let out = outcome(user, reply)?;
        if matches!(out, Outcome::Absent | Outcome::Claim(Claim::Busy { .. })) {
            return Ok(out);
        }
        if acks < view.attached {
            self.drop_laggards(master, view, acks).await;
        }
        if acks < required {
            return Err(Failure::Retry(format!("confirmed by {acks} of the {required} replicas required")));
        }
        Ok(out)
    }

    /// After a `WAIT` that fell short: the replicas that may lack this write leave the read set
    /// until they catch up (`Router::tick` puts them back).
    ///
    /// `WAIT` answered `acks`: that many replicas had confirmed the connection's write offset W.
    /// Confirmed offsets only grow, so in a later `ROLE` the `acks` highest offsets are all >= W,
    /// and so is every offset >= the lowest of them: those replicas hold the write. The others
    /// may not, and must first reach that offset. (With no ack, the master's offset is the bar.)
    async fn drop_laggards(&self, master: &Node, view: &View, acks: usize) {
        let router = &self.0;
        let Some(role) = router.role(master).await else {
            // Cannot tell which: none is trusted until the next tick proves them.
            let all: Vec<String> = view.readable.iter().map(|n| n.addr.clone()).collect();
            router.replicas_lagging(&all, i64::MAX);
            return;
        };
        let bar = confirmed_bar(&role, acks);
        let behind: Vec<String> = view
            .readable
            .iter()
            .filter(|n| role.replicas.get(&n.addr).is_none_or(|&confirmed| confirmed < bar))
            .map(|n| n.addr.clone())
            .collect();
        router.replicas_lagging(&behind, bar);
    }

    /// HGETALL on one node.
    async fn read(&self, node: &Node, user: UserId) -> Result<Cart, Error> {
        let fields: HashMap<String, String> = node.client().hgetall(key(&self.0, user)).await?;
        decode(user, fields).map_err(|e| Error::new(ErrorKind::Parse, e))
    }

    async fn get_cart(&self, user: UserId) -> StoreResult<Cart> {
        let router = &self.0;
        let view = router.view();
        if let Some(node) = router.next_replica(&view) {
            // A node whose connections are down would hold the command until the timeout.
            let r = if node.connected() {
                self.read(&node, user).await
            } else {
                Err(Error::new(ErrorKind::IO, "not connected"))
            };
            match r {
                Ok(cart) => {
                    metrics::counter!("shop_redis_reads_total", "node" => node.addr.clone(), "role" => "replica")
                        .increment(1);
                    return Ok(cart);
                }
                Err(e) if e.kind() == &ErrorKind::Parse => {
                    return Err(StoreError::Unavailable(StoreFailure::caused_by(e.to_string(), e)))
                }
                Err(e) => router.replica_failed(&node, &e.to_string()),
            }
        }
        // No replica to read from: the master, riding out a failover like a write does.
        let deadline = Instant::now() + router.settings.failover_wait();
        let mut attempt = 0u32;
        loop {
            let view = router.view();
            let why = match view.master.clone().filter(|m| m.connected()) {
                Some(master) => match self.read(&master, user).await {
                    Ok(cart) => {
                        metrics::counter!("shop_redis_reads_total", "node" => master.addr.clone(), "role" => "master")
                            .increment(1);
                        return Ok(cart);
                    }
                    Err(e) if !retryable(&e) => {
                        return Err(StoreError::Unavailable(StoreFailure::caused_by(format!("redis: {e}"), e)))
                    }
                    Err(e) => format!("{}: {e}", master.addr),
                },
                None => "no reachable master".to_string(),
            };
            // A replica may have become usable meanwhile (e.g. the master is gone for good).
            if let Some(node) = router.next_replica(&view).filter(|n| n.connected()) {
                if let Ok(cart) = self.read(&node, user).await {
                    metrics::counter!("shop_redis_reads_total", "node" => node.addr.clone(), "role" => "replica")
                        .increment(1);
                    return Ok(cart);
                }
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!("redis: {why}").into()));
            }
            attempt += 1;
            router.refresh_soon();
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

#[async_trait]
impl CartRepository for RedisCarts {
    async fn get(&self, user: UserId) -> StoreResult<Cart> {
        let started = Instant::now();
        let r = self.get_cart(user).await;
        metrics::histogram!("shop_store_seconds", "store" => "redis", "op" => "carts.get")
            .record(started.elapsed().as_secs_f64());
        r
    }

    async fn add(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        match self.change(user, Change::Add(product, quantity)).await? {
            Outcome::Cart(c) => Ok(c),
            _ => Err(StoreError::Unavailable("redis: add answered without a cart".into())),
        }
    }

    async fn set(&self, user: UserId, product: ProductId, quantity: Quantity) -> StoreResult<Cart> {
        match self.change(user, Change::Set(product, quantity)).await? {
            Outcome::Cart(c) => Ok(c),
            _ => Err(StoreError::Unavailable("redis: set answered without a cart".into())),
        }
    }

    async fn remove(&self, user: UserId, product: ProductId) -> StoreResult<Option<Cart>> {
        match self.change(user, Change::Remove(product)).await? {
            Outcome::Cart(c) => Ok(Some(c)),
            Outcome::Absent => Ok(None),
            Outcome::Claim(_) => Err(StoreError::Unavailable("redis: remove answered with a claim".into())),
        }
    }

    async fn clear(&self, user: UserId) -> StoreResult<()> {
        self.change(user, Change::Clear).await.map(|_| ())
    }

    /// The claim's `since` is the moment of the script's attempt (this process's clock, as `now`).
    async fn claim(&self, user: UserId, key: &IdempotencyKey, _now: Timestamp) -> StoreResult<Claim> {
        match self.change(user, Change::Claim(key.clone())).await? {
            Outcome::Claim(claim) => Ok(claim),
            _ => Err(StoreError::Unavailable("redis: claim answered without a claim".into())),
        }
    }

    async fn settle(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        self.change(user, Change::Settle(key.clone())).await.map(|_| ())
    }

    async fn release(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<()> {
        self.change(user, Change::Release(key.clone())).await.map(|_| ())
    }
}

/// Runs one change with a given id, as a retry of an earlier attempt would: for the tests of
/// the script's deduplication.
#[cfg(test)]
pub(crate) async fn change_with_id(
    carts: &RedisCarts,
    user: UserId,
    product: ProductId,
    qty: Quantity,
    id: &str,
) -> StoreResult<Cart> {
    let view = carts.0.view();
    let master = view.master.clone().expect("a master");
    match carts.attempt(&master, &view, user, &Change::Add(product, qty), id).await {
        Ok(Outcome::Cart(c)) => Ok(c),
        Ok(Outcome::Absent | Outcome::Claim(_)) => unreachable!(),
        Err(Failure::Final(e)) => Err(e),
        Err(Failure::Retry(why)) => Err(StoreError::Unavailable(why.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_decode_into_sorted_carts_without_change_ids() {
        let user = UserId::from_uuid(Uuid::now_v7());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let fields: HashMap<String, String> = [
            (b.to_string(), "2".to_string()),
            (a.to_string(), "999".to_string()),
            (format!("op:{}", Uuid::now_v7().simple()), "1764000000000".to_string()),
        ]
        .into_iter()
        .collect();
        let cart = decode(user, fields).unwrap();
        let lines: Vec<(Uuid, u32)> = cart.items().iter().map(|i| (i.product_id.as_uuid(), i.quantity.get())).collect();
        assert_eq!(lines, vec![(a, 999), (b, 2)]);
        for bad in ["0", "1000", "x", "-1"] {
            let fields = [(a.to_string(), bad.to_string())].into_iter().collect();
            assert!(decode(user, fields).is_err(), "{bad}");
        }
        assert!(decode(user, [("nope".to_string(), "1".to_string())].into_iter().collect()).is_err());
    }

    #[test]
    fn script_replies_become_carts_or_refusals() {
        let user = UserId::from_uuid(Uuid::now_v7());
        let p = Uuid::now_v7().to_string();
        let s = |x: &str| Value::String(x.into());
        let Ok(Outcome::Cart(c)) = outcome(user, Value::Array(vec![s("done"), s(&p), s("3")])) else { panic!() };
        assert_eq!(c.items()[0].quantity.get(), 3);
        assert!(matches!(outcome(user, Value::Array(vec![s("absent")])), Ok(Outcome::Absent)));
        for (status, field) in [("too_many", "quantity"), ("too_many_lines", "product_id")] {
            let Err(Failure::Final(StoreError::Rejected { field: f, .. })) =
                outcome(user, Value::Array(vec![s(status)]))
            else {
                panic!("{status}")
            };
            assert_eq!(f, field);
        }
        assert!(matches!(outcome(user, Value::Null), Err(Failure::Final(StoreError::Unavailable(_)))));
    }

    /// The script's side of a retry: the same change id twice adds once (a real Redis set,
    /// SHOPBENCH_TEST_REDIS, as for the crate's integration tests; test-support's settings are
    /// of another build of this crate, so they are made here from its parts).
    #[tokio::test]
    async fn a_retried_change_is_applied_once() {
        let mut settings = crate::RedisSettings::new(test_support::servers_from_env(test_support::REDIS));
        settings.key_prefix = format!("{}:", test_support::unique_name("test:"));
        let store = crate::RedisStore::connect(&settings).await.unwrap();
        let carts = RedisCarts(store.router.clone());
        let (user, p) = (UserId::from_uuid(Uuid::now_v7()), ProductId::from_uuid(Uuid::now_v7()));
        let q = Quantity::from_trusted;
        let id = Uuid::now_v7().simple().to_string();
        assert_eq!(change_with_id(&carts, user, p, q(2), &id).await.unwrap().items()[0].quantity.get(), 2);
        let again = change_with_id(&carts, user, p, q(2), &id).await.unwrap();
        assert_eq!(again.items()[0].quantity.get(), 2, "the retry found its id and added nothing");
        let other = Uuid::now_v7().simple().to_string();
        assert_eq!(change_with_id(&carts, user, p, q(3), &other).await.unwrap().items()[0].quantity.get(), 5);
        assert_eq!(carts.get(user).await.unwrap().items()[0].quantity.get(), 5);
    }

    #[test]
    fn the_replicas_that_confirmed_a_write_are_told_by_their_offsets() {
        let role = Role {
            offset: 1000,
            replicas: [("a".to_string(), 990), ("b".to_string(), 700), ("c".to_string(), 995)].into_iter().collect(),
        };
        assert_eq!(confirmed_bar(&role, 2), 990, "the two highest confirmed it: a and c");
        assert_eq!(confirmed_bar(&role, 1), 995);
        assert_eq!(confirmed_bar(&role, 3), 700);
        assert_eq!(confirmed_bar(&role, 0), 1000, "no ack: the master's offset");
        assert_eq!(confirmed_bar(&role, 4), 1000, "more acks than replicas listed: the master's offset");
    }

    #[test]
    fn only_connection_and_role_errors_are_retried() {
        assert!(retryable(&Error::new(ErrorKind::IO, "reset")));
        assert!(retryable(&Error::new(ErrorKind::Timeout, "slow")));
        assert!(retryable(&Error::new(ErrorKind::Unknown, "READONLY You can't write against a read only replica.")));
        assert!(!retryable(&Error::new(ErrorKind::Unknown, "ERR Error running script")));
        assert!(!retryable(&Error::new(ErrorKind::InvalidArgument, "WRONGTYPE")));
    }
}
