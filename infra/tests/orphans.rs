//! SIGKILL of pgpool's main process alone: its children go on serving the port as orphans.
//! `status` names them, `restart --kind pgpool` ends them (by pid) before starting a new pgpool,
//! clients connect again and writes reach both backends; `down` ends them as well.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{topology, RunDir};
use infra::{psql, Kind, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-orphans"
[postgres]
count = 2
base_port = 15710
[pgpool]
count = 1
base_port = 19510
pcp_base_port = 19560
"#;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

fn wait_dead(pids: &[u32]) -> Vec<u32> {
    for _ in 0..100 {
        if pids.iter().all(|&p| !alive(p)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pids.iter().copied().filter(|&p| alive(p)).collect()
}

#[test]
fn orphans_of_a_killed_pgpool_are_shown_and_ended() {
    let dir = RunDir::new("infra-test-orphans");
    let mut running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let q = |sql: &str| psql::query("127.0.0.1", 19510, SHOP_DB, sql);
    q("CREATE TABLE items (id int PRIMARY KEY)").unwrap();
    q("INSERT INTO items VALUES (1)").unwrap();
    assert!(running.status().processes.iter().all(|p| p.orphans.is_empty()));

    running.kill_main_process(Kind::Pgpool, 0, infra::signal::SIGKILL).unwrap();
    let status = running.status();
    let pgpool = status.processes.iter().find(|p| p.kind == Kind::Pgpool).unwrap();
    assert!(!pgpool.up, "{status}");
    assert!(!pgpool.orphans.is_empty(), "the children outlive their main process: {status}");
    assert!(status.to_string().contains("orphaned children"), "{status}");
    let orphans = pgpool.orphans.clone();
    eprintln!("status after the kill:\n{status}");
    // what made this dangerous: the orphans still hold the port (clients never notice)
    assert!(TcpListener::bind("127.0.0.1:19510").is_err(), "the orphans hold the port");

    let report = running.restart(Kind::Pgpool, 0).expect("restart pgpool 0 over its orphans");
    eprintln!("restart took {:.1?}", report.took);
    assert_eq!(wait_dead(&orphans), Vec::<u32>::new(), "orphans left after the restart");
    let status = running.status();
    assert!(status.is_up(Kind::Pgpool, 0), "{status}");
    assert!(status.processes.iter().all(|p| p.orphans.is_empty()), "{status}");
    q("INSERT INTO items VALUES (2)").expect("clients connect to the new pgpool");
    for addr in running.endpoints(Kind::Postgres) {
        let n = psql::query(&addr.host, addr.port, SHOP_DB, "SELECT count(*) FROM items").unwrap();
        assert_eq!(n.trim(), "2", "backend {addr}");
    }

    // `down` ends them too, and frees the port
    running.kill_main_process(Kind::Pgpool, 0, infra::signal::SIGKILL).unwrap();
    let orphans: Vec<u32> = running
        .processes()
        .iter()
        .find(|p| p.kind == Kind::Pgpool)
        .unwrap()
        .orphans()
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    assert!(!orphans.is_empty());
    running.down().unwrap();
    assert_eq!(wait_dead(&orphans), Vec::<u32>::new(), "orphans left after down");
    TcpListener::bind("127.0.0.1:19510").expect("port free after down");
}
