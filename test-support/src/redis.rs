//! The shared test Redis set (`SHOPBENCH_TEST_REDIS`: its Sentinels, master name "shopbench"):
//! a fresh key prefix per test.

use adapter_redis::RedisSettings;

/// The Sentinels to test against.
///
/// # Panics
/// When `SHOPBENCH_TEST_REDIS` is unset.
pub fn test_settings() -> RedisSettings {
    let mut s = RedisSettings::new(crate::servers_from_env(crate::REDIS));
    s.pool_size = 2;
    s
}

/// `base` with a fresh random key prefix, so tests sharing one Redis never see each other's keys.
pub fn fresh_prefix(base: &RedisSettings) -> RedisSettings {
    RedisSettings { key_prefix: format!("{}:", crate::unique_name("test:")), ..base.clone() }
}
