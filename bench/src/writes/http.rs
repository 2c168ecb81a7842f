//! The closed loop over HTTP: `c` connections, each its own keep-alive client and its own user,
//! POST /users/{id}/cart/items (quantity 1, a product drawn at random), the next add when the
//! last is answered; warm-up, then the measured window with the CPU read around it.

use super::topo::User;
use crate::measure::cpu;
use anyhow::Result;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What one turn of the loop counted, with the CPU use of its measured window.
pub struct LoopResult {
    pub adds: u64,
    pub failures: u64,
    pub failure_reasons: BTreeMap<String, u64>,
    pub window_secs: f64,
    pub cpu: cpu::CpuUse,
}

#[derive(Default)]
struct Counts {
    adds: u64,
    failures: u64,
    reasons: BTreeMap<String, u64>,
}

/// Runs the loop against `url` with one connection per user.
pub async fn run(
    url: &str,
    users: &[User],
    products: Arc<Vec<Uuid>>,
    warmup: Duration,
    secs: Duration,
    groups: &[(String, Vec<u32>)],
    seed: u64,
) -> Result<LoopResult> {
    let start = Instant::now();
    let (w0, w1) = (start + warmup, start + warmup + secs);
    let mut tasks = Vec::new();
    for (k, user) in users.iter().enumerate() {
        // One connection per client: its own pool, one idle connection kept alive.
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).timeout(Duration::from_secs(10)).build()?;
        let add = format!("{url}/users/{}/cart/items", user.id);
        let (token, products) = (user.token.clone(), products.clone());
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(k as u64));
        tasks.push(tokio::spawn(async move {
            let mut c = Counts::default();
            while Instant::now() < w1 && !crate::cancel::is_cancelled() {
                let product = products[rng.gen_range(0..products.len())];
                let body = json!({ "product_id": product, "quantity": 1 });
                let outcome = match client.post(&add).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.map(|_| ()).map_err(|e| e.to_string()),
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let code = r
                            .json::<serde_json::Value>()
                            .await
                            .ok()
                            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
                            .unwrap_or_default();
                        Err(format!("status {status} {code}").trim().to_string())
                    }
                    Err(e) => Err(innermost(&e)),
                };
                let now = Instant::now();
                let in_window = now >= w0 && now < w1;
                match outcome {
                    Ok(()) if in_window => c.adds += 1,
                    Ok(()) => {}
                    Err(reason) => {
                        if in_window {
                            c.failures += 1;
                        }
                        *c.reasons.entry(reason).or_default() += 1;
                    }
                }
            }
            c
        }));
    }
    tokio::time::sleep_until(w0.into()).await;
    let a = cpu::snapshot(groups);
    let t0 = Instant::now();
    tokio::time::sleep_until(w1.into()).await;
    let b = cpu::snapshot(groups);
    let window_secs = t0.elapsed().as_secs_f64();
    let mut total = Counts::default();
    for t in tasks {
        let c = t.await?;
        total.adds += c.adds;
        total.failures += c.failures;
        for (r, n) in c.reasons {
            *total.reasons.entry(r).or_default() += n;
        }
    }
    if crate::cancel::is_cancelled() {
        anyhow::bail!("interrupted");
    }
    Ok(LoopResult {
        adds: total.adds,
        failures: total.failures,
        failure_reasons: total.reasons,
        window_secs,
        cpu: cpu::between(&a, &b),
    })
}

/// The innermost cause of a transport error ("connection refused", "operation timed out").
fn innermost(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = inner.to_string();
        src = inner.source();
    }
    s
}
