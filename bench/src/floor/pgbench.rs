//! `pgbench -S` through a pgpool endpoint: the throughput the database path can give a
//! single-row primary-key read, to hold the product GET against.

use anyhow::{bail, Context, Result};
use endpoints::HostPort;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::process::Command;

/// The scratch database pgbench's tables go in.
pub const DATABASE: &str = "pgbench";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgbenchRun {
    pub endpoint: String,
    pub clients: usize,
    pub threads: usize,
    pub secs: u64,
    /// Transactions per second, without initial connection time.
    pub tps: f64,
    pub command: String,
}

/// The `tps = ...` figure of pgbench's summary.
pub fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|l| l.trim().strip_prefix("tps = ")?.split_whitespace().next()?.parse().ok())
}

async fn run(program: &str, args: &[String], timeout: Duration) -> Result<String> {
    let what = format!("{program} {}", args.join(" "));
    let child = Command::new(program).args(args).env("PGCONNECT_TIMEOUT", "10").kill_on_drop(true).output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .with_context(|| format!("{what}: no answer after {timeout:?}"))?
        .with_context(|| format!("starting {what}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, text.trim());
    }
    Ok(text)
}

fn conn_args(endpoint: &str) -> Result<Vec<String>> {
    let HostPort { host, port } = HostPort::parse(endpoint).map_err(|e| anyhow::anyhow!("endpoint {e}"))?;
    Ok(vec!["-h".into(), host, "-p".into(), port.to_string(), "-U".into(), "postgres".into()])
}

/// Creates the scratch database through the endpoint (pgpool replicates it to every backend)
/// and fills it with `pgbench -i` at scale 1 (100 000 accounts).
pub async fn init(endpoint: &str) -> Result<()> {
    let mut psql = conn_args(endpoint)?;
    psql.extend(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"].map(String::from));
    for sql in [format!("DROP DATABASE IF EXISTS {DATABASE}"), format!("CREATE DATABASE {DATABASE}")] {
        let mut args = psql.clone();
        args.push(sql);
        run("psql", &args, Duration::from_secs(60)).await?;
    }
    let mut args = conn_args(endpoint)?;
    args.extend(["-i", "-q", "-s", "1", DATABASE].map(String::from));
    run("pgbench", &args, Duration::from_secs(300)).await?;
    Ok(())
}

/// `pgbench -S -c clients -j threads -T secs -n` against the endpoint.
pub async fn select_only(endpoint: &str, clients: usize, threads: usize, secs: u64) -> Result<PgbenchRun> {
    let mut args = conn_args(endpoint)?;
    args.extend(
        ["-S", "-n", "-c", &clients.to_string(), "-j", &threads.min(clients).to_string(), "-T", &secs.to_string()]
            .map(String::from),
    );
    args.push(DATABASE.into());
    let out = run("pgbench", &args, Duration::from_secs(secs + 60)).await?;
    let tps = parse_tps(&out).with_context(|| format!("no tps in pgbench's output:\n{out}"))?;
    Ok(PgbenchRun {
        endpoint: endpoint.to_string(),
        clients,
        threads: threads.min(clients),
        secs,
        tps,
        command: format!("pgbench {}", args.join(" ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tps_from_pgbench_15_output() {
        let out = "pgbench (15.14 (Debian 15.14-0+deb12u1))\ntransaction type: <builtin: select only>\n\
                   scaling factor: 1\nquery mode: simple\nnumber of clients: 8\nnumber of threads: 2\n\
                   maximum number of tries: 1\nduration: 10 s\nnumber of transactions actually processed: 120345\n\
                   number of failed transactions: 0 (0.000%)\nlatency average = 0.664 ms\n\
                   initial connection time = 12.345 ms\ntps = 12034.567890 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(12034.56789));
        assert_eq!(parse_tps("no numbers here"), None);
    }
}
