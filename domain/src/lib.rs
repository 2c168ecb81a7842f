//! The shop's domain: entities with their rules, the ports the stores implement, and the use
//! cases. Pure: no I/O, no web framework, no database driver.

pub mod error;
pub mod models;
pub mod ports;
pub mod service;

pub use error::{DomainError, StoreError, StoreFailure, ValidationError};
pub use service::{Checkout, Credentials, Shop, Stores};
