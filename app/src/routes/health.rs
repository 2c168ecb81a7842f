//! Liveness, readiness (every store answers) and the Prometheus scrape endpoint.

use super::State;
use actix_web::HttpResponse;
use futures_util::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// A store slower than this to answer a health check counts as unavailable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when every store answers, else 503; either way the state of each store by name.
pub async fn ready(state: State) -> HttpResponse {
    let checks = state.health.iter().map(|h| async move {
        let ok = match tokio::time::timeout(CHECK_TIMEOUT, h.check()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(store = h.name(), error = %e, "readiness check failed");
                false
            }
            Err(_) => {
                tracing::warn!(store = h.name(), "readiness check timed out");
                false
            }
        };
        (h.name().to_string(), ok)
    });
    let results = join_all(checks).await;
    let all_ok = results.iter().all(|(_, ok)| *ok);
    let stores: BTreeMap<String, &str> =
        results.into_iter().map(|(name, ok)| (name, if ok { "ok" } else { "unavailable" })).collect();
    let status = if all_ok { "ok" } else { "unavailable" };
    let body = json!({"status": status, "stores": stores});
    if all_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
