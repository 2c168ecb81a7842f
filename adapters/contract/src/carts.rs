//! The CartRepository contract (filled by the Redis stage).
