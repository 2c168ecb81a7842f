//! Prometheus: what it scrapes (every web instance, every exporter, Cassandra's java agents and
//! itself, each with `tier` and `instance` labels), its recording rules, and a small client of its
//! HTTP API (instant queries and the scrape targets) for tests and reports.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::process;
use crate::render::render;
use crate::rundir;
use crate::running::Running;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::{Kind, Topology};

const PROMETHEUS_YML: &str = include_str!("../templates/prometheus.yml");
/// Per-route request rate, mean and p95 from the app's histograms, per instance and in all.
pub const RULES_YML: &str = include_str!("../templates/prometheus-rules.yml");

/// One thing Prometheus scrapes: `addr` serves the metrics of server `instance` of kind `tier`
/// (an exporter's metrics are labelled with the server it observes, not with itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub tier: Kind,
    /// The observed server's `host:port`: the `instance` label.
    pub instance: String,
    /// Where the metrics are served: `host:port`.
    pub addr: String,
}

/// Every target of the topology's Prometheus: its web instances, the exporters (when wanted),
/// each Cassandra node's agent and Prometheus itself.
pub fn scrape_targets(t: &Topology) -> Vec<ScrapeTarget> {
    let addr = |kind: Kind, i: usize| {
        let (h, p) = t.endpoint(kind, i);
        format!("{h}:{p}")
    };
    let mut out: Vec<ScrapeTarget> = (0..t.count(Kind::Web))
        .map(|i| ScrapeTarget { tier: Kind::Web, instance: addr(Kind::Web, i), addr: addr(Kind::Web, i) })
        .collect();
    for kind in Kind::EXPORTERS {
        let observed = kind.observed().expect("an exporter kind");
        out.extend((0..t.count(kind)).map(|i| ScrapeTarget {
            tier: observed,
            instance: addr(observed, i),
            addr: addr(kind, i),
        }));
    }
    if t.exporters_on() {
        out.extend((0..t.count(Kind::Cassandra)).map(|i| {
            let (h, p, _) = t.cassandra_metrics_addr(i);
            ScrapeTarget { tier: Kind::Cassandra, instance: addr(Kind::Cassandra, i), addr: format!("{h}:{p}") }
        }));
    }
    if t.count(Kind::Prometheus) > 0 {
        let me = addr(Kind::Prometheus, 0);
        out.push(ScrapeTarget { tier: Kind::Prometheus, instance: me.clone(), addr: me });
    }
    out
}

/// A `scrape_configs` entry (one job per tier), written as a YAML flow mapping.
#[derive(Serialize)]
struct ScrapeJob {
    job_name: String,
    static_configs: Vec<StaticConfig>,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
    labels: BTreeMap<&'static str, String>,
}

/// The `scrape_configs` lines of prometheus.yml: a job per tier, a static config per target.
fn scrape_configs(targets: &[ScrapeTarget]) -> Result<String> {
    let mut jobs: Vec<ScrapeJob> = Vec::new();
    for t in targets {
        let config = StaticConfig {
            targets: vec![t.addr.clone()],
            labels: BTreeMap::from([("tier", t.tier.name().to_string()), ("instance", t.instance.clone())]),
        };
        match jobs.iter_mut().find(|j| j.job_name == t.tier.name()) {
            Some(job) => job.static_configs.push(config),
            None => jobs.push(ScrapeJob { job_name: t.tier.name().to_string(), static_configs: vec![config] }),
        }
    }
    // JSON is YAML's flow style: one typed line per job, no YAML writer needed.
    let lines: Result<Vec<String>> = jobs.iter().map(|j| Ok(format!("  - {}", serde_json::to_string(j)?))).collect();
    Ok(lines?.join("\n"))
}

/// The rendered prometheus.yml of a topology.
pub fn config(t: &Topology) -> Result<String> {
    let prom = t.prometheus.as_ref().context("no [prometheus] section")?;
    render(
        PROMETHEUS_YML,
        &[
            ("name", t.name.clone()),
            ("scrape_interval", prom.scrape_interval.clone()),
            ("scrape_configs", scrape_configs(&scrape_targets(t))?),
        ],
    )
}

/// Prometheus, scraping every target of [`scrape_targets`], with the recording rules.
pub(crate) fn start(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    let (host, port) = t.endpoint(Kind::Prometheus, 0);
    process::ensure_port_free(&host, port, "prometheus")?;
    let dir = r.instance_dir(Kind::Prometheus, 0);
    rundir::instance_dir(&dir, r.run_as())?;
    rundir::instance_dir(&dir.join("data"), r.run_as())?;
    let conf_path = dir.join("prometheus.yml");
    std::fs::write(&conf_path, config(&t)?)?;
    process::give(&conf_path, r.run_as())?;
    let rules_path = dir.join("rules.yml");
    std::fs::write(&rules_path, RULES_YML)?;
    process::give(&rules_path, r.run_as())?;
    let log = dir.join("prometheus.log");
    let mut cmd = process::server_command(&tool("prometheus")?, &log, r.run_as())?;
    cmd.arg(format!("--config.file={}", conf_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={host}:{port}"))
        .current_dir(&dir);
    let child = process::spawn(cmd, "prometheus")?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc =
        Proc { kind: Kind::Prometheus, index: 0, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc.clone(), child)?;
    process::wait_until(
        &format!("prometheus on {}", proc.addr()),
        Duration::from_secs(30),
        || !proc.alive(),
        || {
            let (code, _) = api_get(&proc.host, proc.port, "/-/ready")?;
            Ok(code == 200)
        },
    )
    .with_context(|| process::tail(&proc.log, 15))
}

/// GET over HTTP/1.0 (no chunked answer to decode): status and body.
fn api_get(host: &str, port: u16, path: &str) -> Result<(u16, String)> {
    let timeout = Duration::from_secs(10);
    let addr = (host, port).to_socket_addrs()?.next().context("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let code = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("not an HTTP response")?;
    Ok((code, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// One series of an instant query's answer: its labels and value.
#[derive(Clone, Debug, Deserialize)]
pub struct Sample {
    pub metric: BTreeMap<String, String>,
    /// (time, value as Prometheus writes it: a number, "NaN", "+Inf").
    pub value: (f64, String),
}

impl Sample {
    pub fn value(&self) -> f64 {
        self.value.1.parse().unwrap_or(f64::NAN)
    }
}

/// One series of a range query's answer: its labels and (time, value) points.
#[derive(Clone, Debug, Deserialize)]
pub struct RangeSeries {
    pub metric: BTreeMap<String, String>,
    /// (unix time in seconds, value as Prometheus writes it).
    pub values: Vec<(f64, String)>,
}

impl RangeSeries {
    /// The points as numbers ("NaN" and the like become NaN).
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.values.iter().map(|(t, v)| (*t, v.parse().unwrap_or(f64::NAN))).collect()
    }
}

/// One scrape target as Prometheus reports it (`/api/v1/targets`).
#[derive(Clone, Debug, Deserialize)]
pub struct TargetHealth {
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    /// "up", "down" or "unknown" (not scraped yet).
    pub health: String,
    #[serde(rename = "lastError")]
    pub last_error: String,
}

#[derive(Deserialize)]
struct ApiAnswer<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct VectorData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct MatrixData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RangeSeries>,
}

#[derive(Deserialize)]
struct TargetsData {
    #[serde(rename = "activeTargets")]
    active_targets: Vec<TargetHealth>,
}

/// A client of one Prometheus' HTTP API.
#[derive(Clone, Debug)]
pub struct PrometheusApi {
    pub host: String,
    pub port: u16,
}

impl PrometheusApi {
    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (code, body) = api_get(&self.host, self.port, path)?;
        let answer: ApiAnswer<T> = serde_json::from_str(&body).with_context(|| {
            format!("GET {path}: {code}, not an API answer: {}", body.chars().take(200).collect::<String>())
        })?;
        match answer {
            ApiAnswer { status, data: Some(data), .. } if status == "success" => Ok(data),
            ApiAnswer { error, .. } => bail!("GET {path}: {code} {error}"),
        }
    }

    /// Evaluates `promql` now; an instant vector's series (an error names what did not parse).
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let q = utf8_percent_encode(promql, NON_ALPHANUMERIC);
        let data: VectorData = self.get(&format!("/api/v1/query?query={q}"))?;
        if data.result_type != "vector" {
            bail!("{promql}: a {} rather than an instant vector", data.result_type);
        }
        Ok(data.result)
    }

    /// Evaluates `promql` at every `step` from `start` to `end` (unix seconds): the time series
    /// of a report's pictures.
    pub fn query_range(&self, promql: &str, start: f64, end: f64, step: Duration) -> Result<Vec<RangeSeries>> {
        let q = utf8_percent_encode(promql, NON_ALPHANUMERIC);
        let path = format!("/api/v1/query_range?query={q}&start={start:.3}&end={end:.3}&step={}", step.as_secs_f64());
        let data: MatrixData = self.get(&path)?;
        if data.result_type != "matrix" {
            bail!("{promql}: a {} rather than a range", data.result_type);
        }
        Ok(data.result)
    }

    /// Every active scrape target with its health.
    pub fn targets(&self) -> Result<Vec<TargetHealth>> {
        Ok(self.get::<TargetsData>("/api/v1/targets?state=active")?.active_targets)
    }
}

impl Running {
    /// The client of this topology's Prometheus, if it has one.
    pub fn prometheus_api(&self) -> Option<PrometheusApi> {
        let t = self.topology();
        (t.count(Kind::Prometheus) > 0).then(|| {
            let (host, port) = t.endpoint(Kind::Prometheus, 0);
            PrometheusApi { host, port }
        })
    }

    /// What this topology's Prometheus scrapes.
    pub fn scrape_targets(&self) -> Vec<ScrapeTarget> {
        scrape_targets(self.topology())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = "name = \"p\"\n[postgres]\ncount = 2\nbase_port = 5000\n[pgpool]\ncount = 1\nbase_port = 5100\npcp_base_port = 5150\n\
        [redis]\ncount = 1\nbase_port = 5200\n[sentinel]\ncount = 1\nbase_port = 5300\n[cassandra]\ncount = 1\n\
        [web]\ncount = 1\nbase_port = 5400\n[nginx]\ncount = 1\nbase_port = 5500\n[prometheus]\nport = 5600\n";

    /// Every server has a target labelled with its tier and address; exporters take one block of
    /// ports after Prometheus' in kind order.
    #[test]
    fn every_server_is_a_target_with_its_tier() {
        let t = Topology::parse(TOPOLOGY).unwrap();
        let targets = scrape_targets(&t);
        let find = |tier: Kind| {
            targets
                .iter()
                .filter(|s| s.tier == tier)
                .map(|s| (s.instance.as_str(), s.addr.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(find(Kind::Postgres), [("127.0.0.1:5000", "127.0.0.1:5601"), ("127.0.0.1:5001", "127.0.0.1:5602")]);
        assert_eq!(find(Kind::Pgpool), [("127.0.0.1:5100", "127.0.0.1:5603")]);
        assert_eq!(find(Kind::Redis), [("127.0.0.1:5200", "127.0.0.1:5604")]);
        assert_eq!(find(Kind::Sentinel), [("127.0.0.1:5300", "127.0.0.1:5605")]);
        assert_eq!(find(Kind::Nginx), [("127.0.0.1:5500", "127.0.0.1:5606")]);
        assert_eq!(find(Kind::Cassandra), [("127.0.0.1:9042", "127.0.0.1:7070")]);
        assert_eq!(find(Kind::Web), [("127.0.0.1:5400", "127.0.0.1:5400")]);
        assert_eq!(find(Kind::Prometheus), [("127.0.0.1:5600", "127.0.0.1:5600")]);
        let conf = config(&t).unwrap();
        assert!(conf.contains(r#"{"job_name":"pgpool","static_configs":[{"targets":["127.0.0.1:5603"],"labels":{"instance":"127.0.0.1:5100","tier":"pgpool"}}]}"#), "{conf}");

        let off = Topology::parse(&TOPOLOGY.replace("port = 5600\n", "port = 5600\nexporters = false\n")).unwrap();
        let tiers: Vec<Kind> = scrape_targets(&off).into_iter().map(|s| s.tier).collect();
        assert_eq!(tiers, [Kind::Web, Kind::Prometheus]);
        assert_eq!(Kind::EXPORTERS.map(|k| off.count(k)), [0; 5]);
    }

    /// A port of the exporters' block given to another server is refused by name.
    #[test]
    fn exporter_ports_are_checked_for_clashes() {
        let clash = TOPOLOGY.replace("[nginx]\ncount = 1\nbase_port = 5500", "[nginx]\ncount = 1\nbase_port = 5602");
        let err = Topology::parse(&clash).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:5602 is given to both nginx 0 and postgres_exporter 1"), "{err}");
    }

    /// The rendered configuration and the rules pass Prometheus' own checker.
    #[test]
    fn promtool_accepts_the_config_and_the_rules() {
        let dir = std::env::temp_dir().join(format!("shopbench-promtool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prometheus.yml"), config(&Topology::parse(TOPOLOGY).unwrap()).unwrap()).unwrap();
        std::fs::write(dir.join("rules.yml"), RULES_YML).unwrap();
        let mut cmd = std::process::Command::new(tool("promtool").unwrap());
        cmd.arg("check").arg("config").arg(dir.join("prometheus.yml"));
        let out = process::run_with_timeout(cmd, Duration::from_secs(30)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        assert!(text.contains("SUCCESS: 11 rules found"), "{text}");
    }
}
