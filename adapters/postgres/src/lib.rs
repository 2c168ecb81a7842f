//! PostgreSQL stores for every port, reached through one or more pgpool-II endpoints.
//!
//! * `PgStore::connect` opens a bb8 pool per endpoint (tokio-postgres underneath) and succeeds when
//!   at least one endpoint answers; `migrate` applies the embedded schema migrations.
//! * Operations go round-robin over healthy endpoints and move to the next one when an endpoint
//!   fails (see `cluster`); every write is idempotent, so such a retry never applies it twice.
//! * The schema is written for pgpool-II native replication, which runs each write on every
//!   backend: ids and timestamps come from the application, no statement evaluates anything that
//!   differs per backend, and every statement's row count is the same on every backend.
//!
//! Why not tokio-postgres' own multi-host support (`host=a,b` with `load_balance_hosts=random`):
//! it only orders the hosts a *new* connection tries (shuffled, then one after another, each with
//! its own connect timeout). Behind one bb8 pool that gives a random, not round-robin, split that
//! is fixed for the life of the pooled connections; a dead pgpool is tried again by every new
//! connection (a hung one costs a connect timeout each time); nothing tells which host a
//! connection is on, so there are no per-endpoint metrics, no taking a failed pgpool out of
//! rotation, no probing it back, and no retry of an operation whose session pgpool dropped.
//! One pool per endpoint plus our own health state gives all of that.
//!
//! docs/replication.md has the whole design, what is retried and why that is safe, and the
//! failovers measured with app/tests/replication.rs.

mod carts;
mod catalogue;
mod cluster;
mod conn;
mod migrate;
mod orders;
mod rows;
mod selector;
mod settings;
mod users;

pub use settings::PgSettings;

/// The statements of a cart add, as `carts.add` sends them (BEGIN, `LOCK_USER` and `GET` in one
/// round trip; `UPSERT_ADD`, `ADD_RECORD` and COMMIT in the next), for the bench's minimal client
/// (`shopbench-bench writes`), which must run exactly these.
pub mod cart_add_statements {
    pub use crate::carts::{ADD_RECORD, GET, LOCK_USER, UPSERT_ADD};
}

use async_trait::async_trait;
use cluster::{with_conn, Cluster};
use domain::ports::{HealthCheck, StoreResult};
use std::sync::Arc;

/// The PostgreSQL adapter. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    cluster: Arc<Cluster>,
}

impl PgStore {
    /// Opens a pool per endpoint; succeeds if at least one endpoint answers. Endpoints that do not
    /// start out of rotation and are probed in the background until they do.
    pub async fn connect(settings: &PgSettings) -> anyhow::Result<PgStore> {
        let cluster = Arc::new(Cluster::new(settings)?);
        let probes = futures_util::future::join_all(cluster.endpoints.iter().map(|ep| ep.probe())).await;
        let mut errors = Vec::new();
        for (i, r) in probes.into_iter().enumerate() {
            if let Err(e) = r {
                let addr = &cluster.endpoints[i].addr;
                tracing::warn!(endpoint = %addr, error = %e, "postgres endpoint does not answer");
                cluster.selector.mark_down(i);
                errors.push(format!("{addr}: {e}"));
            }
        }
        if errors.len() == cluster.endpoints.len() {
            anyhow::bail!("no postgres endpoint answers: {}", errors.join("; "));
        }
        Cluster::spawn_prober(Arc::downgrade(&cluster));
        Ok(PgStore { cluster })
    }

    /// Applies the schema migrations this build has and the database lacks. Idempotent, and safe
    /// when several instances run it at once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrate::migrate(&self.cluster).await
    }

    /// Every port backed by this store.
    pub fn stores(&self) -> domain::Stores {
        domain::Stores {
            users: Arc::new(users::PgUsers(self.cluster.clone())),
            catalogue: Arc::new(catalogue::PgCatalogue(self.cluster.clone())),
            carts: Arc::new(carts::PgCarts(self.cluster.clone())),
            orders: Arc::new(orders::PgOrders(self.cluster.clone())),
        }
    }

    pub fn health(&self) -> Arc<dyn HealthCheck> {
        Arc::new(PgHealth(self.cluster.clone()))
    }

    /// Endpoints currently in rotation, in settings order (for diagnostics and tests).
    pub fn healthy_endpoints(&self) -> Vec<String> {
        (0..self.cluster.endpoints.len())
            .filter(|&i| self.cluster.selector.is_healthy(i))
            .map(|i| self.cluster.endpoints[i].addr.clone())
            .collect()
    }
}

struct PgHealth(Arc<Cluster>);

#[async_trait]
impl HealthCheck for PgHealth {
    fn name(&self) -> &str {
        "postgres"
    }
    /// Ready when some endpoint runs a query.
    async fn check(&self) -> StoreResult<()> {
        with_conn!(self.0, "health", |c, _retries| {
            c.client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }
}
