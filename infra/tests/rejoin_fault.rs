//! A backend that dies during its rejoin: as soon as it was started (a standby, before writes are
//! paused), and right after a pgpool attached it (writes paused). The rejoin fails within its bound (writes are held at most ~10 s, not the 37 s of
//! waiting for a pgpool that had taken the node out again), and running it again succeeds, with
//! every acknowledged write on both backends.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{assert_on_every_backend, topology, RunDir, Writer};
use infra::{psql, Kind, Running, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-rejoin-fault"
[postgres]
count = 2
base_port = 15730
[pgpool]
count = 2
base_port = 19530
pcp_base_port = 19580
"#;

fn pid_of(dir: &PathBuf, i: usize) -> Option<u32> {
    let r = Running::open(dir).ok()?;
    r.processes().iter().find(|p| p.kind == Kind::Postgres && p.index == i).map(|p| p.pid)
}

/// Kills postgres 1 once it runs under a pid other than `old` (the rejoin started it), after
/// `after_attach` also once pgpool 0 shows it up. Returns when it killed (or gave up after 60 s).
fn killer(dir: PathBuf, old: Option<u32>, after_attach: bool) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Some(pid) = pid_of(&dir, 1).filter(|&p| Some(p) != old) {
                let mut r = Running::open(&dir).unwrap();
                if after_attach && !matches!(r.pgpool_node_status(0, 1).ok().as_deref(), Some("up" | "waiting")) {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let killed = r.kill(Kind::Postgres, 1, infra::signal::SIGKILL).is_ok();
                eprintln!(
                    "killer: SIGKILL postgres 1 (pid {pid}) {:.1?} after the rejoin started: {killed}",
                    t.elapsed()
                );
                return killed;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    })
}

#[test]
fn a_backend_dying_during_its_rejoin_holds_writes_briefly_and_the_rejoin_can_be_run_again() {
    let dir = RunDir::new("infra-test-rejoin-fault");
    let mut running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let run_dir = running.run_dir().to_path_buf();
    psql::query("127.0.0.1", 19530, SHOP_DB, "CREATE TABLE items (id text PRIMARY KEY)").unwrap();

    let writer = Writer::start([19530, 19531]);
    std::thread::sleep(Duration::from_millis(500));
    running.stop_backend(1).unwrap();
    std::thread::sleep(Duration::from_millis(1000));

    for after_attach in [false, true] {
        let what = if after_attach { "after pgpool 0 attached it" } else { "as soon as it started" };
        let killer = killer(run_dir.clone(), pid_of(&run_dir, 1), after_attach);
        let t = Instant::now();
        let result = running.rejoin_backend(1);
        let took = t.elapsed();
        if let Err(e) = &result {
            eprintln!("rejoin with postgres 1 killed {what} failed (as it should): {e:#}");
        }
        assert!(killer.join().unwrap(), "the killer never found the rejoined backend");
        std::thread::sleep(Duration::from_millis(300));
        let gap = writer.longest_gap(t, Instant::now());
        eprintln!(
            "rejoin with postgres 1 killed {what}: {:?} in {took:.1?}; longest gap between acks {gap:.1?}",
            result.as_ref().map(|r| r.writes_paused).map_err(|e| format!("{e:#}"))
        );
        // The 10 s bound, plus slack for a failover's reconnects and a busy machine.
        assert!(gap < Duration::from_secs(13), "writes were held {gap:?} when postgres 1 died {what}");
        // pgpool notices the dead node (the rejoin may have finished first): then rejoin again.
        for _ in 0..100 {
            if (0..2).all(|p| running.pgpool_node_status(p, 1).ok().as_deref() == Some("down")) {
                break;
            }
            let _ = psql::query("127.0.0.1", 19530, SHOP_DB, "SELECT 1");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Each attempt holds writes at most ~10 s; on a busy machine a healthy rejoin can overrun
        // that too (it then fails the same bounded way), so it is given three attempts.
        let mut again: Result<infra::RejoinReport, String> = Err("not run".into());
        for attempt in 1..=3 {
            let t = Instant::now();
            again = running.rejoin_backend(1).map_err(|e| format!("{e:#}"));
            let gap = writer.longest_gap(t, Instant::now());
            eprintln!(
                "rejoin again (attempt {attempt}): {:?}; longest gap {gap:.1?}",
                again.as_ref().map(|r| r.writes_paused)
            );
            assert!(gap < Duration::from_secs(13), "writes were held {gap:?} by a rejoin");
            if again.is_ok() {
                break;
            }
        }
        again.unwrap_or_else(|e| panic!("the rejoin again after {what}: {e}"));
        for p in 0..2 {
            for node in 0..2 {
                let status = running.pgpool_node_status(p, node).unwrap();
                assert!(status == "up" || status == "waiting", "pgpool {p} node {node}: {status}");
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert!(acked.len() > 50, "the writer made too little progress: {}", acked.len());
    assert_on_every_backend(&acked, [15730, 15731]);
    running.down().unwrap();
}
