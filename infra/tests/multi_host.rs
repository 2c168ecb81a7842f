//! A topology on 3 emulated hosts, brought up, checked and brought down from the control machine
//! over SSH (issue 13): db1 runs backend 0 and the pgpool, db2 backend 1, web1 the web instance
//! and nginx. A write through nginx reaches both backends; PostgreSQL and pgpool refuse a 4th
//! host and the control machine, which are not in the topology, even with the right password;
//! `check` and the restart of a killed web instance work over SSH; `down` leaves no process on
//! the hosts. Needs root (emulated hosts); ports 24000-24999.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{app_binary, infra, psql_on, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 3] = ["db1", "db2", "web1"];

fn topology(hosts: &[SshHost], web: &Path) -> String {
    let mut toml = format!(
        "name = \"multi\"\n\
         [postgres]\ncount = 2\nbase_port = 24432\nhosts = [\"db1\", \"db2\"]\n\
         [pgpool]\ncount = 1\nbase_port = 24500\npcp_base_port = 24600\nhosts = [\"db1\"]\n\
         [web]\ncount = 1\nbase_port = 24080\nhosts = [\"web1\"]\nbinary = \"{}\"\n\
         [nginx]\ncount = 1\nbase_port = 24000\nhosts = [\"web1\"]\n",
        web.display()
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

fn post(host: &str, port: u16, path: &str, body: &str, admin_token: &str) -> (u16, String) {
    common::post_json(host, port, path, body, Some(admin_token))
}

fn running(pid: u32) -> bool {
    infra::all_processes().iter().any(|p| p.pid == pid && !p.dead)
}

#[test]
fn a_topology_on_three_hosts_over_ssh_serves_writes_to_both_backends_and_lets_nobody_else_in() {
    let t0 = Instant::now();
    let run = RunDir::new("multi-host");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 4).expect("4 emulated hosts");
    let all = emulated.hosts();
    let (db1, db2, web1, outsider) = (&all[0], &all[1], &all[2], &all[3]);
    eprintln!("4 emulated hosts in {:.1?}", t0.elapsed());
    let file = run.path().join("multi.toml");
    std::fs::write(&file, topology(&all[..3], &app_binary())).unwrap();
    let run_dir = run.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());

    let t = Instant::now();
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    let up_took = t.elapsed();
    assert!(ok, "up failed:\n{out}\n{err}");
    eprintln!("up over SSH in {up_took:.1?}:\n{err}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let (client, admin) = (secrets["client"].as_str().unwrap(), secrets["admin"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(run_dir.join("secrets.json")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!out.contains(client) && !err.contains(client) && !out.contains(admin), "a password was printed");
    // The web instances' admin token is made for this run, kept with the passwords, never printed.
    let token = secrets["web_admin"].as_str().expect("a per-run admin token in secrets.json");
    assert!(!out.contains(token) && !err.contains(token), "the admin token was printed");
    assert!(out.contains(&format!("nginx:     http://{}:24000", web1.address)), "{out}");

    // A write through nginx on web1, from the control machine, lands on both backends.
    let (code, body) = post(
        &web1.address.to_string(),
        24000,
        "/products",
        r#"{"name":"Rope","description":"Ten metres","category":"tools","price_cents":900}"#,
        token,
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    for (i, backend) in [db1, db2].iter().enumerate() {
        let sql = format!("SELECT name FROM products WHERE id = '{id}'");
        let row = psql_on(db1, &backend.address.to_string(), 24432 + i as u16, "shopbench_admin", admin, &sql);
        assert_eq!(row.as_deref().map(str::trim), Ok("Rope"), "backend {i}");
    }

    let (ok, status, err) = infra(&["status", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "status: {status}\n{err}");
    for label in ["postgres 0", "postgres 1", "pgpool 0", "web 0", "nginx 0"] {
        assert!(status.lines().any(|l| l.starts_with(label) && l.trim_end().ends_with("up")), "{label}: {status}");
    }
    assert!(status.contains("pgpool 0 sees: node 0") && !status.contains("down"), "{status}");

    // The consistency check runs on db1 (the control machine may not read the backends).
    let (ok, report, err) = infra(&["check", "--topology", topo, "--run-dir", dir]);
    assert!(ok && report.starts_with("identical: 2 backends"), "check: {report}\n{err}");

    // A killed web instance is started again on web1; nginx serves writes again.
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    let web_pid = state["processes"].as_array().unwrap().iter().find(|p| p["kind"] == "web").unwrap()["pid"].clone();
    web1.run(&format!("kill -9 {web_pid}"), T).unwrap();
    let (ok, out, err) = infra(&["restart", "--topology", topo, "--run-dir", dir, "--kind", "web", "--index", "0"]);
    assert!(ok, "restart of web 0: {out}\n{err}");
    let body = r#"{"name":"Knot","description":"A bowline","category":"tools","price_cents":100}"#;
    assert_eq!(post(&web1.address.to_string(), 24000, "/products", body, token).0, 201);
    // The restarted instance has the run's token too, and the development one is no admin's.
    let (code, _) = post(&web1.address.to_string(), 24000, "/products", body, "admin-dev-token");
    assert!(matches!(code, 401 | 403), "the development token answered {code}");
    let state_json = std::fs::read_to_string(run_dir.join("state.json")).unwrap();
    assert!(!state_json.contains(token), "the admin token is in state.json");
    let (ok, _, err) = infra(&["restart", "--topology", topo, "--run-dir", dir, "--kind", "pgpool", "--index", "0"]);
    assert!(!ok && err.contains("pgpool 0 is running"), "{err}");

    // Nobody outside the topology gets in, password or not; a host of it does with the password.
    let (pg1, pgpool) = (db1.address.to_string(), db1.address.to_string());
    assert!(psql_on(db2, &pgpool, 24500, "postgres", client, "SELECT 1").is_ok(), "db2 through pgpool");
    for (port, what, refusal) in [(24432, "postgres", "no pg_hba.conf entry"), (24500, "pgpool", "pool_hba.conf")] {
        let e = psql_on(outsider, &pg1, port, "postgres", client, "SELECT 1").expect_err(what);
        assert!(e.contains(refusal), "{what} from a 4th host: {e}");
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-At", "-h", &pg1, "-p", &port.to_string(), "-U", "postgres", "-d", "shop", "-c", "SELECT 1"]);
        let out = cmd.env("PGPASSWORD", client).env("PGCONNECT_TIMEOUT", "5").output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(refusal), "{what} from the control machine: {e}");
        let wrong = psql_on(db2, &pg1, port, "postgres", "not-the-password", "SELECT 1").expect_err(what);
        assert!(wrong.contains("authentication failed"), "{what}, a wrong password: {wrong}");
    }

    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    let pids: Vec<u32> =
        state["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap() as u32).collect();
    assert_eq!(pids.len(), 5);
    let t = Instant::now();
    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    let down_took = t.elapsed();
    assert!(ok, "down failed:\n{out}\n{err}");
    eprintln!("down over SSH in {down_took:.1?}:\n{err}");
    for pid in &pids {
        assert!(!running(*pid), "pid {pid} survived down");
    }
    for name in NAMES {
        let logs = run_dir.join("remote").join(name);
        assert!(std::fs::read_dir(&logs).is_ok_and(|d| d.count() > 1), "no logs fetched into {}", logs.display());
    }
    let log = std::fs::read_to_string(run_dir.join("remote/db1/postgres0/postgres.log")).unwrap();
    assert!(log.contains("database system is shut down"), "{log}");
    assert!(!log.contains(client) && !log.contains(admin), "a password in postgres.log");

    let names: Vec<String> = (0..4).map(|i| emulated.netns(i).to_string()).collect();
    emulated.down().expect("teardown");
    let left =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    assert!(names.iter().all(|n| !left.contains(n.as_str())), "namespaces left: {left}");
    eprintln!("whole test in {:.1?} (up {up_took:.1?}, down {down_took:.1?})", t0.elapsed());
}

/// An `up` that fails on a host half-way (a web binary that exits at once, after the backends and
/// the pgpool are up on the other hosts) stops everything it had started on every host.
#[test]
fn a_failed_up_over_ssh_leaves_nothing_running_on_any_host() {
    let run = RunDir::new("multi-host-fail");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 3).expect("3 emulated hosts");
    let all = emulated.hosts();
    let file = run.path().join("fail.toml");
    std::fs::write(&file, topology(&all, Path::new("/bin/false"))).unwrap();
    let run_dir = run.path().join("run");
    let (ok, out, err) = infra(&["up", "--topology", file.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()]);
    assert!(!ok, "up with a web binary that exits succeeded: {out}");
    assert!(err.contains("web 0") && err.contains("up: tier pgpool ready"), "{err}");
    assert!(!run_dir.join("state.json").exists(), "state.json left: the hosts were not all stopped\n{err}");
    for (i, host) in all.iter().enumerate() {
        let ns = emulated.netns(i);
        let pids = Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
        let left: Vec<String> = String::from_utf8_lossy(&pids.stdout).split_whitespace().map(str::to_string).collect();
        // sshd alone is left in each host.
        assert_eq!(left.len(), 1, "{}: pids {left:?} left after the failed up", host.name);
    }
    emulated.down().expect("teardown");
}
