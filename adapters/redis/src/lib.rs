//! Carts in Redis (issue #5): a master and read-only replicas watched by Sentinel.
//!
//! * `RedisStore::connect` asks the Sentinels for the master and the replicas and opens a fred
//!   pool per node (fred's replica routing only works against Redis Cluster, so `router` routes
//!   by itself); a background task follows failovers and checks the replicas' freshness.
//! * Cart changes run as one Lua script on the master, then `WAIT` for the replicas; reads go
//!   round-robin to the replicas that are proven fresh, else to the master (`carts`).
//!
//! docs/redis.md has the consistency design: what a user sees after their own change, what a
//! master failover can and cannot lose.

mod carts;
mod router;
mod settings;

pub use settings::RedisSettings;

use async_trait::async_trait;
use domain::ports::{CartRepository, HealthCheck, StoreResult};
use domain::{StoreError, StoreFailure};
use fred::prelude::*;
use router::Router;
use std::sync::Arc;

/// The Redis adapter. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    router: Arc<Router>,
}

impl RedisStore {
    /// Finds the master through the Sentinels and connects; fails when no Sentinel names a
    /// master that answers within the timeout (a few times over).
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<RedisStore> {
        let router = Arc::new(Router::new(settings)?);
        router
            .first_tick(settings.timeout() * 5)
            .await
            .map_err(|e| anyhow::anyhow!("redis (sentinels {}): {e}", settings.sentinels.join(",")))?;
        Router::spawn_ticks(Arc::downgrade(&router));
        Ok(RedisStore { router })
    }

    pub fn carts(&self) -> Arc<dyn CartRepository> {
        Arc::new(carts::RedisCarts(self.router.clone()))
    }

    pub fn health(&self) -> Arc<dyn HealthCheck> {
        Arc::new(RedisHealth(self.router.clone()))
    }

    /// The master's address as last found through Sentinel (diagnostics, tests).
    pub fn master(&self) -> Option<String> {
        self.router.view().master.as_ref().map(|m| m.addr.clone())
    }

    /// The replicas reads go to now (diagnostics, tests).
    pub fn readable_replicas(&self) -> Vec<String> {
        self.router.readable()
    }

    /// Checks the topology and the replicas' freshness now instead of at the next tick.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.router.tick().await.map_err(|e| anyhow::anyhow!(e))
    }
}

struct RedisHealth(Arc<Router>);

#[async_trait]
impl HealthCheck for RedisHealth {
    fn name(&self) -> &str {
        "redis"
    }
    /// Ready when the master answers: carts can be changed.
    async fn check(&self) -> StoreResult<()> {
        let view = self.0.view();
        let master = view.master.as_ref().ok_or_else(|| StoreError::Unavailable("redis: no master known".into()))?;
        master.client().ping::<String>(None).await.map(|_| ()).map_err(|e| {
            StoreError::Unavailable(StoreFailure::caused_by(format!("redis master {}: {e}", master.addr), e))
        })
    }
}
