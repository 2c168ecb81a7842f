//! `Running::restart`: every kind of instance SIGKILLed and started again on the same ports, with
//! state.json following; a backend comes back through the rejoin, identical to the other.

mod common;

use std::time::Duration;

use common::{app_binary, topology, RunDir};
use infra::{http_get, Kind, Overrides, Running};

const TOPOLOGY: &str = r#"
name = "itest-restart"
[postgres]
count = 2
base_port = 15460
[pgpool]
count = 2
base_port = 19970
pcp_base_port = 19975
[web]
count = 1
base_port = 18150
[nginx]
count = 1
base_port = 18030
"#;

fn pid(r: &Running, kind: Kind, index: usize) -> u32 {
    r.processes().iter().find(|p| p.kind == kind && p.index == index).unwrap().pid
}

fn ready(port: u16) -> u16 {
    http_get("127.0.0.1", port, "/health/ready", Duration::from_secs(10)).map(|(code, _)| code).unwrap_or(0)
}

/// Kills `kind index`, restarts it, and checks that it runs under a new pid, also in state.json.
fn kill_and_restart(running: &mut Running, dir: &RunDir, kind: Kind, index: usize) -> infra::RestartReport {
    let before = pid(running, kind, index);
    running.kill(kind, index, infra::signal::SIGKILL).unwrap();
    assert!(!running.status().is_up(kind, index));
    let report = running.restart(kind, index).unwrap_or_else(|e| panic!("restarting {kind} {index}: {e:#}"));
    assert_eq!((report.kind, report.index), (kind, index));
    let after = pid(running, kind, index);
    assert_ne!(before, after, "{kind} {index} runs under a new pid");
    assert!(running.status().is_up(kind, index));
    let saved = Running::open(dir.path()).unwrap();
    assert_eq!(pid(&saved, kind, index), after, "state.json records the new pid");
    report
}

#[test]
fn every_kind_restarts_after_a_sigkill_on_its_ports() {
    let dir = RunDir::new("infra-test-restart");
    let t =
        topology(TOPOLOGY).with_overrides(&Overrides { web_binary: Some(app_binary()), ..Default::default() }).unwrap();
    let mut running = t.up(dir.path()).expect("up");

    let err = running.restart(Kind::Pgpool, 1).unwrap_err().to_string();
    assert!(err.contains("is running"), "{err}");

    // pgpool: back with every backend up. A saved view that marks a node down is outdated while
    // the other pgpool sees every node up, so it goes.
    let before = pid(&running, Kind::Pgpool, 1);
    running.kill(Kind::Pgpool, 1, infra::signal::SIGKILL).unwrap();
    std::fs::write(dir.path().join("pgpool1/pgpool_status"), "up\ndown\n").unwrap();
    running.restart(Kind::Pgpool, 1).expect("restart pgpool 1");
    assert_ne!(pid(&running, Kind::Pgpool, 1), before);
    let nodes = infra::pool_nodes("127.0.0.1", 19971).unwrap();
    assert!(nodes.len() == 2 && nodes.iter().all(|n| n.status == "up"), "{nodes:?}");
    kill_and_restart(&mut running, &dir, Kind::Pgpool, 0);

    // The web tier, checked through nginx.
    kill_and_restart(&mut running, &dir, Kind::Web, 0);
    assert_eq!(ready(18030), 200, "nginx reaches the restarted web instance");
    kill_and_restart(&mut running, &dir, Kind::Nginx, 0);
    assert_eq!(ready(18030), 200, "the restarted nginx answers");

    // A backend: the rejoin copies the live one, so both are identical and in service.
    let report = kill_and_restart(&mut running, &dir, Kind::Postgres, 1);
    assert!(report.writes_paused.is_some(), "a backend restarts through the rejoin");
    let check = running.check_consistency().unwrap();
    assert!(check.is_identical(), "{check}");
    for port in [19970, 19971] {
        let nodes = infra::pool_nodes("127.0.0.1", port).unwrap();
        assert!(nodes.iter().all(|n| n.status == "up"), "pgpool on {port}: {nodes:?}");
    }
    assert_eq!(ready(18030), 200);
    running.down().unwrap();
}
