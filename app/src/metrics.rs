//! Prometheus metrics: one recorder per process (the `metrics` facade allows only one, and tests
//! build several apps in one process), histograms with fixed buckets so they can be summed
//! across web instances, and a middleware timing every request by its route pattern.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bounds in seconds: from a cached read (~0.5 ms) to a stalled failover (~5 s).
pub const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histograms are compacted (metrics-exporter-prometheus needs `run_upkeep`).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Route label of requests that matched no route, so scanners cannot create unbounded series.
pub const UNMATCHED: &str = "unmatched";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("BUCKETS is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .expect("spawn the metrics upkeep thread");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request received to response ready, by method, route pattern and status."
    );
}

/// Standard methods by name; anything else is "other", like unmatched routes.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|k| *k == m).map_or("other", |k| k.as_str())
}

/// Records `http_request_duration_seconds{method,route,status}` for every request.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| UNMATCHED.to_string());
    let status = res.status().as_u16().to_string();
    let elapsed = start.elapsed();
    tracing::debug!(%method, %route, %status, ms = elapsed.as_secs_f64() * 1e3, "request");
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(elapsed);
    Ok(res)
}
