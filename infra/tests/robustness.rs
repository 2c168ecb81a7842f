//! Start-up safety: a taken port, a second `up`, a failure half-way, and Drop stop cleanly.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{any_alive, topology, RunDir};
use infra::{Kind, Overrides, Running};

/// 1 backend on `pg`, 1 pgpool on `pool` (pcp on pool + 5), 1 web instance: each test has its
/// own ports, as tests run in parallel.
fn topo(pg: u16, pool: u16) -> infra::Topology {
    topology(&format!(
        "name = \"itest-rob\"\n[postgres]\ncount = 1\nbase_port = {pg}\n\
         [pgpool]\ncount = 1\nbase_port = {pool}\npcp_base_port = {}\n[web]\ncount = 1\nbase_port = 18140\n",
        pool + 5
    ))
}

fn db_only(pg: u16, pool: u16) -> infra::Topology {
    topo(pg, pool).with_overrides(&Overrides { only_db: true, ..Default::default() }).unwrap()
}

#[test]
fn taken_port_is_named_and_nothing_starts() {
    let dir = RunDir::new("infra-test-port");
    let _holder = TcpListener::bind("127.0.0.1:19940").unwrap();
    let err = db_only(15440, 19940).up(dir.path()).err().expect("up must fail while the pgpool port is taken");
    let msg = format!("{err:#}");
    assert!(msg.contains("port 127.0.0.1:19940 (for pgpool 0) is already taken"), "{msg}");
    assert!(msg.contains(&format!("pid {}", std::process::id())), "the holder is named: {msg}");
    // Ports are checked before anything starts: the backend port stays free.
    TcpListener::bind("127.0.0.1:15440").expect("postgres 0 was started although up failed");
}

#[test]
fn second_up_is_refused_and_drop_stops_everything() {
    let dir = RunDir::new("infra-test-twice");
    let running = db_only(15450, 19950).up(dir.path()).expect("up");
    let procs = running.processes().to_vec();
    assert_eq!(procs.len(), 2);

    let err = db_only(15450, 19950).up(dir.path()).err().expect("a second up in the same run dir must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("already running") && msg.contains("nothing started"), "{msg}");
    assert_eq!(any_alive(&procs).len(), 2, "the second up must not touch the running topology");

    // Another handle on the same run dir (as the CLI makes) sees the same processes.
    let opened = Running::open(dir.path()).unwrap();
    assert!(opened.status().is_up(Kind::Pgpool, 0));
    drop(opened);
    assert_eq!(any_alive(&procs).len(), 2, "dropping an opened handle stops nothing");

    drop(running);
    assert!(any_alive(&procs).is_empty(), "Drop left {:?}", any_alive(&procs));
    TcpListener::bind("127.0.0.1:15450").expect("postgres port still taken after drop");
    TcpListener::bind("127.0.0.1:19950").expect("pgpool port still taken after drop");
}

#[test]
fn failure_half_way_stops_what_was_started() {
    let dir = RunDir::new("infra-test-halfway");
    // A "web binary" that exits at once: PostgreSQL and pgpool are up when it fails.
    let t = topo(15470, 19970)
        .with_overrides(&Overrides { web_binary: Some("/bin/false".into()), ..Default::default() })
        .unwrap();
    let err = t.up(dir.path()).err().expect("up must fail when a web instance dies");
    let msg = format!("{err:#}");
    assert!(msg.contains("web 0") && msg.contains("exited while starting"), "{msg}");
    assert!(msg.contains("last lines of"), "the error carries the log tail: {msg}");
    for port in [15470, 19970, 19975] {
        let mut free = false;
        for _ in 0..50 {
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                free = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(free, "port {port} still taken: {:?}", infra::port_holder(port));
    }
    assert!(!dir.path().join("state.json").exists(), "state.json left behind after cleanup");
}
