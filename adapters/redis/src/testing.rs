//! Helpers for tests (this crate's, the app's) that need a real Redis set.

use crate::RedisSettings;

/// The Sentinels to test against, from `SHOPBENCH_TEST_REDIS` (comma-separated `host:port`),
/// master name "shopbench".
///
/// # Panics
/// When the variable is unset: tests of real stores need real servers.
pub fn test_settings() -> RedisSettings {
    let raw = std::env::var("SHOPBENCH_TEST_REDIS")
        .unwrap_or_else(|_| panic!("SHOPBENCH_TEST_REDIS is not set: start servers with scripts/test"));
    let mut s = RedisSettings::new(endpoints::comma_list(&raw));
    s.pool_size = 2;
    s
}

/// `base` with a fresh random key prefix, so tests sharing one Redis never see each other's keys.
pub fn fresh_prefix(base: &RedisSettings) -> RedisSettings {
    RedisSettings { key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()), ..base.clone() }
}
