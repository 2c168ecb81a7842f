//! CartRepository on a real Redis set (SHOPBENCH_TEST_REDIS: the Sentinels of scripts/test's
//! master + 2 replicas): the contract every cart store keeps (adapter-contract), then what is
//! Redis's own: the key layout, and a user reading their own changes from the replicas.

use adapter_contract::carts::{lines, product_id, product_ids, qty, CartFixture};
use adapter_redis::{RedisSettings, RedisStore};
use domain::models::*;
use domain::ports::CartRepository;
use fred::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use test_support::redis::{fresh_prefix, test_settings};

fn new_user() -> UserId {
    UserId::from_uuid(uuid::Uuid::now_v7())
}

async fn store() -> (RedisStore, RedisSettings) {
    let settings = fresh_prefix(&test_settings());
    (RedisStore::connect(&settings).await.expect("connect to the test redis set"), settings)
}

/// Carts under a fresh key prefix, and two users (Redis does not know users).
async fn fresh() -> (Arc<dyn CartRepository>, CartFixture) {
    let (store, _) = store().await;
    (store.carts(), CartFixture { users: [new_user(), new_user()] })
}

adapter_contract::cart_contract!(fresh);

/// A plain connection to one node, to look behind the adapter's back.
async fn raw(addr: &str) -> Client {
    let endpoints::HostPort { host, port } = addr.parse().unwrap();
    let client =
        Builder::from_config(Config { server: ServerConfig::new_centralized(host, port), ..Default::default() })
            .build()
            .unwrap();
    client.init().await.unwrap();
    client
}

#[tokio::test]
async fn a_cart_is_one_hash_per_user_under_the_prefix() {
    let (store, settings) = store().await;
    let carts = store.carts();
    let (u, p) = (new_user(), product_ids(2));
    carts.add(u, p[0], qty(2)).await.unwrap();
    carts.set(u, p[1], qty(5)).await.unwrap();

    let master = raw(&store.master().unwrap()).await;
    let key = format!("{}{}", settings.key_prefix, u);
    let fields: HashMap<String, String> = master.hgetall(&key).await.unwrap();
    // Each line is "quantity:stamp", the stamp being the id of the change that made the line.
    let lines: HashMap<&str, (&str, &str)> = fields
        .iter()
        .filter(|(f, _)| !f.starts_with("op:"))
        .map(|(f, v)| (f.as_str(), v.split_once(':').expect("quantity:stamp")))
        .collect();
    let (a, b) = (p[0].to_string(), p[1].to_string());
    assert_eq!(lines[a.as_str()].0, "2");
    assert_eq!(lines[b.as_str()].0, "5");
    assert_eq!(lines.len(), 2);
    for (_, stamp) in lines.values() {
        assert!(fields.contains_key(&format!("op:{stamp}")), "the stamp is a change id: {fields:?}");
    }
    assert_eq!(fields.len() - lines.len(), 2, "one id per change, kept for retries: {fields:?}");
    let ttl: i64 = master.pttl(&key).await.unwrap();
    assert_eq!(ttl, -1, "a cart with lines does not expire");

    // An emptied cart keeps only the recent change ids, and its key expires.
    carts.clear(u).await.unwrap();
    let fields: HashMap<String, String> = master.hgetall(&key).await.unwrap();
    assert!(fields.keys().all(|f| f.starts_with("op:")), "{fields:?}");
    let ttl: i64 = master.pttl(&key).await.unwrap();
    assert!(ttl > 0, "an empty cart's key expires: {ttl}");
    // Nothing else of this store's is outside the prefix's cart keys and its heartbeat.
    let mut found = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let args =
            vec![cursor.clone(), "MATCH".into(), format!("{}*", settings.key_prefix), "COUNT".into(), "1000".into()];
        let (next, batch): (String, Vec<String>) =
            master.custom(fred::types::CustomCommand::new_static("SCAN", None, false), args).await.unwrap();
        found.extend(batch);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    found.sort();
    let mut expected = vec![key.clone(), format!("{}heartbeat", settings.key_prefix)];
    expected.sort();
    assert_eq!(found, expected);
}

/// Every read right after the user's own change shows it, from this app instance or another,
/// though reads go to the replicas and replication is asynchronous (the write waited for them:
/// docs/redis.md).
#[tokio::test]
async fn a_user_reads_their_own_change_at_once() {
    let (store, settings) = store().await;
    let carts = store.carts();
    // Another app instance on the same Redis set reads the change at once too.
    let other = RedisStore::connect(&settings).await.unwrap().carts();
    let (u, p) = (new_user(), product_id());
    for i in 1..=300u32 {
        let q = i % Quantity::MAX + 1;
        carts.set(u, p, qty(q)).await.unwrap();
        assert_eq!(lines(&carts.get(u).await.unwrap()), vec![(p, q)], "read {i} after its write");
        assert_eq!(lines(&other.get(u).await.unwrap()), vec![(p, q)], "read {i} through another instance");
    }
    assert!(!store.readable_replicas().is_empty(), "the reads went to replicas");
}
