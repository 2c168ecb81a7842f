//! A matrix configuration's measured windows as Prometheus and /proc saw them, kept in the run
//! dir as `observed-config-NN.json` beside `config-NN.json` (the report draws them from there).

use super::series::Series;
use super::{range, route_name, Window, NOT_LOAD, RATE_WINDOW};
use crate::measure::cpu_series::CpuSampler;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A repeat being observed: the topology's Prometheus, and the cores of each CPU group sampled
/// every second meanwhile.
pub struct Watch {
    api: infra::PrometheusApi,
    cpu: CpuSampler,
}

impl Watch {
    /// `None` when the topology has no Prometheus (`[run] observe = false`).
    pub fn start(running: &infra::Running, groups: &[(String, Vec<u32>)]) -> Option<Watch> {
        let api = running.prometheus_api()?;
        let missing = tokio::task::block_in_place(|| super::wait_until_scraped(&api, Duration::from_secs(30)));
        if !missing.is_empty() {
            eprintln!("bench: Prometheus has not scraped {} yet; going on", missing.join(", "));
        }
        Some(Watch { api, cpu: CpuSampler::start(groups.to_vec(), Duration::from_secs(1)) })
    }

    /// Reads window `w` back and adds it to configuration `index`'s file in `run_dir`.
    pub fn finish(self, run_dir: &Path, index: usize, repeat: u32, w: Window) -> Result<()> {
        let cores = self.cpu.finish(w);
        tokio::task::block_in_place(|| record(&self.api, run_dir, index, repeat, w, cores))
    }
}

/// One repeat's measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedWindow {
    pub repeat: u32,
    /// The window, unix seconds; every series' times are seconds from `start`.
    pub start: f64,
    pub end: f64,
    /// Requests/s per route (`method route`), all web instances together.
    pub rate: Vec<Series>,
    /// Mean and p95 per route, milliseconds.
    pub mean_ms: Vec<Series>,
    pub p95_ms: Vec<Series>,
    /// Answers/s of the web instances per status class ("2xx", "4xx", "5xx").
    pub status: Vec<Series>,
    /// Cores per tier (and the load client, and Prometheus with its exporters), from /proc.
    pub cores: Vec<Series>,
}

/// Every window of a configuration, and the reads that failed (a picture missing says why).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub windows: Vec<ObservedWindow>,
    #[serde(default)]
    pub errors: Vec<String>,
}

pub fn path(run_dir: &Path, index: usize) -> PathBuf {
    run_dir.join(format!("observed-config-{:02}.json", index + 1))
}

/// What configuration `index` of the run in `run_dir` observed; `None` when it was not observed.
pub fn load(run_dir: &Path, index: usize) -> Result<Option<Observed>> {
    let p = path(run_dir, index);
    match std::fs::read_to_string(&p) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Reads repeat `repeat`'s window `w` from `api` and adds it, with `cores`, to the file of
/// configuration `index`; a failed read is kept as an error of the file, not of the run.
pub fn record(
    api: &infra::PrometheusApi,
    run_dir: &Path,
    index: usize,
    repeat: u32,
    w: Window,
    cores: Vec<Series>,
) -> Result<()> {
    let mut observed = load(run_dir, index)?.unwrap_or_default();
    match query_window(api, repeat, w, cores) {
        Ok(window) => observed.windows.push(window),
        Err(e) => observed.errors.push(format!("repeat {repeat}: {e:#}")),
    }
    std::fs::write(path(run_dir, index), serde_json::to_string(&observed)?)
        .with_context(|| format!("writing {}", path(run_dir, index).display()))
}

/// The queries of one window (the app's histogram, `http_request_duration_seconds`).
pub fn query_window(api: &infra::PrometheusApi, repeat: u32, w: Window, cores: Vec<Series>) -> Result<ObservedWindow> {
    let h = "http_request_duration_seconds";
    let by = "sum by (method, route)";
    let rate = |what: &str| format!("{by} (rate({h}_{what}{{{NOT_LOAD}}}[{RATE_WINDOW}]))");
    let mean = format!("{} / {}", rate("sum"), rate("count"));
    let p95 =
        format!("histogram_quantile(0.95, sum by (method, route, le) (rate({h}_bucket{{{NOT_LOAD}}}[{RATE_WINDOW}])))");
    let status = format!(
        "sum by (class) (label_replace(rate({h}_count{{{NOT_LOAD}}}[{RATE_WINDOW}]), \"class\", \"${{1}}xx\", \"status\", \"(.)..\"))"
    );
    let class = |l: &std::collections::BTreeMap<String, String>| l.get("class").cloned().unwrap_or_default();
    Ok(ObservedWindow {
        repeat,
        start: w.start,
        end: w.end,
        rate: range(api, &rate("count"), w, route_name, 1.0).context("request rate")?,
        mean_ms: range(api, &mean, w, route_name, 1000.0).context("mean")?,
        p95_ms: range(api, &p95, w, route_name, 1000.0).context("p95")?,
        status: range(api, &status, w, class, 1.0).context("status classes")?,
        cores,
    })
}
