//! One suite of contract cases per port. Each adapter's tests call these against its real server,
//! so every adapter of a port is held to the same behaviour.

pub mod carts;
pub mod catalogue;
pub mod orders;
pub mod users;
