//! One pooled connection: a tokio-postgres client plus the statements prepared on it.

use bb8_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::{Client, GenericClient, NoTls, Statement};

/// A connection with its own cache of prepared statements, keyed by SQL text. Statements live
/// as long as the server session; when pgpool drops the session the connection is discarded and
/// its cache with it.
pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set when an attempt was abandoned mid-statement: the session's state is unknown, so bb8
    /// must close it instead of handing it out again.
    pub(crate) broken: bool,
}

impl PgConn {
    /// The statement for `sql`, prepared on this connection the first time it is asked for.
    pub(crate) async fn prepare(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        prepare_cached(&mut self.statements, &self.client, sql).await
    }

    /// Splits the connection so a transaction can borrow the client while statements are cached.
    pub(crate) fn parts(&mut self) -> (&mut Client, &mut Cache) {
        (&mut self.client, &mut self.statements)
    }
}

pub(crate) type Cache = HashMap<&'static str, Statement>;

/// Prepares `sql` through `client` (a client or a transaction) unless `cache` has it.
pub(crate) async fn prepare_cached(
    cache: &mut Cache,
    client: &impl GenericClient,
    sql: &'static str,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql).await?;
    cache.insert(sql, s.clone());
    Ok(s)
}

/// Transaction control as simple queries, as tokio-postgres' own `Transaction` sends them: a
/// statement polled together with others (`futures_util::future::join*`, which polls in order) is
/// written to the socket right behind them, so BEGIN, the statements and COMMIT of one write go
/// to pgpool-II in one round trip instead of one each. pgpool-II still runs each on every backend
/// in turn, within the explicit transaction that keeps concurrent writes in the same order on
/// every backend (the main node's lock is held until the others have committed).
pub(crate) const BEGIN: &str = "BEGIN";
pub(crate) const COMMIT: &str = "COMMIT";

/// Ends a transaction the attempt will not commit (a refusal, a replayed add, a failed read).
/// The session is known and alive here; should it have died, bb8 drops it as closed.
pub(crate) async fn rollback(client: &Client) {
    let _ = client.batch_execute("ROLLBACK").await;
}

/// bb8 manager: bb8-postgres opens the connection, we set the session's statement timeout and
/// add the statement cache.
pub(crate) struct Manager {
    pub(crate) pg: PostgresConnectionManager<NoTls>,
    /// `SET statement_timeout = '<ms>ms'`, run once per new session (see `cluster::lock_wait_limit`).
    pub(crate) setup: String,
}

impl Manager {
    pub(crate) fn new(pg: PostgresConnectionManager<NoTls>, statement_timeout: Duration) -> Self {
        Self { pg, setup: session_setup(statement_timeout) }
    }
}

/// The statement that gives a new session its statement timeout. A literal, so it is the same text
/// (and the same value) on every backend pgpool-II sends it to.
pub(crate) fn session_setup(statement_timeout: Duration) -> String {
    format!("SET statement_timeout = '{}ms'", statement_timeout.as_millis().max(1))
}

impl bb8::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<PgConn, tokio_postgres::Error> {
        let client = self.pg.connect().await?;
        // Session level, not per transaction: one round trip per new session instead of one more
        // statement through pgpool-II to every backend per write; it also bounds the single
        // statement writes. pgpool-II sends SET to every backend, and its reset_query_list
        // (default 'ABORT; DISCARD ALL') ends it with this client session.
        client.batch_execute(&self.setup).await?;
        Ok(PgConn { client, statements: HashMap::new(), broken: false })
    }

    async fn is_valid(&self, conn: &mut PgConn) -> Result<(), tokio_postgres::Error> {
        conn.client.simple_query("").await.map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.broken || conn.client.is_closed()
    }
}
