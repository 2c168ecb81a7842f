//! The whole topology: 2 backends, 2 pgpools, 2 web instances (the real `shopbench` binary),
//! 2 nginx and Prometheus; requests through either nginx, nginx moving off a killed instance,
//! Prometheus scraping every instance.

mod common;

use std::time::{Duration, Instant};

use common::{any_alive, app_binary, topology, RunDir};
use endpoints::HostPort;
use infra::{http_get, Kind, Overrides};

const TOPOLOGY: &str = r#"
name = "itest-web"
[postgres]
count = 2
base_port = 15420
[pgpool]
count = 2
base_port = 19920
pcp_base_port = 19925
[web]
count = 2
base_port = 18100
[nginx]
count = 2
base_port = 18010
[prometheus]
port = 19980
scrape_interval = "1s"
# The exporters are observability.rs's subject; this test counts the processes.
exporters = false
"#;

fn hostport(url: &str) -> (String, u16) {
    let HostPort { host, port } = url.trim_start_matches("http://").parse().unwrap();
    (host, port)
}

/// POST with a JSON body; returns status and body.
fn post_json(url: &str, path: &str, body: &str) -> (u16, String) {
    let (host, port) = hostport(url);
    common::post_json(&host, port, path, body, None)
}

fn get(url: &str, path: &str) -> u16 {
    let (host, port) = hostport(url);
    http_get(&host, port, path, Duration::from_secs(10)).map(|(code, _)| code).unwrap_or(0)
}

#[test]
fn full_topology_serves_through_nginx_and_survives_a_killed_web_instance() {
    let dir = RunDir::new("infra-test-web");
    let t =
        topology(TOPOLOGY).with_overrides(&Overrides { web_binary: Some(app_binary()), ..Default::default() }).unwrap();
    let mut running = t.up(dir.path()).expect("up");
    let nginx = running.nginx_urls();
    assert_eq!(nginx.len(), 2);
    for n in &nginx {
        assert_eq!(get(n, "/health/ready"), 200, "{n}");
    }

    // Each web instance runs with the settings the run state records (what the bench reads).
    let opened = infra::Running::open(dir.path()).unwrap();
    for i in 0..2 {
        let recorded = running.web_settings(i).expect("web settings recorded").clone();
        // The run state leaves the admin token out (a secret); the rest is as recorded.
        let reopened = opened.web_settings(i).cloned();
        let reopened = reopened.map(|s| settings::WebSettings { admin_token: recorded.admin_token.clone(), ..s });
        assert_eq!(reopened.as_ref(), Some(&recorded), "web {i}: not in state.json");
        assert_eq!((recorded.http.port, &recorded.postgres.endpoints), (18100 + i as u16, &running.pgpool_endpoints()));
        assert_eq!(recorded.postgres.pool_size, running.app_pool_size());
        assert!(recorded.redis.is_none() && recorded.cassandra.is_none());
        let pid = running.processes().iter().find(|p| p.kind == Kind::Web && p.index == i).unwrap().pid;
        let environ = String::from_utf8(std::fs::read(format!("/proc/{pid}/environ")).unwrap()).unwrap();
        let environ: Vec<&str> = environ.split('\0').collect();
        for (k, v) in recorded.env() {
            assert!(environ.contains(&format!("{k}={v}").as_str()), "web {i} was not given {k}={v}");
        }
    }

    // A write through one nginx is read back through the other, and lands on both backends.
    let (code, body) = post_json(&nginx[0], "/users", r#"{"email":"infra-test@example.com","name":"Infra"}"#);
    assert_eq!(code, 201, "{body}");
    assert!(body.contains("infra-test@example.com"), "{body}");
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert!(report.tables.iter().any(|t| t.database == "shop" && t.table == "users" && t.rows == 1), "{report:?}");

    // Prometheus scrapes both instances (and itself).
    let api = running.prometheus_api().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let targets = api.targets().unwrap();
        let web_up = targets.iter().filter(|t| t.health == "up" && t.labels.get("tier").is_some_and(|t| t == "web"));
        if web_up.count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus does not scrape both web instances: {targets:#?}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Web 0 dies: both nginx keep answering, from web 1.
    running.kill(Kind::Web, 0, infra::signal::SIGKILL).unwrap();
    assert!(!running.status().is_up(Kind::Web, 0));
    for n in &nginx {
        for _ in 0..6 {
            assert_eq!(get(n, "/products"), 200, "{n} after web 0 died");
        }
    }
    let (code, body) = post_json(&nginx[1], "/users", r#"{"email":"after-kill@example.com","name":"After"}"#);
    assert_eq!(code, 201, "{body}");

    let procs = running.processes().to_vec();
    assert_eq!(procs.len(), 9);
    running.down().unwrap();
    assert!(any_alive(&procs).is_empty(), "still alive after down: {:?}", any_alive(&procs));
}
