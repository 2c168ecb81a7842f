//! `check` while clients write: writers keep inserting and updating through both pgpools, and
//! every one of 10 checks in a row finds the backends identical (the check pauses writes on the
//! main node while it reads); afterwards the writers are stopped and the rows they wrote counted.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{topology, RunDir};
use infra::{psql, Kind, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-check"
[postgres]
count = 2
base_port = 15700
[pgpool]
count = 2
base_port = 19500
pcp_base_port = 19550
"#;

/// One long-lived psql session through pgpool `(host, port)` that writes until `stop`: each
/// transaction inserts a row into `items` and bumps `counters` (two tables, as the app's writes).
fn writer(host: String, port: u16, id: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-U", "postgres", "-h", &host, "-p", &port.to_string(), "-d", SHOP_DB])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql");
        let mut stdin = child.stdin.take().unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let sql = format!(
                "BEGIN; INSERT INTO items VALUES ('{id}-{n}', {n}); \
                 UPDATE counters SET n = n + 1 WHERE writer = {id}; COMMIT;\n"
            );
            if stdin.write_all(sql.as_bytes()).is_err() {
                break;
            }
            n += 1;
        }
        drop(stdin);
        let _ = child.wait();
        n
    })
}

#[test]
fn check_is_identical_every_time_while_clients_write() {
    let dir = RunDir::new("infra-test-check");
    let running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let pools = running.endpoints(Kind::Pgpool);
    let (h, p) = (&pools[0].host, &pools[0].port);
    psql::query(h, *p, SHOP_DB, "CREATE TABLE items (id text PRIMARY KEY, n bigint NOT NULL)").unwrap();
    psql::query(h, *p, SHOP_DB, "CREATE TABLE counters (writer int PRIMARY KEY, n bigint NOT NULL)").unwrap();
    psql::query(h, *p, SHOP_DB, "INSERT INTO counters VALUES (0, 0), (1, 0), (2, 0), (3, 0)").unwrap();
    // a table without primary key, ordered by its whole row
    psql::query(h, *p, SHOP_DB, "CREATE TABLE notes (body text)").unwrap();
    psql::query(h, *p, SHOP_DB, "INSERT INTO notes SELECT 'note ' || g FROM generate_series(1, 2000) g").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u32)
        .map(|w| writer(pools[w as usize % 2].host.clone(), pools[w as usize % 2].port, w, stop.clone()))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let direct = |sql: &str| {
        let backend = &running.endpoints(Kind::Postgres)[0];
        psql::query(&backend.host, backend.port, SHOP_DB, sql).unwrap().trim().parse::<u64>().unwrap()
    };
    let rows_before = direct("SELECT count(*) FROM items");
    let mut results = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let report = running.check_consistency().unwrap();
        results.push((report.is_identical(), report.to_string(), t.elapsed()));
    }
    let rows_during = direct("SELECT count(*) FROM items");
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for (ok, text, took) in &results {
        eprintln!("check took {took:.1?}: {text}");
        assert!(ok, "a check while clients write found a difference: {text}");
    }
    eprintln!("items: {rows_before} before the checks, {rows_during} after them; writers sent {sent:?}");
    assert!(rows_during > rows_before + 50, "the writers made too little progress during the checks");
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert!(report.tables.iter().any(|t| t.table == "notes" && t.rows == 2000), "{report}");
    running.down().unwrap();
}
