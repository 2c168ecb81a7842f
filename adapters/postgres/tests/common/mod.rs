#![allow(dead_code)]

// The contract suites' fixtures serve these tests too (not every test binary uses them).
#[allow(unused_imports)]
pub use adapter_contract::{
    carts::qty,
    catalogue::product,
    orders::order,
    users::{token, user},
};
use adapter_postgres::{PgSettings, PgStore};
use domain::models::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use test_support::pg::{fresh_database, test_settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A migrated store on a fresh database, with its settings.
pub async fn store() -> (PgStore, PgSettings) {
    let settings = fresh_database(&test_settings()).await;
    let store = PgStore::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, settings)
}

/// Runs blocking infra work (a topology's up, down, signals) without stalling the runtime's tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A plain connection as `user` to the shop database on one server (a backend, or a pgpool) of a
/// test's own topology.
pub async fn direct(addr: &str, user: &str) -> tokio_postgres::Client {
    let endpoints::HostPort { host, port } = addr.parse().unwrap();
    let (c, conn) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user(user)
        .dbname(test_support::servers::SHOP_DB)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {}", test_support::pg::describe(&e)));
    tokio::spawn(conn);
    c
}

/// A plain connection to the test database, to look at rows behind the adapter's back.
pub async fn sql(settings: &PgSettings) -> tokio_postgres::Client {
    let endpoint = &settings.endpoints[0];
    let endpoints::HostPort { host, port } = endpoint.parse().unwrap();
    let (client, conn) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user(&settings.user)
        .dbname(&settings.dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect for checks");
    tokio::spawn(conn);
    client
}

pub async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

pub fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// The metrics recorder of this test binary, installed on first use.
pub fn metrics() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        recorder.install().expect("the only recorder of this test binary");
        snap
    })
}

/// The total of a counter for one endpoint so far. (A snapshot drains the debugging recorder's
/// counters, so totals are kept here.)
pub fn counter(name: &str, endpoint: &str) -> u64 {
    static TOTALS: OnceLock<Mutex<HashMap<(String, String), u64>>> = OnceLock::new();
    let mut totals = TOTALS.get_or_init(Default::default).lock().unwrap();
    for (key, _, _, value) in metrics().snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            for label in key.key().labels().filter(|l| l.key() == "endpoint") {
                *totals.entry((key.key().name().to_string(), label.value().to_string())).or_default() += n;
            }
        }
    }
    totals.get(&(name.to_string(), endpoint.to_string())).copied().unwrap_or(0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The simple-query message tokio-postgres sends to commit a transaction.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// A TCP relay from 127.0.0.1:`port` to `target`, standing in for a pgpool: `stop` closes the
/// listener and every relayed connection, like a pgpool that dies; `cut_after_next_commit` makes
/// the next COMMIT reach the server but its answer never reach the client (the connection is
/// closed instead), like a pgpool that dies while the COMMIT is under way.
pub struct Relay {
    pub accepted: Arc<AtomicUsize>,
    /// COMMITs whose answer was withheld so far.
    pub cuts: Arc<AtomicUsize>,
    cut_armed: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(port: u16, target: String) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("relay port");
        let (accepted, cuts): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let cut_armed: Arc<AtomicBool> = Default::default();
        let (stop, stopped) = watch::channel(false);
        let (count, armed, cut_count) = (Arc::clone(&accepted), Arc::clone(&cut_armed), Arc::clone(&cuts));
        let task = tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            let mut stopped_main = stopped.clone();
            loop {
                tokio::select! {
                    _ = stopped_main.changed() => break,
                    r = listener.accept() => {
                        let Ok((client, _)) = r else { continue };
                        count.fetch_add(1, Ordering::SeqCst);
                        let (target, armed, cut_count) = (target.clone(), armed.clone(), cut_count.clone());
                        let mut stopped = stopped.clone();
                        relays.spawn(async move {
                            let Ok(server) = TcpStream::connect(&target).await else { return };
                            tokio::select! {
                                _ = relay(client, server, armed, cut_count) => {}
                                _ = stopped.changed() => {}
                            }
                        });
                    }
                }
            }
            relays.shutdown().await;
        });
        Relay { accepted, cuts, cut_armed, stop, task }
    }

    /// The next COMMIT any relayed connection sends is committed by the server, but the client
    /// gets a closed connection instead of the answer.
    pub fn cut_after_next_commit(&self) {
        self.cut_armed.store(true, Ordering::SeqCst);
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

/// Copies both ways until either side closes, or until a COMMIT is cut.
async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cuts: Arc<AtomicUsize>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let cutting = AtomicBool::new(false);
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_rx.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let commit = buf[..n].windows(COMMIT.len()).any(|w| w == COMMIT);
            // Decided before the server sees the COMMIT, so none of its answer gets through.
            if commit && armed.swap(false, Ordering::SeqCst) {
                cutting.store(true, Ordering::SeqCst);
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
            if cutting.load(Ordering::SeqCst) {
                // Give the server time to commit, then close both connections.
                tokio::time::sleep(Duration::from_millis(300)).await;
                cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = server_rx.read(&mut buf).await.unwrap_or(0);
            if cutting.load(Ordering::SeqCst) {
                // The answer to the cut COMMIT is dropped; `up` closes both ends.
                return std::future::pending::<()>().await;
            }
            if n == 0 {
                return;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
