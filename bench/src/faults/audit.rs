//! The data checks after a fault's load: every order the clients saw acknowledged exists exactly
//! once on every backend (read directly, not through pgpool), and every cart the clients know
//! is what the cart store holds, and every product created or repriced with an acknowledgement
//! is in the catalogue at its price (read back through nginx).

use super::timeline::{late_effect, show, AckedOrder, ProductWrite};
use crate::load::plan::Action;
use anyhow::{Context, Result};
use domain::ports::CartRepository;
use endpoints::HostPort;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderAudit {
    /// Distinct orders acknowledged (a replay acknowledges the same order again).
    pub acked: usize,
    /// Acknowledged orders missing on some backend, or stored under another user or key there.
    pub lost: Vec<String>,
    /// Idempotency keys with more than one order (on a backend, or in the answers).
    pub duplicated: Vec<String>,
}

/// (user, key) -> order ids, as one backend holds them.
type Stored = HashMap<(Uuid, String), Vec<Uuid>>;

fn read_orders(host: &str, port: u16, users: &BTreeSet<Uuid>) -> Result<Stored> {
    let list: Vec<String> = users.iter().map(|u| format!("'{u}'")).collect();
    let sql = format!("SELECT id, user_id, idempotency_key FROM orders WHERE user_id IN ({})", list.join(", "));
    let rows = infra::psql::query(host, port, infra::SHOP_DB, &sql)?;
    let mut stored = Stored::new();
    for line in rows.lines() {
        let mut f = line.splitn(3, '|');
        let (Some(id), Some(user), Some(key)) = (f.next(), f.next(), f.next()) else { continue };
        let (id, user) = (id.parse::<Uuid>()?, user.parse::<Uuid>()?);
        stored.entry((user, key.to_string())).or_default().push(id);
    }
    Ok(stored)
}

/// Compares the acknowledged orders with what each backend holds.
pub fn orders(backends: &[HostPort], acked: &[AckedOrder]) -> Result<OrderAudit> {
    let mut told: BTreeMap<(Uuid, String), BTreeSet<Uuid>> = BTreeMap::new();
    for o in acked {
        told.entry((o.user, o.key.clone())).or_default().insert(o.order);
    }
    let mut audit = OrderAudit { acked: told.values().map(BTreeSet::len).sum(), ..OrderAudit::default() };
    for ((user, key), ids) in &told {
        if ids.len() > 1 {
            audit.duplicated.push(format!("user {user} key {key}: acknowledged as {ids:?}"));
        }
    }
    if told.is_empty() {
        return Ok(audit);
    }
    let users: BTreeSet<Uuid> = told.keys().map(|(u, _)| *u).collect();
    let mut lost = BTreeSet::new();
    for (b, HostPort { host, port }) in backends.iter().enumerate() {
        let stored = read_orders(host, *port, &users).with_context(|| format!("reading orders on postgres {b}"))?;
        for ((user, key), ids) in &told {
            let found = stored.get(&(*user, key.clone())).map(Vec::as_slice).unwrap_or(&[]);
            for id in ids {
                if !found.contains(id) && lost.insert(*id) {
                    audit.lost.push(format!(
                        "order {id} (user {user}, key {key}) is not on postgres {b} ({host}:{port}); it has {found:?}"
                    ));
                }
            }
            if found.len() > 1 {
                audit.duplicated.push(format!("postgres {b}: user {user} key {key} has orders {found:?}"));
            }
        }
    }
    Ok(audit)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CartAudit {
    pub checked: usize,
    /// Carts that differ from their last acknowledged state.
    pub lost: Vec<String>,
    /// Carts that differ only by changes the client saw fail, applied after all.
    pub late: usize,
}

/// Reads every cart the clients know from the stage's cart store and compares; a difference
/// that the shopper's failed changes of unknown outcome explain is counted apart (`late`).
pub async fn carts(
    store: &dyn CartRepository,
    known: &BTreeMap<Uuid, Vec<(Uuid, u32)>>,
    unsettled: &BTreeMap<Uuid, Vec<Action>>,
) -> Result<CartAudit> {
    let mut audit = CartAudit::default();
    for (user, expected) in known {
        let cart = store
            .get(domain::models::UserId::from_uuid(*user))
            .await
            .with_context(|| format!("reading the cart of {user}"))?;
        let found: Vec<(Uuid, u32)> = cart.items().iter().map(|i| (i.product_id.as_uuid(), i.quantity.get())).collect();
        let found: BTreeMap<Uuid, u32> = found.into_iter().collect();
        let expected: BTreeMap<Uuid, u32> = expected.iter().copied().collect();
        if found != expected {
            let pending = unsettled.get(user).map(Vec::as_slice).unwrap_or(&[]);
            if late_effect(&expected, pending, None, &found).is_some() {
                audit.late += 1;
            } else {
                audit.lost.push(format!(
                    "cart of {user} is {}, its last acknowledged state {}",
                    show(&found),
                    show(&expected)
                ));
            }
        }
        audit.checked += 1;
    }
    Ok(audit)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogueAudit {
    /// Products with at least one acknowledged write (create or reprice) during the load.
    pub checked: usize,
    /// Acknowledged writes not found: the product absent, or at a price no acknowledged write
    /// that may have been the last one gave it.
    pub lost: Vec<String>,
    /// Prices explained only by a reprice the client saw fail, applied after all.
    pub late: usize,
    /// Products that could not be read back (no answer or a 5xx on every attempt): neither kept
    /// nor lost, and reported.
    pub unread: Vec<String>,
}

/// What the catalogue holds for one product, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Price(i64),
    Absent,
}

/// What one product's read-back says about its writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductVerdict {
    /// The price of the last acknowledged write, or of an acknowledged one that overlapped it
    /// (either may have been applied last).
    Kept,
    /// A price only a failed reprice of unknown outcome gave it.
    Late,
    Lost(String),
    /// No acknowledged write: nothing the client was told to compare with.
    Unchecked,
}

/// Compares a product's price as read back with its writes (in the order they ended).
pub fn product_verdict(writes: &[ProductWrite], found: Found) -> ProductVerdict {
    let Some(last) = writes.iter().filter(|w| w.acked).max_by(|a, b| a.end.total_cmp(&b.end)) else {
        return ProductVerdict::Unchecked;
    };
    // An acknowledged write still running when the last one began may have been applied after it.
    let may_be_last: BTreeSet<i64> =
        writes.iter().filter(|w| w.acked && w.end > last.start).map(|w| w.price_cents).collect();
    let unsettled: BTreeSet<i64> = writes.iter().filter(|w| !w.acked).map(|w| w.price_cents).collect();
    match found {
        Found::Price(p) if may_be_last.contains(&p) => ProductVerdict::Kept,
        Found::Price(p) if unsettled.contains(&p) => ProductVerdict::Late,
        Found::Price(p) => ProductVerdict::Lost(format!(
            "its price is {p} cents, the last acknowledged write made it {} cents",
            may_be_last.iter().map(i64::to_string).collect::<Vec<_>>().join(" or ")
        )),
        Found::Absent => ProductVerdict::Lost(format!(
            "it is not in the catalogue (404), after {} acknowledged write(s)",
            writes.iter().filter(|w| w.acked).count()
        )),
    }
}

#[derive(serde::Deserialize)]
struct Product {
    price_cents: i64,
}

/// One product through nginx (each URL in turn, a few attempts: a read that fails is not a loss).
async fn read_product(client: &reqwest::Client, urls: &[String], id: uuid::Uuid) -> Result<Found> {
    let mut last = String::new();
    for attempt in 0..6 {
        let url = format!("{}/products/{id}", urls[attempt % urls.len()].trim_end_matches('/'));
        match client.get(&url).send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(Found::Absent),
            Ok(r) if r.status().is_success() => {
                let p: Product = r.json().await.with_context(|| format!("GET {url}"))?;
                return Ok(Found::Price(p.price_cents));
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("GET /products/{id}: {last}")
}

/// Reads every product the load created or repriced back through nginx (the service's own
/// read: QUORUM in the Cassandra stage) and compares it with what the clients were told.
pub async fn catalogue(urls: &[String], products: &BTreeMap<uuid::Uuid, Vec<ProductWrite>>) -> Result<CatalogueAudit> {
    let client = crate::load::api::client()?;
    let mut audit = CatalogueAudit::default();
    for (id, writes) in products {
        if !writes.iter().any(|w| w.acked) {
            continue;
        }
        let found = match read_product(&client, urls, *id).await {
            Ok(found) => found,
            Err(e) => {
                audit.unread.push(format!("catalogue check: {e:#}"));
                continue;
            }
        };
        match product_verdict(writes, found) {
            ProductVerdict::Kept | ProductVerdict::Unchecked => {}
            ProductVerdict::Late => audit.late += 1,
            ProductVerdict::Lost(why) => audit.lost.push(format!("product {id}: {why}")),
        }
        audit.checked += 1;
    }
    Ok(audit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(price_cents: i64, start: f64, end: f64, acked: bool) -> ProductWrite {
        ProductWrite { price_cents, start, end, acked }
    }

    #[test]
    fn a_product_keeps_its_last_acknowledged_price_or_the_write_is_lost() {
        use ProductVerdict::*;
        // Created at 100, repriced to 200: 200 it must be.
        let created_repriced = [w(100, 1.0, 1.1, true), w(200, 2.0, 2.1, true)];
        assert_eq!(product_verdict(&created_repriced, Found::Price(200)), Kept);
        let lost = product_verdict(&created_repriced, Found::Price(100));
        assert_eq!(lost, Lost("its price is 100 cents, the last acknowledged write made it 200 cents".into()));
        assert!(matches!(product_verdict(&created_repriced, Found::Absent), Lost(why) if why.contains("404")));
        // Two acknowledged reprices that overlapped: either may have been applied last.
        let overlapping = [w(100, 1.0, 1.1, true), w(300, 2.0, 2.5, true), w(200, 2.2, 2.6, true)];
        assert_eq!(product_verdict(&overlapping, Found::Price(300)), Kept);
        assert_eq!(product_verdict(&overlapping, Found::Price(200)), Kept);
        assert!(matches!(product_verdict(&overlapping, Found::Price(100)), Lost(_)));
        // A reprice that failed without an answer may have been applied after all: apart.
        let failed_after = [w(100, 1.0, 1.1, true), w(400, 2.0, 7.0, false)];
        assert_eq!(product_verdict(&failed_after, Found::Price(400)), Late);
        assert_eq!(product_verdict(&failed_after, Found::Price(100)), Kept);
        assert!(matches!(product_verdict(&failed_after, Found::Price(999)), Lost(_)));
        // A seeded product repriced only by failed writes: nothing to compare with.
        assert_eq!(product_verdict(&[w(400, 2.0, 7.0, false)], Found::Price(1)), Unchecked);
    }
}
