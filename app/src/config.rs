//! Settings, layered zero-to-production style: defaults in the structs, then an optional YAML
//! file named by `SHOPBENCH_CONFIG`, then `SHOPBENCH__*` environment variables (`__` separates
//! levels, e.g. `SHOPBENCH__HTTP__PORT=0`, `SHOPBENCH__POSTGRES__ENDPOINTS=h1:5432,h2:5432`,
//! `SHOPBENCH__REDIS__SENTINELS=127.0.0.1:26379,127.0.0.1:26380`,
//! `SHOPBENCH__CASSANDRA__NODES=127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042`).

use adapter_postgres::PgSettings;
use serde::Deserialize;

/// The `redis` section: the adapter's settings in a build with the stage-redis feature; in other
/// builds it is only noticed, and `wiring` refuses to start with it (it would be ignored).
#[cfg(feature = "stage-redis")]
pub type RedisSection = adapter_redis::RedisSettings;
#[cfg(not(feature = "stage-redis"))]
pub type RedisSection = serde::de::IgnoredAny;

/// The `cassandra` section, likewise: the adapter's settings in a stage-cassandra build, only
/// noticed (and refused by `wiring`) in other builds.
#[cfg(feature = "stage-cassandra")]
pub type CassandraSection = adapter_cassandra::CassandraSettings;
#[cfg(not(feature = "stage-cassandra"))]
pub type CassandraSection = serde::de::IgnoredAny;

/// The admin token used when none is configured; fine on a laptop, logged as a warning.
pub const DEV_ADMIN_TOKEN: &str = "admin-dev-token";

/// `Debug` leaves the admin token out (and the adapters' secrets): settings are logged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub http: HttpSettings,
    /// Grants catalogue writes and every user's routes.
    #[serde(default = "default_admin_token")]
    pub admin_token: String,
    /// Absent: the in-memory store (nothing survives a restart).
    #[serde(default)]
    pub postgres: Option<PgSettings>,
    /// Where the carts live in a stage-redis build (required there, with `postgres`).
    #[serde(default)]
    pub redis: Option<RedisSection>,
    /// Where the catalogue lives in a stage-cassandra build (required there, with `postgres` and
    /// `redis`): `nodes`, `keyspace` ("shop"), `replication_factor` (3; QUORUM reads and writes).
    #[serde(default)]
    pub cassandra: Option<CassandraSection>,
    /// A `RUST_LOG`-style filter.
    #[serde(default = "default_log")]
    pub log: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(default = "default_host")]
    pub host: String,
    /// 0 binds any free port (tests); `Application::port` tells which.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Larger request bodies are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A request still running after this long is cancelled and answered 503 (`deadline`):
    /// keep it below the read timeout of the proxy in front (nginx: 5 s).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            workers: default_workers(),
            max_body_bytes: default_max_body_bytes(),
            request_timeout_ms: default_request_timeout_ms(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            admin_token: default_admin_token(),
            postgres: None,
            redis: None,
            cassandra: None,
            log: default_log(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    8080
}
fn default_workers() -> usize {
    2
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_request_timeout_ms() -> u64 {
    4000
}
fn default_admin_token() -> String {
    DEV_ADMIN_TOKEN.into()
}
fn default_log() -> String {
    "info".into()
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("http", &self.http)
            .field("admin_token", &"<redacted>")
            .field("postgres", &self.postgres)
            .field("redis", &self.redis)
            .field("cassandra", &self.cassandra)
            .field("log", &self.log)
            .finish()
    }
}

/// Env var naming the optional YAML file.
pub const CONFIG_FILE_ENV: &str = "SHOPBENCH_CONFIG";

impl Settings {
    /// Reads the file named by `SHOPBENCH_CONFIG` (if set) and the process environment.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var(CONFIG_FILE_ENV).ok().filter(|f| !f.is_empty());
        Self::from_sources(file.as_deref(), None)
    }

    /// `env`: `None` reads the process environment; `Some(vars)` uses exactly these (for tests).
    pub fn from_sources(file: Option<&str>, env: Option<Vec<(String, String)>>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::new(path, config::FileFormat::Yaml).required(true));
        }
        // Values stay text (no `try_parsing`): the deserializer converts numbers where a field is
        // numeric, and a token like "1e5" or "true" is not mangled. A comma-separated
        // `postgres.endpoints` (`redis.sentinels`) is split by `PgSettings` (`RedisSettings`).
        let mut environment = config::Environment::with_prefix("SHOPBENCH").prefix_separator("__").separator("__");
        if let Some(vars) = env {
            environment = environment.source(Some(vars.into_iter().collect()));
        }
        let settings: Settings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.http.workers >= 1, "http.workers must be at least 1");
        anyhow::ensure!(self.http.max_body_bytes >= 1, "http.max_body_bytes must be at least 1");
        anyhow::ensure!(self.http.request_timeout_ms >= 1, "http.request_timeout_ms must be at least 1");
        anyhow::ensure!(!self.admin_token.trim().is_empty(), "admin_token must not be empty");
        if let Some(pg) = &self.postgres {
            anyhow::ensure!(!pg.endpoints.is_empty(), "postgres.endpoints must name at least one host:port");
            anyhow::ensure!(pg.pool_size >= 1, "postgres.pool_size must be at least 1");
        }
        #[cfg(feature = "stage-cassandra")]
        if let Some(c) = &self.cassandra {
            c.check()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SHOPBENCH__ADMIN_TOKEN", "very-secret-admin"),
                ("SHOPBENCH__POSTGRES__ENDPOINTS", "127.0.0.1:5432"),
                ("SHOPBENCH__POSTGRES__PASSWORD", "very-secret-pg"),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("127.0.0.1:5432") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn no_configuration_gives_the_local_defaults() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!((s.http.host.as_str(), s.http.port, s.http.workers), ("127.0.0.1", 8080, 2));
        assert_eq!(s.http.max_body_bytes, 65536);
        assert_eq!(s.admin_token, DEV_ADMIN_TOKEN);
        assert!(s.postgres.is_none());
        assert_eq!(s.log, "info");
    }

    #[test]
    fn environment_sets_nested_keys_and_a_comma_separated_endpoint_list() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SHOPBENCH__HTTP__PORT", "0"),
                ("SHOPBENCH__HTTP__MAX_BODY_BYTES", "1024"),
                ("SHOPBENCH__ADMIN_TOKEN", "1e5"),
                ("SHOPBENCH__POSTGRES__ENDPOINTS", "127.0.0.1:19999,127.0.0.1:20000"),
                ("SHOPBENCH__POSTGRES__POOL_SIZE", "3"),
                ("SHOPBENCH__POSTGRES__PASSWORD", "007"),
                ("SHOPBENCH_TEST_PG", "127.0.0.1:1"),
            ]),
        )
        .unwrap();
        assert_eq!((s.http.port, s.http.max_body_bytes), (0, 1024));
        assert_eq!(s.admin_token, "1e5", "a numeric-looking token stays text");
        let pg = s.postgres.unwrap();
        assert_eq!(pg.endpoints, vec!["127.0.0.1:19999", "127.0.0.1:20000"]);
        assert_eq!((pg.pool_size, pg.user.as_str(), pg.dbname.as_str()), (3, "postgres", "shop"));
        assert_eq!(pg.password.as_deref(), Some("007"));
    }

    #[test]
    fn a_single_endpoint_from_the_environment_is_a_list_of_one() {
        let s = Settings::from_sources(None, env(&[("SHOPBENCH__POSTGRES__ENDPOINTS", "127.0.0.1:5432")])).unwrap();
        assert_eq!(s.postgres.unwrap().endpoints, vec!["127.0.0.1:5432"]);
    }

    #[test]
    fn the_file_is_read_and_the_environment_overrides_it() {
        let dir = std::env::temp_dir().join(format!("shopbench-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shop.yaml");
        std::fs::write(
            &path,
            "http:\n  port: 9000\n  workers: 4\npostgres:\n  endpoints: [\"10.0.0.1:5432\"]\n  dbname: bench\nlog: debug\n",
        )
        .unwrap();
        let s = Settings::from_sources(path.to_str(), env(&[("SHOPBENCH__HTTP__PORT", "9001")])).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((s.http.port, s.http.workers, s.log.as_str()), (9001, 4, "debug"));
        let pg = s.postgres.unwrap();
        assert_eq!((pg.endpoints, pg.dbname), (vec!["10.0.0.1:5432".to_string()], "bench".to_string()));
    }

    #[test]
    fn a_redis_section_from_the_environment_is_noticed_in_every_build() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert!(s.redis.is_none());
        let s = Settings::from_sources(None, env(&[("SHOPBENCH__REDIS__SENTINELS", "127.0.0.1:26379")])).unwrap();
        assert!(s.redis.is_some());
    }

    #[cfg(feature = "stage-redis")]
    #[test]
    fn the_redis_section_takes_a_comma_separated_sentinel_list_and_defaults() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SHOPBENCH__REDIS__SENTINELS", "127.0.0.1:26379, 127.0.0.1:26380"),
                ("SHOPBENCH__REDIS__MASTER_NAME", "shop2"),
                ("SHOPBENCH__REDIS__POOL_SIZE", "3"),
            ]),
        )
        .unwrap();
        let r = s.redis.unwrap();
        assert_eq!(r.sentinels, vec!["127.0.0.1:26379", "127.0.0.1:26380"]);
        assert_eq!((r.master_name.as_str(), r.pool_size, r.key_prefix.as_str()), ("shop2", 3, ""));
        let typo = Settings::from_sources(None, env(&[("SHOPBENCH__REDIS__SENTINAL", "a:1")])).unwrap_err();
        assert!(typo.to_string().contains("sentinal"), "{typo}");
    }

    #[test]
    fn a_cassandra_section_from_the_environment_is_noticed_in_every_build() {
        let s = Settings::from_sources(None, env(&[])).unwrap();
        assert!(s.cassandra.is_none());
        let s = Settings::from_sources(None, env(&[("SHOPBENCH__CASSANDRA__NODES", "127.0.0.1:9042")])).unwrap();
        assert!(s.cassandra.is_some());
    }

    #[cfg(feature = "stage-cassandra")]
    #[test]
    fn the_cassandra_section_takes_a_comma_separated_node_list_and_defaults() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SHOPBENCH__CASSANDRA__NODES", "127.0.0.1:9042, 127.0.0.2:9042"),
                ("SHOPBENCH__CASSANDRA__REPLICATION_FACTOR", "1"),
            ]),
        )
        .unwrap();
        let c = s.cassandra.unwrap();
        assert_eq!(c.nodes, vec!["127.0.0.1:9042", "127.0.0.2:9042"]);
        assert_eq!((c.keyspace.as_str(), c.replication_factor), ("shop", 1));
        let bad = Settings::from_sources(None, env(&[("SHOPBENCH__CASSANDRA__NODES", "127.0.0.1")])).unwrap_err();
        assert!(bad.to_string().contains("host:port"), "{bad}");
        let typo = Settings::from_sources(None, env(&[("SHOPBENCH__CASSANDRA__NODE", "a:1")])).unwrap_err();
        assert!(typo.to_string().contains("node"), "{typo}");
    }

    #[test]
    fn mistakes_are_reported_not_ignored() {
        let typo = Settings::from_sources(None, env(&[("SHOPBENCH__HTTP__PROT", "1")])).unwrap_err();
        assert!(typo.to_string().contains("prot"), "{typo}");
        let bad = Settings::from_sources(None, env(&[("SHOPBENCH__HTTP__PORT", "eighty")])).unwrap_err();
        assert!(bad.to_string().contains("port"), "{bad}");
        assert!(Settings::from_sources(Some("/nonexistent/shop.yaml"), env(&[])).is_err());
        assert!(Settings::from_sources(None, env(&[("SHOPBENCH__HTTP__WORKERS", "0")])).is_err());
    }
}
