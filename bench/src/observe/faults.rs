//! One fault's load over time: what the clients saw each second (the bench's own timeline) and
//! what Prometheus saw of the servers (answers by status class, the targets up per tier,
//! pgpool's view of each backend, the app's connection pools, Redis' roles and replication lag),
//! with the fault's moments marked. Kept as `faults/<stage>-NN.json` beside faults.json.

use super::series::{per_second, Series};
use super::{range, range_by, Window, NOT_LOAD, RATE_WINDOW};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSeries {
    /// The load's span, unix seconds; every time below is seconds from `start` (the timeline's clock).
    pub start: f64,
    pub end: f64,
    /// The fault's moments: (seconds, what), e.g. (8.0, "SIGKILL").
    pub marks: Vec<(f64, String)>,
    /// Requests finished per second, by what the client got ([`CLIENT_CLASSES`]).
    pub clients: Vec<Series>,
    /// Answers/s of the web instances by status class.
    pub status: Vec<Series>,
    /// Scrape targets up, per tier.
    pub up: Vec<Series>,
    /// Each pgpool's view of each backend: 1 up, 0.5 waiting, 0 down (no point: pgpool silent).
    pub pgpool_nodes: Vec<Series>,
    /// The web instances' PostgreSQL pool connections per pgpool endpoint and state.
    pub pools: Vec<Series>,
    /// Redis instances: 1 master, 0 replica.
    pub redis_roles: Vec<Series>,
    /// Bytes each replica is behind its master's replication offset, as the master reports it.
    pub redis_lag: Vec<Series>,
    /// Queries that failed (the picture then lacks their panel).
    #[serde(default)]
    pub errors: Vec<String>,
}

/// What a client got: a success, an error answer by class, or no answer.
pub const CLIENT_CLASSES: [&str; 5] = ["ok", "4xx", "5xx", "timeout", "no answer"];

/// The class of a request by its failure reason (`faults::timeline::reason`).
pub fn client_class(error: Option<&str>) -> &'static str {
    match error {
        None => "ok",
        Some(e) if e.starts_with('4') => "4xx",
        Some(e) if e.starts_with('5') => "5xx",
        Some(e) if e.starts_with("timeout") => "timeout",
        Some(_) => "no answer",
    }
}

/// The clients' series from (end time, failure reason) of every request, up to `end` seconds.
pub fn clients<'a>(requests: impl Iterator<Item = (f64, Option<&'a str>)>, end: f64) -> Vec<Series> {
    per_second(requests.map(|(t, e)| (t, client_class(e))), &CLIENT_CLASSES, end)
}

fn label<'a>(l: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    l.get(k).map_or("?", String::as_str)
}

/// Reads the servers' side of window `w` from Prometheus into `s`; each failed query is noted
/// in `s.errors` and the others still read.
pub fn query(api: &infra::PrometheusApi, w: Window, s: &mut FaultSeries) {
    let h = "http_request_duration_seconds_count";
    let status = format!(
        "sum by (class) (label_replace(rate({h}{{{NOT_LOAD}}}[{RATE_WINDOW}]), \"class\", \"${{1}}xx\", \"status\", \"(.)..\"))"
    );
    let mut note = |what: &str, r: Result<Vec<Series>>| match r.with_context(|| what.to_string()) {
        Ok(v) => v,
        Err(e) => {
            s.errors.push(format!("{e:#}"));
            vec![]
        }
    };
    let class = |l: &BTreeMap<String, String>| label(l, "class").to_string();
    let tier = |l: &BTreeMap<String, String>| label(l, "tier").to_string();
    let status = note("status classes", range(api, &status, w, class, 1.0));
    let up = note("targets up", range(api, "sum by (tier) (up)", w, tier, 1.0));
    let node = |l: &BTreeMap<String, String>| format!("pgpool {}: node {}", label(l, "instance"), label(l, "node_id"));
    let node_state = |l: &BTreeMap<String, String>| match label(l, "status") {
        "up" => 1.0,
        "waiting" => 0.5,
        _ => 0.0,
    };
    let nodes = note("pgpool nodes", range_by(api, "pgpool_nodes_lb_weight", w, node, |l, _| node_state(l)));
    let pool = |l: &BTreeMap<String, String>| format!("{} {}", label(l, "endpoint"), label(l, "state"));
    let pools = note("app pools", range(api, "sum by (endpoint, state) (shop_pg_pool_connections)", w, pool, 1.0));
    let role = |l: &BTreeMap<String, String>| if label(l, "role") == "master" { 1.0 } else { 0.0 };
    let instance = |l: &BTreeMap<String, String>| label(l, "instance").to_string();
    let roles = note("redis roles", range_by(api, "redis_instance_info{tier=\"redis\"}", w, instance, |l, _| role(l)));
    let lag = "redis_master_repl_offset{tier=\"redis\"} - on (instance) group_right redis_connected_slave_offset_bytes";
    let replica = |l: &BTreeMap<String, String>| format!("{}:{}", label(l, "slave_ip"), label(l, "slave_port"));
    let lag = note("redis lag", range(api, lag, w, replica, 1.0));
    (s.status, s.up, s.pgpool_nodes, s.pools, s.redis_roles, s.redis_lag) = (status, up, nodes, pools, roles, lag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_what_they_got() {
        let reqs =
            [(0.5, None), (0.7, Some("502 Bad Gateway")), (1.2, Some("timeout")), (1.3, Some("connect: refused"))];
        let s = clients(reqs.into_iter(), 2.0);
        let at = |name: &str| s.iter().find(|x| x.name == name).unwrap().points.clone();
        assert_eq!(at("ok"), vec![(1.0, 1.0), (2.0, 0.0)]);
        assert_eq!(at("5xx"), vec![(1.0, 1.0), (2.0, 0.0)]);
        assert_eq!(at("timeout"), vec![(1.0, 0.0), (2.0, 1.0)]);
        assert_eq!(at("no answer"), vec![(1.0, 0.0), (2.0, 1.0)]);
        assert_eq!(client_class(Some("409 conflict")), "4xx");
    }
}
