//! What infra gives a web instance, and its rendering to the process environment.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every environment name of the service's configuration starts with this.
pub const ENV_PREFIX: &str = "SHOPBENCH__";

/// The environment name of a configuration key: `http.port` is `SHOPBENCH__HTTP__PORT` (the rule
/// docs/configuration.md states and the app's configuration reads).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// How long a web instance keeps an idle HTTP/1.1 connection open. nginx drops its idle upstream
/// connections sooner ([`PROXY_IDLE_SECS`]): were the instance to close one just as nginx reuses
/// it, a POST sent on it would fail, and nginx does not resend a POST, so the client would get a
/// 502 (actix-web's default, 5 s, is below nginx's default upstream idle time, 60 s).
pub const KEEP_ALIVE_SECS: u64 = 75;

/// nginx's `keepalive_timeout` for its idle connections to the web instances.
pub const PROXY_IDLE_SECS: u64 = 60;

const _: () = assert!(PROXY_IDLE_SECS < KEEP_ALIVE_SECS, "nginx must close idle upstream connections first");

/// The settings infra starts a web instance with and records in its run state: a subset of the
/// app's configuration (app/src/config.rs; the keys not set here keep the app's defaults).
/// `Debug` leaves the admin token out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub http: HttpSettings,
    /// Never written out with the rest (the run state): off loopback it is the run's own secret.
    #[serde(default, skip_serializing)]
    pub admin_token: String,
    pub postgres: PostgresSettings,
    /// Present in a topology with Redis (stage redis and cassandra: the carts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSettings>,
    /// Present in a topology with a Cassandra ring (stage cassandra: the catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassandra: Option<CassandraSettings>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
}

/// `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// `host:port` of every pgpool-II.
    pub endpoints: Vec<String>,
    /// Connections per endpoint.
    pub pool_size: u32,
    /// The clients' password when the servers ask for one (off loopback). Never written out with
    /// the rest (the run state): it lives in the run dir's secrets file alone.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("endpoints", &self.endpoints)
            .field("pool_size", &self.pool_size)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `Debug` leaves the passwords out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `host:port` of every Sentinel.
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under.
    pub master_name: String,
    /// The Redis instances' password (`requirepass`) off loopback. Never written out with the rest
    /// (the run state): it lives in the run dir's secrets file alone.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// The Sentinels' own password (their `requirepass`) off loopback; not written out either.
    #[serde(default, skip_serializing)]
    pub sentinel_password: Option<String>,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisSettings")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("password", &hide(&self.password))
            .field("sentinel_password", &hide(&self.sentinel_password))
            .finish()
    }
}

/// `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSettings {
    /// `host:port` (CQL) of every node.
    pub nodes: Vec<String>,
    /// Of the app's keyspace (3, or fewer on a smaller ring).
    pub replication_factor: u32,
    /// The role the app logs in as, off loopback (the ring's PasswordAuthenticator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// That role's password. Never written out with the rest (the run state): it lives in the run
    /// dir's secrets file alone.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

impl fmt::Debug for CassandraSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CassandraSettings")
            .field("nodes", &self.nodes)
            .field("replication_factor", &self.replication_factor)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl WebSettings {
    /// The settings as the process environment of the web instance: `SHOPBENCH__*` names (see
    /// [`env_name`]), lists comma-separated. The one place those names are written.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (env_name("http.host"), self.http.host.clone()),
            (env_name("http.port"), self.http.port.to_string()),
            (env_name("admin_token"), self.admin_token.clone()),
        ];
        env.extend(self.store_env());
        env
    }

    /// The stores' part of [`WebSettings::env`] (no listen address, no admin token): what reaches
    /// the same stores the same way, e.g. the bench's storage floor.
    pub fn store_env(&self) -> Vec<(String, String)> {
        let mut env = self.postgres.env();
        env.extend(self.redis.iter().flat_map(RedisSettings::env));
        env.extend(self.cassandra.iter().flat_map(CassandraSettings::env));
        env
    }
}

impl PostgresSettings {
    /// This section's part of [`WebSettings::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.public_env();
        if let Some(p) = &self.password {
            env.push((env_name("postgres.password"), p.clone()));
        }
        env
    }

    /// [`PostgresSettings::env`] without the password: what may be printed.
    pub fn public_env(&self) -> Vec<(String, String)> {
        vec![
            (env_name("postgres.endpoints"), self.endpoints.join(",")),
            (env_name("postgres.pool_size"), self.pool_size.to_string()),
        ]
    }
}

impl RedisSettings {
    /// Settings of a loopback set (no passwords).
    pub fn new(sentinels: Vec<String>, master_name: impl Into<String>) -> Self {
        RedisSettings { sentinels, master_name: master_name.into(), password: None, sentinel_password: None }
    }

    /// This section's part of [`WebSettings::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.public_env();
        if let Some(p) = &self.password {
            env.push((env_name("redis.password"), p.clone()));
        }
        if let Some(p) = &self.sentinel_password {
            env.push((env_name("redis.sentinel_password"), p.clone()));
        }
        env
    }

    /// [`RedisSettings::env`] without the passwords: what may be printed.
    pub fn public_env(&self) -> Vec<(String, String)> {
        vec![
            (env_name("redis.sentinels"), self.sentinels.join(",")),
            (env_name("redis.master_name"), self.master_name.clone()),
        ]
    }
}

impl CassandraSettings {
    /// Settings of a loopback ring (no login).
    pub fn new(nodes: Vec<String>, replication_factor: u32) -> Self {
        CassandraSettings { nodes, replication_factor, username: None, password: None }
    }

    /// This section's part of [`WebSettings::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.public_env();
        if let Some(p) = &self.password {
            env.push((env_name("cassandra.password"), p.clone()));
        }
        env
    }

    /// [`CassandraSettings::env`] without the password: what may be printed.
    pub fn public_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (env_name("cassandra.nodes"), self.nodes.join(",")),
            (env_name("cassandra.replication_factor"), self.replication_factor.to_string()),
        ];
        if let Some(u) = &self.username {
            env.push((env_name("cassandra.username"), u.clone()));
        }
        env
    }
}

impl fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSettings")
            .field("http", &self.http)
            .field("admin_token", &"<redacted>")
            .field("postgres", &self.postgres)
            .field("redis", &self.redis)
            .field("cassandra", &self.cassandra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings with every section.
    fn full() -> WebSettings {
        WebSettings {
            http: HttpSettings { host: "127.0.0.1".into(), port: 18080 },
            admin_token: "very-secret".into(),
            postgres: PostgresSettings {
                endpoints: vec!["127.0.0.1:19999".into(), "127.0.0.1:20000".into()],
                pool_size: 7,
                password: None,
            },
            redis: Some(RedisSettings::new(vec!["127.0.0.1:26379".into()], "shopbench")),
            cassandra: Some(CassandraSettings::new(vec!["127.0.0.1:9042".into(), "127.0.0.2:9042".into()], 2)),
        }
    }

    #[test]
    fn the_environment_uses_the_documented_names_and_comma_separated_lists() {
        let env = full().env();
        let expected = [
            ("SHOPBENCH__HTTP__HOST", "127.0.0.1"),
            ("SHOPBENCH__HTTP__PORT", "18080"),
            ("SHOPBENCH__ADMIN_TOKEN", "very-secret"),
            ("SHOPBENCH__POSTGRES__ENDPOINTS", "127.0.0.1:19999,127.0.0.1:20000"),
            ("SHOPBENCH__POSTGRES__POOL_SIZE", "7"),
            ("SHOPBENCH__REDIS__SENTINELS", "127.0.0.1:26379"),
            ("SHOPBENCH__REDIS__MASTER_NAME", "shopbench"),
            ("SHOPBENCH__CASSANDRA__NODES", "127.0.0.1:9042,127.0.0.2:9042"),
            ("SHOPBENCH__CASSANDRA__REPLICATION_FACTOR", "2"),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn absent_stores_are_not_in_the_environment_and_the_store_part_has_no_http_nor_token() {
        let pg_only = WebSettings { redis: None, cassandra: None, ..full() };
        let names: Vec<String> = pg_only.env().into_iter().map(|(k, _)| k).collect();
        assert!(!names.iter().any(|k| k.contains("REDIS") || k.contains("CASSANDRA")), "{names:?}");
        let stores: Vec<String> = full().store_env().into_iter().map(|(k, _)| k).collect();
        assert_eq!(stores.len(), 6);
        assert!(!stores.iter().any(|k| k.contains("HTTP") || k.contains("ADMIN_TOKEN")), "{stores:?}");
    }

    #[test]
    fn redis_passwords_reach_the_environment_but_neither_the_run_state_nor_debug() {
        let mut s = full();
        let redis = s.redis.as_mut().unwrap();
        redis.password = Some("redis-pw".into());
        redis.sentinel_password = Some("sentinel-pw".into());
        let env = s.env();
        assert!(env.contains(&("SHOPBENCH__REDIS__PASSWORD".into(), "redis-pw".into())), "{env:?}");
        assert!(env.contains(&("SHOPBENCH__REDIS__SENTINEL_PASSWORD".into(), "sentinel-pw".into())), "{env:?}");
        let public: Vec<(String, String)> = s.redis.as_ref().unwrap().public_env();
        let shown = format!("{s:?} {:?} {}", public, serde_json::to_string(&s).unwrap());
        assert!(!shown.contains("redis-pw") && !shown.contains("sentinel-pw"), "{shown}");
    }

    #[test]
    fn the_cassandra_password_reaches_the_environment_but_neither_the_run_state_nor_debug() {
        let mut s = full();
        let c = s.cassandra.as_mut().unwrap();
        c.username = Some("shopbench".into());
        c.password = Some("cassandra-pw".into());
        let env = s.env();
        assert!(env.contains(&("SHOPBENCH__CASSANDRA__USERNAME".into(), "shopbench".into())), "{env:?}");
        assert!(env.contains(&("SHOPBENCH__CASSANDRA__PASSWORD".into(), "cassandra-pw".into())), "{env:?}");
        let public = s.cassandra.as_ref().unwrap().public_env();
        let json = serde_json::to_string(&s).unwrap();
        let shown = format!("{s:?} {public:?} {json}");
        assert!(!shown.contains("cassandra-pw") && json.contains("shopbench"), "{shown}");
    }

    #[test]
    fn settings_survive_the_run_state_and_keep_the_token_out_of_it_and_of_debug() {
        let s = full();
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("very-secret"), "{json}");
        let back: WebSettings = serde_json::from_str(&json).unwrap();
        assert_eq!(back, WebSettings { admin_token: String::new(), ..s.clone() });
        let pg_only = WebSettings { redis: None, cassandra: None, ..full() };
        let json = serde_json::to_string(&pg_only).unwrap();
        assert!(!json.contains("redis") && !json.contains("cassandra"), "{json}");
        assert_eq!(
            serde_json::from_str::<WebSettings>(&json).unwrap(),
            WebSettings { admin_token: String::new(), ..pg_only }
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret") && shown.contains("<redacted>"), "{shown}");
    }
}
