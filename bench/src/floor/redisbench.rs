//! `redis-benchmark -t get` against one Redis node: what a node gives a single-key read at the
//! bench's concurrency, beside `pgbench -S` for PostgreSQL (the cart GETs of the Redis stage read
//! a replica; the HTTP stack, the access check in PostgreSQL and the cart's shape come on top).

use anyhow::{bail, Context, Result};
use endpoints::HostPort;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::process::Command;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedisBenchRun {
    /// `host:port` of the node, and its role when run ("replica" or "master").
    pub endpoint: String,
    pub role: String,
    pub clients: usize,
    pub requests: u64,
    /// GETs per second.
    pub rps: f64,
    pub mean_ms: Option<f64>,
    pub command: String,
}

/// The GET row of `redis-benchmark --csv`: requests per second and mean latency (ms).
pub fn parse_csv(output: &str) -> Option<(f64, Option<f64>)> {
    let line = output.lines().find(|l| l.starts_with("\"GET\""))?;
    let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(2).and_then(|f| f.parse().ok())))
}

/// `redis-benchmark -t get -c clients -n requests --csv` against `endpoint` (one key, so every
/// GET is a hit on the same small value or a miss: the node's command path, not memory).
pub async fn get(endpoint: &str, role: &str, clients: usize, requests: u64) -> Result<RedisBenchRun> {
    let HostPort { host, port } = HostPort::parse(endpoint).map_err(|e| anyhow::anyhow!("endpoint {e}"))?;
    let args: Vec<String> =
        ["-h", &host, "-p", &port.to_string(), "-t", "get", "-c", &clients.to_string(), "-n", &requests.to_string()]
            .into_iter()
            .map(String::from)
            .chain(["--csv".to_string()])
            .collect();
    let command = format!("redis-benchmark {}", args.join(" "));
    let child = Command::new("redis-benchmark").args(&args).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .with_context(|| format!("{command}: no answer after 120 s"))?
        .with_context(|| format!("starting {command} (Debian package redis-tools)"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{command} failed ({}): {}", out.status, text.trim());
    }
    let (rps, mean_ms) =
        parse_csv(&text).with_context(|| format!("no GET row in redis-benchmark's output:\n{text}"))?;
    Ok(RedisBenchRun {
        endpoint: endpoint.to_string(),
        role: role.to_string(),
        clients,
        requests,
        rps,
        mean_ms,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_get_row_of_redis_7_csv_output() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\
                   \"p99_latency_ms\",\"max_latency_ms\"\n\"GET\",\"61349.69\",\"0.073\",\"0.016\",\"0.071\",\"0.103\",\
                   \"0.143\",\"0.623\"\n";
        assert_eq!(parse_csv(out), Some((61349.69, Some(0.073))));
        assert_eq!(parse_csv("\"SET\",\"1\",\"2\"\n"), None);
    }
}
