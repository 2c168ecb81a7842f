//! The shop's HTTP service (actix-web): routes, extractors, errors, metrics and the wiring of
//! stores per build stage. `Application::build` starts it for `main` and for the tests.

pub mod config;
pub mod deadline;
pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod wiring;

pub use config::Settings;
pub use startup::Application;

use settings::Stage;

/// The storage stage this build serves: its `stage-*` feature (each includes the one before),
/// told to the bench and the tests in one place.
pub const STAGE: Stage = if cfg!(feature = "stage-cassandra") {
    Stage::Cassandra
} else if cfg!(feature = "stage-redis") {
    Stage::Redis
} else {
    Stage::Pg
};
