//! The product catalogue in a Cassandra ring, on the scylla driver.
//!
//! * One driver `Session` for the whole ring: it learns every node from `system.peers`, keeps a
//!   connection pool per node, routes each statement token-aware to a replica of its partition
//!   (a random one, to spread the load) and moves on to the next node when one is down.
//!   `shop_cassandra_requests_total{node}` counts the requests each node coordinated.
//! * The default execution profile sets QUORUM for reads and writes (SERIAL for the Paxos phase
//!   of conditional writes): with replication factor 3 every read sees every acknowledged write,
//!   and one node may be down without an error.
//! * Two tables shaped for the API's queries: `products` by id (get, update, delete, and the
//!   whole catalogue in token order) and `products_by_category` (one partition per category,
//!   ids ascending: a category's pages are a single-partition slice). docs/cassandra.md has the
//!   data model, the consistency argument and the measured failover.
//! * Every statement is prepared once at connect time; the schema is created here, idempotently,
//!   and the driver waits for schema agreement after each change.

mod catalogue;
mod schema;
mod settings;

pub use settings::CassandraSettings;

use async_trait::async_trait;
use domain::ports::{Catalogue, HealthCheck, StoreResult};
use domain::{StoreError, StoreFailure};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A hung node (a stopped JVM, a full GC) keeps its TCP connections open, so without these the
/// driver would go on sending it a share of the requests, each failing only at the request
/// timeout. An idempotent statement (every read) is sent to the next replica in the plan when
/// the first has not answered in 250 ms; QUORUM is unchanged, so the answer is as fresh. The
/// conditional writes are not idempotent and are not speculated: they fail at the request
/// timeout and the catalogue's own retry reads the state first.
const SPECULATION: SimpleSpeculativeExecutionPolicy =
    SimpleSpeculativeExecutionPolicy { max_retry_count: 2, retry_interval: Duration::from_millis(250) };

/// A connection whose keepalive has not been answered in time is closed, and a node with no open
/// connection is skipped at once: a hung node is out of every plan within 3.5 s, well inside the
/// app's 4 s request budget. (The driver's defaults, 30 s and 30 s, kept one for up to a minute.)
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(1500);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The Cassandra adapter. Cheap to clone.
#[derive(Clone)]
pub struct CassandraStore {
    inner: Arc<catalogue::Inner>,
}

impl CassandraStore {
    /// Connects to the ring (succeeds when some node of `settings.nodes` answers), creates the
    /// keyspace and tables if they are missing, waits for schema agreement and prepares every
    /// statement.
    pub async fn connect(settings: &CassandraSettings) -> anyhow::Result<CassandraStore> {
        settings.check()?;
        let profile = ExecutionProfile::builder()
            .consistency(Consistency::Quorum)
            .serial_consistency(Some(SerialConsistency::Serial))
            .request_timeout(Some(settings.request_timeout()))
            .speculative_execution_policy(Some(Arc::new(SPECULATION)))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&settings.nodes)
            .connection_timeout(settings.connect_timeout())
            .keepalive_interval(KEEPALIVE_INTERVAL)
            .keepalive_timeout(KEEPALIVE_TIMEOUT)
            .default_execution_profile_handle(profile.into_handle());
        // Off loopback the ring asks every client to log in (PasswordAuthenticator).
        if let Some((user, password)) = settings.login() {
            builder = builder.user(user, password);
        }
        let session: Session = builder
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("no cassandra node answers ({}): {e}", settings.nodes.join(", ")))?;
        schema::ensure(&session, settings).await?;
        let statements = catalogue::Statements::prepare(&session, &settings.keyspace).await?;
        let inner = catalogue::Inner { session, st: statements, keyspace: settings.keyspace.clone() };
        Ok(CassandraStore { inner: Arc::new(inner) })
    }

    /// The catalogue port.
    pub fn catalogue(&self) -> Arc<dyn Catalogue> {
        Arc::new(catalogue::CassandraCatalogue(self.inner.clone()))
    }

    /// Readiness: a QUORUM read of the catalogue succeeds.
    pub fn health(&self) -> Arc<dyn HealthCheck> {
        Arc::new(CassandraHealth(self.inner.clone()))
    }

    /// The driver session (tests look at the ring through it and pin statements to one node).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    pub fn keyspace(&self) -> &str {
        &self.inner.keyspace
    }
}

struct CassandraHealth(Arc<catalogue::Inner>);

#[async_trait]
impl HealthCheck for CassandraHealth {
    fn name(&self) -> &str {
        "cassandra"
    }

    async fn check(&self) -> StoreResult<()> {
        let probe = uuid::Uuid::nil();
        timed("health", async { self.0.execute(&self.0.st.get, (probe,)).await.map(drop) }).await
    }
}

/// Records `shop_store_seconds{store="cassandra",op}` for one port call, failures included.
pub(crate) async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let started = Instant::now();
    let r = f.await;
    metrics::histogram!("shop_store_seconds", "store" => "cassandra", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = &r {
        tracing::warn!(op, error = %e, "cassandra request failed");
    }
    r
}

/// The driver's error `e` kept as the source, with its chain.
pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(what: &str, e: E) -> StoreError {
    StoreError::Unavailable(StoreFailure::caused_by(format!("cassandra {what}: {e}"), e))
}

/// A failure the adapter found itself (no driver error behind it).
pub(crate) fn failed(what: &str, why: &str) -> StoreError {
    StoreError::Unavailable(format!("cassandra {what}: {why}").into())
}

pub(crate) async fn prepare(session: &Session, cql: String, idempotent: bool) -> anyhow::Result<PreparedStatement> {
    let mut st = session.prepare(cql.as_str()).await.map_err(|e| anyhow::anyhow!("preparing {cql:?}: {e}"))?;
    // The driver retries only idempotent statements on another node after a failure that may
    // have reached the server (and speculate only with them); the catalogue retries the rest.
    st.set_is_idempotent(idempotent);
    Ok(st)
}
