//! Prometheus with an exporter per server, proven on live servers: every scrape target is up,
//! and every panel of every Grafana dashboard (infra/grafana/dashboards) parses and returns data.
//!
//! Two small topologies on ports 20200-20349: the PostgreSQL stage's servers with a web instance
//! and nginx (driven with requests), and Redis with a replica and a Sentinel (no web instance: the
//! test's app is a stage-pg build, which refuses Redis settings). A panel passes when either
//! Prometheus answers it with a series. The Cassandra dashboard needs a ring: its own test below,
//! one node on 127.0.0.4 (ports 20400-20499).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{any_alive, app_binary, topology, RunDir};
use infra::{Kind, Overrides, PrometheusApi, Running};

const PG: &str = r#"
name = "itest-observe-pg"
[postgres]
count = 1
base_port = 20200
[pgpool]
count = 1
base_port = 20210
pcp_base_port = 20215
[web]
count = 1
base_port = 20220
[nginx]
count = 1
base_port = 20230
[prometheus]
port = 20240
scrape_interval = "1s"
"#;

const REDIS: &str = r#"
name = "itest-observe-redis"
[redis]
count = 2
base_port = 20300
[sentinel]
count = 1
base_port = 20310
[prometheus]
port = 20340
scrape_interval = "1s"
"#;

const CASSANDRA: &str = r#"
name = "itest-observe-cassandra"
[cassandra]
count = 1
hosts = ["127.0.0.4"]
native_port = 20442
storage_port = 20400
jmx_base_port = 20410
metrics_port = 20470
heap_mb = 512
[prometheus]
port = 20480
scrape_interval = "2s"
"#;

/// The dashboards this file proves, and by which test.
const PROVEN_WITH_PG_AND_REDIS: [&str; 4] = ["requests.json", "pg.json", "redis.json", "faults.json"];
const PROVEN_WITH_CASSANDRA: [&str; 1] = ["cassandra.json"];

fn dashboards_dir() -> PathBuf {
    infra::repo_root().join("infra/grafana/dashboards")
}

/// Every panel's PromQL of a dashboard: (panel title, expression), Grafana's interval variables
/// given the values Grafana would use with 1 s scrapes.
fn panel_queries(file: &str) -> Vec<(String, String)> {
    let path = dashboards_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let d: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(d["datasource"], serde_json::Value::Null, "{file}: datasource is per panel");
    let panels = d["panels"].as_array().unwrap_or_else(|| panic!("{file}: no panels"));
    assert!(!panels.is_empty(), "{file}: no panels");
    let mut out = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        assert_eq!(p["datasource"]["uid"], "shopbench-prometheus", "{file}: panel {title:?}");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{file}: panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "{file}: panel {title:?} has no targets");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{file}: panel {title:?}: no expr"));
            let expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "5s");
            assert!(!expr.contains('$'), "{file}: panel {title:?}: a variable the test cannot give: {expr}");
            out.push((format!("{file}: {title}"), expr));
        }
    }
    out
}

/// Waits until every target the topology names is up in its Prometheus (and no other is listed).
fn wait_targets_up(running: &Running, timeout: Duration) {
    let api = running.prometheus_api().expect("a Prometheus");
    let expected = running.scrape_targets();
    let deadline = Instant::now() + timeout;
    loop {
        let seen = api.targets().expect("targets");
        let missing: Vec<String> = expected
            .iter()
            .filter(|e| {
                !seen.iter().any(|s| {
                    s.health == "up"
                        && s.labels.get("tier").map(String::as_str) == Some(e.tier.name())
                        && s.labels.get("instance") == Some(&e.instance)
                        && s.scrape_url.contains(&e.addr)
                })
            })
            .map(|e| format!("{} {} at {}", e.tier, e.instance, e.addr))
            .collect();
        if missing.is_empty() {
            assert_eq!(seen.len(), expected.len(), "targets Prometheus scrapes besides the topology's: {seen:#?}");
            return;
        }
        if Instant::now() > deadline {
            let report: Vec<String> = seen
                .iter()
                .map(|s| {
                    format!(
                        "{} {}: {} {}",
                        s.scrape_url,
                        s.health,
                        s.labels.get("tier").cloned().unwrap_or_default(),
                        s.last_error
                    )
                })
                .collect();
            panic!("targets not up after {timeout:?}: {missing:?}\nPrometheus sees:\n{}", report.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until every target of `tier` has `health` in Prometheus' view.
fn wait_target_health(running: &Running, tier: Kind, health: &str) {
    let api = running.prometheus_api().expect("a Prometheus");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let targets = api.targets().expect("targets");
        let of_tier: Vec<_> =
            targets.iter().filter(|t| t.labels.get("tier").map(String::as_str) == Some(tier.name())).collect();
        if !of_tier.is_empty() && of_tier.iter().all(|t| t.health == health) {
            return;
        }
        assert!(Instant::now() < deadline, "{tier} targets not {health}: {of_tier:#?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Evaluates every query until each returns a series through one of `apis`, or the time is up:
/// then the unanswered ones are returned, with why (a query that does not parse fails at once).
fn unanswered(queries: &[(String, String)], apis: &[PrometheusApi], timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut empty: BTreeMap<String, String> = BTreeMap::new();
        for (panel, expr) in queries {
            let mut answered = false;
            for api in apis {
                match api.query(expr) {
                    Ok(series) if !series.is_empty() => answered = true,
                    Ok(_) => {}
                    Err(e) if format!("{e:#}").contains("parse error") => panic!("{panel}: {expr}: {e:#}"),
                    Err(e) => {
                        empty.insert(panel.clone(), format!("{expr}: {e:#}"));
                    }
                }
            }
            if answered {
                empty.remove(panel);
            } else {
                empty.entry(panel.clone()).or_insert_with(|| format!("{expr}: no series"));
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            return empty.iter().map(|(p, why)| format!("  {p}: {why}")).collect();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One HTTP/1.0 request: status and body.
fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// A few users shopping through nginx: sign up, browse, fill the cart, read it.
fn drive(nginx: &str, admin: &str) {
    let product = r#"{"name":"Hammer","description":"Claw hammer","category":"tools","price_cents":1250}"#;
    let (code, body) = request(nginx, "POST", "/products", Some(admin), Some(product));
    assert_eq!(code, 201, "{body}");
    let product_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    for n in 0..5 {
        let (code, body) = request(
            nginx,
            "POST",
            "/users",
            None,
            Some(&format!(r#"{{"email":"observe{n}@example.com","name":"Observer"}}"#)),
        );
        assert_eq!(code, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (user, token) = (v["user"]["id"].as_str().unwrap(), v["token"].as_str().unwrap());
        let item = format!(r#"{{"product_id":"{product_id}","quantity":2}}"#);
        let (code, body) = request(nginx, "POST", &format!("/users/{user}/cart/items"), Some(token), Some(&item));
        assert!(code < 300, "{code} {body}");
        for _ in 0..3 {
            assert_eq!(request(nginx, "GET", &format!("/users/{user}/cart"), Some(token), None).0, 200);
            assert_eq!(request(nginx, "GET", "/products?limit=10", None, None).0, 200);
            assert_eq!(request(nginx, "GET", &format!("/products/{product_id}"), None, None).0, 200);
        }
    }
}

#[test]
fn every_target_is_up_and_every_dashboard_panel_returns_data() {
    let t0 = Instant::now();
    // Every dashboard in the folder is proven by one of this file's tests.
    let mut files: Vec<String> = std::fs::read_dir(dashboards_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut proven: Vec<&str> = PROVEN_WITH_PG_AND_REDIS.iter().chain(&PROVEN_WITH_CASSANDRA).copied().collect();
    proven.sort();
    assert_eq!(files, proven, "a dashboard no test proves");

    let pg_dir = RunDir::new("infra-test-observe-pg");
    let redis_dir = RunDir::new("infra-test-observe-redis");
    let pg = topology(PG).with_overrides(&Overrides { web_binary: Some(app_binary()), ..Default::default() }).unwrap();
    let admin = pg.web.admin_token.clone();
    let pg = pg.up(pg_dir.path()).expect("up pg");
    let redis = topology(REDIS).up(redis_dir.path()).expect("up redis");
    let procs: Vec<infra::Proc> = pg.processes().iter().chain(redis.processes()).cloned().collect();
    let exporters = procs.iter().filter(|p| p.kind.observed().is_some()).count();
    assert_eq!(exporters, 1 + 1 + 1 + 2 + 1, "an exporter per backend, pgpool, nginx, Redis instance, Sentinel");

    wait_targets_up(&pg, Duration::from_secs(60));
    wait_targets_up(&redis, Duration::from_secs(60));
    // An exporter is an instance like any other: killed, its target goes down; restarted, up.
    let mut pg = pg;
    pg.kill(Kind::NginxExporter, 0, infra::signal::SIGKILL).unwrap();
    wait_target_health(&pg, Kind::Nginx, "down");
    pg.restart(Kind::NginxExporter, 0).unwrap();
    wait_targets_up(&pg, Duration::from_secs(30));
    let nginx = pg.nginx_urls()[0].trim_start_matches("http://").to_string();
    drive(&nginx, &admin);

    let queries: Vec<(String, String)> = PROVEN_WITH_PG_AND_REDIS.iter().flat_map(|f| panel_queries(f)).collect();
    assert!(queries.len() > 30, "{} queries", queries.len());
    let apis = [pg.prometheus_api().unwrap(), redis.prometheus_api().unwrap()];
    let empty = unanswered(&queries, &apis, Duration::from_secs(90));
    assert!(empty.is_empty(), "{} panel queries return nothing:\n{}", empty.len(), empty.join("\n"));
    // A metric nobody exports is caught: the check is not vacuous.
    let bogus = [("bogus".to_string(), "rate(shop_no_such_metric_total[1m])".to_string())];
    assert_eq!(unanswered(&bogus, &apis, Duration::from_secs(2)).len(), 1, "a metric nobody exports passed");
    // The recording rules over time, as a report's picture would read them: several points.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let series = apis[0]
        .query_range("route:http_requests:rate1m", now - 30.0, now, Duration::from_secs(1))
        .expect("range query");
    assert!(series.iter().any(|s| s.points().len() >= 3), "{series:#?}");
    eprintln!("observability: {} panel queries answered in {:.1?}", queries.len(), t0.elapsed());

    // The restarted exporter's new pid too.
    let procs: Vec<infra::Proc> = pg.processes().iter().chain(redis.processes()).cloned().collect();
    redis.down().unwrap();
    pg.down().unwrap();
    assert!(any_alive(&procs).is_empty(), "still alive after down: {:?}", any_alive(&procs));
}

/// A 1-node ring with its JMX exporter agent: the target is up and the Cassandra dashboard's
/// panels return data (a ring start takes ~30-60 s on 2 cores).
#[test]
fn cassandra_jmx_target_is_up_and_its_dashboard_returns_data() {
    let dir = RunDir::new("infra-test-observe-cassandra");
    let running = topology(CASSANDRA).up(dir.path()).expect("up cassandra");
    wait_targets_up(&running, Duration::from_secs(60));
    let queries: Vec<(String, String)> = PROVEN_WITH_CASSANDRA.iter().flat_map(|f| panel_queries(f)).collect();
    let empty = unanswered(&queries, &[running.prometheus_api().unwrap()], Duration::from_secs(90));
    assert!(empty.is_empty(), "{} panel queries return nothing:\n{}", empty.len(), empty.join("\n"));
    let procs = running.processes().to_vec();
    running.down().unwrap();
    assert!(any_alive(&procs).is_empty(), "still alive after down: {:?}", any_alive(&procs));
}
