//! Picks the adapter behind each port from the build's stage feature and the configuration.

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
            tracing::warn!("no postgres configured: using the in-memory store, data is lost on exit");
            let store = adapter_memory::MemoryStore::new();
            Ok(Wiring { stores: store.stores(), health: vec![Arc::new(store)] })
        }
        Some(pg) => postgres(pg).await,
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

/// A build for a later stage must not quietly measure the previous stage's stores.
fn refuse_unbuilt_stages() -> anyhow::Result<()> {
    if cfg!(feature = "stage-cassandra") {
        anyhow::bail!("this build has feature stage-cassandra, whose store wiring is not implemented yet");
    }
    if cfg!(feature = "stage-redis") {
        anyhow::bail!("this build has feature stage-redis, whose store wiring is not implemented yet");
    }
    Ok(())
}
