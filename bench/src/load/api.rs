//! Plain HTTP calls outside the measured load: readiness and seeding the catalogue.

use crate::load::plan::NewProductSpec;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?)
}

/// Waits until every URL answers `GET /health/ready` with 200.
pub async fn wait_ready(client: &reqwest::Client, urls: &[String], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for url in urls {
        let ready = format!("{}/health/ready", url.trim_end_matches('/'));
        loop {
            let last = match client.get(&ready).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("{ready} not ready after {timeout:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct Ready {
    stores: std::collections::BTreeMap<String, String>,
}

/// The stores a service names in `GET /health/ready`, sorted.
pub async fn ready_stores(client: &reqwest::Client, url: &str) -> Result<Vec<String>> {
    let ready = format!("{}/health/ready", url.trim_end_matches('/'));
    let resp = client.get(&ready).send().await.with_context(|| format!("GET {ready}"))?;
    let body: Ready = resp.json().await.with_context(|| format!("GET {ready}: no stores in the answer"))?;
    Ok(body.stores.into_keys().collect())
}

#[derive(Deserialize)]
struct WithId {
    id: Uuid,
}
#[derive(Deserialize)]
struct Page {
    items: Vec<WithId>,
    next: Option<Uuid>,
}

/// Every product id, by paging through `GET /products`.
pub async fn product_ids(client: &reqwest::Client, url: &str) -> Result<Vec<Uuid>> {
    let base = url.trim_end_matches('/');
    let mut ids = Vec::new();
    let mut after: Option<Uuid> = None;
    loop {
        let mut q = format!("{base}/products?limit=100");
        if let Some(a) = after {
            q.push_str(&format!("&after={a}"));
        }
        let resp = client.get(&q).send().await.with_context(|| format!("GET {q}"))?;
        if !resp.status().is_success() {
            bail!("GET {q}: status {}", resp.status());
        }
        let page: Page = resp.json().await.with_context(|| format!("GET {q}"))?;
        ids.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(n) if !page.items.is_empty() => after = Some(n),
            _ => return Ok(ids),
        }
    }
}

/// Creates the products with the admin token, `parallel` at a time, round-robin over `urls`.
pub async fn seed_products(
    client: &reqwest::Client,
    urls: &[String],
    admin_token: &str,
    products: Vec<NewProductSpec>,
    parallel: usize,
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(products.len());
    for (n, chunk) in products.chunks(parallel.max(1)).enumerate() {
        let calls = chunk.iter().enumerate().map(|(i, spec)| {
            let url = format!("{}/products", urls[(n * parallel + i) % urls.len()].trim_end_matches('/'));
            async move {
                let resp = client
                    .post(&url)
                    .bearer_auth(admin_token)
                    .json(spec)
                    .send()
                    .await
                    .with_context(|| format!("POST {url}"))?;
                let status = resp.status();
                if status.as_u16() != 201 {
                    let body = resp.text().await.unwrap_or_default();
                    bail!("POST {url}: status {status}: {body}");
                }
                Ok(resp.json::<WithId>().await?.id)
            }
        });
        for r in futures_util::future::join_all(calls).await {
            ids.push(r?);
        }
    }
    Ok(ids)
}
