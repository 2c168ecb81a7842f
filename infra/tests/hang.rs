//! A hung backend: SIGSTOP of its postmaster and every child (each has its own session, so the
//! whole tree is signalled) while a writer goes on through both pgpools. Measured: how long until
//! each pgpool detached it, the longest time without an acknowledged write; then SIGCONT (always,
//! also when the test fails), the rejoin brings it back and how long it held writes. The healthy
//! backend stays attached throughout, on a machine that is usually busy with other builds.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{assert_on_every_backend, topology, RunDir, Writer};
use infra::{psql, Kind, Running, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-hang"
[postgres]
count = 2
base_port = 15740
[pgpool]
count = 2
base_port = 19540
pcp_base_port = 19590
"#;

/// SIGCONTs backend 1 when dropped (the test's end or a panic), through its own handle.
struct Resume(PathBuf);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Ok(mut r) = Running::open(&self.0) {
            let _ = r.kill(Kind::Postgres, 1, infra::signal::SIGCONT);
        }
    }
}

/// State letters of `pid`'s children (T = stopped).
fn children_states(pid: u32) -> Vec<char> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(1) == Some(&pid.to_string().as_str()) {
            out.push(f[0].chars().next().unwrap());
        }
    }
    out
}

/// Seconds since midnight UTC of a pgpool log line ("2026-12-04 17:05:56.293: pid ...").
fn log_time(line: &str) -> f64 {
    let time = line.split_whitespace().nth(1).unwrap().trim_end_matches(':');
    let f: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    f[0] * 3600.0 + f[1] * 60.0 + f[2]
}

fn attached(s: &str) -> bool {
    s == "up" || s == "waiting"
}

#[test]
fn a_hung_backend_is_detached_within_seconds_and_rejoins() {
    let dir = RunDir::new("infra-test-hang");
    let mut running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let run_dir = running.run_dir().to_path_buf();
    psql::query("127.0.0.1", 19540, SHOP_DB, "CREATE TABLE items (id text PRIMARY KEY)").unwrap();

    let writer = Writer::start([19540, 19541]);
    std::thread::sleep(Duration::from_secs(2));

    let postmaster = running.processes().iter().find(|p| p.kind == Kind::Postgres && p.index == 1).unwrap().pid;
    let resume = Resume(run_dir.clone());
    let hung_at = Instant::now();
    let hung_wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    running.kill(Kind::Postgres, 1, infra::signal::SIGSTOP).unwrap();
    // A child waiting for a CPU (state R) stops when it is next scheduled: on a busy machine that
    // takes a moment, so the states are polled; one that was never signalled stays R or S.
    let mut states = children_states(postmaster);
    while !states.iter().all(|&s| s == 'T') && hung_at.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
        states = children_states(postmaster);
    }
    assert!(!states.is_empty() && states.iter().all(|&s| s == 'T'), "every child stopped: {states:?}");

    // Until both pgpools detached it; backend 0 stays attached on both.
    let mut detached_after = [None, None];
    while detached_after.iter().any(Option::is_none) && hung_at.elapsed() < Duration::from_secs(30) {
        for (p, detached) in detached_after.iter_mut().enumerate() {
            if detached.is_none() && running.pgpool_node_status(p, 1).unwrap() == "down" {
                *detached = Some(hung_at.elapsed());
            }
            let s0 = running.pgpool_node_status(p, 0).unwrap();
            assert!(attached(&s0), "pgpool {p} detached the healthy backend 0: {s0}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let first_ack_after = writer.first_ack_after(hung_at);
    let gap = writer.longest_gap(hung_at, Instant::now());
    eprintln!(
        "hung backend 1: first acknowledged write {:.1?} after the hang; longest gap between acks {gap:.1?}",
        first_ack_after.map(|t| t - hung_at).unwrap_or_default()
    );
    // pcp answers late around a failover (pgpool restarts its pcp child), so the detach time is
    // taken from each pgpool's log: its "starting degeneration" line, stamped to the millisecond.
    for (p, seen) in detached_after.iter().enumerate() {
        let seen = seen.unwrap_or_else(|| panic!("pgpool {p} never detached the hung backend"));
        let log = std::fs::read_to_string(run_dir.join(format!("pgpool{p}/pgpool.log"))).unwrap();
        for line in log.lines().filter(|l| l.contains("health check") && l.contains("node: 1") || l.contains("node 1"))
        {
            eprintln!("pgpool {p}: {line}");
        }
        let line = log.lines().find(|l| l.contains("starting degeneration")).expect("a degeneration in the log");
        let detached = log_time(line) - hung_wall.rem_euclid(86_400.0);
        eprintln!(
            "pgpool {p}: detached the hung backend {detached:.2} s after the SIGSTOP (pcp showed it after {seen:.1?})"
        );
        // 15-16 s expected (3 attempts of health_check_timeout 5 s + up to a period of 1 s); the
        // bound leaves room for a busy machine and stays below the 20 s hang of the faults runs
        assert!(detached < 19.0, "pgpool {p} took {detached:.2} s to detach the hung backend");
    }

    // Back: SIGCONT, then the rejoin.
    drop(resume);
    std::thread::sleep(Duration::from_millis(500));
    // A rejoin that cannot finish inside its 10 s write hold (at load ~10 on 2 cores a pgpool was
    // seen slow to restart its children after the attach) releases the writes and says to run it
    // again: the documented way (the hold of a refused attempt is bounded by the rejoin itself).
    let mut attempt = 1;
    let r = loop {
        match running.rejoin_backend(1) {
            Ok(r) => break r,
            Err(e) => {
                let e = format!("{e:#}");
                assert!(e.contains("run the rejoin again") && attempt < 3, "rejoin {attempt} after SIGCONT: {e}");
                eprintln!("rejoin {attempt} after SIGCONT refused ({e}); running it again");
                attempt += 1;
            }
        }
    };
    eprintln!("rejoin after SIGCONT: writes paused {:.1?}, {:.1?} in all", r.writes_paused, r.total);
    assert!(r.writes_paused < Duration::from_secs(10), "{r:?}");
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert_on_every_backend(&acked, [15740, 15741]);
    running.down().unwrap();
}
