//! Picks the adapter behind each port from the build's stage feature and the configuration.
//!
//! * no `postgres`: the in-memory store for everything (zero-setup `cargo run`);
//! * stage-pg: everything in PostgreSQL;
//! * stage-redis: carts in Redis, users, catalogue and orders in PostgreSQL; both must be
//!   configured, or the app refuses to start rather than measure the wrong stores;
//! * stage-cassandra: also the catalogue in a Cassandra ring (checkout reads prices there);
//!   postgres, redis and cassandra must all be configured.

use crate::config::Settings;
use domain::ports::HealthCheck;
use domain::Stores;
use std::sync::Arc;

/// The stores the shop runs on, and the health checks of every one of them.
pub struct Wiring {
    pub stores: Stores,
    pub health: Vec<Arc<dyn HealthCheck>>,
}

pub async fn wire(settings: &Settings) -> anyhow::Result<Wiring> {
    match &settings.postgres {
        None => {
            if settings.redis.is_some() {
                anyhow::bail!("redis is configured without postgres: the users, catalogue and orders need postgres");
            }
            if settings.cassandra.is_some() {
                anyhow::bail!("cassandra is configured without postgres: the users and orders need postgres");
            }
            tracing::warn!("no postgres configured: using the in-memory store, data is lost on exit");
            let store = adapter_memory::MemoryStore::new();
            Ok(Wiring { stores: store.stores(), health: vec![Arc::new(store)] })
        }
        Some(pg) => {
            let wiring = postgres(pg).await?;
            let wiring = carts_elsewhere(settings, wiring).await?;
            catalogue_elsewhere(settings, wiring).await
        }
    }
}

#[cfg(feature = "stage-pg")]
async fn postgres(pg: &adapter_postgres::PgSettings) -> anyhow::Result<Wiring> {
    tracing::info!(endpoints = ?pg.endpoints, dbname = %pg.dbname, "connecting to postgres");
    let store = adapter_postgres::PgStore::connect(pg).await?;
    store.migrate().await?;
    Ok(Wiring { stores: store.stores(), health: vec![store.health()] })
}

#[cfg(not(feature = "stage-pg"))]
async fn postgres(_: &adapter_postgres::PgSettings) -> anyhow::Result<Wiring> {
    anyhow::bail!("postgres is configured but this build lacks the stage-pg feature")
}

/// stage-redis: the carts move to Redis (checkout then reads the cart from Redis and writes the
/// order to PostgreSQL; see docs/redis.md for why its idempotency still holds).
#[cfg(feature = "stage-redis")]
async fn carts_elsewhere(settings: &Settings, mut wiring: Wiring) -> anyhow::Result<Wiring> {
    let Some(redis) = &settings.redis else {
        anyhow::bail!(
            "this build has feature stage-redis: configure redis too (section `redis`, e.g. \
             SHOPBENCH__REDIS__SENTINELS=127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381)"
        );
    };
    tracing::info!(sentinels = ?redis.sentinels, master_name = %redis.master_name, "connecting to redis");
    let store = adapter_redis::RedisStore::connect(redis).await?;
    tracing::info!(master = ?store.master(), replicas = ?store.readable_replicas(), "carts in redis");
    wiring.stores.carts = store.carts();
    wiring.health.push(store.health());
    Ok(wiring)
}

#[cfg(not(feature = "stage-redis"))]
async fn carts_elsewhere(settings: &Settings, wiring: Wiring) -> anyhow::Result<Wiring> {
    if settings.redis.is_some() {
        anyhow::bail!(
            "redis is configured but this build lacks the stage-redis feature (the carts would stay in postgres)"
        );
    }
    Ok(wiring)
}

/// stage-cassandra: the catalogue moves to the Cassandra ring (QUORUM reads and writes; see
/// docs/cassandra.md). Checkout reads the prices from there through the same port.
#[cfg(feature = "stage-cassandra")]
async fn catalogue_elsewhere(settings: &Settings, mut wiring: Wiring) -> anyhow::Result<Wiring> {
    let Some(cassandra) = &settings.cassandra else {
        anyhow::bail!(
            "this build has feature stage-cassandra: configure cassandra too (section `cassandra`, e.g. \
             SHOPBENCH__CASSANDRA__NODES=127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042)"
        );
    };
    tracing::info!(nodes = ?cassandra.nodes, keyspace = %cassandra.keyspace, rf = cassandra.replication_factor, "connecting to cassandra");
    let store = adapter_cassandra::CassandraStore::connect(cassandra).await?;
    wiring.stores.catalogue = store.catalogue();
    wiring.health.push(store.health());
    Ok(wiring)
}

#[cfg(not(feature = "stage-cassandra"))]
async fn catalogue_elsewhere(settings: &Settings, wiring: Wiring) -> anyhow::Result<Wiring> {
    if settings.cassandra.is_some() {
        anyhow::bail!(
            "cassandra is configured but this build lacks the stage-cassandra feature (the catalogue would stay in \
             postgres)"
        );
    }
    Ok(wiring)
}
