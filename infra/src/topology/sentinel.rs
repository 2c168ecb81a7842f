//! The `[sentinel]` section of a topology file and the Redis part of its validation.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{Section, Topology};

/// `[sentinel]`: a [`Section`] plus the name of the monitored master and the failover timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SentinelRaw", into = "SentinelRaw")]
pub struct SentinelSection {
    pub section: Section,
    /// The name clients ask for (`SENTINEL get-master-addr-by-name`); default "shopbench".
    pub master_name: String,
    /// Sentinels that must agree that the master is down; default a majority of `count`.
    pub quorum: Option<usize>,
    /// A master without a valid reply for this long is down in a sentinel's view (default 3000).
    pub down_after_ms: u64,
    /// Default 10000.
    pub failover_timeout_ms: u64,
}

// serde's `flatten` cannot be combined with `deny_unknown_fields`, so the file form is spelled out.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SentinelRaw {
    #[serde(default)]
    count: usize,
    base_port: u16,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default = "default_master_name")]
    master_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quorum: Option<usize>,
    #[serde(default = "default_down_after_ms")]
    down_after_ms: u64,
    #[serde(default = "default_failover_timeout_ms")]
    failover_timeout_ms: u64,
}

fn default_master_name() -> String {
    "shopbench".to_string()
}
fn default_down_after_ms() -> u64 {
    3000
}
fn default_failover_timeout_ms() -> u64 {
    10000
}

impl From<SentinelRaw> for SentinelSection {
    fn from(r: SentinelRaw) -> Self {
        SentinelSection {
            section: Section { count: r.count, base_port: r.base_port, hosts: r.hosts, settings: BTreeMap::new() },
            master_name: r.master_name,
            quorum: r.quorum,
            down_after_ms: r.down_after_ms,
            failover_timeout_ms: r.failover_timeout_ms,
        }
    }
}

impl From<SentinelSection> for SentinelRaw {
    fn from(s: SentinelSection) -> Self {
        SentinelRaw {
            count: s.section.count,
            base_port: s.section.base_port,
            hosts: s.section.hosts,
            master_name: s.master_name,
            quorum: s.quorum,
            down_after_ms: s.down_after_ms,
            failover_timeout_ms: s.failover_timeout_ms,
        }
    }
}

impl SentinelSection {
    /// No sentinels (a topology without `[sentinel]`).
    pub fn none() -> SentinelSection {
        SentinelRaw {
            count: 0,
            base_port: 26379,
            hosts: vec![],
            master_name: default_master_name(),
            quorum: None,
            down_after_ms: default_down_after_ms(),
            failover_timeout_ms: default_failover_timeout_ms(),
        }
        .into()
    }

    pub fn quorum(&self) -> usize {
        self.quorum.unwrap_or(self.section.count / 2 + 1)
    }
}

/// The Redis part of `Topology::validate`.
pub(super) fn validate(t: &Topology) -> Result<()> {
    let s = &t.sentinel;
    let count = s.section.count;
    if count > 0 && t.redis.count == 0 {
        bail!("[sentinel] needs [redis] instances to monitor");
    }
    if count > 0 && !(1..=count).contains(&s.quorum()) {
        bail!("[sentinel] quorum {} must be between 1 and count ({count})", s.quorum());
    }
    let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if !name_ok(&s.master_name) {
        bail!("[sentinel] master_name {:?}: use letters, digits, '.', '-' and '_'", s.master_name);
    }
    if s.down_after_ms == 0 || s.failover_timeout_ms == 0 {
        bail!("[sentinel] down_after_ms and failover_timeout_ms must be above 0");
    }
    if t.web.section.count > 0 && t.redis.count > 0 && count == 0 {
        bail!("web instances find the Redis master through Sentinel: add a [sentinel] section (or --redis 0)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::topology::{Kind, Topology};

    #[test]
    fn redis_topology_parses_and_validates() {
        let t = Topology::parse(include_str!("../../topologies/redis.toml")).unwrap();
        assert_eq!([Kind::Redis, Kind::Sentinel].map(|k| t.count(k)), [3, 3]);
        assert_eq!(t.endpoint(Kind::Redis, 2), ("127.0.0.1".to_string(), 16381));
        assert_eq!(t.endpoint(Kind::Sentinel, 0), ("127.0.0.1".to_string(), 26379));
        assert_eq!((t.sentinel.master_name.as_str(), t.sentinel.quorum()), ("shopbench", 2));

        let test = Topology::parse(include_str!("../../topologies/test-redis.toml")).unwrap();
        assert_eq!([Kind::Postgres, Kind::Redis, Kind::Sentinel].map(|k| test.count(k)), [0, 3, 3]);
        assert_eq!(test.endpoint(Kind::Sentinel, 2).1, 15612);

        let base = "name = \"x\"\n[redis]\ncount = 1\nbase_port = 5000\n";
        let err = |extra: &str| Topology::parse(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err("[sentinel]\ncount = 3\nbase_port = 6000\nquorum = 4\n").contains("quorum 4"));
        assert!(err("[sentinel]\ncount = 1\nbase_port = 6000\nmaster_name = \"a b\"\n").contains("master_name"));
        assert!(err("[sentinel]\ncount = 1\nbase_port = 5000\n").contains("given to both redis 0 and sentinel 0"));
        let lonely = "name = \"x\"\n[sentinel]\ncount = 1\nbase_port = 6000\n";
        assert!(Topology::parse(lonely).unwrap_err().to_string().contains("needs [redis]"));
        assert!(Topology::parse("name = \"x\"\n").unwrap_err().to_string().contains("starts nothing"));
    }

    #[test]
    fn redis_overrides() {
        use crate::topology::Overrides;
        let t = Topology::parse(include_str!("../../topologies/redis.toml")).unwrap();
        let more = t.clone().with_overrides(&Overrides { redis: Some(4), ..Default::default() }).unwrap();
        assert_eq!(more.count(Kind::Redis), 4);
        let none = t.clone().with_overrides(&Overrides { redis: Some(0), ..Default::default() }).unwrap();
        assert_eq!(none.count(Kind::Redis) + none.count(Kind::Sentinel), 0, "--redis 0 drops the sentinels");
        let db = t.with_overrides(&Overrides { only_db: true, ..Default::default() }).unwrap();
        assert_eq!(
            [Kind::Redis, Kind::Sentinel, Kind::Web].map(|k| db.count(k)),
            [3, 3, 0],
            "--only db keeps the stores"
        );
    }
}
