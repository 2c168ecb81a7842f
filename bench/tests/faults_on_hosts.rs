//! The faults command on emulated hosts, one network partition: the runner makes 3 hosts
//! (network namespaces with their own sshd; root only), places 2 PostgreSQL backends and 2
//! pgpools on host0 and host1 and a web instance (this build's `shopbench`) with nginx on host2,
//! and cuts the web instance off from pgpool 0 (nftables on host2, over SSH) for 8 s under the
//! shopaholic load, then heals. The app must move to pgpool 1 while the cut holds (writes succeed
//! during it), and no acknowledged order or cart change may be lost or doubled; the backends stay
//! identical. Everything it made is gone at the end (the servers, the hosts, their data). About
//! 1.5-2 minutes; needs this build's `shopbench-infra` (shipped to the hosts: `cargo test
//! --workspace` builds it, or `cargo build -p infra`).

use bench::faults::{self, FaultKind, FaultsFile};
use std::path::PathBuf;
use std::time::Instant;
use test_support::RunDir;

/// A binary of this build (target/<profile>/NAME), beside the test's deps dir.
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join(name);
    assert!(
        bin.is_file(),
        "{} missing: build it first (cargo build -p app -p infra; scripts/test does)",
        bin.display()
    );
    bin
}

fn file() -> FaultsFile {
    FaultsFile::parse(&format!(
        r#"
stage = "pg"
[hosts]
emulate = 3
[run]
users = 8
warmup_secs = 2
before_secs = 3
after_secs = 4
seed = 5
observe = false
[race]
users = 1
[catalogue]
products = 40
categories = 4
[topology]
name = "faults-hosts-test"
[topology.postgres]
count = 2
base_port = 17270
hosts = ["host0", "host1"]
[topology.postgres.settings]
fsync = "off"
[topology.pgpool]
count = 2
base_port = 17275
pcp_base_port = 17280
hosts = ["host0", "host1"]
[topology.web]
count = 1
base_port = 17285
hosts = ["host2"]
binary = "{}"
[topology.nginx]
count = 1
base_port = 17290
hosts = ["host2"]
[[fault]]
kind = "cut"
target = "web 0"
cut = [{{ from = ["web", 0], to = ["pgpool", 0] }}]
secs = 8
restart_budget_secs = 2
"#,
        built("shopbench").display()
    ))
    .expect("the test's faults file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_instance_cut_off_from_a_pgpool_moves_to_the_other_and_loses_nothing() {
    built("shopbench-infra");
    let t0 = Instant::now();
    let dir = RunDir::kept_on_failure("bench-faults-hosts");
    let out = dir.path().join("results");
    let run_dir = dir.path().join("run");
    let opts = faults::Options { file: file(), out: out.clone(), run_dir: run_dir.clone(), command: "the test".into() };
    let rows = faults::run(opts).await.expect("the faults run");

    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    assert!(r.on_hosts && r.kind == FaultKind::Cut, "{r:?}");
    assert!(r.instance.starts_with("web 0 on 10."), "{}", r.instance);
    assert!(
        r.details.iter().any(|d| d.starts_with("cut: web 0 (10.") && d.contains("-/-> pgpool 0")),
        "{:?}",
        r.details
    );
    assert!(r.requests_ok > 200, "the load ran: {} requests ok", r.requests_ok);
    assert_eq!(r.errors_before_fault, 0, "{:?}", r.error_reasons);
    // The app moved off pgpool 0 while the cut held: writes succeeded during it, and the
    // affected operations succeeded again before the heal.
    assert!(r.recovery_s.is_some_and(|s| s < 8.0), "recovered during the cut: {r:?}");
    assert!(r.longest_write_pause_s[0] < 6.0, "writes went on during the cut: {:?}", r.longest_write_pause_s);
    assert!(r.restart_s.is_some(), "healed: {r:?}");
    assert!(r.acked_orders > 0, "orders were acknowledged: {r:?}");
    assert_eq!((r.lost_orders, r.duplicated_orders, r.doubled_order_lines), (0, 0, 0), "{:?}", r.problems);
    assert!(r.carts_checked > 0 && r.cart_store.is_some(), "carts were checked: {r:?}");
    assert_eq!((r.lost_cart_changes, r.cart_contradictions), (0, 0), "{:?}", r.problems);
    assert!(r.backends_identical && r.repaired.is_none(), "{}", r.consistency);
    let md = std::fs::read_to_string(out.join("faults.md")).unwrap();
    assert!(md.contains("| pg on hosts | cut web 0 for 8 s, heal (web 0 on 10."), "{md}");

    // The servers' logs of the fault were read over SSH into the run dir, as from a real host.
    for copy in ["web0-web.log", "nginx0-error.log"] {
        assert!(run_dir.join("log-copies/fault-01").join(copy).is_file(), "{copy} was not fetched");
    }
    // The web instances had the run's own admin token (the seeding and the merchants' writes
    // used it), and no report holds it.
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let token = secrets["web_admin"].as_str().expect("a per-run admin token");
    for report in ["faults.json", "faults.md"] {
        assert!(!std::fs::read_to_string(out.join(report)).unwrap().contains(token), "the token is in {report}");
    }

    // The runner tore down what it made: the hosts (with their rules) and their data.
    let hosts_dir = dir.path().join("run-emulated");
    assert!(!hosts_dir.exists(), "{} left behind", hosts_dir.display());
    let netns = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    let tag = format!("sb{:x}-", std::process::id() & 0xfffff);
    assert!(!netns.contains(&tag), "this test's namespaces left: {netns}");
    eprintln!("whole test in {:.1?}", t0.elapsed());
}
