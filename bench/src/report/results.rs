//! Raw results as saved in the run dir (outside git): `meta.json` plus one `config-NN.json` per
//! configuration, rewritten after every phase so an interrupted matrix keeps what it measured.

use crate::floor::pgbench::PgbenchRun;
use crate::load::GooseTotals;
use crate::matrix::{Counts, MatrixFile};
use crate::measure::cpu::CpuUse;
use crate::measure::machine::Machine;
use crate::report::stats::OpStats;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub stage: crate::matrix::Stage,
    /// The command line that produced the run.
    pub command: String,
    pub machine: Machine,
    pub matrix: MatrixFile,
    pub matrix_file: String,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
}

/// One timed Goose run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepeatResult {
    pub repeat: u32,
    pub users: usize,
    pub window_secs: f64,
    pub ops: Vec<OpStats>,
    pub goose: GooseTotals,
    pub host_moves: u64,
    /// Peak VmRSS of each web instance during the run, KiB.
    pub web_rss_kib: Vec<u64>,
    /// Cores each component used during the window.
    #[serde(default)]
    pub cpu: Option<CpuUse>,
    /// Per operation: raw and coordinated-omission-corrected histograms (absent in older runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<crate::latency::OpLatency>,
    /// Where each load client ran when several shared the users (crate::clients); empty: one,
    /// in the runner's process. Their CPU is the "load client" tier of `cpu`, added up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_clients: Vec<String>,
}

/// One timed storage-floor run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloorRun {
    pub repeat: u32,
    pub tasks: usize,
    pub window_secs: f64,
    /// Connections per pgpool endpoint (the whole web tier's, so both sides have as many).
    pub pool_size: u32,
    pub endpoints: Vec<String>,
    /// The store settings the floor ran with (`SHOPBENCH__KEY=value`, the web tier's).
    #[serde(default)]
    pub settings: Vec<String>,
    pub ops: Vec<OpStats>,
    #[serde(default)]
    pub cpu: Option<CpuUse>,
}

/// GET /products/{id} through the full stack against pgbench -S, same concurrency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductVsPgbench {
    pub clients: usize,
    pub secs: u64,
    /// Successful product GETs per second over HTTP.
    pub http_rps: f64,
    pub http_mean_ms: Option<f64>,
    pub http_failures: u64,
    pub pgbench: PgbenchRun,
    /// http_rps / pgbench tps.
    pub ratio: f64,
    #[serde(default)]
    pub http_cpu: Option<CpuUse>,
    /// Peak VmRSS of each web instance during the product GETs, KiB.
    #[serde(default)]
    pub web_rss_kib: Vec<u64>,
    #[serde(default)]
    pub pgbench_cpu: Option<CpuUse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    pub index: usize,
    pub counts: Counts,
    /// The connection sizing infra derived (app pool size, pgpool children, ...).
    #[serde(default)]
    pub sizing: serde_json::Value,
    pub seeded_products: usize,
    #[serde(default)]
    pub repeats: Vec<RepeatResult>,
    #[serde(default)]
    pub floor: Vec<FloorRun>,
    #[serde(default)]
    pub product_vs_pgbench: Option<ProductVsPgbench>,
    /// `redis-benchmark -t get` on a Redis node at the same concurrency (stages with Redis).
    #[serde(default)]
    pub redis_benchmark: Option<crate::floor::redisbench::RedisBenchRun>,
    /// The stepped-rate open-loop run (absent when off, and in older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::model::CapacityRun>,
    /// Phases that failed (the configuration's other numbers are still kept).
    #[serde(default)]
    pub errors: Vec<String>,
    pub started_at: String,
    #[serde(default)]
    pub secs_taken: f64,
    /// On hosts (crate::matrix::hosts): what ran on each; empty on loopback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::matrix::hosts::HostUse>,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn save_meta(dir: &Path, meta: &RunMeta) -> Result<()> {
    write_json(&dir.join("meta.json"), meta)
}

pub fn config_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("config-{:02}.json", index + 1))
}

pub fn save_config(dir: &Path, result: &ConfigResult) -> Result<()> {
    write_json(&config_path(dir, result.index), result)
}

/// Reads a run dir back: its meta and every configuration, in order.
pub fn load_run(dir: &Path) -> Result<(RunMeta, Vec<ConfigResult>)> {
    let meta_path = dir.join("meta.json");
    let meta: RunMeta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?,
    )
    .with_context(|| format!("parsing {}", meta_path.display()))?;
    let mut configs = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            // config-NN.json only (Goose's own reports lie beside them)
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.strip_prefix("config-")
                    .and_then(|r| r.strip_suffix(".json"))
                    .is_some_and(|num| !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .collect();
    entries.sort();
    for p in entries {
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        configs.push(serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?);
    }
    Ok((meta, configs))
}

/// The path relative to the current directory when it is inside it (shorter in reports).
pub fn display_path(p: &Path) -> String {
    let rel = std::env::current_dir().ok().and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf));
    rel.unwrap_or_else(|| p.to_path_buf()).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::tests as fixtures;

    #[test]
    fn a_run_dir_reads_back_its_configurations_in_order_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("bench-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        save_meta(&dir, &fixtures::meta()).unwrap();
        let configs = fixtures::two_configs();
        for c in configs.iter().rev() {
            save_config(&dir, c).unwrap();
        }
        std::fs::write(dir.join("goose-config-01-repeat-1.json"), "{\"not\": \"ours\"}").unwrap();
        std::fs::write(dir.join("config-01-repeat-1.goose.json"), "{}").unwrap();
        let (meta, back) = load_run(&dir).unwrap();
        assert_eq!(meta, fixtures::meta());
        assert_eq!(back, configs);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
