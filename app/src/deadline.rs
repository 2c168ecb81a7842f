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

/// Answers 503 once the request's budget is spent, without polling the handler again. The answer
/// is an error (actix renders `ApiError` as the JSON error body): the request cannot be cloned
/// for a response of our own before routing has run.
pub async fn bound<B: MessageBody>(req: ServiceRequest, next: Next<B>) -> Result<ServiceResponse<B>, actix_web::Error> {
    let budget = req.app_data::<RequestBudget>().map_or(Duration::MAX, |b| b.0);
    let Some(deadline) = tokio::time::Instant::now().checked_add(budget) else {
        return next.call(req).await;
    };
    let (method, path) = (req.method().clone(), req.path().to_string());
    tokio::select! {
        // Biased, the deadline first: a process that was frozen past its deadline (SIGSTOP, a
        // stall) must not take one more step, such as sending a COMMIT, once it runs again.
        biased;
        () = tokio::time::sleep_until(deadline) => {
            metrics::counter!("shop_requests_timed_out_total").increment(1);
            tracing::warn!(%method, path, ?budget, "request ran out of time");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the request did not finish in time and was cancelled; try again",
            )
            .into())
        }
        res = next.call(req) => res,
    }
}
