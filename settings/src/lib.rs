//! The contract between the shop (`app`), the launcher (`infra`) and the bench (`bench`):
//!
//! * [`Stage`]: which stores the shop runs on (the app's build feature), and what follows from
//!   it (where the carts and the catalogue live, which stores a topology must have);
//! * [`WebSettings`]: what infra gives a web instance (listen address, admin token, the stores'
//!   endpoints), rendered to the process environment by one function, [`WebSettings::env`],
//!   under the names docs/configuration.md documents and the app's configuration reads.
//!
//! It is its own crate, of types and serde only, so that the imports stay one way: app, infra
//! and bench all depend on it and it on none of them (the app must not depend on infra, nor
//! infra on the app whose binary it only starts; bench depends on both).

mod stage;
mod web;

pub use stage::{Stage, Store, UnknownStage};
pub use web::{
    env_name, CassandraSettings, HttpSettings, PostgresSettings, RedisSettings, WebSettings, ENV_PREFIX,
    KEEP_ALIVE_SECS, PROXY_IDLE_SECS,
};
