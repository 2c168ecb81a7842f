//! The data checks after a fault's load: every order the clients saw acknowledged exists exactly
//! once on every backend (read directly, not through pgpool), and every cart the clients know
//! is what the cart store holds.

use super::timeline::{late_effect, show, AckedOrder};
use crate::load::plan::Action;
use anyhow::{Context, Result};
use domain::ports::CartRepository;
use endpoints::HostPort;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
