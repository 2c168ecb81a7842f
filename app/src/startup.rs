//! `Application::build` is the one way to start the service, used by `main` and by the tests.
//! `app` is the service it runs (routes, middleware, shared state) without a socket or store
//! connections: handler tests drive it with `actix_web::test` over the memory store or a stub.

use crate::config::{HttpSettings, Settings, DEV_ADMIN_TOKEN};
use crate::deadline::RequestBudget;
use crate::extract::BodyLimit;
use crate::routes::{self, AppState};
use crate::{deadline, metrics, wiring};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use domain::models::ApiToken;
use domain::ports::{HealthCheck, SystemClock};
use domain::{Shop, Stores};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

impl AppState {
    /// The shop over `stores` with the system clock, the stores' health checks and the process's
    /// metrics recorder.
    pub fn new(stores: Stores, health: Vec<Arc<dyn HealthCheck>>, admin_token: &str) -> web::Data<AppState> {
        let shop = Shop::new(stores, Arc::new(SystemClock), &ApiToken::from_client(admin_token));
        web::Data::new(AppState { shop, health, metrics: metrics::handle() })
    }
}

/// The service every worker runs: the route table over `state`, with the body limit, the request
/// budget, the JSON error bodies and the metrics of `http`.
pub fn app(
    state: web::Data<AppState>,
    http: &HttpSettings,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(BodyLimit(http.max_body_bytes))
        .app_data(RequestBudget(Duration::from_millis(http.request_timeout_ms)))
        .configure(routes::register)
        .wrap(from_fn(deadline::bound))
        .wrap(ErrorHandlers::new().default_handler(routes::json_errors))
        .wrap(from_fn(metrics::track))
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects the stores, binds `http.host:http.port` (0: any free port) and prepares the server;
    /// nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.admin_token == DEV_ADMIN_TOKEN {
            tracing::warn!(
                "admin_token is the default {DEV_ADMIN_TOKEN:?}: set SHOPBENCH__ADMIN_TOKEN outside development"
            );
        }
        let wired = wiring::wire(&settings).await?;
        let state = AppState::new(wired.stores, wired.health, &settings.admin_token);

        let http = settings.http.clone();
        let listener = TcpListener::bind((http.host.as_str(), http.port))
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", http.host, http.port))?;
        let address = listener.local_addr()?;
        let workers = http.workers;
        let server = HttpServer::new(move || app(state.clone(), &http))
            .workers(workers)
            .keep_alive(Duration::from_secs(::settings::KEEP_ALIVE_SECS))
            .listen(listener)?
            .run();
        tracing::info!(%address, workers, "listening");
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
