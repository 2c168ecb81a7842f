//! Connection settings: the pgpool-II (or PostgreSQL) endpoints and how to log in.

use endpoints::HostPort;
use serde::Deserialize;
use std::time::Duration;

/// Where the shop's PostgreSQL is and how to reach it. Every endpoint serves the same data
/// (each is a pgpool-II in front of the same replicated backends, or a single PostgreSQL).
/// `Debug` leaves the password out: settings are logged.
#[derive(Clone, Deserialize)]
pub struct PgSettings {
    /// `host:port` of each endpoint. In the environment a comma-separated string is accepted too.
    #[serde(deserialize_with = "endpoints::list_or_comma")]
    pub endpoints: Vec<String>,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    /// Connections per endpoint.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Time allowed to open a connection (and to wait for a pooled one).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

fn default_user() -> String {
    "postgres".into()
}
fn default_dbname() -> String {
    "shop".into()
}
fn default_pool_size() -> u32 {
    8
}
fn default_connect_timeout_ms() -> u64 {
    1000
}

impl PgSettings {
    /// Settings with the documented defaults for the given endpoints.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            user: default_user(),
            password: None,
            dbname: default_dbname(),
            pool_size: default_pool_size(),
            connect_timeout_ms: default_connect_timeout_ms(),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// The tokio-postgres configuration of one endpoint (the adapter's pools use it; so may a
    /// plain client beside the adapter).
    pub fn config_for(&self, endpoint: &str) -> anyhow::Result<tokio_postgres::Config> {
        let HostPort { host, port } =
            HostPort::parse(endpoint).map_err(|e| anyhow::anyhow!("postgres endpoint {e}"))?;
        let mut c = tokio_postgres::Config::new();
        c.host(&host).port(port).user(&self.user).dbname(&self.dbname);
        c.connect_timeout(self.connect_timeout());
        c.application_name("shopbench");
        // The simple-protocol reads parse times from text (`rows::timestamp_text`).
        c.options("-c DateStyle=ISO -c TimeZone=UTC");
        c.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if let Some(p) = &self.password {
            c.password(p);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_into_host_and_port() {
        let s = PgSettings::new(vec![]);
        assert_eq!(s.config_for("[::1]:5432").unwrap().get_ports(), [5432]);
        let err = s.config_for("localhost").unwrap_err().to_string();
        assert!(err.contains("postgres endpoint \"localhost\" is not host:port"), "{err}");
        assert!(s.config_for(":5432").is_err());
        assert!(s.config_for("h:70000").is_err());
    }

    #[test]
    fn endpoints_deserialize_from_a_list_or_a_comma_separated_string() {
        let s: PgSettings = serde_json::from_str(r#"{"endpoints":"127.0.0.1:1, 127.0.0.1:2"}"#).unwrap();
        assert_eq!(s.endpoints, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(
            (s.user.as_str(), s.dbname.as_str(), s.pool_size, s.connect_timeout_ms),
            ("postgres", "shop", 8, 1000)
        );
        let s: PgSettings = serde_json::from_str(r#"{"endpoints":["a:1"],"pool_size":3}"#).unwrap();
        assert_eq!((s.endpoints, s.pool_size), (vec!["a:1".to_string()], 3));
    }
}
