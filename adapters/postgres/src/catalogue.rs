//! `Catalogue` on PostgreSQL.

use crate::cluster::{with_conn, Cluster};
use crate::rows;
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{Catalogue, StoreResult};
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::SimpleQueryMessage;
use uuid::Uuid;

const INSERT: &str = "INSERT INTO products (id, name, description, category, price_cents, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
/// The hottest read, in the simple protocol: through pgpool-II one simple query costs half the
/// database-side CPU of a prepared statement's Bind/Execute/Sync
/// (docs/results/capacity/pg-reads-protocol.md). The key is a typed UUID formatted here, so
/// nothing can be injected. Times come back as PostgreSQL's text, parsed by `rows::timestamp_text`:
/// computing epoch milliseconds in SQL (`extract`, numeric) made the read ~35% dearer for the
/// backend and pgpool-II together (pgbench through pgpool, c=8: 23.1k vs 34.3k reads/s).
fn get_simple(id: Uuid) -> String {
    format!(
        "SELECT id, name, description, category, price_cents, created_at, updated_at \
         FROM products WHERE id = '{}'",
        id.hyphenated()
    )
}
const GET_MANY: &str = "SELECT id, name, description, category, price_cents, created_at, updated_at \
                        FROM products WHERE id = ANY($1::uuid[])";
const UPDATE: &str = "UPDATE products SET name = $2, description = $3, category = $4, price_cents = $5, \
                      updated_at = $6 WHERE id = $1";
const DELETE: &str = "DELETE FROM products WHERE id = $1";
const LIST: &str = "SELECT id, name, description, category, price_cents, created_at, updated_at \
                    FROM products WHERE id > $1 ORDER BY id LIMIT $2";
const LIST_CATEGORY: &str = "SELECT id, name, description, category, price_cents, created_at, updated_at \
                             FROM products WHERE category = $3 AND id > $1 ORDER BY id LIMIT $2";

pub(crate) struct PgCatalogue(pub(crate) Arc<Cluster>);

#[async_trait]
impl Catalogue for PgCatalogue {
    async fn insert(&self, p: &Product) -> StoreResult<()> {
        // A repeat with the same id inserts nothing and is fine.
        with_conn!(self.0, "catalogue.insert", |c, _retries| {
            let st = c.prepare(INSERT).await?;
            let params: [&(dyn ToSql + Sync); 7] = [
                &p.id.as_uuid(),
                &p.name.as_str(),
                &p.description.as_str(),
                &p.category.as_str(),
                &p.price.get(),
                &p.created_at.as_datetime(),
                &p.updated_at.as_datetime(),
            ];
            c.client.execute(&st, &params).await?;
            Ok(())
        })
    }

    async fn get(&self, id: ProductId) -> StoreResult<Option<Product>> {
        with_conn!(self.0, "catalogue.get", |c, _retries| {
            let messages = c.client.simple_query(&get_simple(id.as_uuid())).await?;
            let row = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            });
            row.map(rows::product_text).transpose()
        })
    }

    async fn get_many(&self, ids: &[ProductId]) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(ProductId::as_uuid).collect();
        with_conn!(self.0, "catalogue.get_many", |c, _retries| {
            let st = c.prepare(GET_MANY).await?;
            Ok(c.client.query(&st, &[&ids]).await?.iter().map(rows::product).collect())
        })
    }

    async fn update(&self, p: &Product) -> StoreResult<bool> {
        with_conn!(self.0, "catalogue.update", |c, _retries| {
            let st = c.prepare(UPDATE).await?;
            let params: [&(dyn ToSql + Sync); 6] = [
                &p.id.as_uuid(),
                &p.name.as_str(),
                &p.description.as_str(),
                &p.category.as_str(),
                &p.price.get(),
                &p.updated_at.as_datetime(),
            ];
            Ok(c.client.execute(&st, &params).await? == 1)
        })
    }

    async fn delete(&self, id: ProductId) -> StoreResult<bool> {
        // Cart lines naming the product stay (checkout refuses them: product_unavailable), as in
        // every store; order lines keep their copy. After a failed attempt that may have
        // committed, finding nothing to delete means this call deleted it.
        with_conn!(self.0, "catalogue.delete", |c, retries| {
            let st = c.prepare(DELETE).await?;
            Ok(c.client.execute(&st, &[&id.as_uuid()]).await? == 1 || retries > 0)
        })
    }

    async fn list(&self, category: Option<&Category>, page: PageRequest) -> StoreResult<Vec<Product>> {
        let after = page.after.unwrap_or(Uuid::nil());
        let limit = i64::from(page.limit);
        with_conn!(self.0, "catalogue.list", |c, _retries| {
            let rows = match category {
                Some(cat) => {
                    let st = c.prepare(LIST_CATEGORY).await?;
                    c.client.query(&st, &[&after, &limit, &cat.as_str()]).await?
                }
                None => {
                    let st = c.prepare(LIST).await?;
                    c.client.query(&st, &[&after, &limit]).await?
                }
            };
            Ok(rows.iter().map(rows::product).collect())
        })
    }
}
