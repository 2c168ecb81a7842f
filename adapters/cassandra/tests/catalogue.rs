//! Catalogue against a real Cassandra ring (SHOPBENCH_TEST_CASSANDRA, started by scripts/test):
//! the shared catalogue contract (adapters/contract), then what only this adapter promises.

use adapter_cassandra::{CassandraSettings, CassandraStore};
use domain::ports::Catalogue;
use std::collections::HashMap;
use std::sync::Arc;
use test_support::cassandra::{fresh_keyspace, test_settings};

/// A catalogue in a keyspace of its own.
async fn fresh() -> Arc<dyn Catalogue> {
    CassandraStore::connect(&fresh_keyspace(&test_settings())).await.expect("connect").catalogue()
}

adapter_contract::catalogue_contract!(fresh);

#[tokio::test]
async fn the_keyspace_is_replicated_to_every_node_and_ready() {
    let settings = fresh_keyspace(&test_settings());
    let store = CassandraStore::connect(&settings).await.unwrap();
    let rows = store
        .session()
        .query_unpaged("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", (store.keyspace(),))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (replication,) = rows.single_row::<(HashMap<String, String>,)>().unwrap();
    assert_eq!(
        replication.get("replication_factor").map(String::as_str),
        Some(settings.replication_factor.to_string().as_str())
    );
    let health = store.health();
    assert_eq!(health.name(), "cassandra");
    health.check().await.unwrap();
}

#[tokio::test]
async fn instances_creating_the_schema_at_once_share_it() {
    let settings = fresh_keyspace(&test_settings());
    let (a, b) = tokio::join!(CassandraStore::connect(&settings), CassandraStore::connect(&settings));
    let (a, b) = (a.unwrap().catalogue(), b.unwrap().catalogue());
    let p = adapter_contract::catalogue::product("Shared", "both", 10);
    a.insert(&p).await.unwrap();
    assert_eq!(b.get(p.id).await.unwrap(), Some(p.clone()));
    b.insert(&p).await.unwrap();
    assert_eq!(adapter_contract::catalogue::walk(&*a, Some(&p.category), 10).await, vec![p]);
}

#[tokio::test]
async fn no_answering_node_is_a_clear_error() {
    let settings = CassandraSettings { connect_timeout_ms: 500, ..CassandraSettings::new(vec!["127.0.0.1:1".into()]) };
    let err = CassandraStore::connect(&settings).await.err().expect("nothing listens on port 1").to_string();
    assert!(err.contains("no cassandra node answers (127.0.0.1:1)"), "{err}");
}

/// The requests each node coordinated, so far (a snapshot drains the debugging recorder).
fn coordinated() -> HashMap<String, u64> {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use std::sync::{Mutex, OnceLock};
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    static TOTALS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let snap = SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        recorder.install().expect("the only recorder of this test binary");
        snap
    });
    let mut totals = TOTALS.get_or_init(Default::default).lock().unwrap();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        if let (DebugValue::Counter(n), "shop_cassandra_requests_total") = (value, key.key().name()) {
            for label in key.key().labels().filter(|l| l.key() == "node") {
                *totals.entry(label.value().to_string()).or_default() += n;
            }
        }
    }
    totals.clone()
}

#[tokio::test]
async fn requests_are_spread_over_every_node() {
    let before = coordinated();
    let cat = fresh().await;
    let products: Vec<_> =
        (0..30).map(|i| adapter_contract::catalogue::product(&format!("P{i}"), "spread", i)).collect();
    for p in &products {
        cat.insert(p).await.unwrap();
    }
    for _ in 0..3 {
        for p in &products {
            assert!(cat.get(p.id).await.unwrap().is_some());
        }
    }
    let after = coordinated();
    let nodes = test_settings().nodes;
    for node in &nodes {
        let n = after.get(node).copied().unwrap_or(0) - before.get(node).copied().unwrap_or(0);
        assert!(n >= 10, "{node} coordinated {n} of the ~180 requests: {after:?}");
    }
}

/// Checkout's prices come from one `IN` read of the cart's products (get_many): it must see every
/// acknowledged reprice and delete at once, through another client of the ring, for a cart of the
/// largest size (a product deleted or repriced a moment ago is never sold at the old price).
#[tokio::test]
async fn get_many_sees_every_reprice_and_delete_at_once_for_a_full_cart() {
    let settings = fresh_keyspace(&test_settings());
    let writer = CassandraStore::connect(&settings).await.unwrap().catalogue();
    let reader = CassandraStore::connect(&settings).await.unwrap().catalogue();
    let mut products: Vec<_> = (0..domain::models::Cart::MAX_LINES as i64)
        .map(|i| adapter_contract::catalogue::product(&format!("P{i}"), ["a", "b", "c"][i as usize % 3], 100 + i))
        .collect();
    futures_util::future::try_join_all(products.iter().map(|p| writer.insert(p))).await.unwrap();
    let ids: Vec<_> = products.iter().map(|p| p.id).collect();
    assert_eq!(reader.get_many(&ids).await.unwrap().len(), ids.len());
    // Every third repriced, every fourth (of the others) deleted.
    let mut deleted = Vec::new();
    for (i, p) in products.iter_mut().enumerate() {
        if i % 3 == 0 {
            p.price = domain::models::Cents::price(p.price.get() + 1_000, "price_cents").unwrap();
            assert!(writer.update(p).await.unwrap());
        } else if i % 4 == 0 {
            assert!(writer.delete(p.id).await.unwrap());
            deleted.push(p.id);
        }
    }
    let mut got = reader.get_many(&ids).await.unwrap();
    got.sort_by_key(|p| p.id);
    let mut want: Vec<_> = products.into_iter().filter(|p| !deleted.contains(&p.id)).collect();
    want.sort_by_key(|p| p.id);
    assert_eq!(got, want);
    // Ids named twice are read once.
    let twice: Vec<_> = ids.iter().chain(ids.iter()).copied().collect();
    assert_eq!(reader.get_many(&twice).await.unwrap().len(), want.len());
}
