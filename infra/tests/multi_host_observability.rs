//! The PostgreSQL stage on 4 emulated hosts with Prometheus and the exporters (issue 13): db1
//! runs backend 0 and the pgpool, db2 backend 1, web1 the web instance and nginx, mon Prometheus.
//! Each exporter runs on its server's host and logs in with the run's password; Prometheus on mon
//! scrapes every target at its host's address. Checked from the control machine: every target
//! Prometheus lists is up (and nothing else is scraped), the exporters reach their servers (pg_up,
//! pgpool's nodes, nginx's counter), the web request counter moves after requests through nginx,
//! no password is printed or logged, and `down` stops the observers too. Needs root (emulated
//! hosts); ports 25000-25999.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{app_binary, infra, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::{Kind, PrometheusApi, Running};

const NAMES: [&str; 4] = ["db1", "db2", "web1", "mon"];
const NGINX_PORT: u16 = 25000;

fn topology(hosts: &[SshHost]) -> String {
    let mut toml = format!(
        "name = \"observed\"\n\
         [postgres]\ncount = 2\nbase_port = 25432\nhosts = [\"db1\", \"db2\"]\n\
         [pgpool]\ncount = 1\nbase_port = 25500\npcp_base_port = 25600\nhosts = [\"db1\"]\n\
         [web]\ncount = 1\nbase_port = 25080\nhosts = [\"web1\"]\nbinary = \"{}\"\n\
         [nginx]\ncount = 1\nbase_port = {NGINX_PORT}\nhosts = [\"web1\"]\n\
         [prometheus]\nport = 25090\nhost = \"mon\"\nscrape_interval = \"1s\"\nexporter_base_port = 25100\n",
        app_binary().display()
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

/// Polls `what` until it gives Some (or fails the test after `timeout` with the last reason).
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(why) if Instant::now() > deadline => panic!("{what} after {timeout:?}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The sum of an instant query's series (0 with none).
fn sum(api: &PrometheusApi, promql: &str) -> Result<f64, String> {
    Ok(api.query(promql).map_err(|e| format!("{e:#}"))?.iter().map(|s| s.value()).sum())
}

#[test]
fn prometheus_on_a_host_scrapes_every_exporter_and_web_instance_at_their_hosts() {
    let t0 = Instant::now();
    let run = RunDir::new("multi-host-observed");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 4).expect("4 emulated hosts");
    let all = emulated.hosts();
    let (web1, mon) = (&all[2], &all[3]);
    let file = run.path().join("observed.toml");
    std::fs::write(&file, topology(&all[..])).unwrap();
    let run_dir = run.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());

    let t = Instant::now();
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    let up_took = t.elapsed();
    assert!(ok, "up failed:\n{out}\n{err}");
    eprintln!("up over SSH in {up_took:.1?}:\n{err}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let client = secrets["client"].as_str().unwrap().to_string();
    let token = secrets["web_admin"].as_str().unwrap().to_string();
    assert!(!out.contains(&client) && !err.contains(&client), "a password was printed");

    let running = Running::open(&run_dir).expect("the control machine's run");
    let procs = running.processes();
    // Each exporter on the host of the server it observes, Prometheus on mon.
    let on =
        |kind: Kind, i: usize| procs.iter().find(|p| p.kind == kind && p.index == i).and_then(|p| p.machine.clone());
    for (kind, i, host) in [
        (Kind::PostgresExporter, 0, "db1"),
        (Kind::PostgresExporter, 1, "db2"),
        (Kind::PgpoolExporter, 0, "db1"),
        (Kind::NginxExporter, 0, "web1"),
        (Kind::Prometheus, 0, "mon"),
    ] {
        assert_eq!(on(kind, i).as_deref(), Some(host), "{kind} {i}: {procs:#?}");
    }
    let api = running.prometheus_api().expect("a Prometheus");
    assert_eq!(api.host, mon.address.to_string());

    // Every target named is up at its host's address, with its labels; nothing else is scraped.
    let expected = running.scrape_targets();
    assert_eq!(expected.len(), 6, "2 postgres, 1 pgpool, 1 nginx exporter, the web instance, Prometheus");
    let want: BTreeSet<(String, String, String)> = expected
        .iter()
        .map(|s| (s.tier.name().to_string(), s.instance.clone(), format!("http://{}/metrics", s.addr)))
        .collect();
    assert!(want.iter().all(|(_, _, url)| !url.contains("127.0.0.1")), "{want:?}");
    wait_for("every target up", Duration::from_secs(60), || {
        let seen = api.targets().map_err(|e| format!("{e:#}"))?;
        let up: BTreeSet<(String, String, String)> = seen
            .iter()
            .filter(|s| s.health == "up")
            .map(|s| (s.labels["tier"].clone(), s.labels["instance"].clone(), s.scrape_url.clone()))
            .collect();
        match up == want && seen.len() == want.len() {
            true => Ok(()),
            false => Err(format!("{seen:#?}")),
        }
    });

    // The exporters reach their servers with the run's passwords (a target is up even when its
    // exporter cannot log in: these say whether it did).
    // pg_up: 1 once the exporter's login worked (the pgpool exporter is a postgres exporter too).
    wait_for("pg_up 1 for both backends and the pgpool", Duration::from_secs(30), || {
        let series = api.query("pg_up").map_err(|e| format!("{e:#}"))?;
        let up: BTreeSet<(String, String)> = series
            .iter()
            .filter(|s| s.value() == 1.0)
            .map(|s| (s.metric["tier"].clone(), s.metric["instance"].clone()))
            .collect();
        let want: BTreeSet<(String, String)> = [(Kind::Postgres, 0), (Kind::Postgres, 1), (Kind::Pgpool, 0)]
            .iter()
            .map(|(k, i)| (k.name().to_string(), running.topology().addr(*k, *i)))
            .collect();
        match up == want && series.len() == 3 {
            true => Ok(()),
            false => Err(format!("{series:?}")),
        }
    });
    wait_for("pgpool's two nodes", Duration::from_secs(30), || {
        let nodes = api.query("pgpool_nodes_lb_weight").map_err(|e| format!("{e:#}"))?;
        match nodes.len() {
            2 => Ok(()),
            n => Err(format!("{n} series: {nodes:?}")),
        }
    });

    // Requests through nginx move the web instance's request counter and nginx's.
    let not_scrapes = r#"sum(http_request_duration_seconds_count{route!~"/metrics|/health.*"})"#;
    let (web_before, nginx_before) = (sum(&api, not_scrapes).unwrap(), sum(&api, "nginx_http_requests_total").unwrap());
    let requests = 20;
    for _ in 0..requests {
        let (code, body) = common::get(&web1.address.to_string(), NGINX_PORT, "/products?limit=5", None);
        assert_eq!(code, 200, "{body}");
    }
    wait_for("the counters to move", Duration::from_secs(30), || {
        let (web, nginx) = (sum(&api, not_scrapes)?, sum(&api, "nginx_http_requests_total")?);
        match web - web_before >= requests as f64 && nginx - nginx_before >= requests as f64 {
            true => Ok(()),
            false => Err(format!("web {web_before} -> {web}, nginx {nginx_before} -> {nginx}")),
        }
    });

    // nginx's stub_status is for its own host's exporter only.
    let (code, _) = common::get(&web1.address.to_string(), NGINX_PORT, "/_nginx_status", None);
    assert_eq!(code, 403, "nginx's status from the control machine");

    let state = std::fs::read_to_string(run_dir.join("state.json")).unwrap();
    assert!(!state.contains(&client) && !state.contains(&token), "a secret in state.json");
    let pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    assert_eq!(pids.len(), 10, "5 servers, 4 exporters, Prometheus: {procs:#?}");
    drop(running);
    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "down failed:\n{out}\n{err}");
    for pid in &pids {
        assert!(!infra::all_processes().iter().any(|p| p.pid == *pid && !p.dead), "pid {pid} survived down");
    }
    for (host, sub, file) in [
        ("db1", "postgres_exporter0", "exporter.log"),
        ("db2", "postgres_exporter1", "exporter.log"),
        ("db1", "pgpool_exporter0", "exporter.log"),
        ("web1", "nginx_exporter0", "exporter.log"),
        ("mon", "prometheus0", "prometheus.log"),
    ] {
        let path = run_dir.join("remote").join(host).join(sub).join(file);
        let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!log.contains(&client), "the password in {}", path.display());
    }
    emulated.down().expect("teardown");
    eprintln!("whole test in {:.1?} (up {up_took:.1?})", t0.elapsed());
}

/// Redis on 2 emulated hosts (the master on r1, a replica and a Sentinel on r2, Prometheus on
/// r2): the Redis and Sentinel exporters log in with the run's passwords (given in their
/// environment, not on their command lines), and none is in the fetched logs.
#[test]
fn the_redis_and_sentinel_exporters_log_in_with_the_run_s_passwords() {
    let run = RunDir::new("multi-host-observed-redis");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 2).expect("2 emulated hosts");
    let all = emulated.hosts();
    let mut toml = "name = \"observed-redis\"\n\
         [redis]\ncount = 2\nbase_port = 25379\nhosts = [\"r1\", \"r2\"]\n\
         [sentinel]\ncount = 1\nbase_port = 25479\nhosts = [\"r2\"]\n\
         [prometheus]\nport = 25190\nhost = \"r2\"\nscrape_interval = \"1s\"\nexporter_base_port = 25191\n"
        .to_string();
    toml.push_str(&common::hosts_toml(&["r1", "r2"], &all[..]));
    let file = run.path().join("observed-redis.toml");
    std::fs::write(&file, toml).unwrap();
    let run_dir = run.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "up failed:\n{out}\n{err}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let passwords: Vec<String> = ["redis", "sentinel"].map(|k| secrets[k].as_str().unwrap().to_string()).into();

    let running = Running::open(&run_dir).expect("the control machine's run");
    let api = running.prometheus_api().expect("a Prometheus");
    // redis_up is 1 only once the exporter's AUTH worked (Redis answers NOAUTH without it).
    wait_for("redis_up 1 for the master, the replica and the Sentinel", Duration::from_secs(60), || {
        let series = api.query("redis_up").map_err(|e| format!("{e:#}"))?;
        let up: BTreeSet<String> =
            series.iter().filter(|s| s.value() == 1.0).map(|s| s.metric["instance"].clone()).collect();
        let want: BTreeSet<String> = [(Kind::Redis, 0), (Kind::Redis, 1), (Kind::Sentinel, 0)]
            .iter()
            .map(|(k, i)| running.topology().addr(*k, *i))
            .collect();
        match up == want {
            true => Ok(()),
            false => Err(format!("{series:?}")),
        }
    });
    wait_for("the Sentinel's view of the replica", Duration::from_secs(30), || {
        match sum(&api, "redis_sentinel_master_ok_slaves")? {
            1.0 => Ok(()),
            n => Err(format!("{n} replicas")),
        }
    });
    let exporters: Vec<u32> =
        running.processes().iter().filter(|p| p.kind.observed().is_some()).map(|p| p.pid).collect();
    assert_eq!(exporters.len(), 3);
    for pid in exporters {
        let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args = String::from_utf8_lossy(&args);
        assert!(passwords.iter().all(|p| !args.contains(p.as_str())), "a password on exporter {pid}'s command line");
    }
    drop(running);
    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "down failed:\n{out}\n{err}");
    for (host, sub) in [("r1", "redis_exporter0"), ("r2", "redis_exporter1"), ("r2", "sentinel_exporter0")] {
        let path = run_dir.join("remote").join(host).join(sub).join("exporter.log");
        let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(passwords.iter().all(|p| !log.contains(p.as_str())), "a password in {}", path.display());
    }
    emulated.down().expect("teardown");
}
