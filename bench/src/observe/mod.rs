//! What Prometheus saw during a run, kept as small time series beside the raw results so the
//! reports draw them again without Prometheus (docs/observability.md, "The bench's runs").
//!
//! With `[run] observe = true` (the default) a matrix configuration's or a faults run's topology
//! gets its Prometheus, scraping every second, and an exporter per server. After each measured
//! window (a matrix repeat, a fault's load) the bench reads that window back with `query_range`
//! at a 1 s step: [`matrix`] keeps per-route rates, means, p95 and answers by status class with
//! the bench's own cores per tier ([`crate::measure::cpu_series`]); [`faults`] keeps what the
//! clients saw per second with pgpool's node status, the targets up, the app's pools and Redis'
//! roles and replication lag. [`series`] is the form both are kept in.
//!
//! The recording rules of infra use 1 minute windows, longer than a fault and than most measured
//! windows, so the queries here compute their own rates over [`RATE_WINDOW`].

pub mod faults;
pub mod matrix;
pub mod series;

use anyhow::{bail, Result};
use series::Series;
use std::collections::BTreeMap;
use std::time::Duration;

/// Prometheus' scrape and rule evaluation interval in the bench's runs.
pub const SCRAPE_INTERVAL: &str = "1s";
/// The step of every range query.
pub const STEP: Duration = Duration::from_secs(1);
/// The window of the rates: five 1 s scrapes, short enough to show a fault's seconds.
pub const RATE_WINDOW: &str = "5s";
/// The name of the CPU group of Prometheus and the exporters (measured like every tier).
pub const OBSERVERS: &str = "prometheus+exporters";

/// A span of wall-clock time, in unix seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

/// The wall-clock time now, in unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

impl Window {
    /// The unix time of `at`, an instant of this process's monotonic clock.
    pub fn unix_of(at: std::time::Instant) -> f64 {
        let now = unix_now();
        let now_instant = std::time::Instant::now();
        let offset =
            if at <= now_instant { -(now_instant - at).as_secs_f64() } else { (at - now_instant).as_secs_f64() };
        now + offset
    }
}

/// Evaluates `promql` over `w` at [`STEP`]: one [`Series`] per answer series, named by `name`
/// from its labels, its values times `scale`, its times in seconds from `w.start`. Series that
/// come out with the same name are summed point by point.
pub fn range(
    api: &infra::PrometheusApi,
    promql: &str,
    w: Window,
    name: impl Fn(&BTreeMap<String, String>) -> String,
    scale: f64,
) -> Result<Vec<Series>> {
    range_by(api, promql, w, name, |_, v| v * scale)
}

/// [`range`], each point's value made by `value` from the series' labels and its value (a
/// state kept in labels, as pgpool's node status and Redis' role are).
pub fn range_by(
    api: &infra::PrometheusApi,
    promql: &str,
    w: Window,
    name: impl Fn(&BTreeMap<String, String>) -> String,
    value: impl Fn(&BTreeMap<String, String>, f64) -> f64,
) -> Result<Vec<Series>> {
    let answer = api.query_range(promql, w.start, w.end, STEP)?;
    let mut out: Vec<Series> = Vec::new();
    for r in &answer {
        let points = r.points().into_iter().map(|(t, v)| (t, value(&r.metric, v))).collect();
        let s = Series::from_points(name(&r.metric), points, w.start, 1.0);
        match out.iter_mut().find(|o| o.name == s.name) {
            Some(o) => o.add(&s),
            None => out.push(s),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `method route` of the app's histogram labels, e.g. "GET /products/{product_id}": the
/// operation names of the load (`Op::name`).
pub fn route_name(labels: &BTreeMap<String, String>) -> String {
    let get = |k: &str| labels.get(k).map_or("?", String::as_str);
    format!("{} {}", get("method"), get("route"))
}

/// The routes the load does not send: Prometheus' own scrapes and readiness probes.
pub const NOT_LOAD: &str = r#"route!~"/metrics|/health.*""#;

/// Refuses `observe` without a `[topology.prometheus]` section: it gives the ports.
pub fn check_topology(observe: bool, topology: &toml::Table) -> Result<()> {
    if observe && !topology.contains_key("prometheus") {
        bail!(
            "[run] observe = true needs [topology.prometheus] with its port (the exporters take the ports after it, \
             or from exporter_base_port); or set [run] observe = false"
        );
    }
    Ok(())
}

/// A file's `[topology]` as infra reads it, and its Prometheus count: with `observe`, the
/// Prometheus of the section scraping every [`SCRAPE_INTERVAL`] unless the section says otherwise;
/// without, none.
pub fn topology_text(observe: bool, topology: &toml::Table) -> Result<(String, usize)> {
    let mut t = topology.clone();
    if let (true, Some(toml::Value::Table(p))) = (observe, t.get_mut("prometheus")) {
        p.entry("scrape_interval").or_insert_with(|| SCRAPE_INTERVAL.into());
    }
    Ok((toml::to_string(&t)?, usize::from(observe)))
}

/// Prometheus and the exporters as one CPU group (none when the topology has none).
pub fn observer_group(running: &infra::Running) -> Option<(String, Vec<u32>)> {
    let pids: Vec<u32> = running.processes().iter().filter(|p| p.kind.is_observer()).map(|p| p.pid).collect();
    (!pids.is_empty()).then(|| (OBSERVERS.to_string(), pids))
}

/// Waits (up to `timeout`) until Prometheus has scraped every target successfully: it applies its
/// targets only some seconds after it starts, and a window read before that misses its start.
/// Returns the targets still not up, for a warning (the run goes on without their first points).
pub fn wait_until_scraped(api: &infra::PrometheusApi, timeout: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let missing: Vec<String> = match api.targets() {
            Ok(t) if !t.is_empty() => t.into_iter().filter(|t| t.health != "up").map(|t| t.scrape_url).collect(),
            Ok(_) => vec!["no target yet".into()],
            Err(e) => vec![format!("{e:#}")],
        };
        if missing.is_empty() || std::time::Instant::now() >= deadline {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
