//! The keyspace and tables, created if missing. Safe when several web instances start at once:
//! `IF NOT EXISTS` everywhere, and each table gets a fixed id derived from its name, so two
//! instances creating it concurrently on different coordinators create the same table (with
//! random ids they could create two tables of one name, which Cassandra cannot reconcile).

use crate::CassandraSettings;
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::unprepared::Statement;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub(crate) const PRODUCTS: &str = "products";
pub(crate) const BY_CATEGORY: &str = "products_by_category";

/// The columns every product query returns, in this order.
pub(crate) const COLUMNS: &str = "id, name, description, category, price_cents, created_at, updated_at";

fn table_id(keyspace: &str, table: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("shopbench/{keyspace}.{table}").as_bytes())
}

pub(crate) async fn ensure(session: &Session, s: &CassandraSettings) -> anyhow::Result<()> {
    let ks = &s.keyspace;
    let rf = s.replication_factor;
    let statements = [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
        ),
        // By id: get, update, delete; the whole catalogue is read in token order from here.
        // `prev_category`: the category the product last left (see catalogue.rs).
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{PRODUCTS} (id uuid PRIMARY KEY, name text, description text, \
             category text, price_cents bigint, created_at timestamp, updated_at timestamp, prev_category text) \
             WITH ID = '{}'",
            table_id(ks, PRODUCTS)
        ),
        // By category: one partition per category, ids ascending, so a page is one slice of one
        // partition. A copy of each product's fields, kept in step by the catalogue's writes.
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{BY_CATEGORY} (category text, id uuid, name text, description text, \
             price_cents bigint, created_at timestamp, updated_at timestamp, PRIMARY KEY ((category), id)) \
             WITH CLUSTERING ORDER BY (id ASC) AND ID = '{}'",
            table_id(ks, BY_CATEGORY)
        ),
    ];
    for cql in statements {
        schema_change(session, &cql).await?;
    }
    if let Some(existing) = replication_factor(session, ks).await? {
        if existing != rf {
            tracing::warn!(keyspace = %ks, existing, configured = rf, "keyspace exists with another replication factor; keeping it");
        }
    }
    Ok(())
}

/// How long a schema statement is retried while its coordinator has not yet seen the keyspace
/// or table that another instance created a moment ago.
const UNSEEN_SCHEMA_WAIT: Duration = Duration::from_secs(10);
/// A schema change's own client timeout: the ring writes and gossips the new schema before it
/// answers, which took over the 5 s request timeout of ordinary statements on a busy 2-core
/// machine (CREATE TABLE in CI with a load average of 8). Start-up code, so waiting is cheap.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(60);

/// One schema statement, then agreement of the whole ring on the result.
///
/// The driver waits for agreement after a change it made itself, but an `IF NOT EXISTS` that
/// found the keyspace already created by another instance changes nothing, so nothing waited:
/// the next statement could reach a node that had not heard of the keyspace yet ("Keyspace ...
/// doesn't exist", seen in CI when two instances started at once). Hence the explicit wait, and
/// a bounded retry of "invalid" answers for the gap before gossip shows the new schema version.
async fn schema_change(session: &Session, cql: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + UNSEEN_SCHEMA_WAIT;
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(SCHEMA_TIMEOUT));
    loop {
        match session.query_unpaged(statement.clone(), ()).await {
            Ok(_) => break,
            Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Invalid, msg)))
                if Instant::now() < deadline =>
            {
                tracing::debug!(%msg, "schema not yet seen by the coordinator; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => anyhow::bail!("{cql}: {e}"),
        }
    }
    session.await_schema_agreement().await.map_err(|e| anyhow::anyhow!("cassandra schema agreement: {e}"))?;
    Ok(())
}

async fn replication_factor(session: &Session, ks: &str) -> anyhow::Result<Option<u32>> {
    let rows = session
        .query_unpaged("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", (ks,))
        .await?
        .into_rows_result()?;
    let Some((replication,)) = rows.maybe_first_row::<(std::collections::HashMap<String, String>,)>()? else {
        return Ok(None);
    };
    Ok(replication.get("replication_factor").and_then(|v| v.parse().ok()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_ids_are_fixed_per_keyspace_and_table() {
        assert_eq!(super::table_id("shop", "products"), super::table_id("shop", "products"));
        assert_ne!(super::table_id("shop", "products"), super::table_id("shop2", "products"));
    }
}
