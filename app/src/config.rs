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
/// `localhost` or an address in 127.0.0.0/8 or ::1; anything else (0.0.0.0 included) may be reachable.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
        // The development token is public (it is in this repository): anyone who can reach a
        // non-loopback address could write the catalogue and read every user's orders.
        anyhow::ensure!(
            self.admin_token != DEV_ADMIN_TOKEN || is_loopback(&self.http.host),
            "http.host {:?} is reachable from other machines: set SHOPBENCH__ADMIN_TOKEN (the development admin token is only allowed on a loopback address)",
            self.http.host
        );
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
    fn the_development_token_is_refused_off_loopback() {
        for host in ["0.0.0.0", "10.77.0.2", "::", "shop.example"] {
            let e = Settings::from_sources(None, env(&[("SHOPBENCH__HTTP__HOST", host)])).err();
            let e = e.map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("SHOPBENCH__ADMIN_TOKEN"), "{host}: {e:?}");
        }
        for host in ["127.0.0.1", "127.0.0.3", "::1", "localhost"] {
            assert!(Settings::from_sources(None, env(&[("SHOPBENCH__HTTP__HOST", host)])).is_ok(), "{host}");
        }
        let own = env(&[("SHOPBENCH__HTTP__HOST", "0.0.0.0"), ("SHOPBENCH__ADMIN_TOKEN", "per-run-secret")]);
        assert_eq!(Settings::from_sources(None, own).unwrap().http.host, "0.0.0.0");
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

    /// The field names serde knows for a struct deriving `Deserialize`: a deserializer that only
    /// records what `deserialize_struct` is given, then stops.
    fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        use serde::de::{Error, Visitor};
        struct Probe<'a>(&'a mut Vec<&'static str>);
        impl<'de> serde::Deserializer<'de> for Probe<'_> {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend_from_slice(fields);
                Err(Error::custom("fields recorded"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let mut fields = Vec::new();
        assert!(T::deserialize(Probe(&mut fields)).is_err());
        assert!(!fields.is_empty(), "not a struct");
        fields
    }

    /// The rows of docs/configuration.md's key table: (file key, environment name, default).
    fn documented_keys() -> Vec<(String, String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let code = |cell: &str| cell.trim().trim_matches('`').to_string();
        doc.lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').collect();
                assert!(cells.len() >= 5, "a row of key, environment, default, meaning: {l}");
                (code(cells[1]), code(cells[2]), code(cells[3]))
            })
            .collect()
    }

    #[test]
    fn every_settings_key_is_documented_in_docs_configuration_md() {
        let mut expected = Vec::new();
        // Sections whose keys this build cannot list (the adapter is not compiled in): the
        // document must still have rows for them.
        let mut unlisted = Vec::new();
        for field in fields_of::<Settings>() {
            let keys: Option<Vec<&str>> = match field {
                "http" => Some(fields_of::<HttpSettings>()),
                "postgres" => Some(fields_of::<PgSettings>()),
                "redis" => redis_keys(),
                "cassandra" => cassandra_keys(),
                leaf => {
                    expected.push(leaf.to_string());
                    continue;
                }
            };
            match keys {
                Some(keys) => expected.extend(keys.iter().map(|k| format!("{field}.{k}"))),
                None => unlisted.push(format!("{field}.")),
            }
        }
        let rows = documented_keys();
        let documented: Vec<&str> = rows.iter().map(|(k, _, _)| k.as_str()).collect();
        let missing: Vec<&String> = expected.iter().filter(|k| !documented.contains(&k.as_str())).collect();
        assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
        for prefix in &unlisted {
            assert!(documented.iter().any(|k| k.starts_with(prefix.as_str())), "no {prefix}* key documented");
        }
        for (key, env, _) in &rows {
            let known = expected.contains(key) || unlisted.iter().any(|p| key.starts_with(p.as_str()));
            assert!(known, "docs/configuration.md documents {key}, which is not a setting");
            assert_eq!(env, &format!("SHOPBENCH__{}", key.replace('.', "__").to_uppercase()), "{key}");
            assert_eq!(rows.iter().filter(|(k, _, _)| k == key).count(), 1, "{key} twice");
        }

        // The defaults the table states are the code's.
        let default_of = |key: &str| rows.iter().find(|(k, _, _)| k == key).map(|(_, _, d)| d.clone()).unwrap();
        let s = Settings::default();
        let pg = PgSettings::new(Vec::new());
        for (key, value) in [
            ("http.host", s.http.host.clone()),
            ("http.port", s.http.port.to_string()),
            ("http.workers", s.http.workers.to_string()),
            ("http.max_body_bytes", s.http.max_body_bytes.to_string()),
            ("admin_token", s.admin_token.clone()),
            ("log", s.log.clone()),
            ("postgres.user", pg.user.clone()),
            ("postgres.dbname", pg.dbname.clone()),
            ("postgres.pool_size", pg.pool_size.to_string()),
            ("postgres.connect_timeout_ms", pg.connect_timeout_ms.to_string()),
        ] {
            assert_eq!(default_of(key), value, "the documented default of {key}");
        }
        #[cfg(feature = "stage-redis")]
        {
            let r: adapter_redis::RedisSettings = serde_json::from_str("{}").unwrap();
            for (key, value) in [
                ("redis.sentinels", r.sentinels.join(",")),
                ("redis.master_name", r.master_name.clone()),
                ("redis.pool_size", r.pool_size.to_string()),
                ("redis.timeout_ms", r.timeout_ms.to_string()),
                ("redis.replica_wait_ms", r.replica_wait_ms.to_string()),
                ("redis.min_replica_acks", r.min_replica_acks.to_string()),
                ("redis.failover_wait_ms", r.failover_wait_ms.to_string()),
            ] {
                assert_eq!(default_of(key), value, "the documented default of {key}");
            }
            assert!(r.key_prefix.is_empty());
        }
        #[cfg(feature = "stage-cassandra")]
        {
            let c = adapter_cassandra::CassandraSettings::new(Vec::new());
            for (key, value) in [
                ("cassandra.keyspace", c.keyspace.clone()),
                ("cassandra.replication_factor", c.replication_factor.to_string()),
                ("cassandra.request_timeout_ms", c.request_timeout_ms.to_string()),
                ("cassandra.connect_timeout_ms", c.connect_timeout_ms.to_string()),
            ] {
                assert_eq!(default_of(key), value, "the documented default of {key}");
            }
        }
    }

    /// The keys of the `redis` section, if this build has its adapter.
    fn redis_keys() -> Option<Vec<&'static str>> {
        #[cfg(feature = "stage-redis")]
        return Some(fields_of::<adapter_redis::RedisSettings>());
        #[cfg(not(feature = "stage-redis"))]
        None
    }

    /// The keys of the `cassandra` section, if this build has its adapter.
    fn cassandra_keys() -> Option<Vec<&'static str>> {
        #[cfg(feature = "stage-cassandra")]
        return Some(fields_of::<adapter_cassandra::CassandraSettings>());
        #[cfg(not(feature = "stage-cassandra"))]
        None
    }

    /// The app's own keys set through the names the table gives (the adapters' sections are
    /// read by the same `config` source, and tested with their names above).
    #[test]
    fn the_documented_environment_names_set_the_keys() {
        let env: Vec<(String, String)> = documented_keys()
            .into_iter()
            .filter(|(k, _, _)| k.starts_with("http.") || !k.contains('.'))
            .map(|(k, e, _)| {
                let numeric = ["http.port", "http.workers", "http.max_body_bytes", "http.request_timeout_ms"]
                    .contains(&k.as_str());
                (e, if numeric { "7" } else { "x" }.to_string())
            })
            .collect();
        assert_eq!(env.len(), 7, "{env:?}");
        let s = Settings::from_sources(None, Some(env)).unwrap();
        assert_eq!((s.http.host.as_str(), s.http.port, s.http.workers, s.http.max_body_bytes), ("x", 7, 7, 7));
        assert_eq!(s.http.request_timeout_ms, 7);
        assert_eq!((s.admin_token.as_str(), s.log.as_str()), ("x", "x"));
    }

    /// What infra gives a web instance (settings::WebSettings, every section), as the app reads it
    /// from the environment infra renders: the contract between the two, under documented names.
    #[test]
    fn the_settings_infra_gives_a_web_instance_are_read_back_from_its_environment() {
        use settings::{CassandraSettings, HttpSettings as Http, PostgresSettings, RedisSettings, WebSettings};
        let web = WebSettings {
            http: Http { host: "127.0.0.2".into(), port: 18081 },
            admin_token: "1e5".into(),
            postgres: PostgresSettings {
                endpoints: vec!["127.0.0.1:19999".into(), "127.0.0.1:20000".into()],
                pool_size: 5,
                password: Some("pw-1".into()),
            },
            redis: Some(RedisSettings {
                password: Some("pw-2".into()),
                sentinel_password: Some("pw-3".into()),
                ..RedisSettings::new(vec!["127.0.0.1:26379".into()], "shop2")
            }),
            cassandra: Some(CassandraSettings {
                username: Some("shop-role".into()),
                password: Some("pw-4".into()),
                ..CassandraSettings::new(vec!["127.0.0.1:9042".into()], 1)
            }),
        };
        let env = web.env();
        let documented: Vec<String> = documented_keys().into_iter().map(|(_, e, _)| e).collect();
        for (name, _) in &env {
            assert!(documented.contains(name), "{name} is not in docs/configuration.md");
        }
        let s = Settings::from_sources(None, Some(env)).unwrap();
        assert_eq!((s.http.host.as_str(), s.http.port, s.admin_token.as_str()), ("127.0.0.2", 18081, "1e5"));
        let pg = s.postgres.unwrap();
        assert_eq!((pg.endpoints, pg.pool_size), (web.postgres.endpoints, 5));
        assert_eq!(pg.password.as_deref(), Some("pw-1"));
        assert!(s.redis.is_some() && s.cassandra.is_some());
        #[cfg(feature = "stage-redis")]
        {
            let r = s.redis.unwrap();
            assert_eq!((r.password.as_deref(), r.sentinel_password.as_deref()), (Some("pw-2"), Some("pw-3")));
            assert_eq!((r.sentinels, r.master_name), (vec!["127.0.0.1:26379".to_string()], "shop2".to_string()));
        }
        #[cfg(feature = "stage-cassandra")]
        {
            let c = s.cassandra.unwrap();
            assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("shop-role"), Some("pw-4")));
            assert_eq!((c.nodes, c.replication_factor), (vec!["127.0.0.1:9042".to_string()], 1));
        }
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
