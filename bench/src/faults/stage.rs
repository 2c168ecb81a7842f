//! What differs between the storage stages in a faults run, in one place. The PostgreSQL stage
//! is complete; the Redis and Cassandra stages plug in here:
//!
//! * [`cart_store`]: where the check "no acknowledged cart change is lost" reads carts. The
//!   Redis stage returns its Redis cart adapter connected through the topology's sentinels
//!   (reading the master), so the check covers a master failover.
//! * [`instance_with_role`]: which instance a target such as "redis master" or "redis replica"
//!   means at the moment of the kill (after a failover the master is another instance).
//! * infra's `Running::restart` needs an arm for each new kind (redis, sentinel, cassandra).

use anyhow::{bail, Context, Result};
use domain::ports::CartRepository;
use infra::{Kind, Topology};
use std::sync::Arc;

/// The store that holds the carts of a stage, as the checks read it (straight, not through the
/// web tier).
pub struct CartStore {
    /// Shown in the table, e.g. "postgres 0 (direct)".
    pub name: String,
    pub carts: Arc<dyn CartRepository>,
}

/// Where the carts of `stage` live, connected afresh (called after each fault, so no pooled
/// connection predates a restart). `None`: this build cannot read the stage's carts; the check
/// is then reported as not done.
pub async fn cart_store(stage: &str, topology: &Topology) -> Result<Option<CartStore>> {
    match stage {
        "pg" => {
            // Backend 0, read directly: the consistency check compares it with the others.
            anyhow::ensure!(topology.count(Kind::Postgres) > 0, "no PostgreSQL backend");
            let (host, port) = topology.endpoint(Kind::Postgres, 0);
            let backend = format!("{host}:{port}");
            let mut settings = adapter_postgres::PgSettings::new(vec![backend.clone()]);
            settings.dbname = infra::SHOP_DB.into();
            settings.pool_size = 2;
            let store = adapter_postgres::PgStore::connect(&settings)
                .await
                .with_context(|| format!("connecting to postgres 0 ({backend}) for the cart check"))?;
            Ok(Some(CartStore { name: format!("postgres 0 ({backend}, direct)"), carts: store.stores().carts }))
        }
        // "redis" | "cassandra": carts in Redis (the Redis helper): e.g.
        // adapter_redis's store connected through the topology's sentinels (Kind::Sentinel endpoints)
        _ => Ok(None),
    }
}

/// The index of the `kind` instance that has `role` now, for targets like "redis master".
pub fn instance_with_role(topology: &Topology, kind: Kind, role: &str) -> Result<usize> {
    match (kind, role) {
        // pgpool's main node: the live backend with the lowest id (as pgpool 0 sees them).
        (Kind::Postgres, "main") => {
            let (host, port) = topology.endpoint(Kind::Pgpool, 0);
            let nodes = infra::pool_nodes(&host, port).context("asking pgpool 0 for its main node")?;
            nodes.iter().filter(|n| n.status == "up").map(|n| n.node_id).min().context("pgpool 0 sees no backend up")
        }
        // The Redis stage adds ("redis", "master") (a sentinel's get-master-addr-by-name) and
        // ("redis", "replica") here.
        _ => bail!("no {kind} instance is known by the role {role:?} in this build"),
    }
}
