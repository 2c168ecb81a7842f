//! Carts in Redis (issue #5).
