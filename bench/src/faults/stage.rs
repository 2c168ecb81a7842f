//! What differs between the storage stages in a faults run, in one place:
//!
//! * [`cart_store`]: where the check "no acknowledged cart change is lost" reads carts: backend
//!   0 directly in the PostgreSQL stage; in the Redis and Cassandra stages the Redis adapter
//!   connected afresh through the topology's sentinels, so the check reads the master they name
//!   after a failover (and the replicas the adapter proves fresh), as the service does.
//! * [`instance_with_role`]: which instance a target such as "redis master" or "redis replica"
//!   means at the moment of the kill (after a failover the master is another instance).
//! * [`settled`]: the stage's stores are whole again before the next fault starts.

use crate::matrix::{Stage, Store};
use anyhow::{bail, Context, Result};
use domain::ports::CartRepository;
use infra::{Kind, Running, Topology};
use settings::WebSettings;
use std::sync::Arc;

/// The store that holds the carts of a stage, as the checks read it (straight, not through the
/// web tier).
pub struct CartStore {
    /// Shown in the table, e.g. "postgres 0 (direct)".
    pub name: String,
    pub carts: Arc<dyn CartRepository>,
}

/// Where the carts of `stage` live, connected afresh (called after each fault, so no pooled
/// connection predates a restart). `None`: this build cannot read the stage's carts (a bench
/// built without the stage's feature); the check is then reported as not done.
/// `web` is what a web instance is given (the passwords on `[[hosts]]`).
pub async fn cart_store(stage: Stage, topology: &Topology, web: &WebSettings) -> Result<Option<CartStore>> {
    match stage.cart_store() {
        Store::Postgres => {
            // Backend 0, read directly: the consistency check compares it with the others.
            anyhow::ensure!(topology.count(Kind::Postgres) > 0, "no PostgreSQL backend");
            let (host, port) = topology.endpoint(Kind::Postgres, 0);
            let backend = format!("{host}:{port}");
            let mut settings = adapter_postgres::PgSettings::new(vec![backend.clone()]);
            settings.dbname = infra::SHOP_DB.into();
            settings.pool_size = 2;
            settings.password.clone_from(&web.postgres.password);
            let store = adapter_postgres::PgStore::connect(&settings)
                .await
                .with_context(|| format!("connecting to postgres 0 ({backend}) for the cart check"))?;
            Ok(Some(CartStore { name: format!("postgres 0 ({backend}, direct)"), carts: store.stores().carts }))
        }
        Store::Redis => redis_carts(topology, web).await,
        Store::Cassandra => {
            bail!("stage {stage} keeps the carts in Cassandra: the faults run has no cart check for it")
        }
    }
}

/// The Redis adapter's carts, found through the sentinels as the web instances find them (the
/// same master name, no key prefix).
#[cfg(feature = "stage-redis")]
async fn redis_carts(topology: &Topology, web: &WebSettings) -> Result<Option<CartStore>> {
    anyhow::ensure!(topology.count(Kind::Sentinel) > 0, "the topology has no sentinels to find the Redis master");
    let sentinels: Vec<String> = (0..topology.count(Kind::Sentinel))
        .map(|i| {
            let (host, port) = topology.endpoint(Kind::Sentinel, i);
            format!("{host}:{port}")
        })
        .collect();
    let mut settings = adapter_redis::RedisSettings::new(sentinels.clone());
    settings.master_name = topology.sentinel.master_name.clone();
    settings.pool_size = 2;
    if let Some(redis) = &web.redis {
        settings.password.clone_from(&redis.password);
        settings.sentinel_password.clone_from(&redis.sentinel_password);
    }
    let store = adapter_redis::RedisStore::connect(&settings).await.with_context(|| {
        format!("connecting to redis through the sentinels {} for the cart check", sentinels.join(","))
    })?;
    let name = format!(
        "redis (master {}, fresh replicas [{}], through the sentinels)",
        store.master().unwrap_or_else(|| "?".into()),
        store.readable_replicas().join(", ")
    );
    Ok(Some(CartStore { name, carts: store.carts() }))
}

#[cfg(not(feature = "stage-redis"))]
async fn redis_carts(_: &Topology, _: &WebSettings) -> Result<Option<CartStore>> {
    eprintln!("faults: this bench was built without stage-redis: the carts in Redis are not checked");
    Ok(None)
}

/// The index of the `kind` instance that has `role` now, for targets like "redis master".
pub fn instance_with_role(running: &Running, kind: Kind, role: &str) -> Result<usize> {
    let topology = running.topology();
    match (kind, role) {
        // pgpool's main node: the live backend with the lowest id (as pgpool 0 sees them).
        (Kind::Postgres, "main") => {
            let (host, port) = topology.endpoint(Kind::Pgpool, 0);
            let nodes = infra::pool_nodes(&host, port).context("asking pgpool 0 for its main node")?;
            nodes.iter().filter(|n| n.status == "up").map(|n| n.node_id).min().context("pgpool 0 sees no backend up")
        }
        // The master every live sentinel names (waiting for them to settle after a failover).
        (Kind::Redis, "master") => running.redis_master_index().context("asking the sentinels for the Redis master"),
        // The first live instance that replicates from that master with its link up.
        (Kind::Redis, "replica") => {
            let master = running.redis_master().context("asking the sentinels for the Redis master")?;
            let endpoints = running.redis_endpoints();
            endpoints
                .iter()
                .enumerate()
                .filter(|(_, addr)| **addr != master)
                .find(|(_, addr)| replica_of(addr, running.redis_password(), &master))
                .map(|(i, _)| i)
                .with_context(|| format!("no redis instance is a replica of {master} with its link up"))
        }
        _ => bail!("no {kind} instance is known by the role {role:?}"),
    }
}

/// Whether the Redis instance at `addr` replicates from `master` with its link up (asked with
/// the run's password on `[[hosts]]`).
fn replica_of(addr: &str, password: Option<&str>, master: &str) -> bool {
    infra::redis::info_as(addr, password, "replication").is_ok_and(|i| {
        let get = |k: &str| i.get(k).map(String::as_str).unwrap_or("");
        get("role") == "slave"
            && format!("{}:{}", get("master_host"), get("master_port")) == master
            && get("master_link_status") == "up"
    })
}

/// What keeps the stage's stores from being whole, beyond dead processes (which the caller
/// checks): with Redis, the sentinels must agree on a master and every other instance must
/// replicate from it with its link up, so a fault never starts while the last one's failover or
/// resync is still going on.
pub fn settled(running: &Running) -> Vec<String> {
    let t = running.topology();
    if t.count(Kind::Redis) == 0 || t.count(Kind::Sentinel) == 0 {
        return vec![];
    }
    let master = match running.redis_master() {
        Ok(m) => m,
        Err(e) => return vec![format!("{e:#}")],
    };
    running
        .redis_endpoints()
        .iter()
        .enumerate()
        .filter(|(_, addr)| **addr != master)
        .filter(|(_, addr)| !replica_of(addr, running.redis_password(), &master))
        .map(|(i, addr)| format!("redis {i} ({addr}) is not a replica of the master {master} with its link up"))
        .collect()
}
