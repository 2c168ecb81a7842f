//! Where the Cassandra ring is and how the catalogue's keyspace is replicated.

use endpoints::HostPort;
use serde::Deserialize;
use std::time::Duration;

/// The app's `cassandra` config section. `Debug` leaves the password out: settings are logged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSettings {
    /// `host:port` of the nodes to contact first (the driver finds the rest of the ring through
    /// `system.peers`). Every node must use the same CQL port. In the environment a
    /// comma-separated string is accepted too.
    #[serde(deserialize_with = "endpoints::list_or_comma")]
    pub nodes: Vec<String>,
    #[serde(default = "default_keyspace")]
    pub keyspace: String,
    /// Replicas of every product. QUORUM is `rf / 2 + 1` of them: with 3, one node may be down.
    /// A 1-node ring needs 1.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: u32,
    /// Time allowed for one request (the driver's attempts on every node it tries included). Short
    /// enough that the catalogue's retry of a timed-out request (on another coordinator) still
    /// ends inside the app's 4 s request budget.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Time allowed to open a connection to a node.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The role to log in as, when the ring asks for a login (off loopback).
    #[serde(default)]
    pub username: Option<String>,
    /// That role's password.
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for CassandraSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraSettings")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("replication_factor", &self.replication_factor)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_keyspace() -> String {
    "shop".into()
}
fn default_replication_factor() -> u32 {
    3
}
fn default_request_timeout_ms() -> u64 {
    1500
}
fn default_connect_timeout_ms() -> u64 {
    2000
}

impl CassandraSettings {
    /// Settings with the documented defaults for the given nodes.
    pub fn new(nodes: Vec<String>) -> Self {
        Self {
            nodes,
            keyspace: default_keyspace(),
            replication_factor: default_replication_factor(),
            request_timeout_ms: default_request_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            username: None,
            password: None,
        }
    }

    /// The login, when both the role and its password are given.
    pub fn login(&self) -> Option<(&str, &str)> {
        self.username.as_deref().zip(self.password.as_deref())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// Refuses what Cassandra would refuse later with a less helpful message (the keyspace name is
    /// spliced into statements, so it must be a plain identifier).
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nodes.is_empty(), "cassandra.nodes must name at least one host:port");
        for n in &self.nodes {
            HostPort::parse(n).map_err(|e| anyhow::anyhow!("cassandra node {e}"))?;
        }
        let ks = &self.keyspace;
        anyhow::ensure!(
            !ks.is_empty()
                && ks.len() <= 48
                && ks.starts_with(|c: char| c.is_ascii_lowercase())
                && ks.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "cassandra.keyspace {ks:?}: use 1 to 48 lowercase letters, digits and '_', starting with a letter"
        );
        anyhow::ensure!(self.replication_factor >= 1, "cassandra.replication_factor must be at least 1");
        anyhow::ensure!(
            self.username.is_some() == self.password.is_some(),
            "cassandra.username and cassandra.password go together"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_deserialize_from_a_list_or_a_comma_separated_string() {
        let s: CassandraSettings = serde_json::from_str(r#"{"nodes":"127.0.0.1:9042, 127.0.0.2:9042"}"#).unwrap();
        assert_eq!(s.nodes, vec!["127.0.0.1:9042", "127.0.0.2:9042"]);
        assert_eq!((s.keyspace.as_str(), s.replication_factor), ("shop", 3));
        s.check().unwrap();
        let s: CassandraSettings =
            serde_json::from_str(r#"{"nodes":["a:1"],"replication_factor":1,"keyspace":"k2"}"#).unwrap();
        assert_eq!((s.nodes, s.replication_factor), (vec!["a:1".to_string()], 1));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = CassandraSettings::new(vec!["127.0.0.1:9042".into()]);
        s.keyspace = "shop; DROP".into();
        assert!(s.check().unwrap_err().to_string().contains("keyspace"));
        s.keyspace = "shop".into();
        s.replication_factor = 0;
        assert!(s.check().is_err());
        assert!(CassandraSettings::new(vec!["nohost".into()]).check().is_err());
        assert!(CassandraSettings::new(vec![]).check().is_err());
        assert!(serde_json::from_str::<CassandraSettings>(r#"{"nodes":"a:1","typo":1}"#).is_err());
        let half: CassandraSettings = serde_json::from_str(r#"{"nodes":"a:1","username":"u"}"#).unwrap();
        assert!(half.check().unwrap_err().to_string().contains("go together"));
    }

    #[test]
    fn the_password_is_never_shown() {
        let s: CassandraSettings =
            serde_json::from_str(r#"{"nodes":"a:1","username":"shopbench","password":"pw-c"}"#).unwrap();
        s.check().unwrap();
        assert_eq!(s.login(), Some(("shopbench", "pw-c")));
        let shown = format!("{s:?}");
        assert!(!shown.contains("pw-c") && shown.contains("<redacted>"), "{shown}");
    }
}
