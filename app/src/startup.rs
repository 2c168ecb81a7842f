//! `Application::build` is the one way to start the service, used by `main` and by the tests.

use crate::config::{Settings, DEV_ADMIN_TOKEN};
use crate::deadline::RequestBudget;
use crate::extract::BodyLimit;
use crate::routes::{self, AppState};
use crate::{deadline, metrics, wiring};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use domain::models::ApiToken;
use domain::ports::SystemClock;
use domain::Shop;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects the stores, binds `http.host:http.port` (0: any free port) and prepares the server;
    /// nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = metrics::handle();
        if settings.admin_token == DEV_ADMIN_TOKEN {
            tracing::warn!(
                "admin_token is the default {DEV_ADMIN_TOKEN:?}: set SHOPBENCH__ADMIN_TOKEN outside development"
            );
        }
        let wired = wiring::wire(&settings).await?;
        let shop = Shop::new(wired.stores, Arc::new(SystemClock), &ApiToken::from_client(&settings.admin_token));
        let state = web::Data::new(AppState { shop, health: wired.health, metrics });

        let http = &settings.http;
        let listener = TcpListener::bind((http.host.as_str(), http.port))
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", http.host, http.port))?;
        let address = listener.local_addr()?;
        let limit = BodyLimit(http.max_body_bytes);
        let budget = RequestBudget(Duration::from_millis(http.request_timeout_ms));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(limit)
                .app_data(budget)
                .configure(routes::register)
                .wrap(from_fn(deadline::bound))
                .wrap(ErrorHandlers::new().default_handler(routes::json_errors))
                .wrap(from_fn(metrics::track))
        })
        .workers(http.workers)
        .listen(listener)?
        .run();
        tracing::info!(%address, workers = http.workers, "listening");
        Ok(Self { port: address.port(), server })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
