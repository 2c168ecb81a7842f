//! The shared test PostgreSQL (`SHOPBENCH_TEST_PG`): a fresh database per test, and a plain
//! client beside the adapter.

use adapter_postgres::PgSettings;

/// The servers to test against, from `SHOPBENCH_TEST_PG` (comma-separated `host:port`, user
/// `postgres`, trust authentication, or the password in `SHOPBENCH_TEST_PG_PASSWORD` when the
/// servers ask for one: scripts/test's emulated hosts), pointing at the `postgres` database.
///
/// # Panics
/// When `SHOPBENCH_TEST_PG` is unset.
pub fn test_settings() -> PgSettings {
    let mut s = PgSettings::new(crate::servers_from_env(crate::PG));
    s.dbname = "postgres".into();
    s.pool_size = 4;
    s.password = std::env::var("SHOPBENCH_TEST_PG_PASSWORD").ok().filter(|p| !p.is_empty());
    s
}

/// Creates an empty database `test_<uuid>` through the first endpoint and returns `base`
/// pointing at it. (Through pgpool-II, CREATE DATABASE reaches every backend.) `scripts/test`
/// drops every `test_%` database after each cargo test step.
///
/// # Panics
/// When the server cannot be reached or refuses: a test cannot go on without it.
pub async fn fresh_database(base: &PgSettings) -> PgSettings {
    let name = crate::unique_name("test_");
    let admin = PgSettings { dbname: "postgres".into(), ..base.clone() };
    connect(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {}", describe(&e)));
    PgSettings { dbname: name, ..base.clone() }
}

/// A plain client on `settings`' first endpoint and database, for tests that look at the tables
/// behind the adapter or change the server under it; its connection runs on a spawned task.
///
/// # Panics
/// When the server cannot be reached.
pub async fn connect(settings: &PgSettings) -> tokio_postgres::Client {
    let endpoint = settings.endpoints.first().expect("at least one endpoint");
    let config = settings.config_for(endpoint).expect("a valid endpoint");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {endpoint}: {}", describe(&e)));
    tokio::spawn(connection);
    client
}

/// The server's own words for a failed statement: `tokio_postgres::Error`'s Display says only
/// "db error", which left a CI failure (a full disk?) without its cause.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => format!("{e:?}"),
    }
}
