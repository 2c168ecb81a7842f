//! `Catalogue` on Cassandra.
//!
//! `products` holds the truth; `products_by_category` is a copy for the category pages. Writes to
//! `products` are conditional (Paxos, lightweight transactions): insert-if-absent gives the port's
//! "a repeat is a no-op", update-if-category-unchanged and delete-if-category-unchanged give
//! "`false` for an unknown product" and tell which category copy to move or remove. The copy is
//! written after the conditional write with a write timestamp taken from the product's
//! `updated_at`, so concurrent updates settle on the latest one.
//!
//! Every call may be repeated (the port's contract) and is retried here after a failure: a repeat
//! finds the state the earlier attempt left and completes the copy. `prev_category` remembers
//! the category a product left, so an update whose copy was interrupted is finished by the next
//! call on that product.

use crate::schema::{BY_CATEGORY, COLUMNS, PRODUCTS};
use crate::{failed, prepare, timed, unavailable};
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{Catalogue, StoreResult};
use domain::StoreError;
use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Attempts of one port call after the first (each on a fresh look at the stored row).
const RETRIES: u32 = 2;
/// Rounds of read + conditional write when another writer changes the product in between.
const CAS_ROUNDS: u32 = 8;

pub(crate) struct Statements {
    insert: PreparedStatement,
    pub(crate) get: PreparedStatement,
    get_many: PreparedStatement,
    update: PreparedStatement,
    delete: PreparedStatement,
    copy_upsert: PreparedStatement,
    copy_delete: PreparedStatement,
    list_category: PreparedStatement,
    list_first: PreparedStatement,
    list_after: PreparedStatement,
}

impl Statements {
    pub(crate) async fn prepare(s: &Session, ks: &str) -> anyhow::Result<Statements> {
        Ok(Statements {
            insert: prepare(
                s,
                format!("INSERT INTO {ks}.{PRODUCTS} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"),
                // Idempotent, so the driver may also send it to another coordinator when one
                // hangs (speculative execution): a twin that finds the row reads "not applied",
                // which insert() already treats as a repeat (the failover test saw two attempts
                // in a row time out on a SIGSTOPped coordinator: 4.4 s, past the 4 s budget).
                true,
            )
            .await?,
            get: prepare(s, format!("SELECT {COLUMNS}, prev_category FROM {ks}.{PRODUCTS} WHERE id = ?"), true).await?,
            get_many: prepare(s, format!("SELECT {COLUMNS} FROM {ks}.{PRODUCTS} WHERE id IN ?"), true).await?,
            update: prepare(
                s,
                format!(
                    "UPDATE {ks}.{PRODUCTS} SET name = ?, description = ?, category = ?, price_cents = ?, \
                     updated_at = ?, prev_category = ? WHERE id = ? IF category = ?"
                ),
                // Idempotent as the insert: a twin that finds the category already moved reads
                // "not applied", and update() then looks again and writes the same values.
                true,
            )
            .await?,
            // Not idempotent: a twin's "not applied" after the other deleted would answer false.
            delete: prepare(s, format!("DELETE FROM {ks}.{PRODUCTS} WHERE id = ? IF category = ?"), false).await?,
            copy_upsert: prepare(
                s,
                format!("INSERT INTO {ks}.{BY_CATEGORY} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"),
                true,
            )
            .await?,
            copy_delete: prepare(
                s,
                format!("DELETE FROM {ks}.{BY_CATEGORY} USING TIMESTAMP ? WHERE category = ? AND id = ?"),
                true,
            )
            .await?,
            list_category: prepare(
                s,
                format!("SELECT {COLUMNS} FROM {ks}.{BY_CATEGORY} WHERE category = ? AND id > ? LIMIT ?"),
                true,
            )
            .await?,
            list_first: prepare(s, format!("SELECT {COLUMNS} FROM {ks}.{PRODUCTS} LIMIT ?"), true).await?,
            list_after: prepare(
                s,
                format!("SELECT {COLUMNS} FROM {ks}.{PRODUCTS} WHERE token(id) > token(?) LIMIT ?"),
                true,
            )
            .await?,
        })
    }
}

pub(crate) struct Inner {
    pub(crate) session: Session,
    pub(crate) st: Statements,
    pub(crate) keyspace: String,
}

type ProductRow = (Uuid, String, String, String, i64, CqlTimestamp, CqlTimestamp);
type StoredRow = (Uuid, String, String, String, i64, CqlTimestamp, CqlTimestamp, Option<String>);

/// A product as stored, with the category it last left.
#[derive(Clone)]
struct Stored {
    product: Product,
    prev_category: Option<String>,
}

fn ts(t: CqlTimestamp) -> Timestamp {
    Timestamp::from_millis(t.0).unwrap_or_else(|| Timestamp::from_millis(0).expect("the epoch is a timestamp"))
}

fn product((id, name, description, category, price, created, updated): ProductRow) -> Product {
    // The tables hold only what the domain validated on the way in.
    Product {
        id: ProductId::from_uuid(id),
        name: ProductName::from_trusted(name),
        description: Description::from_trusted(description),
        category: Category::from_trusted(category),
        price: Cents::from_trusted(price),
        created_at: ts(created),
        updated_at: ts(updated),
    }
}

/// Write timestamp (microseconds) of a category copy: the product's `updated_at`, plus a
/// counter so that two writes in one millisecond differ.
fn copy_timestamp(updated_at: Timestamp) -> i64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    updated_at.millis() * 1000 + (SEQ.fetch_add(1, Ordering::Relaxed) % 1000) as i64
}

fn now_micros() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_micros() as i64
}

impl Inner {
    pub(crate) async fn execute(&self, st: &PreparedStatement, values: impl SerializeRow) -> StoreResult<QueryResult> {
        let r = self.session.execute_unpaged(st, values).await.map_err(|e| unavailable(st.get_statement(), e))?;
        // Which node coordinated it: shows the driver spreading requests over the ring.
        let node = r.request_coordinator().connection_address().to_string();
        metrics::counter!("shop_cassandra_requests_total", "node" => node).increment(1);
        Ok(r)
    }

    async fn products(&self, st: &PreparedStatement, values: impl SerializeRow) -> StoreResult<Vec<Product>> {
        let rows = self.execute(st, values).await?.into_rows_result().map_err(|e| unavailable("rows", e))?;
        let typed = rows.rows::<ProductRow>().map_err(|e| unavailable("rows", e))?;
        typed.map(|r| r.map(product).map_err(|e| unavailable("row", e))).collect()
    }

    async fn stored(&self, id: ProductId) -> StoreResult<Option<Stored>> {
        let rows = self
            .execute(&self.st.get, (id.as_uuid(),))
            .await?
            .into_rows_result()
            .map_err(|e| unavailable("rows", e))?;
        let row = rows.maybe_first_row::<StoredRow>().map_err(|e| unavailable("row", e))?;
        Ok(row.map(|(id, n, d, c, p, cr, up, prev)| Stored {
            product: product((id, n, d, c, p, cr, up)),
            prev_category: prev,
        }))
    }

    /// Runs a conditional write; whether it was applied (the `[applied]` column).
    async fn applied(&self, st: &PreparedStatement, values: impl SerializeRow) -> StoreResult<bool> {
        let rows = self.execute(st, values).await?.into_rows_result().map_err(|e| unavailable("rows", e))?;
        let row = rows.maybe_first_row::<Row>().map_err(|e| unavailable("row", e))?;
        match row.as_ref().and_then(|r| r.columns.first()) {
            Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
            other => Err(failed("conditional write", &format!("no [applied] column in the result: {other:?}"))),
        }
    }

    async fn copy(&self, p: &Product, at: i64) -> StoreResult<()> {
        let values = (
            p.id.as_uuid(),
            p.name.as_str(),
            p.description.as_str(),
            p.category.as_str(),
            p.price.get(),
            CqlTimestamp(p.created_at.millis()),
            CqlTimestamp(p.updated_at.millis()),
            at,
        );
        self.execute(&self.st.copy_upsert, values).await.map(drop)
    }

    async fn uncopy(&self, category: &str, id: ProductId, at: i64) -> StoreResult<()> {
        self.execute(&self.st.copy_delete, (at, category, id.as_uuid())).await.map(drop)
    }

    /// Removes the copies of `s` in its category and in the one it last left, stamped `at`.
    async fn uncopy_all(&self, s: &Stored, at: i64) -> StoreResult<()> {
        let cat = s.product.category.as_str();
        self.uncopy(cat, s.product.id, at).await?;
        if let Some(prev) = s.prev_category.as_deref().filter(|prev| *prev != cat) {
            self.uncopy(prev, s.product.id, at).await?;
        }
        Ok(())
    }

    /// Makes the category copies match `s`: removes the copy in the category it left, writes the
    /// one in its category.
    async fn sync_copies(&self, s: &Stored) -> StoreResult<()> {
        let at = copy_timestamp(s.product.updated_at);
        if let Some(prev) = s.prev_category.as_deref().filter(|prev| *prev != s.product.category.as_str()) {
            self.uncopy(prev, s.product.id, at).await?;
        }
        self.copy(&s.product, at).await
    }
}

/// Runs `attempt` until it succeeds, at most `1 + RETRIES` times; only store failures are retried.
async fn retrying<T, F, Fut>(op: &str, mut attempt: F) -> StoreResult<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut n = 0;
    loop {
        match attempt(n).await {
            Err(StoreError::Unavailable(why)) if n < RETRIES => {
                tracing::info!(op, attempt = n, error = %why, "cassandra request failed; retrying");
                n += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(n))).await;
            }
            other => return other,
        }
    }
}

pub(crate) struct CassandraCatalogue(pub(crate) Arc<Inner>);

#[async_trait]
impl Catalogue for CassandraCatalogue {
    async fn insert(&self, p: &Product) -> StoreResult<()> {
        let db = &self.0;
        timed(
            "catalogue.insert",
            retrying("catalogue.insert", |_| async move {
                let values = (
                    p.id.as_uuid(),
                    p.name.as_str(),
                    p.description.as_str(),
                    p.category.as_str(),
                    p.price.get(),
                    CqlTimestamp(p.created_at.millis()),
                    CqlTimestamp(p.updated_at.millis()),
                );
                if db.applied(&db.st.insert, values).await? {
                    return db.copy(p, copy_timestamp(p.updated_at)).await;
                }
                // A repeat: the product is there (maybe changed since). Its copy may be missing
                // if the earlier call failed after the insert, so it is written again.
                match db.stored(p.id).await? {
                    Some(s) => db.sync_copies(&s).await,
                    None => Ok(()), // deleted in between
                }
            }),
        )
        .await
    }

    async fn get(&self, id: ProductId) -> StoreResult<Option<Product>> {
        let db = &self.0;
        timed(
            "catalogue.get",
            retrying("catalogue.get", |_| async move { Ok(db.stored(id).await?.map(|s| s.product)) }),
        )
        .await
    }

    async fn get_many(&self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        let db = &self.0;
        let mut unique: Vec<ProductId> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        // One statement for the whole cart: the coordinator reads each partition at QUORUM as
        // a single-partition read would (so every price is as fresh), but the ring parses,
        // dispatches and answers one CQL request instead of one per line. With replication
        // factor 3 on 3 nodes every node is a replica of every id, so the coordinator (which
        // the driver cannot pick by token for an `IN`) still reads locally; a larger ring
        // would pay one hop more per read.
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let unique: Vec<Uuid> = unique.iter().map(|id| id.as_uuid()).collect();
        let unique = &unique;
        timed(
            "catalogue.get_many",
            retrying("catalogue.get_many", |_| async move { db.products(&db.st.get_many, (unique,)).await }),
        )
        .await
    }

    async fn update(&self, p: &Product) -> StoreResult<bool> {
        let db = &self.0;
        timed(
            "catalogue.update",
            retrying("catalogue.update", |_| async move {
                for _ in 0..CAS_ROUNDS {
                    let Some(current) = db.stored(p.id).await? else { return Ok(false) };
                    let old = current.product.category.as_str();
                    let moved = old != p.category.as_str();
                    // Moving remembers the category left; staying keeps an older unfinished move.
                    let prev = if moved { Some(old) } else { current.prev_category.as_deref() };
                    let values = (
                        p.name.as_str(),
                        p.description.as_str(),
                        p.category.as_str(),
                        p.price.get(),
                        CqlTimestamp(p.updated_at.millis()),
                        prev,
                        p.id.as_uuid(),
                        old,
                    );
                    if !db.applied(&db.st.update, values).await? {
                        continue; // moved or deleted by someone else since we read it: look again
                    }
                    let stored = Product { created_at: current.product.created_at, ..p.clone() };
                    db.sync_copies(&Stored { product: stored, prev_category: prev.map(str::to_string) }).await?;
                    return Ok(true);
                }
                Err(failed("update", "the product kept changing under a conditional update"))
            }),
        )
        .await
    }

    async fn delete(&self, id: ProductId) -> StoreResult<bool> {
        let db = &self.0;
        timed(
            "catalogue.delete",
            retrying("catalogue.delete", |attempt| async move {
                for _ in 0..CAS_ROUNDS {
                    let Some(current) = db.stored(id).await? else {
                        // After a failed attempt that may have committed, finding nothing means
                        // this call deleted it (as the PostgreSQL adapter decides).
                        return Ok(attempt > 0);
                    };
                    // The copies go first: a failure then leaves a product that still exists (a
                    // repeated DELETE finishes it), never a deleted one still listed.
                    let at = now_micros().max(current.product.updated_at.millis() * 1000 + 1000);
                    db.uncopy_all(&current, at).await?;
                    if db.applied(&db.st.delete, (id.as_uuid(), current.product.category.as_str())).await? {
                        // An update applied just before the delete may write its copy only now,
                        // stamped with its `updated_at`, which can be later than `at`. Its
                        // `updated_at` was taken before it applied, so before this moment: copies
                        // removed again at now + 1 ms (a copy's stamp is its millisecond plus
                        // < 1000 µs) hide it whenever it lands.
                        db.uncopy_all(&current, (now_micros() + 1000).max(at)).await?;
                        return Ok(true);
                    }
                }
                Err(failed("delete", "the product kept changing under a conditional delete"))
            }),
        )
        .await
    }

    async fn list(&self, category: Option<&Category>, page: PageRequest) -> StoreResult<Vec<Product>> {
        let db = &self.0;
        let limit = i32::try_from(page.limit).unwrap_or(i32::MAX);
        let after = page.after;
        timed(
            "catalogue.list",
            retrying("catalogue.list", |_| async move {
                match (category, after) {
                    // Ascending id within the category's partition.
                    (Some(c), after) => {
                        db.products(&db.st.list_category, (c.as_str(), after.unwrap_or(Uuid::nil()), limit)).await
                    }
                    // The whole catalogue in token order (the ring's order), continued after the
                    // token of the last id seen.
                    (None, None) => db.products(&db.st.list_first, (limit,)).await,
                    (None, Some(after)) => db.products(&db.st.list_after, (after, limit)).await,
                }
            }),
        )
        .await
    }
}
