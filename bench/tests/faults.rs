//! The faults command on real servers, one fault: 2 PostgreSQL backends, 2 pgpools, a web
//! instance (this build's `shopbench` binary) and an nginx on 127.0.0.1:17270-17294; the
//! shopaholic load runs while backend 1 is SIGKILLed and rejoined. Every order the clients saw
//! acknowledged must be on both backends exactly once, every cart they know must be as they were
//! told, the backends identical, and the rows written beside another stage's row, which stays.
//! About a minute; every server is stopped by the command (and by the topology's Drop on a panic).

use bench::faults::{self, FaultRow, FaultsFile};
use std::path::PathBuf;
use test_support::RunDir;

/// The app binary of this build (target/<profile>/shopbench): `cargo test --workspace`
/// (scripts/test) builds it; `cargo build -p app` does too.
fn app_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("shopbench");
    assert!(bin.is_file(), "{} missing: build the app first (cargo build -p app; scripts/test does)", bin.display());
    bin
}

fn file() -> FaultsFile {
    FaultsFile::parse(&format!(
        r#"
stage = "pg"
[run]
users = 8
warmup_secs = 2
before_secs = 3
down_secs = 3
after_secs = 3
seed = 3
[catalogue]
products = 40
categories = 4
[topology]
name = "faults-test"
[topology.postgres]
count = 2
base_port = 17270
[topology.pgpool]
count = 2
base_port = 17275
pcp_base_port = 17280
[topology.web]
count = 1
base_port = 17285
binary = "{}"
[topology.nginx]
count = 1
base_port = 17290
[topology.prometheus]
port = 17296
exporter_base_port = 17291
[[fault]]
target = "postgres 1"
restart_budget_secs = 10
"#,
        app_binary().display()
    ))
    .expect("the test's faults file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_and_rejoined_under_load_loses_no_acknowledged_order() {
    // The results and the run dir (the servers' logs) are kept for reading if the test fails.
    let dir = RunDir::kept_on_failure("bench-faults");
    let out = dir.path().join("results");
    std::fs::create_dir_all(&out).unwrap();
    // A row of a later stage that this run must keep.
    let redis = FaultRow {
        fault: "SIGKILL redis master, restart".into(),
        stage: bench::matrix::Stage::Redis,
        target: "redis master".into(),
        ..FaultRow::default()
    };
    std::fs::write(out.join("faults.json"), serde_json::to_string(&vec![redis.clone()]).unwrap()).unwrap();

    let opts =
        faults::Options { file: file(), out: out.clone(), run_dir: dir.path().join("run"), command: "the test".into() };
    let rows = faults::run(opts).await.expect("the faults run");

    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    assert!(r.instance.starts_with("postgres 1 on 127.0.0.1:17271"), "{}", r.instance);
    assert!(r.requests_ok > 200, "the load ran: {} requests ok", r.requests_ok);
    assert!(r.acked_orders > 0, "orders were acknowledged: {r:?}");
    assert_eq!((r.lost_orders, r.duplicated_orders), (0, 0), "{:?}", r.problems);
    assert!(r.carts_checked > 0 && r.cart_store.is_some(), "carts were checked: {r:?}");
    assert_eq!((r.lost_cart_changes, r.cart_contradictions), (0, 0), "{:?}", r.problems);
    assert!(r.backends_identical && r.repaired.is_none(), "{}", r.consistency);
    assert!(r.restart_s.is_some() && r.writes_paused_s.is_some(), "the rejoin ran: {r:?}");
    assert_eq!(r.errors_before_fault, 0, "{:?}", r.error_reasons);
    // The rejoin holds writes while it copies the live backend: the clients' writes pause.
    assert!(r.longest_write_pause_s[1] >= r.writes_paused_s.unwrap() * 0.5, "{r:?}");

    let saved: Vec<FaultRow> =
        serde_json::from_str(&std::fs::read_to_string(out.join("faults.json")).unwrap()).unwrap();
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0], redis, "the other stage's row is kept");
    assert_eq!(&saved[1], r);
    let md = std::fs::read_to_string(out.join("faults.md")).unwrap();
    assert!(md.contains("| pg | SIGKILL postgres 1, restart (postgres 1 on 127.0.0.1:17271)"), "{md}");
    assert!(md.contains("| redis | SIGKILL redis master, restart"), "{md}");
    observed(&out, r, &md);

    for port in [17270, 17271, 17275, 17276, 17285, 17290, 17291, 17293, 17295, 17296] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "something still listens on {port}");
    }
}

/// The fault's timeline: every series of the servers was read from the run's Prometheus, and
/// pgpool's view shows the killed backend leave and come back.
fn observed(out: &std::path::Path, r: &FaultRow, md: &str) {
    use bench::observe::faults::FaultSeries;
    assert_eq!(r.timeline.as_deref(), Some("faults/pg-01"));
    assert!(md.contains("![pg postgres 1](faults/pg-01.png)"), "{md}");
    for ext in ["png", "svg"] {
        assert!(out.join(format!("faults/pg-01.{ext}")).metadata().unwrap().len() > 1000, "{ext}");
    }
    let s: FaultSeries =
        serde_json::from_str(&std::fs::read_to_string(out.join("faults/pg-01.json")).unwrap()).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.marks.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(), ["SIGKILL", "restart", "back"]);
    let ok = s.clients.iter().find(|c| c.name == "ok").unwrap();
    assert!(ok.max().unwrap() > 5.0, "{ok:?}");
    for (what, series) in [("status", &s.status), ("up", &s.up), ("pgpool nodes", &s.pgpool_nodes), ("pools", &s.pools)]
    {
        assert!(!series.is_empty() && series.iter().all(|x| !x.points.is_empty()), "{what}: {series:?}");
    }
    let tiers: Vec<&str> = s.up.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(tiers, ["nginx", "pgpool", "postgres", "prometheus", "web"]);
    let status: Vec<&str> = s.status.iter().map(|x| x.name.as_str()).collect();
    assert!(status.contains(&"2xx"), "{status:?}");
    assert_eq!(s.pgpool_nodes.len(), 4, "2 pgpools x 2 backends: {:?}", s.pgpool_nodes);
    let node1 = s.pgpool_nodes.iter().filter(|x| x.name.ends_with("node 1"));
    let (kill, back) = (s.marks[0].0, s.marks[2].0);
    for n in node1 {
        assert!(n.points.iter().any(|p| p.0 > kill && p.0 < back && p.1 == 0.0), "seen down: {n:?}");
        assert!(n.points.iter().any(|p| p.0 > back + 1.0 && p.1 == 1.0), "seen up again: {n:?}");
    }
}
