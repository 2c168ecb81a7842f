//! Every request is answered within `http.request_timeout_ms`, below nginx's read timeout
//! (infra/templates/nginx.conf), so the answer a client gets is the service's own and is true:
//! when time runs out the handler's future is dropped at once, with everything it was waiting
//! for (a store retrying through a failover, a statement queued behind a lock), and the client
//! gets 503 `unavailable`. Dropping it closes the PostgreSQL sessions it held mid-attempt (the
//! adapter marks them broken), which ends their uncommitted transactions; no store call of the
//! request starts afterwards. So a 503 means "not applied", except a write whose last step (a
//! COMMIT, a Redis script) was already sent when time ran out: the checkout, whose retry with the
//! same Idempotency-Key then answers with the order if there is one (docs/failure-semantics.md).
//!
//! Without this bound nginx gave up first (504) while the service went on retrying, and a cart
//! add answered 504 could commit seconds later; each such timeout also counted toward nginx's
//! `max_fails` and took healthy web instances out.

use crate::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use std::time::Duration;

/// The time a request may take, from when its handling starts.
#[derive(Clone, Copy, Debug)]
pub struct RequestBudget(pub Duration);

/// The header nginx sets to the moment it first sent the request: `t=<seconds since the epoch>`.
pub const REQUEST_START: &str = "x-request-start";

/// How long ago the proxy first sent the request, from `X-Request-Start` (`t=1764000000.123`);
/// `None` without the header, or for a moment in the future (clocks apart).
fn queued_for(req: &ServiceRequest) -> Option<Duration> {
    let raw = req.headers().get(REQUEST_START)?.to_str().ok()?;
    let secs: f64 = raw.trim().strip_prefix("t=")?.parse().ok()?;
    let sent = std::time::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
    std::time::SystemTime::now().duration_since(sent).ok()
}

/// Answers 503 once the request's budget is spent, without polling the handler again. The answer
/// is an error (actix renders `ApiError` as the JSON error body): the request cannot be cloned
/// for a response of our own before routing has run.
///
/// A write's budget counts from when the proxy first sent it (`X-Request-Start`), so a write that
/// waited in the socket of a frozen instance until the proxy gave up on it is refused, not run late
/// (the proxy may have resent it to another instance meanwhile, and the client may have changed
/// the cart since). Reads count from now: running them late changes nothing, and a read the proxy
/// resends after its timeout must still be served.
pub async fn bound<B: MessageBody>(req: ServiceRequest, next: Next<B>) -> Result<ServiceResponse<B>, actix_web::Error> {
    let budget = req.app_data::<RequestBudget>().map_or(Duration::MAX, |b| b.0);
    let read = matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD);
    let queued = if read { None } else { queued_for(&req) };
    let Some(deadline) = tokio::time::Instant::now().checked_add(budget.saturating_sub(queued.unwrap_or_default()))
    else {
        return next.call(req).await;
    };
    let (method, path) = (req.method().clone(), req.path().to_string());
    if queued.is_some_and(|q| q >= budget) {
        metrics::counter!("shop_requests_timed_out_total").increment(1);
        tracing::warn!(%method, path, ?queued, "write refused: the proxy sent it longer ago than the budget");
        return Err(too_late());
    }
    tokio::select! {
        // Biased, the deadline first: a process that was frozen past its deadline (SIGSTOP, a
        // stall) must not take one more step, such as sending a COMMIT, once it runs again.
        biased;
        () = tokio::time::sleep_until(deadline) => {
            metrics::counter!("shop_requests_timed_out_total").increment(1);
            tracing::warn!(%method, path, ?budget, "request ran out of time");
            Err(too_late())
        }
        res = next.call(req) => res,
    }
}

fn too_late() -> actix_web::Error {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the request did not finish in time and was cancelled; try again",
    )
    .into()
}
