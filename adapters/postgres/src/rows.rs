//! Rows to domain values. The database holds only what the domain validated on the way in, so
//! values are taken back with `from_trusted`.

use crate::cluster::DbError;
use domain::models::*;
use domain::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Row, SimpleQueryRow};
use uuid::Uuid;

pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from_datetime(t)
}

pub(crate) fn user(r: &Row) -> User {
    User {
        id: UserId::from_uuid(r.get("id")),
        email: Email::from_trusted(r.get("email")),
        name: UserName::from_trusted(r.get("name")),
        created_at: ts(r.get("created_at")),
    }
}

pub(crate) fn token_hash(r: &Row) -> Result<TokenHash, DbError> {
    let bytes: Vec<u8> = r.get("token_hash");
    let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        StoreError::Unavailable(format!("stored token hash has {} bytes, not 32", b.len()).into())
    })?;
    Ok(TokenHash::from_bytes(arr))
}

pub(crate) fn product(r: &Row) -> Product {
    Product {
        id: ProductId::from_uuid(r.get("id")),
        name: ProductName::from_trusted(r.get("name")),
        description: Description::from_trusted(r.get("description")),
        category: Category::from_trusted(r.get("category")),
        price: Cents::from_trusted(r.get("price_cents")),
        created_at: ts(r.get("created_at")),
        updated_at: ts(r.get("updated_at")),
    }
}

/// A product from a simple-protocol row (text values) of `catalogue::get_simple`; a value that
/// does not parse is the store failing, reported with the column.
pub(crate) fn product_text(r: &SimpleQueryRow) -> Result<Product, DbError> {
    let bad = |what: String| -> DbError { StoreError::Unavailable(format!("products.{what}").into()).into() };
    let text = |name: &str| -> Result<&str, DbError> { r.try_get(name)?.ok_or_else(|| bad(format!("{name} is NULL"))) };
    let int = |name: &str| -> Result<i64, DbError> { text(name)?.parse().map_err(|e| bad(format!("{name}: {e}"))) };
    let time = |name: &str| -> Result<Timestamp, DbError> {
        let t = text(name)?;
        timestamp_text(t).ok_or_else(|| bad(format!("{name}: {t}")))
    };
    let id = Uuid::parse_str(text("id")?).map_err(|e| bad(format!("id: {e}")))?;
    Ok(Product {
        id: ProductId::from_uuid(id),
        name: ProductName::from_trusted(text("name")?.to_owned()),
        description: Description::from_trusted(text("description")?.to_owned()),
        category: Category::from_trusted(text("category")?.to_owned()),
        price: Cents::from_trusted(int("price_cents")?),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
    })
}

/// A `timestamptz` in PostgreSQL's text output with `DateStyle` ISO (the server's default, and what
/// `settings::config_for` asks for): `2026-01-01 12:00:00.123+00`, any offset.
pub(crate) fn timestamp_text(t: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%#z").ok().map(|d| ts(d.with_timezone(&chrono::Utc)))
}

/// A cart line from a simple-protocol row of `carts::get_simple`.
pub(crate) fn cart_item_text(r: &SimpleQueryRow) -> Result<CartItem, DbError> {
    let bad = |what: String| -> DbError { StoreError::Unavailable(format!("cart_items.{what}").into()).into() };
    let text = |name: &str| -> Result<&str, DbError> { r.try_get(name)?.ok_or_else(|| bad(format!("{name} is NULL"))) };
    let product = Uuid::parse_str(text("product_id")?).map_err(|e| bad(format!("product_id: {e}")))?;
    let quantity: u32 = text("quantity")?.parse().map_err(|e| bad(format!("quantity: {e}")))?;
    Ok(CartItem { product_id: ProductId::from_uuid(product), quantity: Quantity::from_trusted(quantity) })
}

pub(crate) fn cart_item(r: &Row) -> CartItem {
    let q: i32 = r.get("quantity");
    CartItem { product_id: ProductId::from_uuid(r.get("product_id")), quantity: Quantity::from_trusted(q as u32) }
}

/// Orders from rows of `orders JOIN order_lines`, one row per line, lines of one order adjacent.
pub(crate) fn orders(rows: &[Row]) -> Result<Vec<Order>, DbError> {
    let mut out: Vec<Order> = Vec::new();
    for r in rows {
        let id: Uuid = r.get("id");
        let line = OrderLine {
            product_id: ProductId::from_uuid(r.get("product_id")),
            name: ProductName::from_trusted(r.get("line_name")),
            unit_price: Cents::from_trusted(r.get("unit_price_cents")),
            quantity: Quantity::from_trusted(r.get::<_, i32>("quantity") as u32),
        };
        match out.last_mut() {
            Some(o) if o.id.as_uuid() == id => o.lines.push(line),
            _ => {
                let status: &str = r.get("status");
                let status = OrderStatus::parse(status)
                    .map_err(|_| StoreError::Unavailable(format!("order {id} has unknown status {status:?}").into()))?;
                out.push(Order {
                    id: OrderId::from_uuid(id),
                    user_id: UserId::from_uuid(r.get("user_id")),
                    idempotency_key: IdempotencyKey::from_trusted(r.get("idempotency_key")),
                    status,
                    lines: vec![line],
                    created_at: ts(r.get("created_at")),
                    updated_at: ts(r.get("updated_at")),
                })
            }
        }
    }
    Ok(out)
}

/// The order of a row of `orders::one_order_on_main!` (its columns, its lines as arrays ordered
/// alike), or `None` when the row is all NULLs (no such order).
pub(crate) fn order_with_line_arrays(r: &Row) -> Result<Option<Order>, DbError> {
    let Some(id) = r.get::<_, Option<Uuid>>("id") else { return Ok(None) };
    let bad = |what: String| -> DbError { StoreError::Unavailable(format!("order {id}: {what}").into()).into() };
    let products: Vec<Uuid> = r.get::<_, Option<_>>("product_ids").unwrap_or_default();
    let names: Vec<String> = r.get::<_, Option<_>>("names").unwrap_or_default();
    let prices: Vec<i64> = r.get::<_, Option<_>>("unit_prices_cents").unwrap_or_default();
    let quantities: Vec<i32> = r.get::<_, Option<_>>("quantities").unwrap_or_default();
    let n = products.len();
    if names.len() != n || prices.len() != n || quantities.len() != n {
        return Err(bad(format!(
            "line arrays differ in length ({n}, {}, {}, {})",
            names.len(),
            prices.len(),
            quantities.len()
        )));
    }
    let status: &str = r.get("status");
    let status = OrderStatus::parse(status).map_err(|_| bad(format!("unknown status {status:?}")))?;
    let lines = (products.into_iter().zip(names).zip(prices).zip(quantities))
        .map(|(((product, name), price), quantity)| OrderLine {
            product_id: ProductId::from_uuid(product),
            name: ProductName::from_trusted(name),
            unit_price: Cents::from_trusted(price),
            quantity: Quantity::from_trusted(quantity as u32),
        })
        .collect();
    Ok(Some(Order {
        id: OrderId::from_uuid(id),
        user_id: UserId::from_uuid(r.get("user_id")),
        idempotency_key: IdempotencyKey::from_trusted(r.get("idempotency_key")),
        status,
        lines,
        created_at: ts(r.get("created_at")),
        updated_at: ts(r.get("updated_at")),
    }))
}

/// The name of the constraint a statement violated, if it failed with `code`.
pub(crate) fn violated<'e>(e: &'e tokio_postgres::Error, code: &SqlState) -> Option<&'e str> {
    let db = e.as_db_error()?;
    (db.code() == code).then(|| db.constraint().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::timestamp_text;

    #[test]
    fn timestamps_parse_from_iso_text_with_any_offset_and_precision() {
        let ms = |t: &str| timestamp_text(t).map(|t| t.millis());
        assert_eq!(ms("1970-01-01 00:00:01.5+00"), Some(1500));
        assert_eq!(ms("2026-01-01 00:00:00+00"), Some(1_767_225_600_000));
        assert_eq!(ms("2026-01-01 02:30:00.123+02:30"), Some(1_767_225_600_123));
        // Microseconds are cut to the domain's milliseconds.
        assert_eq!(ms("2026-01-01 00:00:00.123999+00"), Some(1_767_225_600_123));
        // Another DateStyle is refused, not misread.
        assert_eq!(ms("Thu Jan 01 00:00:00 2026 UTC"), None);
        assert_eq!(ms("01/01/2026 00:00:00 UTC"), None);
    }
}
