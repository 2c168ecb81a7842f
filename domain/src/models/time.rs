//! Timestamps. Made by the application and truncated to whole milliseconds, the finest unit every
//! store keeps (Cassandra's `timestamp` is milliseconds), so a value reads back exactly as written.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn from_datetime(t: DateTime<Utc>) -> Self {
        Self(t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t))
    }
    pub fn from_millis(ms: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(ms).map(Self)
    }
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}
