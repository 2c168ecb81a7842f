//! Where the Redis set is (its Sentinels) and how hard to try.

use endpoints::HostPort;
use serde::Deserialize;
use std::time::Duration;

/// How to reach the shop's Redis: the Sentinels that watch it, never a Redis address, so the
/// adapter follows a failover by itself. `Debug` leaves the passwords out: settings are logged.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `host:port` of each Sentinel. In the environment a comma-separated string is accepted too.
    #[serde(default = "default_sentinels", deserialize_with = "endpoints::list_or_comma")]
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under.
    #[serde(default = "default_master_name")]
    pub master_name: String,
    /// Put before every key (tests use a fresh one each; a shared Redis could hold several shops).
    #[serde(default)]
    pub key_prefix: String,
    /// Connections per Redis node (each multiplexes many requests).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Time allowed to connect and for one command to answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a write waits for the replicas to confirm it (`WAIT`) before the replicas that
    /// did not are taken out of the read set (see docs/redis.md).
    #[serde(default = "default_replica_wait_ms")]
    pub replica_wait_ms: u64,
    /// A write is acknowledged only when this many replicas have it (fewer when the set has
    /// fewer replicas), so that it survives the loss of the master.
    #[serde(default = "default_min_replica_acks")]
    pub min_replica_acks: usize,
    /// How long a write (or a read that needs the master) keeps retrying while there is no
    /// master: covers Sentinel noticing a dead master and promoting a replica.
    #[serde(default = "default_failover_wait_ms")]
    pub failover_wait_ms: u64,
    /// The password of every Redis node (`requirepass`), when they ask for one (off loopback).
    #[serde(default)]
    pub password: Option<String>,
    /// The Sentinels' own password (their `requirepass`), when they ask for one.
    #[serde(default)]
    pub sentinel_password: Option<String>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisSettings")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("timeout_ms", &self.timeout_ms)
            .field("replica_wait_ms", &self.replica_wait_ms)
            .field("min_replica_acks", &self.min_replica_acks)
            .field("failover_wait_ms", &self.failover_wait_ms)
            .field("password", &hide(&self.password))
            .field("sentinel_password", &hide(&self.sentinel_password))
            .finish()
    }
}

fn default_sentinels() -> Vec<String> {
    (26379..26382).map(|p| format!("127.0.0.1:{p}")).collect()
}
fn default_master_name() -> String {
    "shopbench".into()
}
fn default_pool_size() -> usize {
    4
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_replica_wait_ms() -> u64 {
    100
}
fn default_min_replica_acks() -> usize {
    1
}
fn default_failover_wait_ms() -> u64 {
    20_000
}

impl RedisSettings {
    /// Settings with the documented defaults for the given Sentinels.
    pub fn new(sentinels: Vec<String>) -> Self {
        Self {
            sentinels,
            master_name: default_master_name(),
            key_prefix: String::new(),
            pool_size: default_pool_size(),
            timeout_ms: default_timeout_ms(),
            replica_wait_ms: default_replica_wait_ms(),
            min_replica_acks: default_min_replica_acks(),
            failover_wait_ms: default_failover_wait_ms(),
            password: None,
            sentinel_password: None,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
    pub fn replica_wait(&self) -> Duration {
        Duration::from_millis(self.replica_wait_ms.max(1))
    }
    pub fn failover_wait(&self) -> Duration {
        Duration::from_millis(self.failover_wait_ms)
    }

    pub(crate) fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.sentinels.is_empty(), "redis.sentinels must name at least one host:port");
        for s in &self.sentinels {
            parse_address(s)?;
        }
        anyhow::ensure!(!self.master_name.trim().is_empty(), "redis.master_name must not be empty");
        anyhow::ensure!(self.pool_size >= 1, "redis.pool_size must be at least 1");
        Ok(())
    }
}

/// Parses a sentinel's or an instance's `host:port`.
pub(crate) fn parse_address(addr: &str) -> anyhow::Result<HostPort> {
    HostPort::parse(addr).map_err(|e| anyhow::anyhow!("redis address {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_deserialize_from_a_list_or_a_comma_separated_string_with_defaults() {
        let s: RedisSettings = serde_json::from_str(r#"{"sentinels":"127.0.0.1:1, 127.0.0.1:2"}"#).unwrap();
        assert_eq!(s.sentinels, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(
            (s.master_name.as_str(), s.key_prefix.as_str(), s.pool_size, s.timeout_ms),
            ("shopbench", "", 4, 1000)
        );
        assert_eq!((s.replica_wait_ms, s.min_replica_acks, s.failover_wait_ms), (100, 1, 20_000));
        let s: RedisSettings = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(s.sentinels, vec!["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"]);
        assert!(serde_json::from_str::<RedisSettings>(r#"{"sentinel":"a:1"}"#).is_err(), "typos are refused");
        assert!(s.password.is_none() && s.sentinel_password.is_none());
        let s: RedisSettings = serde_json::from_str(r#"{"password":"pw-r","sentinel_password":"pw-s"}"#).unwrap();
        assert_eq!((s.password.as_deref(), s.sentinel_password.as_deref()), (Some("pw-r"), Some("pw-s")));
        let shown = format!("{s:?}");
        assert!(!shown.contains("pw-r") && !shown.contains("pw-s") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(parse_address("127.0.0.1:26379").unwrap(), HostPort { host: "127.0.0.1".into(), port: 26379 });
        assert!(parse_address("localhost").unwrap_err().to_string().starts_with("redis address \"localhost\""));
        assert!(parse_address(":1").is_err());
        let mut s = RedisSettings::new(vec![]);
        assert!(s.check().is_err());
        s.sentinels = vec!["h:70000".into()];
        assert!(s.check().is_err());
        s.sentinels = vec!["h:7000".into()];
        s.check().unwrap();
    }
}
