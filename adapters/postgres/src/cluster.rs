//! The endpoints (pgpool-II instances) and how an operation reaches one of them.
//!
//! One bb8 pool per endpoint. An operation takes a connection from a healthy endpoint, picked
//! round-robin; when the attempt fails at the connection level (refused, dropped, pgpool's
//! failover error) the endpoint is taken out of rotation, a background probe puts it back once it
//! answers, and the operation is retried on the next endpoint after a short pause.
//!
//! Why retrying writes is safe: every write of this adapter is idempotent (ids and timestamps come
//! from the application; inserts are `ON CONFLICT DO NOTHING` keyed on the application's id,
//! updates set absolute values or compare-and-set), so running one again after an ambiguous
//! failure (connection lost after the server committed) changes nothing twice. Adding to a cart
//! line, the one change that is not idempotent by nature, records an id per call in the same
//! transaction, and a retry that finds its id does not add again (see `carts`). So every
//! operation is retried, also after a lost COMMIT or a timed-out attempt, and losing a pgpool
//! costs the caller a retry, never an error.

use crate::conn::Manager;
use crate::selector::{Selector, Tried};
use crate::settings::PgSettings;
use bb8::{ErrorSink, Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use domain::{StoreError, StoreFailure};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_postgres::NoTls;

/// How often endpoints taken out of rotation are probed, and pool gauges refreshed.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Pause before retrying on an endpoint this operation already tried: pgpool accepts new
/// sessions ~100-150 ms after a backend failover.
const BACKOFF_STEP: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(150);
/// An operation keeps retrying failed attempts for at least this long (and at least once per
/// endpoint, plus two): a pgpool failing over (a backend lost, or a node detached because it
/// answered differently) drops every session and refuses new ones for 0.1-0.5 s, and with one
/// pgpool dead the attempts that go to it are used up at once. Past the window an operation
/// answers `Unavailable` after its attempt count.
const RETRY_WINDOW: Duration = Duration::from_secs(2);
/// An attempt (all statements of one try of an operation) that takes longer than this many
/// connect timeouts is abandoned: a hung pgpool accepts connections but never answers. Longer
/// than the sessions' statement timeout (`LOCK_WAIT_TIMEOUTS`), so a statement that waits for a
/// lock is answered by the server before the attempt is taken for silence; short enough that a
/// write stuck on a hung pgpool is retried on another within the request's budget (4 s,
/// app/src/deadline.rs).
const ATTEMPT_TIMEOUTS: u32 = 3;
/// The same for a read, which waits for no lock: a pooled session whose backend hangs (its
/// reads are balanced to one node per session) is given up after this many connect timeouts.
const READ_ATTEMPT_TIMEOUTS: u32 = 2;
/// Every pooled session's `statement_timeout`, in connect timeouts (2 s by default): below a
/// write attempt's limit (`ATTEMPT_TIMEOUTS`), so that a statement waiting for a lock ends with
/// an answer before the attempt would be abandoned as silence.
///
/// Why: a transaction that froze while holding a user's row locks on the backends (its pgpool
/// SIGSTOPped, or its client cut off from its pgpool) keeps them until pgpool notices, and that
/// user's next write through a *healthy* pgpool waited for them in silence until the attempt
/// timed out, which took the healthy pgpool out of rotation ("no answer within 3s"; with the
/// frozen one already out, none was left for a moment). With the timeout the backend answers
/// SQLSTATE 57014 (`is_lock_wait`): a live endpoint, which stays in rotation, and an operation
/// that was not applied (its transaction is rolled back), answered `Unavailable` (503, try again).
///
/// Why `statement_timeout` and not `lock_timeout`: pgpool-II (4.3, native replication) runs a
/// write on the main node first and only then on the others, and it knows a query cancel on the
/// main node (`check_errors` in src/protocol/pool_proto_modules.c: deadlock, serialization
/// failure, query cancel): it then sends the other nodes an invalid query instead of the
/// statement, so they abort too, at once. A lock timeout (55P03) is not on that list: pgpool sends
/// the statement itself on, so each further node holding the lock waits out the timeout again
/// (N nodes, N times the wait), and a node that does not hold it (the frozen transaction had
/// locked the main node only, or its COMMIT had reached the others only: pgpool commits the main
/// node last) runs the statement while the main node failed: "kind mismatch among backends",
/// and pgpool ends the session, which again looked like a dead endpoint. Set once per session
/// (conn.rs), as a literal that is the same on every backend; COMMIT is not cut short by it
/// (PostgreSQL disarms the timeout before it commits).
const LOCK_WAIT_TIMEOUTS: u32 = 2;
/// The operations that only read (the names given to `with_conn!`).
const READS: &[&str] = &[
    "carts.get",
    "catalogue.get",
    "catalogue.get_many",
    "catalogue.list",
    "health",
    "orders.get",
    "orders.find_by_key",
    "orders.list_for_user",
    "users.get",
    "users.token_hash",
    "users.list",
];

/// Why one attempt of an operation failed.
#[derive(Debug)]
pub(crate) enum DbError {
    /// A final answer for the caller (conflict, rejection): never retried.
    Store(StoreError),
    /// The attempt got no answer in time; its connection was abandoned.
    TimedOut,
    /// A driver error; the retry loop decides from its kind.
    Pg(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

/// Errors that say the session or the endpoint is gone, not that the statement was wrong.
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
        // XX000: what pgpool-II sends when it drops sessions during a backend failover
        // ("unable to read message kind"); XX001: pgpool-II saw the nodes change different
        // numbers of rows (a node diverged) and, with failover_if_affected_tuples_mismatch,
        // detaches that node and drops every session; the retry runs without it (and may repeat
        // the write: every write here is safe to repeat).
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "XX000" | "XX001");
    }
    if e.as_db_error().is_some() {
        return false;
    }
    if std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    // tokio-postgres error kinds without a source: timeout, protocol desync after a drop.
    let text = e.to_string();
    ["error connecting", "timeout", "error communicating", "unexpected message", "error parsing response"]
        .iter()
        .any(|p| text.starts_with(p))
}

/// The driver error with the server's SQLSTATE and message (tokio-postgres' own text for a
/// server error is only "db error"). For logs and `StoreError::Unavailable`, never for clients.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

/// The server ended a statement that waited too long (in practice for a lock: see
/// `LOCK_WAIT_TIMEOUTS`): 57014 from the session's statement timeout, or 55P03 should a
/// `lock_timeout` be set. An answer: the endpoint is alive, and the statement's transaction is
/// rolled back.
pub(crate) fn is_lock_wait(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| matches!(c.code(), "57014" | "55P03"))
}

/// The statement timeout of the pooled sessions of an endpoint with this connect timeout.
pub(crate) fn lock_wait_limit(connect_timeout: Duration) -> Duration {
    connect_timeout * LOCK_WAIT_TIMEOUTS
}

/// Transaction aborted by the server for concurrency reasons: nothing was applied, try again.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| matches!(c.code(), "40001" | "40P01"))
}

/// The last connect error of an endpoint's pool, and a wake-up for whoever waits on that pool.
/// bb8 only reports failed connects to its error sink (`get` itself waits for its timeout), so
/// the sink tells waiting operations to move on at once.
#[derive(Debug, Default)]
struct Signal {
    notify: Notify,
    last: Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
struct Sink(Arc<Signal>);

impl ErrorSink<tokio_postgres::Error> for Sink {
    fn sink(&self, e: tokio_postgres::Error) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(describe(&e));
        self.0.notify.notify_waiters();
    }
    fn boxed_clone(&self) -> Box<dyn ErrorSink<tokio_postgres::Error>> {
        Box::new(self.clone())
    }
}

pub(crate) struct Endpoint {
    pub(crate) addr: String,
    config: tokio_postgres::Config,
    pool_size: u32,
    timeout: Duration,
    signal: Arc<Signal>,
    pool: RwLock<Pool<Manager>>,
}

impl Endpoint {
    fn new(addr: &str, settings: &PgSettings) -> anyhow::Result<Self> {
        let config = settings.config_for(addr)?;
        let signal = Arc::new(Signal::default());
        let pool = RwLock::new(build_pool(&config, settings.pool_size, settings.connect_timeout(), &signal));
        Ok(Self {
            addr: addr.to_string(),
            config,
            pool_size: settings.pool_size.max(1),
            timeout: settings.connect_timeout(),
            signal,
            pool,
        })
    }

    fn pool(&self) -> Pool<Manager> {
        self.pool.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the pool with an empty one: after pgpool dropped its sessions every idle
    /// connection is dead, and handing them out one by one would burn the retries.
    fn renew_pool(&self) {
        let fresh = build_pool(&self.config, self.pool_size, self.timeout, &self.signal);
        *self.pool.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// Opens a connection outside the pool and runs `SELECT 1`.
    pub(crate) async fn probe(&self) -> Result<(), String> {
        let attempt = async {
            let (client, connection) = self.config.connect(NoTls).await.map_err(|e| describe(&e))?;
            let driver = tokio::spawn(connection);
            let r = client.simple_query("SELECT 1").await.map(|_| ()).map_err(|e| describe(&e));
            drop(client);
            let _ = driver.await;
            r
        };
        match tokio::time::timeout(self.timeout * 2, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout * 2)),
        }
    }

    fn record_pool_gauges(&self) {
        let state = self.pool().state();
        let idle = f64::from(state.idle_connections);
        let in_use = f64::from(state.connections.saturating_sub(state.idle_connections));
        metrics::gauge!("shop_pg_pool_connections", "endpoint" => self.addr.clone(), "state" => "idle").set(idle);
        metrics::gauge!("shop_pg_pool_connections", "endpoint" => self.addr.clone(), "state" => "in_use").set(in_use);
    }
}

fn build_pool(config: &tokio_postgres::Config, size: u32, timeout: Duration, signal: &Arc<Signal>) -> Pool<Manager> {
    Pool::builder()
        .max_size(size.max(1))
        .connection_timeout(timeout)
        // Errors are detected on use (and a closed client is skipped at checkout): a test query
        // per checkout would double the round trips through pgpool.
        .test_on_check_out(false)
        // Fail fast on a dead endpoint; the retry loop moves to another one.
        .retry_connection(false)
        // pgpool-II holds a child process per client session: give idle ones back.
        .idle_timeout(Some(Duration::from_secs(60)))
        .max_lifetime(Some(Duration::from_secs(30 * 60)))
        .error_sink(Box::new(Sink(signal.clone())))
        .build_unchecked(Manager::new(PostgresConnectionManager::new(config.clone(), NoTls), lock_wait_limit(timeout)))
}

pub(crate) type Conn = PooledConnection<'static, Manager>;

pub(crate) struct Cluster {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) selector: Selector,
    max_attempts: u32,
}

impl Cluster {
    pub(crate) fn new(settings: &PgSettings) -> anyhow::Result<Self> {
        if settings.endpoints.is_empty() {
            anyhow::bail!("postgres.endpoints is empty");
        }
        let endpoints =
            settings.endpoints.iter().map(|e| Endpoint::new(e, settings)).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            selector: Selector::new(endpoints.len()),
            // Every endpoint once, plus two more tries for a pgpool that is reconnecting after
            // a backend failover (it drops all sessions, then accepts new ones ~150 ms later);
            // more within `RETRY_WINDOW`.
            max_attempts: endpoints.len() as u32 + 2,
            endpoints,
        })
    }

    pub(crate) fn attempts(&self, op: &'static str) -> Attempts<'_> {
        Attempts {
            cluster: self,
            op,
            n: 0,
            ran: 0,
            tried: Tried::default(),
            current: 0,
            started: Instant::now(),
            last: None,
        }
    }

    pub(crate) fn attempt_timeout(&self, op: &str) -> Duration {
        let timeouts = if READS.contains(&op) { READ_ATTEMPT_TIMEOUTS } else { ATTEMPT_TIMEOUTS };
        self.endpoints[0].timeout * timeouts
    }

    /// Takes the endpoint out of rotation after a connection-level failure.
    pub(crate) fn endpoint_failed(&self, i: usize, why: &str) {
        let ep = &self.endpoints[i];
        metrics::counter!("shop_pg_endpoint_failures_total", "endpoint" => ep.addr.clone()).increment(1);
        if self.selector.mark_down(i) {
            metrics::counter!("shop_pg_failovers_total", "endpoint" => ep.addr.clone()).increment(1);
            tracing::warn!(endpoint = %ep.addr, error = why, "postgres endpoint taken out of rotation");
            ep.renew_pool();
        }
    }

    /// Probes every endpoint out of rotation and puts back those that answer.
    pub(crate) async fn probe_down_endpoints(&self) {
        for (i, ep) in self.endpoints.iter().enumerate() {
            ep.record_pool_gauges();
            if self.selector.is_healthy(i) {
                continue;
            }
            match ep.probe().await {
                Ok(()) => {
                    if self.selector.mark_up(i) {
                        tracing::info!(endpoint = %ep.addr, "postgres endpoint back in rotation");
                    }
                }
                Err(e) => tracing::debug!(endpoint = %ep.addr, error = %e, "postgres endpoint still down"),
            }
        }
    }

    /// Runs the probe every `PROBE_EVERY` until the cluster is dropped.
    pub(crate) fn spawn_prober(cluster: Weak<Cluster>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(c) = cluster.upgrade() else { break };
                c.probe_down_endpoints().await;
            }
        });
    }
}

/// Why no connection came from an endpoint.
enum Checkout {
    /// Refused, closed, or could not connect in time: take the endpoint out.
    Down(String),
    /// Every pooled connection is in use: try elsewhere, but the endpoint is fine.
    Busy(String),
}

/// The attempts of one operation: which endpoints it tried, how often, and since when.
pub(crate) struct Attempts<'a> {
    cluster: &'a Cluster,
    op: &'static str,
    n: u32,
    /// Attempts that got a connection and ran the operation's statements.
    ran: u32,
    tried: Tried,
    current: usize,
    started: Instant,
    /// Why the last attempt failed, kept for the `Unavailable` that ends the attempts.
    last: Option<StoreFailure>,
}

impl Attempts<'_> {
    /// How many earlier attempts ran the operation's statements (and so may have committed).
    pub(crate) fn retries(&self) -> u32 {
        self.ran.saturating_sub(1)
    }

    /// A connection for the next attempt, from the next endpoint that gives one;
    /// `Unavailable` once the attempts are used up.
    pub(crate) async fn conn(&mut self) -> Result<Conn, StoreError> {
        loop {
            if self.n >= self.cluster.max_attempts && self.started.elapsed() >= RETRY_WINDOW {
                let why = self.last.take().unwrap_or_else(|| "no endpoint answered".into());
                return Err(self.finish_err(StoreError::Unavailable(why)));
            }
            let i = self.cluster.selector.pick(self.tried);
            if self.n > 0 && self.tried.has(i) {
                tokio::time::sleep((BACKOFF_STEP * self.n).min(BACKOFF_MAX)).await;
            }
            self.n += 1;
            self.tried.add(i);
            self.current = i;
            let ep = &self.cluster.endpoints[i];
            metrics::counter!("shop_pg_endpoint_requests_total", "endpoint" => ep.addr.clone()).increment(1);
            match self.checkout(ep).await {
                Ok(c) => {
                    self.ran += 1;
                    return Ok(c);
                }
                Err(Checkout::Down(why)) => {
                    self.cluster.endpoint_failed(i, &why);
                    self.last = Some(format!("{}: {why}", ep.addr).into());
                }
                Err(Checkout::Busy(why)) => {
                    tracing::debug!(endpoint = %ep.addr, op = self.op, "postgres pool busy");
                    self.last = Some(format!("{}: {why}", ep.addr).into());
                }
            }
        }
    }

    async fn checkout(&self, ep: &Endpoint) -> Result<Conn, Checkout> {
        let pool = ep.pool();
        // A closed client (pgpool dropped the session) is discarded by bb8 when dropped here.
        for _ in 0..=ep.pool_size {
            let connect_failed = ep.signal.notify.notified();
            let got = tokio::select! {
                r = pool.get_owned() => r,
                _ = connect_failed => {
                    let last = ep.signal.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    return Err(Checkout::Down(last.unwrap_or_else(|| "connect failed".into())));
                }
            };
            match got {
                Ok(c) if !c.client.is_closed() => return Ok(c),
                Ok(_) => continue,
                Err(RunError::User(e)) => return Err(Checkout::Down(describe(&e))),
                Err(RunError::TimedOut) => {
                    // Every connection in use: the endpoint is busy, not down.
                    let state = pool.state();
                    let why = format!("no connection within {:?}", ep.timeout);
                    return Err(if state.connections >= ep.pool_size && state.idle_connections == 0 {
                        Checkout::Busy(why)
                    } else {
                        Checkout::Down(why)
                    });
                }
            }
        }
        Err(Checkout::Down("every pooled connection was closed".into()))
    }

    /// What to do with the result of an attempt: `Some` is the operation's answer,
    /// `None` means try again (the next `conn` picks the endpoint).
    pub(crate) fn settle<T>(&mut self, r: Result<T, DbError>) -> Option<Result<T, StoreError>> {
        let ep = &self.cluster.endpoints[self.current];
        match r {
            Ok(v) => Some(Ok(self.finish(v))),
            Err(DbError::Store(e)) => Some(Err(self.finish_err(e))),
            Err(DbError::TimedOut) => {
                let why = format!("no answer within {:?}", self.cluster.attempt_timeout(self.op));
                self.cluster.endpoint_failed(self.current, &why);
                self.last = Some(format!("{}: {why}", ep.addr).into());
                None
            }
            Err(DbError::Pg(e)) if is_connection_error(&e) => {
                self.cluster.endpoint_failed(self.current, &describe(&e));
                self.last = Some(StoreFailure::caused_by(format!("{}: {}", ep.addr, describe(&e)), e));
                None
            }
            Err(DbError::Pg(e)) if is_lock_wait(&e) => {
                // A live endpoint answered: it stays in rotation. Not retried: the lock is on the
                // backends, which every endpoint shares, and its holder has already kept it for
                // far longer than any transaction of this adapter takes (milliseconds); a retry
                // would most likely wait again, past the request's budget. Nothing was applied
                // by this attempt, so the caller may try again (503). (After an earlier attempt
                // that may have committed, its outcome stays unknown, as after any Unavailable.)
                let why = format!(
                    "{}: {} (a statement waited longer than {:?}, most likely for a lock another \
                     transaction holds)",
                    ep.addr,
                    describe(&e),
                    lock_wait_limit(ep.timeout)
                );
                tracing::warn!(endpoint = %ep.addr, op = self.op, error = %why, "postgres statement timed out");
                metrics::counter!("shop_pg_lock_waits_total", "endpoint" => ep.addr.clone(), "op" => self.op)
                    .increment(1);
                Some(Err(self.finish_err(StoreError::Unavailable(StoreFailure::caused_by(why, e)))))
            }
            Err(DbError::Pg(e)) if is_transient(&e) => {
                self.last = Some(StoreFailure::caused_by(format!("{}: {}", ep.addr, describe(&e)), e));
                None
            }
            Err(DbError::Pg(e)) => {
                let why = describe(&e);
                tracing::error!(endpoint = %ep.addr, op = self.op, error = %why, "postgres statement failed");
                Some(Err(
                    self.finish_err(StoreError::Unavailable(StoreFailure::caused_by(format!("{}: {why}", ep.addr), e)))
                ))
            }
        }
    }

    fn finish<T>(&self, v: T) -> T {
        metrics::histogram!("shop_store_seconds", "store" => "postgres", "op" => self.op)
            .record(self.started.elapsed().as_secs_f64());
        v
    }

    fn finish_err(&self, e: StoreError) -> StoreError {
        self.finish(e)
    }
}

/// Runs `$body` (an expression using `$conn: &mut Conn` and yielding `Result<T, DbError>`) with
/// the retry policy above, each attempt bounded by `attempt_timeout`; evaluates to `StoreResult<T>`. A macro rather than a closure so the
/// body can borrow the caller's arguments across `.await` without boxing or cloning.
macro_rules! with_conn {
    ($cluster:expr, $op:literal, |$conn:ident, $retries:ident| $body:expr) => {{
        let mut attempts = $cluster.attempts($op);
        loop {
            #[allow(unused_mut)]
            let mut $conn = match attempts.conn().await {
                Ok(c) => c,
                Err(e) => break Err(e),
            };
            #[allow(unused_variables)]
            let $retries = attempts.retries();
            // Broken until the attempt ends: if the caller's future is dropped mid-attempt (the
            // request ran out of time), the session is closed, never handed out with a statement
            // in flight; closing it also ends an uncommitted transaction on the server.
            $conn.broken = true;
            let r: Result<_, $crate::cluster::DbError> =
                match tokio::time::timeout($cluster.attempt_timeout($op), async { $body }).await {
                    Ok(r) => {
                        $conn.broken = false;
                        r
                    }
                    Err(_) => Err($crate::cluster::DbError::TimedOut),
                };
            drop($conn);
            if let Some(done) = attempts.settle(r) {
                break done;
            }
        }
    }};
}
pub(crate) use with_conn;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connections_are_connection_errors() {
        // A port nothing listens on (bound then dropped).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(port).user("postgres").connect_timeout(Duration::from_millis(500));
        let e = c.connect(NoTls).await.err().expect("nothing listens there");
        assert!(is_connection_error(&e), "{e}");
    }
}
