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
