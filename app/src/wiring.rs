//! Picks the adapter behind each port from the build's stage feature and the configuration.
//!
//! * no `postgres`: the in-memory store for everything (zero-setup `cargo run`);
//! * stage-pg: everything in PostgreSQL;
//! * stage-redis: carts in Redis, users, catalogue and orders in PostgreSQL; both must be
//!   configured, or the app refuses to start rather than measure the wrong stores.

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
    refuse_unbuilt_stages()?;
    match &settings.postgres {
        None => {
            if settings.redis.is_some() {
                anyhow::bail!("redis is configured without postgres: the users, catalogue and orders need postgres");
            }
            tracing::warn!("no postgres configured: using the in-memory store, data is lost on exit");
            let store = adapter_memory::MemoryStore::new();
            Ok(Wiring { stores: store.stores(), health: vec![Arc::new(store)] })
        }
        Some(pg) => {
            let wiring = postgres(pg).await?;
            carts_elsewhere(settings, wiring).await
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

/// A build for a later stage must not quietly measure the previous stage's stores.
fn refuse_unbuilt_stages() -> anyhow::Result<()> {
    if cfg!(feature = "stage-cassandra") {
        anyhow::bail!("this build has feature stage-cassandra, whose store wiring is not implemented yet");
    }
    Ok(())
}
