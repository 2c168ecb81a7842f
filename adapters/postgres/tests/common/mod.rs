#![allow(dead_code)]

use adapter_postgres::testing::{fresh_database, test_settings};
use adapter_postgres::{PgSettings, PgStore};
use domain::models::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use uuid::Uuid;

/// A migrated store on a fresh database, with its settings.
pub async fn store() -> (PgStore, PgSettings) {
    let settings = fresh_database(&test_settings()).await;
    let store = PgStore::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, settings)
}

/// A plain connection to the test database, to look at rows behind the adapter's back.
pub async fn sql(settings: &PgSettings) -> tokio_postgres::Client {
    let endpoint = &settings.endpoints[0];
    let (host, port) = endpoint.rsplit_once(':').unwrap();
    let (client, conn) = tokio_postgres::Config::new()
        .host(host)
        .port(port.parse().unwrap())
        .user(&settings.user)
        .dbname(&settings.dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect for checks");
    tokio::spawn(conn);
    client
}

pub async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

pub fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

pub fn user(email: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::now_v7()),
        email: Email::parse(email).unwrap(),
        name: UserName::parse("Ann").unwrap(),
        created_at: now(),
    }
}

pub fn token() -> TokenHash {
    ApiToken::generate().hash()
}

pub fn product(name: &str, category: &str, price: i64) -> Product {
    let t = now();
    Product {
        id: ProductId::from_uuid(Uuid::now_v7()),
        name: ProductName::parse(name).unwrap(),
        description: Description::parse("A thing.\nTwo lines.").unwrap(),
        category: Category::parse(category).unwrap(),
        price: Cents::price(price, "price_cents").unwrap(),
        created_at: t,
        updated_at: t,
    }
}

pub fn qty(n: u32) -> Quantity {
    Quantity::from_trusted(n)
}

pub fn order(user: UserId, key: &str, lines: &[(&Product, u32)]) -> Order {
    let t = now();
    let mut lines: Vec<OrderLine> = lines
        .iter()
        .map(|(p, q)| OrderLine { product_id: p.id, name: p.name.clone(), unit_price: p.price, quantity: qty(*q) })
        .collect();
    lines.sort_by_key(|l| l.product_id);
    Order {
        id: OrderId::from_uuid(Uuid::now_v7()),
        user_id: user,
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        status: OrderStatus::Created,
        lines,
        created_at: t,
        updated_at: t,
    }
}

/// The metrics recorder of this test binary, installed on first use.
pub fn metrics() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        recorder.install().expect("the only recorder of this test binary");
        snap
    })
}

/// The total of a counter for one endpoint so far. (A snapshot drains the debugging recorder's
/// counters, so totals are kept here.)
pub fn counter(name: &str, endpoint: &str) -> u64 {
    static TOTALS: OnceLock<Mutex<HashMap<(String, String), u64>>> = OnceLock::new();
    let mut totals = TOTALS.get_or_init(Default::default).lock().unwrap();
    for (key, _, _, value) in metrics().snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            for label in key.key().labels().filter(|l| l.key() == "endpoint") {
                *totals.entry((key.key().name().to_string(), label.value().to_string())).or_default() += n;
            }
        }
    }
    totals.get(&(name.to_string(), endpoint.to_string())).copied().unwrap_or(0)
}
