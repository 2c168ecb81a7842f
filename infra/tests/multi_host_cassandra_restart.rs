//! A 3-node Cassandra ring on 3 emulated hosts (cr1, cr2, cr3), a killed node restarted from the
//! control machine over SSH (issue 13): its host starts it with its data, the control machine
//! waits for the whole ring, logged in (every node answers, knows the others, agrees on the
//! schema and serves a read at ALL); a row written at QUORUM while it was down is read through it
//! afterwards; a running node's restart is refused. Needs root (emulated hosts) and Cassandra's
//! jars in .cache/cassandra (fetched by an `up` with Maven once). Ports 24800-24899.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{infra, pid_in_state, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};

const NAMES: [&str; 3] = ["cr1", "cr2", "cr3"];
const CQL: u16 = 24842;

fn topology(hosts: &[SshHost]) -> String {
    let mut toml = format!(
        "name = \"cr\"\n\
         [cassandra]\ncount = 3\nhosts = [\"cr1\", \"cr2\", \"cr3\"]\nnative_port = {CQL}\nstorage_port = 24800\n\
         jmx_base_port = 24850\nheap_mb = 512\n"
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

#[test]
fn a_killed_cassandra_node_on_a_host_restarts_into_the_whole_ring() {
    let t0 = Instant::now();
    let tmp = RunDir::new("multi-host-cassandra-restart");
    let emulated = EmulatedHosts::create(&tmp.path().join("hosts"), 3).expect("3 emulated hosts");
    let hosts = emulated.hosts();
    let file = tmp.path().join("cr.toml");
    std::fs::write(&file, topology(&hosts)).unwrap();
    let run_dir = tmp.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());
    let run = |command: &str, more: &[&str]| {
        let mut args = vec![command, "--topology", topo, "--run-dir", dir];
        args.extend(more);
        infra(&args)
    };
    let (ok, out, err) = run("up", &[]);
    assert!(ok, "up failed:\n{out}\n{err}");
    eprintln!("up in {:.1?}", t0.elapsed());
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let password = tmp.path().join("cassandra.password");
    std::fs::write(&password, secrets["cassandra"].as_str().unwrap()).unwrap();
    // `shopbench-infra cql` from the control machine, logged in, through node `i`.
    let cql = |i: usize, statement: &str| {
        let node = format!("{}:{CQL}", hosts[i].address);
        let login = ["--user", "shopbench", "--password-file", password.to_str().unwrap()];
        let mut args = vec!["cql", "--node", &node, "--cql", statement];
        args.extend(login);
        infra(&args)
    };
    let (ok, out, err) = cql(
        0,
        "CREATE KEYSPACE IF NOT EXISTS probe WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cql(0, "CREATE TABLE IF NOT EXISTS probe.t (k int PRIMARY KEY, v text)");
    assert!(ok, "{out}{err}");

    // Node 2 dies; a row is written at QUORUM meanwhile; its restart waits for the whole ring.
    hosts[2]
        .run(&format!("kill -9 {}", pid_in_state(Path::new(dir), "cassandra", 2)), Duration::from_secs(30))
        .unwrap();
    let (ok, out, err) = run("restart", &["--kind", "cassandra", "--index", "0"]);
    assert!(!ok && err.contains("cassandra 0 is running"), "restart of a running node:\n{out}\n{err}");
    let (ok, out, err) = cql(0, "INSERT INTO probe.t (k, v) VALUES (1, 'meanwhile')");
    assert!(ok, "a QUORUM write with one node down: {out}{err}");
    let t = Instant::now();
    let (ok, out, err) = run("restart", &["--kind", "cassandra", "--index", "2"]);
    assert!(ok, "restart --kind cassandra --index 2:\n{out}\n{err}");
    eprintln!("restart of cassandra 2 over SSH in {:.1?}", t.elapsed());
    let (ok, out, err) = cql(2, "SELECT v FROM probe.t WHERE k = 1");
    assert!(ok && out.contains("meanwhile"), "read through the restarted node: {out}{err}");
    let (ok, status, err) = run("status", &[]);
    assert!(ok, "status: {status}\n{err}");

    let (ok, out, err) = run("down", &[]);
    assert!(ok, "down failed:\n{out}\n{err}");
    emulated.down().expect("teardown");
    eprintln!("whole test in {:.1?}", t0.elapsed());
}
