//! Migrations against a real PostgreSQL (SHOPBENCH_TEST_PG).

mod common;

use adapter_postgres::PgStore;
use common::*;
use test_support::pg::{fresh_database, test_settings};

#[tokio::test]
async fn migrate_is_idempotent() {
    let (store, settings) = store().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let c = sql(&settings).await;
    assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 2, "one row per migration");
    assert_eq!(count(&c, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_at_once_apply_each_version_once_without_errors() {
    metrics();
    for _ in 0..3 {
        let settings = fresh_database(&test_settings()).await;
        let stores: Vec<PgStore> = futures_util::future::join_all((0..6).map(|_| PgStore::connect(&settings)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let failures_before: u64 =
            settings.endpoints.iter().map(|e| counter("shop_pg_endpoint_failures_total", e)).sum();
        let results = futures_util::future::join_all(stores.iter().map(|s| s.migrate())).await;
        for r in results {
            r.unwrap();
        }
        // No attempt failed and was retried (through pgpool a racing CREATE TABLE IF NOT EXISTS
        // made it kill the session).
        let failures: u64 = settings.endpoints.iter().map(|e| counter("shop_pg_endpoint_failures_total", e)).sum();
        assert_eq!(failures, failures_before);
        let c = sql(&settings).await;
        assert_eq!(count(&c, "SELECT count(*) FROM schema_migrations").await, 2, "each migration once");
        stores[0].stores().users.insert(&user("ann@example.com"), &token()).await.unwrap();
    }
}

#[tokio::test]
async fn the_schema_enforces_the_rules_the_domain_relies_on() {
    let (_, settings) = store().await;
    let c = sql(&settings).await;
    let id = uuid::Uuid::now_v7();
    let t = chrono::Utc::now();
    // Negative prices, quantities out of range, unknown statuses are refused by the database too.
    let bad_price = c.execute("INSERT INTO products VALUES ($1, 'n', 'd', 'c', -1, $2, $2)", &[&id, &t]).await;
    assert!(bad_price.is_err());
    let bad_status = c.execute("INSERT INTO orders VALUES ($1, $1, 'k', 'lost', $2, $2)", &[&id, &t]).await;
    assert!(bad_status.is_err());
    // No column has a default the database computes (pgpool would compute it per backend).
    let defaults = count(
        &c,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND column_default IS NOT NULL",
    )
    .await;
    assert_eq!(defaults, 0);
}
