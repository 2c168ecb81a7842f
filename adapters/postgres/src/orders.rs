//! `OrderRepository` on PostgreSQL.

use crate::cluster::{with_conn, Cluster, Conn, DbError};
use crate::conn::{prepare_cached, Cache, BEGIN, COMMIT};
use crate::rows;
use async_trait::async_trait;
use domain::models::*;
use domain::ports::{OrderRepository, Placed, StoreResult};
use domain::StoreError;
use futures_util::future::join3;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// The order and its lines in one statement: no lines are written when the order conflicts (a
/// repeat, or a concurrent checkout with the same key that got there first: we waited for it to
/// commit), so the row count is the lines written, 0 on a conflict. One statement, not two, is
/// one less round trip through pgpool-II to every backend; its row count is still compared
/// across them.
const INSERT: &str = "WITH o AS (INSERT INTO orders (id, user_id, idempotency_key, status, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id) \
                      INSERT INTO order_lines (order_id, product_id, name, unit_price_cents, quantity) \
                      SELECT o.id, l.product_id, l.name, l.unit_price_cents, l.quantity \
                      FROM o, unnest($7::uuid[], $8::text[], $9::bigint[], $10::integer[]) \
                      AS l (product_id, name, unit_price_cents, quantity)";
/// Orders with their lines, one row per line, newest order first: `FROM $from ... WHERE $filter`.
macro_rules! select_orders {
    ($from:literal, $filter:literal) => {
        concat!(
            "SELECT o.id, o.user_id, o.idempotency_key, o.status, o.created_at, o.updated_at, ",
            "l.product_id, l.name AS line_name, l.unit_price_cents, l.quantity FROM ",
            $from,
            " JOIN order_lines l ON l.order_id = o.id WHERE ",
            $filter,
            " ORDER BY o.id DESC, l.product_id"
        )
    };
}
const GET: &str = select_orders!("orders o", "o.id = $1");
/// At most one order (`$filter` names a unique key) in exactly ONE row whatever the data: the
/// order's columns, NULL when there is none, and its lines as arrays. Read on the main node: with
/// pgpool-II's `/*NO LOAD BALANCE*/` at the very start, native replication sends the read to
/// every backend and relays the main node's rows (see `find_on_main`). pgpool-II compares the
/// kind of each message the backends answer, not their contents (pgpool-II 4.3.5,
/// src/protocol/pool_process_query.c: `read_kind_from_backend`; `SimpleForwardToFrontend`
/// relays the main node's message), and ends the session when a row ('D') comes from one node
/// where another has completed ('C'): FATAL XX000 "kind mismatch among backends", a dead
/// endpoint to `cluster`. pgpool commits the main node last, so a concurrent checkout's order can
/// be on backend 1 and not yet on the main node; with one row from each that is a difference of
/// contents only, and the main node's row is the answer.
macro_rules! one_order_on_main {
    ($filter:literal) => {
        concat!(
            "/*NO LOAD BALANCE*/ SELECT o.id, o.user_id, o.idempotency_key, o.status, o.created_at, o.updated_at, ",
            "l.product_ids, l.names, l.unit_prices_cents, l.quantities FROM (VALUES (1)) AS one (n) ",
            "LEFT JOIN orders o ON ",
            $filter,
            " LEFT JOIN LATERAL (SELECT array_agg(product_id ORDER BY product_id) AS product_ids, ",
            "array_agg(name ORDER BY product_id) AS names, ",
            "array_agg(unit_price_cents ORDER BY product_id) AS unit_prices_cents, ",
            "array_agg(quantity ORDER BY product_id) AS quantities ",
            "FROM order_lines WHERE order_id = o.id) l ON true"
        )
    };
}
const BY_KEY_ON_MAIN: &str = one_order_on_main!("o.user_id = $1 AND o.idempotency_key = $2");
const GET_ON_MAIN: &str = one_order_on_main!("o.id = $1");
const LIST: &str =
    select_orders!("(SELECT * FROM orders WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3) o", "true");
const SET_STATUS: &str = "UPDATE orders SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2";

pub(crate) struct PgOrders(pub(crate) Arc<Cluster>);

/// Reads that decide whether an order was already placed (a replayed key, a retried insert) are
/// made on pgpool-II's main node, never on a load-balanced one. A pgpool killed between its COMMIT
/// on the other nodes and on the main node (it commits there last) leaves the order on the other
/// nodes only; a read from one of those would acknowledge an order the main node does not have,
/// and that the resync of the diverged node (from the main node) then removes. Read on the main
/// node, "no order" leads to the insert, the nodes report different row counts, and pgpool
/// detaches the diverged node (`failover_if_affected_tuples_mismatch`); the retry stores the
/// order on the main node. One statement (`/*NO LOAD BALANCE*/`), not a locking transaction.
async fn find_on_main(c: &mut Conn, user: UserId, key: &IdempotencyKey) -> Result<Option<Order>, DbError> {
    let (client, cache) = c.parts();
    query_on_main(&*client, cache, BY_KEY_ON_MAIN, &[&user.as_uuid(), &key.as_str()]).await
}

/// One attempt of `insert`, in one round trip (BEGIN, the insert, COMMIT). `retries` > 0 means
/// an earlier attempt may have committed.
async fn insert_once(c: &mut Conn, order: &Order, retries: u32) -> Result<Placed, DbError> {
    let products: Vec<Uuid> = order.lines.iter().map(|l| l.product_id.as_uuid()).collect();
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    let prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price.get()).collect();
    let qty: Vec<i32> = order.lines.iter().map(|l| l.quantity.get() as i32).collect();
    let params: [&(dyn ToSql + Sync); 10] = [
        &order.id.as_uuid(),
        &order.user_id.as_uuid(),
        &order.idempotency_key.as_str(),
        &order.status.as_str(),
        &order.created_at.as_datetime(),
        &order.updated_at.as_datetime(),
        &products,
        &names,
        &prices,
        &qty,
    ];
    let (client, cache) = c.parts();
    let st = prepare_cached(cache, &*client, INSERT).await?;
    let (begun, written, committed) =
        join3(client.batch_execute(BEGIN), client.execute(&st, &params), client.batch_execute(COMMIT)).await;
    begun?;
    let written = written?;
    committed?;
    if written > 0 {
        return Ok(Placed::Created);
    }
    // A conflict: the order there is the one that holds the key (or, should only the id have
    // conflicted, the one with this id).
    let (user, key) = (order.user_id.as_uuid(), order.idempotency_key.as_str());
    let existing = match query_on_main(&*client, cache, BY_KEY_ON_MAIN, &[&user, &key]).await? {
        Some(o) => o,
        None => query_on_main(&*client, cache, GET_ON_MAIN, &[&order.id.as_uuid()])
            .await?
            .ok_or_else(|| StoreError::Unavailable(format!("order {} conflicted but is not there", order.id).into()))?,
    };
    // Our own earlier attempt committed before its connection was lost: it is this call's write.
    if retries > 0 && existing.id == order.id {
        return Ok(Placed::Created);
    }
    Ok(Placed::Existing(existing))
}

/// The first order of a `select_orders!` query, through a client or a transaction.
async fn query_orders(
    client: &impl GenericClient,
    cache: &mut Cache,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Order>, DbError> {
    let st = prepare_cached(cache, client, sql).await?;
    let rows = client.query(&st, params).await?;
    Ok(rows::orders(&rows)?.into_iter().next())
}

/// The order of a `one_order_on_main!` query: its one row, the order or NULLs.
async fn query_on_main(
    client: &impl GenericClient,
    cache: &mut Cache,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Order>, DbError> {
    let st = prepare_cached(cache, client, sql).await?;
    match client.query(&st, params).await?.as_slice() {
        [row] => rows::order_with_line_arrays(row),
        rows => {
            Err(StoreError::Unavailable(format!("a one-order read answered {} rows, not 1", rows.len()).into()).into())
        }
    }
}

#[async_trait]
impl OrderRepository for PgOrders {
    async fn insert(&self, order: &Order) -> StoreResult<Placed> {
        if order.lines.is_empty() {
            return Err(StoreError::Rejected { field: "lines".into(), message: "an order needs a line".into() });
        }
        with_conn!(self.0, "orders.insert", |c, retries| insert_once(&mut c, order, retries).await)
    }

    async fn get(&self, id: OrderId) -> StoreResult<Option<Order>> {
        with_conn!(self.0, "orders.get", |c, _retries| {
            let (client, cache) = c.parts();
            query_orders(&*client, cache, GET, &[&id.as_uuid()]).await
        })
    }

    async fn find_by_key(&self, user: UserId, key: &IdempotencyKey) -> StoreResult<Option<Order>> {
        with_conn!(self.0, "orders.find_by_key", |c, _retries| find_on_main(&mut c, user, key).await)
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> StoreResult<Vec<Order>> {
        let before = page.after.unwrap_or(Uuid::max());
        let limit = i64::from(page.limit);
        with_conn!(self.0, "orders.list_for_user", |c, _retries| {
            let st = c.prepare(LIST).await?;
            let rows = c.client.query(&st, &[&user.as_uuid(), &before, &limit]).await?;
            rows::orders(&rows)
        })
    }

    async fn set_status(&self, id: OrderId, from: OrderStatus, to: OrderStatus, at: Timestamp) -> StoreResult<bool> {
        // Compare-and-set: a repeat after a lost reply finds the status already moved and says
        // false; the use case then reads the order and sees its request done.
        with_conn!(self.0, "orders.set_status", |c, _retries| {
            let st = c.prepare(SET_STATUS).await?;
            let params: [&(dyn ToSql + Sync); 4] = [&id.as_uuid(), &from.as_str(), &to.as_str(), &at.as_datetime()];
            Ok(c.client.execute(&st, &params).await? == 1)
        })
    }
}
