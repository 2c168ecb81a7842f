//! A tiny matrix on hosts the matrix makes itself (issue 13 items 2 and 5): 4 emulated hosts
//! (network namespaces with their own sshd on a private bridge), the backend and pgpool on `db`,
//! web and nginx on `web`, and two load clients started over SSH on `load1` and `load2`. The
//! summary names the hosts with what ran on each and the clients with where they ran; the
//! requests were measured on the hosts, none failed, and the hosts are gone afterwards.
//! Needs root, and the PostgreSQL stage's service and shopbench-infra built beside this bench
//! (`cargo build -p app -p infra`; scripts/test's workspace build does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use test_support::RunDir;

const BENCH: &str = env!("CARGO_BIN_EXE_shopbench-bench");

/// A program built beside this bench (target/<profile>/NAME).
fn beside(name: &str) -> PathBuf {
    let bin = Path::new(BENCH).with_file_name(name);
    assert!(
        bin.is_file(),
        "{} missing: build it first (cargo build -p app -p infra; scripts/test does)",
        bin.display()
    );
    bin
}

fn matrix(web: &Path) -> String {
    format!(
        r#"stage = "pg"
[run]
users = 4
warmup_secs = 1
secs = 5
repeats = 1
load_clients = 2
client_hosts = ["load1", "load2"]
floor = false
observe = false
[compare]
enabled = false
[capacity]
enabled = false
[catalogue]
products = 40
categories = 4
[emulate]
hosts = ["db", "web", "load1", "load2"]
[topology]
name = "bench-hosts-test"
[topology.postgres]
base_port = 25432
hosts = ["db"]
[topology.pgpool]
base_port = 25500
pcp_base_port = 25600
hosts = ["db"]
[topology.web]
base_port = 25080
hosts = ["web"]
binary = "{}"
[topology.nginx]
base_port = 25000
hosts = ["web"]
[[config]]
postgres = 1
pgpool = 1
web = 1
nginx = 1
"#,
        web.display()
    )
}

#[test]
fn a_matrix_on_emulated_hosts_with_two_remote_load_clients_reports_both() {
    let t0 = Instant::now();
    let run = RunDir::new("matrix-on-hosts");
    let file = run.path().join("hosts.toml");
    std::fs::write(&file, matrix(&beside("shopbench"))).unwrap();
    beside("shopbench-infra");
    let (raw, out) = (run.path().join("raw"), run.path().join("out"));
    let mut child = Command::new(BENCH)
        .args(["matrix", "--file"])
        .arg(&file)
        .arg("--run-dir")
        .arg(&raw)
        .arg("--out")
        .arg(&out)
        .current_dir(run.path())
        .spawn()
        .unwrap();
    // The run's own admin token, read while the run is on: a run without errors removes its
    // topology dir (and secrets.json with it) at the end.
    let mut token: Option<String> = None;
    let status = loop {
        if token.is_none() {
            let secrets = std::fs::read(raw.join("topology/secrets.json")).ok();
            let secrets = secrets.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            token = secrets.and_then(|v| v["web_admin"].as_str().map(String::from));
        }
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // A killed bench leaves its hosts: end them (nothing when the bench did).
    infra::hosts::EmulatedHosts::destroy(&raw.join("hosts")).unwrap();
    assert!(status.is_some_and(|s| s.success()), "the matrix failed or ran over 10 minutes: {status:?}");
    assert!(!raw.join("hosts").exists(), "the emulated hosts' dir was left: they were not all ended");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let hosts = summary["hosts"].as_array().expect("summary.json has hosts");
    let ran = |name: &str| -> Vec<String> {
        let h = hosts.iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("no host {name}: {hosts:?}"));
        assert!(h["address"].as_str().is_some_and(|a| a.starts_with("10.")), "{h}");
        h["ran"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ran("db"), ["postgres 0", "pgpool 0"]);
    assert_eq!(ran("web"), ["web 0", "nginx 0"]);
    assert_eq!(ran("load1"), ["load client 0"]);
    assert_eq!(ran("load2"), ["load client 1"]);
    assert_eq!(summary["hosts_emulated"], true);
    assert_eq!(
        summary["load_clients"],
        serde_json::json!({"count": 2, "on": [{"host": "load1", "count": 1}, {"host": "load2", "count": 1}]})
    );
    let c = &summary["configurations"][0];
    assert!(c["requests"].as_u64().unwrap() > 0, "no requests measured: {c}");
    assert_eq!(c["failures"], 0, "{c}");
    // Each client's result was copied back from its host.
    for k in 0..2 {
        assert!(raw.join(format!("clients-config-01-repeat-1/client-{k}.json")).is_file(), "client {k}'s result");
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("2 load-client processes (1 on load1, 1 on load2)"), "{readme}");
    assert!(readme.contains("| load2 | 10."), "{readme}");
    assert!(readme.contains("Off on hosts: storage floor ([run] floor = false)"), "{readme}");
    // The web instance had the run's own admin token (the seeding and the clients used it), and no
    // report holds it.
    let token = token.expect("a per-run admin token in the run's secrets.json");
    for report in [out.join("summary.json"), out.join("README.md"), raw.join("meta.json")] {
        assert!(!std::fs::read_to_string(&report).unwrap().contains(&token), "the token is in {}", report.display());
    }
    eprintln!("matrix on 4 emulated hosts in {:.1?}", t0.elapsed());
}
