//! A backend full of client sessions is not failed over: outside sessions (role `postgres`, as
//! the app and psql log in) take every slot clients may have for longer than pgpool's health check
//! needs to fail a node, yet every pgpool keeps the node attached (its health check logs in as the
//! superuser, into the slots reserved for it), and afterwards writes reach both backends.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{topology, RunDir};
use infra::{psql, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-full"
[postgres]
count = 2
base_port = 15720
[pgpool]
count = 2
base_port = 19520
pcp_base_port = 19570
"#;

/// How long the backend stays full: the health check (every 2 s, 2 retries 1 s apart) failed a
/// node in ~4-5 s before.
const FULL_FOR: Duration = Duration::from_secs(14);

/// Outside sessions, ended (SIGKILL by pid, then reaped) when dropped, also on a panic.
struct Sessions(Vec<Child>);

impl Drop for Sessions {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn count_clients(host: &str, port: u16) -> u64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgres'";
    psql::admin_query(host, port, "postgres", sql).unwrap().trim().parse().unwrap()
}

#[test]
fn a_full_backend_stays_attached_on_every_pgpool() {
    let dir = RunDir::new("infra-test-full");
    let running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let sizing = running.sizing();
    let via = |pool: u16, sql: &str| psql::query("127.0.0.1", pool, SHOP_DB, sql);
    via(19520, "CREATE TABLE items (id int PRIMARY KEY)").unwrap();
    via(19520, "INSERT INTO items VALUES (1)").unwrap();
    via(19521, "INSERT INTO items VALUES (2)").unwrap();

    // Fill backend 0: more sessions than it has slots, each holding its slot for FULL_FOR. A
    // superuser session (pgpool's health check, this test's own counting) may hold a client slot
    // for a moment while they log in, so some are refused yet a slot frees afterwards: top up
    // until the outside sessions hold every slot a client may take.
    let client_slots = u64::from(sizing.max_connections - sizing.superuser_reserved);
    let sleep = format!("SELECT pg_sleep({})", FULL_FOR.as_secs());
    let mut sessions = Sessions(vec![]);
    let spawn = |sessions: &mut Sessions, count: usize| {
        for _ in 0..count {
            let child = Command::new("psql")
                .args(["-X", "-q", "-U", "postgres", "-h", "127.0.0.1", "-p", "15720", "-d", "postgres", "-c", &sleep])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("psql");
            sessions.0.push(child);
        }
    };
    spawn(&mut sessions, sizing.max_connections as usize + 5);
    let filled = Instant::now();
    let (mut refused, mut clients) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        // Those that found no slot end at once, saying so.
        refused = sessions.0.iter_mut().map(|c| c.try_wait()).filter(|w| matches!(w, Ok(Some(_)))).count();
        clients = count_clients("127.0.0.1", 15720);
        if refused >= 5 && clients >= client_slots {
            break;
        }
        spawn(&mut sessions, (client_slots.saturating_sub(clients)) as usize + 2);
    }
    let n = sessions.0.len();
    eprintln!(
        "backend 0: {clients} client sessions (max_connections {}, {} reserved for the superuser); \
         {refused} of {n} outside sessions refused",
        sizing.max_connections, sizing.superuser_reserved
    );
    assert!(
        refused >= 5 && clients >= client_slots,
        "the backend never filled: {refused} refused, {clients} of {client_slots} client slots held"
    );
    let err = Command::new("psql")
        .args(["-X", "-U", "postgres", "-h", "127.0.0.1", "-p", "15720", "-d", "postgres", "-c", "SELECT 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("reserved for non-replication superuser") || stderr.contains("too many clients"),
        "a client gets no slot: {stderr}"
    );
    psql::admin_query("127.0.0.1", 15720, "postgres", "SELECT 1").expect("the superuser still gets a slot");

    // While it is full: every pgpool keeps both nodes up. Client sessions through pgpool try to
    // write meanwhile (a new pgpool child cannot connect to the full backend).
    let mut polls = 0;
    let mut writes = (0, 0);
    let mut id = 100;
    while filled.elapsed() < FULL_FOR - Duration::from_secs(1) {
        for pool in 0..2 {
            for node in 0..2 {
                // "waiting": attached, not used by a session since
                let status = running.pgpool_node_status(pool, node).unwrap();
                assert!(
                    status == "up" || status == "waiting",
                    "pgpool {pool} sees node {node} {status} after {:.1?}",
                    filled.elapsed()
                );
            }
        }
        polls += 1;
        id += 1;
        match via(19520 + (id % 2) as u16, &format!("INSERT INTO items VALUES ({id})")) {
            Ok(_) => writes.0 += 1,
            Err(_) => writes.1 += 1,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "{polls} polls over {:.1?} of a full backend: node 0 up on both pgpools every time; \
         writes through pgpool meanwhile: {} ok, {} failed",
        filled.elapsed(),
        writes.0,
        writes.1
    );
    drop(sessions);

    // Afterwards: both nodes still up everywhere, writes reach both backends.
    for pool in 0..2 {
        for node in 0..2 {
            let status = running.pgpool_node_status(pool, node).unwrap();
            assert!(status == "up" || status == "waiting", "pgpool {pool} node {node}: {status}");
        }
    }
    // The outside sessions' backends exit one by one: until the backend has room, a pgpool
    // child that must open a connection to it fails the write (on that node alone: pgpool then
    // ends the session with "kind does not match"), so each pgpool is given a few seconds.
    for (port, id) in [(19520, 1000), (19521, 1001)] {
        let mut last = None;
        for _ in 0..50 {
            match via(port, &format!("INSERT INTO items VALUES ({id})")) {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(last.is_none(), "no write through pgpool {port} after the backend emptied: {last:?}");
    }
    // Read as the superuser, as infra's own tools do: the outside sessions' backends may still
    // be sleeping out their pg_sleep (they notice their killed client only afterwards).
    for port in [15720, 15721] {
        let n = psql::admin_query("127.0.0.1", port, SHOP_DB, "SELECT count(*) FROM items WHERE id >= 1000").unwrap();
        assert_eq!(n.trim(), "2", "backend {port}");
    }
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    running.down().unwrap();
}
